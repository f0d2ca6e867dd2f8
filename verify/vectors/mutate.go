package vectors

import (
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/custody-dev/custody/canonicaljson"
)

// Mutations returns one variant of a bundle for every scalar and every key
// it holds (docs/VERIFY.md: every field is bound, or is context only):
// each string with its first and its last character changed, each number
// plus one, each boolean negated, each key removed and renamed, an
// unknown key added to each object, each array's first element removed
// and duplicated. Names are "<pointer> <what>".
func Mutations(doc any) []Vector {
	var out []Vector
	walk(doc, "", &out)
	return out
}

func pointer(parent, key string) string {
	return parent + "/" + strings.ReplaceAll(strings.ReplaceAll(key, "~", "~0"), "/", "~1")
}

func walk(node any, at string, out *[]Vector) {
	add := func(what string, ops ...Op) {
		*out = append(*out, Vector{Name: at + " " + what, Patch: ops})
	}
	switch n := node.(type) {
	case canonicaljson.Object:
		keys := make([]string, 0, len(n))
		for k := range n {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := pointer(at, k)
			*out = append(*out,
				Vector{Name: p + " key removed", Patch: []Op{{Op: "remove", Path: p}}},
				Vector{Name: p + " key renamed", Patch: []Op{{Op: "remove", Path: p}, {Op: "add", Path: p + "_renamed", Value: n[k]}}},
			)
			walk(n[k], p, out)
		}
		add("unknown key added", Op{Op: "add", Path: pointer(at, "unknown_key"), Value: "x"})
	case []any:
		if len(n) > 0 {
			add("first element removed", Op{Op: "remove", Path: at + "/0"})
			add("first element duplicated", Op{Op: "add", Path: at + "/0", Value: n[0]})
		}
		for i, e := range n {
			walk(e, at+"/"+strconv.Itoa(i), out)
		}
	case string:
		if n == "" {
			add("emptied→x", Op{Op: "replace", Path: at, Value: "x"})
			return
		}
		add("first character changed", Op{Op: "replace", Path: at, Value: changeFirst(n)})
		if utf8.RuneCountInString(n) > 1 {
			add("last character changed", Op{Op: "replace", Path: at, Value: changeLast(n)})
		}
	case float64:
		add("plus one", Op{Op: "replace", Path: at, Value: n + 1})
	case bool:
		add("negated", Op{Op: "replace", Path: at, Value: !n})
	case nil:
		add("null→0", Op{Op: "replace", Path: at, Value: 0.0})
	}
}

func next(r rune) rune {
	switch {
	case r == '~':
		return '!'
	case r < 0x20:
		return 'x'
	}
	return r + 1
}

func changeFirst(s string) string {
	r, size := utf8.DecodeRuneInString(s)
	return string(next(r)) + s[size:]
}

func changeLast(s string) string {
	r, size := utf8.DecodeLastRuneInString(s)
	return s[:len(s)-size] + string(next(r))
}

// Unauthenticated lists the bundle fields no signature covers: a verifier
// shows them as context only. A variant that changes only these (to a
// value still of the right form) verifies as the base does.
var Unauthenticated = []string{"/created_at", "/log/timestamps/N/authority"}

var authorityPath = regexp.MustCompile(`^/log/timestamps/[0-9]+/authority$`)

// ExpectFor is the outcome rule for a mutation of a base whose untouched
// outcome is base: a change to an unauthenticated field keeps the base
// outcome (and lists the field) if the new value still has the field's
// form; every other change fails.
func ExpectFor(v Vector, base string) Expect {
	if len(v.Patch) == 1 && v.Patch[0].Op == "replace" && v.Patch[0].Path == "/created_at" {
		if s, ok := v.Patch[0].Value.(string); ok {
			if _, err := time.Parse(time.RFC3339Nano, s); err == nil {
				return Expect{Outcome: base}
			}
		}
	}
	// Timestamps are attestations the bundle may carry or not: without
	// them (the bases carry one) time is left unchecked, which limits
	// the outcome; one given twice changes nothing.
	if len(v.Patch) == 1 {
		switch op := v.Patch[0]; {
		case op.Op == "remove" && (op.Path == "/log/timestamps" || op.Path == "/log/timestamps/0"):
			if base == "verified" {
				return Expect{Outcome: "verified_with_limits"}
			}
			return Expect{Outcome: base}
		case op.Op == "add" && op.Path == "/log/timestamps/0":
			return Expect{Outcome: base}
		case op.Op == "remove" && op.Path == "/completeness":
			// Likewise the history map's proof: without it completeness
			// is left unchecked.
			if base == "verified" {
				return Expect{Outcome: "verified_with_limits"}
			}
			return Expect{Outcome: base}
		}
	}
	// A timestamp's authority is the operator's label for it; the
	// response's signer is what is checked.
	if len(v.Patch) == 1 && v.Patch[0].Op == "replace" && authorityPath.MatchString(v.Patch[0].Path) {
		if _, ok := v.Patch[0].Value.(string); ok {
			return Expect{Outcome: base}
		}
	}
	return Expect{Outcome: "failed"}
}
