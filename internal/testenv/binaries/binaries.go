// Package binaries builds the project's commands for tests that must run
// the real binaries in child processes (end-to-end, crash and kill tests).
package binaries

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/custody-dev/custody/internal/testenv"
)

var (
	mu    sync.Mutex
	dir   string
	built = map[string]string{}
)

// Build compiles ./cmd/<name> once per test process and returns the path of
// the binary.
func Build(t testing.TB, name string) string {
	t.Helper()
	testenv.RequireFull(t, name+" binary")
	mu.Lock()
	defer mu.Unlock()
	if p, ok := built[name]; ok {
		return p
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "custody-bin-")
		if err != nil {
			t.Fatal(err)
		}
		dir = d
	}
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", out, "./cmd/"+name)
	cmd.Dir = RepoRoot(t)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/%s: %v\n%s", name, err, b)
	}
	built[name] = out
	return out
}

// RepoRoot is the repository's top folder.
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the source tree")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// Tool returns the command line that runs a tool pinned in tools/go.mod,
// e.g. Tool(t, "grpcurl") = go tool -modfile=<root>/tools/go.mod grpcurl.
func Tool(t testing.TB, name string) []string {
	return []string{"go", "tool", fmt.Sprintf("-modfile=%s", filepath.Join(RepoRoot(t), "tools", "go.mod")), name}
}
