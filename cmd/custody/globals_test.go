package main_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custody-dev/custody/internal/testenv/binaries"
	"github.com/custody-dev/custody/internal/testenv/freeport"
)

// TestCLIGlobals: what every command shares: the server and credentials
// from the environment, exit status 2 on usage errors, and a hint when no
// server answers. (These were subtests of custodyd's TestFreshStart.)
func TestCLIGlobals(t *testing.T) {
	dir := t.TempDir()
	d := binaries.StartCustodyd(t, dir)
	custody := binaries.Build(t, "custody")

	t.Run("custody -o json whoami, server and creds from the environment", func(t *testing.T) {
		cmd := exec.Command(custody, "-o", "json", "whoami")
		cmd.Env = append(cmd.Environ(), "CUSTODY_SERVER="+d.GRPCAddr, "CUSTODY_CREDS="+d.CredsDir("auditor"))
		var me struct{ Identity, Role string }
		if err := json.Unmarshal([]byte(runOK(t, cmd)), &me); err != nil || me.Role != "auditor" {
			t.Fatalf("json whoami = %+v, %v", me, err)
		}
	})
	t.Run("custody exit status 2 on usage errors", func(t *testing.T) {
		for _, args := range [][]string{{"frobnicate"}, {"-o", "yaml", "whoami"}, {"--creds", filepath.Join(dir, "nowhere"), "whoami"}} {
			err := exec.Command(custody, args...).Run()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
				t.Errorf("custody %v: %v, want exit status 2", args, err)
			}
		}
	})
	t.Run("custody says what to do when no server answers", func(t *testing.T) {
		cmd := exec.Command(custody, "--server", freeport.Addr(t), "--creds", d.CredsDir("court"), "whoami")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), "no Custody server answers there: check --server") {
			t.Fatalf("wrong server: %v %s", err, stderr.String())
		}
	})
}

// TestCLIDocMatchesHelp: docs/CLI.md holds `custody -h` verbatim, so the
// reference cannot drift from the binary (cmd/custodyd checks `custodyd
// -h`).
func TestCLIDocMatchesHelp(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(binaries.RepoRoot(t), "docs", "CLI.md"))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command(binaries.Build(t, "custody"), "-h").CombinedOutput()
	help := strings.TrimRight(string(out), "\n")
	if len(help) < 200 || !strings.Contains(string(doc), help) {
		t.Errorf("docs/CLI.md does not hold `custody -h` verbatim; paste it from:\n%s", help)
	}
}
