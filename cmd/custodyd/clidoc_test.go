package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custody-dev/custody/internal/testenv/binaries"
)

// TestDaemonDocMatchesHelp: docs/CLI.md states the names users type, and
// holds `custodyd -h` verbatim, so the reference cannot drift from the
// binary (cmd/custody checks `custody -h`).
func TestDaemonDocMatchesHelp(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(binaries.RepoRoot(t), "docs", "CLI.md"))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command(binaries.Build(t, "custodyd"), "-h").CombinedOutput()
	help := strings.TrimRight(string(out), "\n")
	if len(help) < 200 || !strings.Contains(string(doc), help) {
		t.Errorf("docs/CLI.md does not hold `custodyd -h` verbatim; paste it from:\n%s", help)
	}
}
