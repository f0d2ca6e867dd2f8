package witness

import (
	"crypto/rand"
	"fmt"
	"strings"
	"testing"

	f_note "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

type testWitness struct {
	name, vkey string
	signer     note.Signer
}

func newTestWitness(t *testing.T, name string) testWitness {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := f_note.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	cv, err := f_note.VKeyToCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return testWitness{name: name, vkey: cv, signer: s}
}

func checkpoint(t *testing.T, signers ...note.Signer) []byte {
	t.Helper()
	skey, _, err := note.GenerateKey(rand.Reader, "custody.test/log")
	if err != nil {
		t.Fatal(err)
	}
	logSigner, _ := note.NewSigner(skey)
	cp, err := note.Sign(&note.Note{Text: "custody.test/log\n7\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"}, append([]note.Signer{logSigner}, signers...)...)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

func TestCheck(t *testing.T) {
	a, b, c := newTestWitness(t, "w.example/a"), newTestWitness(t, "w.example/b"), newTestWitness(t, "w.example/c")
	policy := fmt.Sprintf("log 0011 https://log.example\nwitness A %s https://a.example\nwitness B %s\nwitness C %s # third\ngroup two 2 A B C\nquorum two\n", a.vkey, b.vkey, c.vkey)
	p, err := ParsePolicy([]byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Describe(); got != "2 of {witness A, witness B, witness C}" {
		t.Errorf("Describe = %q", got)
	}
	for _, tc := range []struct {
		name      string
		signers   []note.Signer
		satisfied bool
		signed    string
	}{
		{"none", nil, false, ""},
		{"one", []note.Signer{a.signer}, false, "A"},
		{"two", []note.Signer{a.signer, c.signer}, true, "A,C"},
		{"all", []note.Signer{a.signer, b.signer, c.signer}, true, "A,B,C"},
		{"outsider", []note.Signer{a.signer, newTestWitness(t, "w.example/x").signer}, false, "A"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := p.Check(checkpoint(t, tc.signers...))
			var names []string
			for _, s := range r.Signed {
				names = append(names, s.Witness)
				if s.Time.IsZero() {
					t.Errorf("cosignature of %s has no time", s.Witness)
				}
			}
			if r.Satisfied != tc.satisfied || strings.Join(names, ",") != tc.signed {
				t.Errorf("Check = satisfied %v signed %v, want %v %s", r.Satisfied, names, tc.satisfied, tc.signed)
			}
		})
	}
	t.Run("forged cosignature", func(t *testing.T) {
		cp := checkpoint(t, a.signer, b.signer)
		// Replace B's signature bytes (after the key hash) with A's.
		lines := strings.Split(string(cp), "\n")
		var sigA string
		for _, l := range lines {
			if strings.HasPrefix(l, "— w.example/a ") {
				sigA = l[strings.LastIndex(l, " ")+1:]
			}
		}
		for i, l := range lines {
			if strings.HasPrefix(l, "— w.example/b ") {
				sigB := l[strings.LastIndex(l, " ")+1:]
				lines[i] = "— w.example/b " + sigB[:8] + sigA[8:]
			}
		}
		r := p.Check([]byte(strings.Join(lines, "\n")))
		if r.Satisfied || len(r.Invalid) != 1 || r.Invalid[0] != "B" {
			t.Errorf("forged: satisfied %v invalid %v", r.Satisfied, r.Invalid)
		}
	})
	t.Run("quorum none", func(t *testing.T) {
		p, err := ParsePolicy([]byte("quorum none\n"))
		if err != nil {
			t.Fatal(err)
		}
		if !p.RequiresNone() || !p.Check(checkpoint(t)).Satisfied {
			t.Error("quorum none is not satisfied by a bare checkpoint")
		}
	})
}

func TestParsePolicyErrors(t *testing.T) {
	a := newTestWitness(t, "w.example/a")
	for _, tc := range []struct{ name, policy, want string }{
		{"no quorum", "witness A " + a.vkey + "\n", "no quorum"},
		{"unknown keyword", "witnes A " + a.vkey + "\nquorum A\n", `unknown keyword "witnes"`},
		{"bad key", "witness A nonsense\nquorum A\n", "verifier key"},
		{"keyword name", "witness all " + a.vkey + "\nquorum all\n", "keyword"},
		{"twice", "witness A " + a.vkey + "\nwitness A " + a.vkey + "\nquorum A\n", "defined twice"},
		{"undefined member", "witness A " + a.vkey + "\ngroup g any A B\nquorum g\n", `"B" is not defined`},
		{"threshold too high", "witness A " + a.vkey + "\ngroup g 2 A\nquorum g\n", "threshold"},
		{"threshold zero", "witness A " + a.vkey + "\ngroup g 0 A\nquorum g\n", "threshold"},
		{"undefined quorum", "witness A " + a.vkey + "\nquorum B\n", "not defined"},
		{"two quorums", "witness A " + a.vkey + "\nquorum A\nquorum none\n", "second quorum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePolicy([]byte(tc.policy))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParsePolicy = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
