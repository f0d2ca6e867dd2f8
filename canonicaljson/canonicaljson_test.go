package canonicaljson_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/custody-dev/custody/canonicaljson"
)

func TestMarshal(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"sorted keys, no spaces", canonicaljson.Object{"b": 1, "a": "x", "c": []any{true, nil}}, `{"a":"x","b":1,"c":[true,null]}`},
		{"nested", canonicaljson.Object{"z": canonicaljson.Object{"y": int64(-5), "x": uint64(7)}}, `{"z":{"x":7,"y":-5}}`},
		{"escapes only what JSON needs", "a\"b\\c\n\u0001<>&é\u2028", `"a\"b\\c\n\u0001<>&é` + "\u2028" + `"`},
		{"empty", canonicaljson.Object{}, `{}`},
		{"strings", []string{"b", "a"}, `["b","a"]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := canonicaljson.Marshal(tc.in)
			if err != nil || string(got) != tc.want {
				t.Fatalf("Marshal = %s, %v; want %s", got, err, tc.want)
			}
			if !json.Valid(got) {
				t.Fatalf("%s is not valid JSON", got)
			}
		})
	}
}

func TestMarshalRefuses(t *testing.T) {
	for name, v := range map[string]any{
		"NaN":           math.NaN(),
		"infinity":      math.Inf(1),
		"big integer":   uint64(1 << 60),
		"invalid UTF-8": "\xff",
		"struct":        struct{}{},
	} {
		if _, err := canonicaljson.Marshal(v); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestCanonicalize(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		// RFC 8785 §3.2.2.3 and Appendix B number examples.
		{"numbers as ECMAScript writes them", `[1E21, 1e-7, 0.000001, 4.50, 2e-3, -0, 333333333.33333329, 100, 1e+2, 9007199254740993]`,
			`[1e+21,1e-7,0.000001,4.5,0.002,0,333333333.3333333,100,100,9007199254740992]`},
		{"whitespace and order", "{ \"b\" : [ 1 , {\"y\":true, \"x\":null} ],\n\"a\":\"\\u00e9\\/\" }", `{"a":"é/","b":[1,{"x":null,"y":true}]}`},
		// RFC 8785 §3.2.3: keys sorted by UTF-16 code units.
		{"surrogate pair and escaped backslash", `["\ud83d\ude00", "\\ud800"]`, `["😀","\\ud800"]`},
		{"UTF-16 key order", `{"\u20ac":1,"\r":2,"\ufb33":3,"1":4,"\ud83d\ude00":5,"\u0080":6,"\u00f6":7}`,
			"{\"\\r\":2,\"1\":4,\"\u0080\":6,\"ö\":7,\"€\":1,\"😀\":5,\"\ufb33\":3}"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := canonicaljson.Canonicalize([]byte(tc.in))
			if err != nil || string(got) != tc.want {
				t.Fatalf("Canonicalize = %s, %v; want %s", got, err, tc.want)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	for name, in := range map[string]string{
		"duplicate key":        `{"a":1,"a":2}`,
		"nested duplicate key": `{"a":{"b":1,"c":[{"d":1,"d":1}]}}`,
		"trailing data":        `{"a":1} {}`,
		"invalid UTF-8":        "{\"a\":\"\xff\"}",
		"huge number":          `[1e400]`,
		"not JSON":             `{a:1}`,
		"lone high surrogate":  `["\ud83d"]`,
		"lone low surrogate":   `["x\ude00"]`,
		"high then other":      `["\ud83d\u0041"]`,
		"too deep":             strings.Repeat("[", 101) + strings.Repeat("]", 101),
	} {
		t.Run(name, func(t *testing.T) {
			if v, err := canonicaljson.Parse([]byte(in)); err == nil {
				t.Fatalf("Parse(%q) = %v, want an error", in, v)
			}
		})
	}
}
