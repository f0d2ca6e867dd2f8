// Package nodeverify_test runs the independent Node.js verifier
// (verify/nodeverify/verify.mjs, written from docs/VERIFY.md alone) against
// every published conformance vector in testdata/verify-vectors (the
// document and the stream form), and its self-test of the custody rules, so
// CI proves the specification is enough to write a second verifier that
// agrees with the Go one.
//
// It is part of the main module, so `go test ./...` (and scripts/test) runs it.
package nodeverify_test

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/custody-dev/custody/internal/testenv"
)

// nodePath finds node and checks it is recent enough (X509Certificate,
// structuredClone and JWK key import need Node.js 18 or later).
func nodePath(t *testing.T) string {
	t.Helper()
	testenv.RequireFull(t, "Node.js verifier")
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node (Node.js) is not installed, and this test needs it to run the independent verifier: "+
			"install Debian's nodejs package (scripts/test does this when it is missing): %v", err)
	}
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", node, err)
	}
	m := regexp.MustCompile(`^v(\d+)\.`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("%s --version printed %q, not a Node.js version", node, out)
	}
	if major, _ := strconv.Atoi(string(m[1])); major < 18 {
		t.Fatalf("%s is Node.js %s; the independent verifier needs 18 or later", node, out)
	}
	return node
}

func run(t *testing.T, node string, args ...string) {
	t.Helper()
	cmd := exec.Command(node, args...)
	cmd.Dir = "."
	out, err := cmd.CombinedOutput()
	t.Logf("node %v:\n%s", args, out)
	if err != nil {
		t.Fatalf("node %v: %v (output above)", args, err)
	}
}

// TestConformanceVectors: every vector's outcome and first failing step, as
// reached by the Node.js verifier, equal the vector's expectation.
func TestConformanceVectors(t *testing.T) {
	node := nodePath(t)
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	run(t, node, "run-vectors.mjs", root)
}

// TestCustodyRulesSelftest: step 7 (custody rules, signed statements), which
// no published vector reaches, and the stream form's framing, on synthetic
// bundles signed with the test's own keys; the certificates are made with the
// openssl command.
func TestCustodyRulesSelftest(t *testing.T) {
	node := nodePath(t)
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatalf("openssl is not installed; the self-test makes its client CA with it (scripts/test installs it): %v", err)
	}
	run(t, node, "selftest.mjs")
}
