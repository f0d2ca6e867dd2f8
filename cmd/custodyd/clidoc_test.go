package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custody-dev/custody/internal/testenv/binaries"
)

// TestCLIDocMatchesHelp: docs/CLI.md states the names users type, and
// holds `custodyd -h` and `custody -h` verbatim, so the reference cannot
// drift from the binaries.
func TestCLIDocMatchesHelp(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(binaries.RepoRoot(t), "docs", "CLI.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"custodyd", "custody"} {
		out, _ := exec.Command(binaries.Build(t, name), "-h").CombinedOutput()
		help := strings.TrimRight(string(out), "\n")
		if len(help) < 200 || !strings.Contains(string(doc), help) {
			t.Errorf("docs/CLI.md does not hold `%s -h` verbatim; paste it from:\n%s", name, help)
		}
	}
}
