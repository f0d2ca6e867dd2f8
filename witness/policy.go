// Package witness owns the witness policy: which independent witnesses
// (C2SP tlog-witness) must have cosigned a custody-log checkpoint
// (C2SP tlog-cosignature, cosignature/v1) before a court believes it is the
// checkpoint everybody else sees. It parses policy files in the text format
// Sigsum's tools use and checks a checkpoint's cosignatures against the
// policy's quorum. The daemon gives the same file to Tessera, which
// collects the cosignatures; the court's verifier checks them here.
//
// Policy file format (one statement per line, '#' starts a comment):
//
//	log KEY [URL]                  accepted and ignored (the log key is trusted separately)
//	witness NAME VKEY [URL]        a witness: its cosignature/v1 verifier key (C2SP signed-note vkey)
//	group NAME K|any|all MEMBER…   satisfied when K of its members are
//	quorum NAME|none               the component that must be satisfied
//
// Names are defined before use and never redefined; the keywords (log,
// witness, group, quorum, any, all, none) are not names.
package witness

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	f_note "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// Witness is one witness of a policy.
type Witness struct {
	Name string
	// VKey is the witness's verifier key as the policy gives it; URL its
	// base URL (may be empty in a verifier's policy).
	VKey, URL string

	verifier note.Verifier
}

// Verifier checks the witness's cosignatures.
func (w *Witness) Verifier() note.Verifier { return w.verifier }

// component is a witness or a group.
type component struct {
	name    string
	witness *Witness     // a witness, or
	k       int          // a group: k of
	members []*component // these
}

// Policy is a parsed witness policy.
type Policy struct {
	// Witnesses are the policy's witnesses in the order defined.
	Witnesses []*Witness
	quorum    *component // nil: quorum none
	quorumRaw string
	text      []byte
}

// Text is the policy file as parsed.
func (p *Policy) Text() []byte { return p.text }

var keywords = []string{"log", "witness", "group", "quorum", "any", "all", "none"}

// ParsePolicy parses a policy file.
func ParsePolicy(text []byte) (*Policy, error) {
	p := &Policy{text: bytes.Clone(text)}
	byName := map[string]*component{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	line := 0
	for sc.Scan() {
		line++
		s := sc.Text()
		if i := strings.IndexByte(s, '#'); i >= 0 {
			s = s[:i]
		}
		f := strings.Fields(s)
		if len(f) == 0 {
			continue
		}
		bad := func(format string, a ...any) error {
			return fmt.Errorf("witness policy line %d: %s", line, fmt.Sprintf(format, a...))
		}
		newName := func(n string) error {
			if slices.Contains(keywords, n) {
				return bad("%q is a keyword, not a name", n)
			}
			if _, ok := byName[n]; ok {
				return bad("%q is defined twice", n)
			}
			return nil
		}
		switch f[0] {
		case "log":
			if len(f) < 2 || len(f) > 3 {
				return nil, bad("want: log KEY [URL]")
			}
		case "witness":
			if len(f) < 3 || len(f) > 4 {
				return nil, bad("want: witness NAME VKEY [URL]")
			}
			if err := newName(f[1]); err != nil {
				return nil, err
			}
			v, err := f_note.NewVerifierForCosignatureV1(f[2])
			if err != nil {
				return nil, bad("witness %s: verifier key %q: %v", f[1], f[2], err)
			}
			w := &Witness{Name: f[1], VKey: f[2], verifier: v}
			if len(f) == 4 {
				w.URL = f[3]
			}
			p.Witnesses = append(p.Witnesses, w)
			byName[f[1]] = &component{name: f[1], witness: w}
		case "group":
			if len(f) < 4 {
				return nil, bad("want: group NAME K|any|all MEMBER...")
			}
			if err := newName(f[1]); err != nil {
				return nil, err
			}
			g := &component{name: f[1]}
			for _, m := range f[3:] {
				c, ok := byName[m]
				if !ok {
					return nil, bad("group %s: %q is not defined above", f[1], m)
				}
				if slices.Contains(g.members, c) {
					return nil, bad("group %s: %q is listed twice", f[1], m)
				}
				g.members = append(g.members, c)
			}
			switch f[2] {
			case "any":
				g.k = 1
			case "all":
				g.k = len(g.members)
			default:
				k, err := strconv.Atoi(f[2])
				if err != nil || k < 1 || k > len(g.members) || strconv.Itoa(k) != f[2] {
					return nil, bad("group %s: threshold %q is not any, all or a number from 1 to %d", f[1], f[2], len(g.members))
				}
				g.k = k
			}
			byName[f[1]] = g
		case "quorum":
			if len(f) != 2 {
				return nil, bad("want: quorum NAME|none")
			}
			if p.quorumRaw != "" {
				return nil, bad("a second quorum")
			}
			p.quorumRaw = f[1]
			if f[1] != "none" {
				c, ok := byName[f[1]]
				if !ok {
					return nil, bad("quorum %q is not defined above", f[1])
				}
				p.quorum = c
			}
		default:
			return nil, bad("unknown keyword %q", f[0])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if p.quorumRaw == "" {
		return nil, errors.New("witness policy: no quorum line")
	}
	return p, nil
}

// RequiresNone reports whether the policy's quorum is none: it asks for no
// witness at all.
func (p *Policy) RequiresNone() bool { return p.quorum == nil }

// Describe says what the quorum requires, in words.
func (p *Policy) Describe() string {
	if p.quorum == nil {
		return "no witness (quorum none)"
	}
	return describe(p.quorum)
}

func describe(c *component) string {
	if c.witness != nil {
		return "witness " + c.name
	}
	names := make([]string, len(c.members))
	for i, m := range c.members {
		names[i] = describe(m)
	}
	return fmt.Sprintf("%d of {%s}", c.k, strings.Join(names, ", "))
}

// Cosignature is a policy witness's valid cosignature on a checkpoint.
type Cosignature struct {
	Witness string
	// Time is when the witness says it cosigned (cosignature/v1's
	// timestamp): it had seen the checkpoint by then.
	Time time.Time
}

// Result is what a checkpoint's cosignatures establish under a policy.
type Result struct {
	// Satisfied: the quorum's witnesses cosigned.
	Satisfied bool
	// Signed are the policy's witnesses whose cosignature verifies, in
	// policy order.
	Signed []Cosignature
	// Invalid names policy witnesses whose key signed a line that does
	// not verify (a forged or damaged cosignature).
	Invalid []string
	// Required is Describe's text.
	Required string
}

// Check checks the cosignatures on the signed checkpoint note cp. It does
// not check the log's own signature (the caller does, with the key it
// trusts).
func (p *Policy) Check(cp []byte) Result {
	res := Result{Required: p.Describe()}
	signed := map[*Witness]bool{}
	for _, w := range p.Witnesses {
		n, err := note.Open(cp, note.VerifierList(w.verifier))
		var inv *note.InvalidSignatureError
		switch {
		case err == nil && len(n.Sigs) == 1:
			t, _ := f_note.CoSigV1Timestamp(n.Sigs[0])
			res.Signed = append(res.Signed, Cosignature{Witness: w.Name, Time: t.UTC()})
			signed[w] = true
		case errors.As(err, &inv):
			res.Invalid = append(res.Invalid, w.Name)
		}
	}
	res.Satisfied = p.quorum == nil || satisfied(p.quorum, signed)
	return res
}

func satisfied(c *component, signed map[*Witness]bool) bool {
	if c.witness != nil {
		return signed[c.witness]
	}
	n := 0
	for _, m := range c.members {
		if satisfied(m, signed) {
			n++
		}
	}
	return n >= c.k
}
