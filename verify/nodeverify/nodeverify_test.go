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
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/custody-dev/custody/internal/testenv"
	"github.com/custody-dev/custody/verify"
	"github.com/custody-dev/custody/verify/vectors"
	"github.com/custody-dev/custody/verify/vectors/goverify"
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
// reached by the Node.js verifier, equal the vector's expectation; and what
// its step 10 (history completeness, completeness.mjs, ported from the Go
// reference by the Custody team) reports is, text for text, what the Go
// verifier reports for the vector: the check's verdict and detail, the
// "not checked" line, the residual "cannot prove" line and the fact.
func TestConformanceVectors(t *testing.T) {
	node := nodePath(t)
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "step10.json")
	run(t, node, "run-vectors.mjs", root, "--step10", out)
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var got []step10
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "testdata", "verify-vectors")
	set, err := vectors.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(set.Vectors) {
		t.Fatalf("run-vectors.mjs wrote step 10 of %d vectors, vectors.json has %d", len(got), len(set.Vectors))
	}
	same, malformed := 0, 0
	for i, v := range set.Vectors {
		if got[i].Name != v.Name {
			t.Fatalf("vector %d is %q in run-vectors.mjs's output, %q in vectors.json", i, got[i].Name, v.Name)
		}
		// A malformed bundle or stream (step 1) ends the Node verifier's run
		// where it is found (README): unlike Go's, its report then holds no
		// later step.
		if v.Expect.Outcome == "failed" && v.Expect.Step == "format" {
			if got[i].Check != nil || got[i].NotChecked != "" || got[i].CannotProve != "" || got[i].Fact != nil {
				t.Errorf("%s: step 10 reported after a malformed bundle", v.Name)
			}
			malformed++
			continue
		}
		if diffs := got[i].differsFrom(goStep10(t, dir, set, v)); len(diffs) > 0 {
			t.Errorf("%s: step 10 differs from the Go verifier's:\n\t%s", v.Name, strings.Join(diffs, "\n\t"))
		} else {
			same++
		}
	}
	t.Logf("step 10 as the Go verifier's: %d/%d vectors (and %d malformed, where the Node verifier stops at step 1)", same, len(set.Vectors)-malformed, malformed)
}

// step10 is what completeness.mjs reported for one vector.
type step10 struct {
	Name  string `json:"name"`
	Check *struct {
		OK     bool   `json:"ok"`
		Detail string `json:"detail"`
	} `json:"check"`
	NotChecked  string `json:"notChecked"`
	CannotProve string `json:"cannotProve"`
	Fact        *struct {
		Name    string `json:"name"`
		Value   string `json:"value"`
		BoundBy string `json:"boundBy"`
	} `json:"fact"`
}

// goStep10 is the Go verifier's report on a vector, with the trust inputs
// the vector gives.
func goStep10(t *testing.T, dir string, set *vectors.Set, v vectors.Vector) *verify.Report {
	t.Helper()
	r, err := goverify.Verify(dir, set, v)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// rootMismatch is how transparency-dev/merkle states a wrong root (both
// roots in full); completeness.mjs says it without them.
var rootMismatch = regexp.MustCompile(`calculated root:\n\[[0-9 ]*\]\n does not match expected root:\n\[[0-9 ]*\]`)

// jsonSyntax is a JSON syntax error as encoding/json words it, after the
// text that says where (which the Node verifier must say the same way); the
// wording of the error itself is each parser's own.
var jsonSyntax = regexp.MustCompile(`^((?:completeness\.entry: log entry|map leaf): )(?:invalid character|unexpected end of JSON input|unexpected EOF|EOF)`)

// differsFrom lists how step 10 in the Node verifier differs from the Go
// report r.
func (s step10) differsFrom(r *verify.Report) []string {
	var diffs []string
	var goCheck *verify.Check
	for i, c := range r.Checks {
		if c.Name == "history completeness" {
			goCheck = &r.Checks[i]
		}
	}
	switch {
	case goCheck == nil && s.Check != nil:
		diffs = append(diffs, "a history completeness check the Go verifier does not make: "+s.Check.Detail)
	case goCheck != nil && s.Check == nil:
		diffs = append(diffs, "no history completeness check; Go: "+goCheck.Detail)
	case goCheck != nil:
		want := rootMismatch.ReplaceAllString(goCheck.Detail, "calculated root does not match expected root")
		sameText := want == s.Check.Detail
		if m := jsonSyntax.FindStringSubmatch(want); m != nil && !sameText {
			sameText = strings.HasPrefix(s.Check.Detail, m[1]) && !goCheck.OK
		}
		if goCheck.OK != s.Check.OK || !sameText {
			diffs = append(diffs, "check ok "+strconv.FormatBool(s.Check.OK)+" "+strconv.Quote(s.Check.Detail)+"; Go ok "+strconv.FormatBool(goCheck.OK)+" "+strconv.Quote(goCheck.Detail))
		}
	}
	var notChecked string
	for _, n := range r.NotChecked {
		if strings.HasPrefix(n, "completeness:") {
			notChecked = n
		}
	}
	if notChecked != s.NotChecked {
		diffs = append(diffs, "not checked "+strconv.Quote(s.NotChecked)+"; Go "+strconv.Quote(notChecked))
	}
	var cannot string
	for _, c := range r.CannotProve {
		cannot = c // step 10's residual is the only one
	}
	if cannot != s.CannotProve {
		diffs = append(diffs, "cannot prove "+strconv.Quote(s.CannotProve)+"; Go "+strconv.Quote(cannot))
	}
	// The Go report states facts only when every check passed; completeness.mjs
	// returns its fact whenever step 10 passed (verify.mjs drops it otherwise).
	var fact *verify.Fact
	for i, f := range r.Facts {
		if f.Name == "history complete" {
			fact = &r.Facts[i]
		}
	}
	switch {
	case fact != nil && (s.Fact == nil || s.Fact.Name != fact.Name || s.Fact.Value != fact.Value || s.Fact.BoundBy != fact.BoundBy):
		diffs = append(diffs, "fact "+strconv.Quote(fact.Value)+" missing or different in the Node verifier")
	case fact == nil && r.OK && s.Fact != nil:
		diffs = append(diffs, "a fact the Go verifier does not state: "+s.Fact.Value)
	}
	return diffs
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
