package events

import (
	"bytes"
	"os"
	"reflect"
	"testing"

	"github.com/custody-dev/custody/canonicaljson"
)

// FuzzDecodeCanonicalObject: the fast path of decodeObject accepts only
// what the general decoder decodes to the very same value and Marshal
// re-encodes to the very same bytes, and it accepts every such object
// (of moderate depth), so the fast path changes nothing but speed.
func FuzzDecodeCanonicalObject(f *testing.F) {
	for _, name := range []string{"entry.json", "record.json"} {
		if b, err := os.ReadFile("testdata/" + name); err == nil {
			f.Add(b)
			f.Add(bytes.TrimSpace(b))
		}
	}
	for _, s := range []string{`{}`, `{"a":[]}`, `{"a":{}}`, `{"":1,"a":-1}`, `{"a":-0}`, `{"a":01}`, `{"a":1.0}`, `{"a":1e3}`,
		`{"a":9007199254740991}`, `{"a":-9007199254740991}`, `{"a":9007199254740992}`, `{"a":"\u001f\u0000\b\f\n\r\t\"\\"}`,
		`{"a":"\u0008"}`, `{"a":"\u001F"}`, `{"a":"\/"}`, `{"a":"\u00e9"}`, `{"a":"é` + "\u2028\x7f" + `"}`, `{"b":1,"a":2}`, `{"a":1,"a":1}`,
		`{"a":true,"b":false,"c":null,"d":[1,"x",[],{}]}`, `{"a":1} `, ` {"a":1}`, `{"a" :1}`, `{"€":1,"😀":2,"דּ":3}`, `{"דּ":3,"😀":2}`,
		"{\"a\":\"\xff\"}", `{"a":[1,]}`, `{"a":tru}`, `{"a":nul}`, `{"a":"x`, `[1]`, `"a"`, `{"a":1}{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := canonicaljson.DecodeCanonicalObject(b)
		slow, err := decodeObjectJSON(b)
		canonical := false
		if err == nil {
			again, merr := canonicaljson.Marshal(slow)
			canonical = merr == nil && bytes.Equal(again, b)
		}
		if ok {
			if err != nil || !canonical {
				t.Fatalf("fast path accepts %q; the general decoder: %v, canonical %v", b, err, canonical)
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("%q: fast path %#v, general decoder %#v", b, fast, slow)
			}
			return
		}
		if canonical && depth(b) <= 64 {
			t.Fatalf("fast path refuses canonical %q", b)
		}
	})
}

// depth is how deeply b's values nest (b is valid JSON).
func depth(b []byte) int {
	d, most, inString := 0, 0, false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case !inString && (c == '{' || c == '['):
			d++
			most = max(most, d)
		case !inString && (c == '}' || c == ']'):
			d--
		}
	}
	return most
}
