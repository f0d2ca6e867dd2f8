package canonicaljson_test

import (
	"encoding/json"
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
		"float":         1.5,
		"big integer":   uint64(1 << 60),
		"invalid UTF-8": "\xff",
		"non-ASCII key": canonicaljson.Object{"é": 1},
		"struct":        struct{}{},
	} {
		if _, err := canonicaljson.Marshal(v); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
