package events

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"testing"
	"time"

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

// FuzzParseRecordFast: ParseRecord's shortcut (reencodes) gives the same
// record, or the same error, as re-encoding every record.
func FuzzParseRecordFast(f *testing.F) {
	b, err := os.ReadFile("testdata/record.json")
	if err != nil {
		f.Fatal(err)
	}
	b = bytes.TrimSpace(b)
	f.Add(b)
	rec, err := ParseRecord(b)
	if err != nil {
		f.Fatal(err)
	}
	variants := []func(r *Record){
		func(r *Record) { r.Counterparty, r.Purpose, r.ContentSHA256, r.Details = "", "", "", nil },
		func(r *Record) { r.Previous = &Link{Index: 7, LeafHash: [32]byte{1, 2}} },
		func(r *Record) { r.Previous = nil },
		func(r *Record) { r.RecordedAt = r.RecordedAt.Truncate(time.Second) },
		func(r *Record) { r.Details = canonicaljson.Object{"note": "n", "x": []any{int64(1), nil, true}} },
	}
	for _, edit := range variants {
		r := rec
		edit(&r)
		c, err := r.Canonical()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(c)
	}
	for _, e := range []struct{ old, new string }{
		{`"salt":"`, `"salt":"A`}, {`"seq":`, `"seq":1`}, {`"seq":`, `"sex":`}, {`"counterparty":"urn`, `"counterparty":"","x":"urn`},
		{`"counterparty":"`, `"aaa":null,"counterparty":"`}, {`"details":{`, `"details":{},"e":{`}, {`Z"`, `000Z"`}, {`Z"`, `+00:00"`},
		{`"performer":`, `"performer":"x","purpose":"",`}, {`"prev_index":`, `"prev_index":null,"q":`}, {`"v":1`, `"v":1,"w":null`},
	} {
		f.Add(bytes.Replace(b, []byte(e.old), []byte(e.new), 1))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, err1 := parseRecord(b, true)
		slow, err2 := parseRecord(b, false)
		if fmt.Sprint(err1) != fmt.Sprint(err2) || !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q: shortcut %+v, %v; re-encoding %+v, %v", b, fast, err1, slow, err2)
		}
	})
}
