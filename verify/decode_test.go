package verify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/custody-dev/custody/canonicaljson"
	"github.com/custody-dev/custody/verify/vectors"
)

// The one-pass decoders (decode.go) against the three passes they stand
// for: whatever the fast path accepts, the passes accept too and decode
// to the very same value; whatever the passes accept, the fast path
// accepts (so it is the path real bundles take).

const vectorsDir = "../testdata/verify-vectors"

// sameAsStrict checks decodeBundle against parseStrict on b; mustAccept:
// the fast path must take what the strict passes take.
func sameAsStrict(t *testing.T, name string, b []byte, mustAccept bool) {
	t.Helper()
	fast, ok := decodeBundle(b)
	slow, err := parseStrict(b)
	switch {
	case ok && err != nil:
		t.Fatalf("%s: the fast path accepts what the strict decoding refuses (%v)", name, err)
	case ok && !reflect.DeepEqual(fast, slow):
		t.Fatalf("%s: the fast path decodes\n%#v\nthe strict decoding\n%#v", name, fast, slow)
	case !ok && err == nil && mustAccept:
		t.Errorf("%s: the fast path refuses what the strict decoding accepts", name)
	}
}

func sameLineAsStrict(t *testing.T, name string, line []byte, mustAccept bool) {
	t.Helper()
	var fast, slow Event
	ok := decodeEventLine(line, &fast)
	err := strictLine(line, bundleShape, "events[]", &slow)
	switch {
	case ok && err != nil:
		t.Fatalf("%s: the fast path accepts the event line the strict decoding refuses (%v)", name, err)
	case ok && !reflect.DeepEqual(fast, slow):
		t.Fatalf("%s: the fast path decodes\n%#v\nthe strict decoding\n%#v", name, fast, slow)
	case !ok && err == nil && mustAccept:
		t.Errorf("%s: the fast path refuses the event line the strict decoding accepts", name)
	}
}

// splitAlways makes decodeBundle read every events array in two halves
// (where it finds a seam) for the rest of the test.
func splitAlways(t *testing.T) {
	old := splitEvents
	splitEvents = 0
	t.Cleanup(func() { splitEvents = old })
}

// TestDecodeVectors: every conformance vector (each mutation of a base
// bundle, each raw document, each stream form's event lines), with the
// events read in order and in two halves.
func TestDecodeVectors(t *testing.T) {
	testDecodeVectors(t)
	splitAlways(t)
	testDecodeVectors(t)
}

func testDecodeVectors(t *testing.T) {
	set, err := vectors.Load(vectorsDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range set.Vectors {
		b, err := vectors.BundleText(vectorsDir, v)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(v.Raw, ".jsonl") {
			lines := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
			for i, line := range lines[1:] {
				sameLineAsStrict(t, fmt.Sprintf("%s line %d", v.Name, i+2), line, true)
			}
			continue
		}
		sameAsStrict(t, v.Name, b, true)
	}
}

// edits are textual changes to a real bundle's bytes that each strict
// pass has its own opinion of: spacing, escapes, surrogates, numbers,
// nulls, repeated keys, base64 spellings, nesting depth.
var edits = []struct{ old, new string }{
	{`"format": "custody-bundle"`, `"format":"custody-bundle"`},
	{`"format": "custody-bundle"`, "\"format\"\t:\r\n\"custody-bundle\""},
	{`"format": "custody-bundle"`, `"form\u0061t": "custody-bundle"`},
	{`"format": "custody-bundle"`, `"format": "custody\/bundle"`},
	{`"format": "custody-bundle"`, `"format": "custody-\u0062undle"`},
	{`"format": "custody-bundle"`, `"format": "custody-bundle\ud83d\ude00"`},
	{`"format": "custody-bundle"`, `"format": "custody-bundle\ud83d"`},
	{`"format": "custody-bundle"`, `"format": "custody-bundle\ude00"`},
	{`"format": "custody-bundle"`, `"format": "custody-bundle\ud83d\u0041"`},
	{`"format": "custody-bundle"`, `"format": "custody-bundle\ud83dx"`},
	{`"format": "custody-bundle"`, `"format": "custody-bundle\x"`},
	{`"format": "custody-bundle"`, `"format": "custody-bundle` + "\t" + `"`},
	{`"format": "custody-bundle"`, `"format": "custody-bundle` + "\x7f\u2028é" + `"`},
	{`"format": "custody-bundle"`, `"format": "custody-bundle` + "\xff" + `"`},
	{`"format": "custody-bundle"`, `"format": null`},
	{`"format": "custody-bundle"`, `"format": 1`},
	{`"format": "custody-bundle"`, `"format": "custody-bundle", "format": "custody-bundle"`},
	{`"format": "custody-bundle"`, `"format": "custody-bundle", "Format": "custody-bundle"`},
	{`"format": "custody-bundle"`, `"format": "custody-bundle", "extra": 1`},
	{`"v": 1`, `"v": 1.0`},
	{`"v": 1`, `"v": 1e0`},
	{`"v": 1`, `"v": -0`},
	{`"v": 1`, `"v": 01`},
	{`"v": 1`, `"v": 99999999999999999999`},
	{`"v": 1`, `"v": "1"`},
	{`"v": 1`, `"v": true`},
	{`"v": 1`, `"v": -`},
	{`"size": `, `"size": -`},
	{`"size": `, `"size": 0`},
	{`"tree_size": `, `"tree_size": -`},
	{`"tree_size": `, `"tree_size": 1`},
	{`"withheld": false`, `"withheld": true`},
	{`"metadata": {`, `"metadata": {"zz": {"a": 1, "a": 2}, `},
	{`"metadata": {`, `"metadata": {"zz": {"a": 1, "\u0061": 2}, `},
	{`"metadata": {`, `"metadata": {"zz": [1.5, -0, 1e-400, 2E+3, 0.1e1, -1.25E-2, null, true, false, "", {"b": {}}, []], `},
	{`"metadata": {`, `"metadata": {"zz": 1e400, `},
	{`"metadata": {`, `"metadata": {"zz": .5, `},
	{`"metadata": {`, `"metadata": {"zz": 1., `},
	{`"metadata": {`, `"metadata": {"zz": 1e, `},
	{`"metadata": {`, `"metadata": {"zz": +1, `},
	{`"metadata": {`, `"metadata": {"zz": 01, `},
	{`"metadata": {`, `"metadata": {"zz": nul, `},
	{`"metadata": {`, `"metadata": {"zz": "\ud800", `},
	{`"metadata": {`, `"metadata": {"zz": "\u00e9\ud83d\ude00", `},
	{`"metadata": {`, `"metadata": {"\u00e9": 1, "é": 2, `},
	{`"metadata": {`, `"metadata": {"zz": {"a": 1,}, `},
	{`"metadata": {`, `"metadata": {"zz": [1,], `},
	{`"metadata": {`, `"metadata": null, "zz": {`},
	{`"metadata": {`, `"metadata": [], "zz": {`},
	// The metadata object is at depth 3; 100 levels are allowed.
	{`"metadata": {`, `"metadata": {"zz": ` + strings.Repeat(`{"a":`, 96) + `{}` + strings.Repeat(`}`, 96) + `, `},
	{`"metadata": {`, `"metadata": {"zz": ` + strings.Repeat(`{"a":`, 97) + `{}` + strings.Repeat(`}`, 97) + `, `},
	{`"metadata": {`, `"metadata": {"zz": ` + strings.Repeat(`{"a":[`, 48) + `{}` + strings.Repeat(`]}`, 48) + `, `},
	{`"metadata": {`, `"metadata": {"zz": ` + strings.Repeat(`{"a":[`, 48) + `[]` + strings.Repeat(`]}`, 48) + `, `},
	{`"metadata": {`, `"metadata": {"zz": ` + strings.Repeat(`{"a":[`, 49) + `{}` + strings.Repeat(`]}`, 49) + `, `},
	{`"inclusion_proof": [`, `"inclusion_proof": [null, `},
	{`"inclusion_proof": [`, `"inclusion_proof": ["", `},
	{`"inclusion_proof": [`, `"inclusion_proof": ["AB==", `},
	{`"inclusion_proof": [`, `"inclusion_proof": ["AA==", `},
	{`"inclusion_proof": [`, `"inclusion_proof": ["AA\n==", `},
	{`"inclusion_proof": [`, `"inclusion_proof": ["AA\u003d\u003d", `},
	{`"inclusion_proof": [`, `"inclusion_proof": ["AA", `},
	{`"inclusion_proof": [`, `"inclusion_proof": ["A-_A", `},
	{`"inclusion_proof": [`, `"inclusion_proof": [[], `},
	{`"signature": "`, `"signature": "AAAA`},
	{`"signature": "`, `"signature": "====`},
	{`"receipt": {`, `"receipt": {"payload": "", "signature": "", "key_id": ""}, "receipt": {`},
	{`"events": [`, `"events": [null, `},
	{`"events": [`, `"events": [{"seq": 0, "log_index": 0, "entry": "", "inclusion_proof": [], "receipt": {"payload": "", "signature": "", "key_id": ""}}, `},
	{`"events": [`, `"events": [{"seq": 0, "log_index": 0, "entry": "", "inclusion_proof": [], "receipt": null}, `},
	{`"events": [`, `"events": [{"seq": 0, "log_index": 0, "entry": "", "inclusion_proof": []}, `},
	{`"events": [`, `"events": [{"seq": 0, "log_index": 0, "entry": "", "record": null, "inclusion_proof": [], "receipt": {"payload": "", "signature": "", "key_id": ""}}, `},
	{`"timestamps": [`, `"timestamps": [{"authority": "a", "response": "AAAA"}, `},
	{`"timestamps": [`, `"timestamps": [{"authority": "a"}, `},
	{`"keys": {`, `"consistency": {"from_size": 1, "proof": []}, "keys": {`},
	{`"keys": {`, `"consistency": {"from_size": 1, "proof": ["AAAA"]}, "keys": {`},
	{`"keys": {`, `"consistency": {"from_size": 1}, "keys": {`},
	{`"keys": {`, `"consistency": null, "keys": {`},
	{`"map_proof": [`, `"map_proof": [null, `},
	{`"map_index": `, `"map_index": 1`},
	{`{`, "\ufeff{"},
	{`{`, ` {`},
	{`{`, `[{`},
}

// patches are structural changes to a bundle.
var patches = []vectors.Op{
	{Op: "replace", Path: "/events", Value: []any{}},
	{Op: "replace", Path: "/events", Value: nil},
	{Op: "replace", Path: "/events", Value: canonicaljson.Object{}},
	{Op: "replace", Path: "/events/0/receipt", Value: nil},
	{Op: "replace", Path: "/events/0/receipt", Value: "x"},
	{Op: "replace", Path: "/events/0/inclusion_proof", Value: []any{}},
	{Op: "replace", Path: "/events/0/inclusion_proof", Value: nil},
	{Op: "replace", Path: "/events/0/record", Value: nil},
	{Op: "replace", Path: "/events/0/record", Value: ""},
	{Op: "replace", Path: "/events/0/seq", Value: 1.5},
	{Op: "replace", Path: "/events/0/seq", Value: -1.0},
	{Op: "replace", Path: "/events/0/seq", Value: 1e20},
	{Op: "add", Path: "/consistency", Value: nil},
	{Op: "add", Path: "/consistency", Value: canonicaljson.Object{"from_size": 1.0, "proof": []any{}}},
	{Op: "add", Path: "/consistency", Value: canonicaljson.Object{"from_size": 1.0, "proof": []any{"AAAA"}}},
	{Op: "add", Path: "/completeness", Value: nil},
	{Op: "add", Path: "/completeness", Value: canonicaljson.Object{}},
	{Op: "add", Path: "/evidence/withheld", Value: true},
	{Op: "add", Path: "/evidence/withheld", Value: "true"},
	{Op: "add", Path: "/evidence/withheld", Value: nil},
	{Op: "remove", Path: "/evidence/metadata"},
	{Op: "replace", Path: "/evidence/metadata", Value: canonicaljson.Object{}},
	{Op: "replace", Path: "/evidence/metadata", Value: canonicaljson.Object{"a": nil, "b": []any{nil, 1.0, "x"}}},
	{Op: "replace", Path: "/evidence/size", Value: -1.0},
	{Op: "replace", Path: "/evidence/size", Value: 1e19},
	{Op: "add", Path: "/log/timestamps", Value: []any{}},
	{Op: "add", Path: "/log/timestamps", Value: nil},
	{Op: "add", Path: "/log/timestamps", Value: []any{canonicaljson.Object{"authority": "a", "response": "AAAA"}}},
	{Op: "replace", Path: "/keys", Value: canonicaljson.Object{"log_verifier_key": "", "receipt_public_key_pem": ""}},
	{Op: "replace", Path: "/v", Value: 2.0},
}

// TestDecodeEdits: each edit and patch of each base bundle, and of a long
// one made of a base bundle's events repeated (its events are read in two
// halves as they are), with the events read in order and in two halves.
func TestDecodeEdits(t *testing.T) {
	bases, _ := filepath.Glob(filepath.Join(vectorsDir, "bundles", "*.json"))
	if len(bases) == 0 {
		t.Fatal("no base bundles")
	}
	raws := map[string][]byte{}
	for _, path := range bases {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		raws[filepath.Base(path)] = raw
	}
	long := longBundle(t, raws["every-event.json"], splitEvents)
	if _, ok := decodeBundle(long); !ok {
		t.Fatal("the long bundle does not decode")
	}
	raws["long"] = long
	testDecodeEdits(t, raws)
	splitAlways(t)
	testDecodeEdits(t, raws)
}

// longBundle repeats the events of raw (indented as raw is) until the
// document is over size bytes.
func longBundle(t *testing.T, raw []byte, size int) []byte {
	t.Helper()
	start := bytes.Index(raw, []byte(`"events": [`))
	end := bytes.Index(raw, []byte("\n  ],\n"))
	if start < 0 || end < start {
		t.Fatal("no events array")
	}
	start += len(`"events": [`)
	events := raw[start:end]
	var b bytes.Buffer
	b.Write(raw[:start])
	b.Write(events)
	for b.Len() < size {
		b.WriteByte(',')
		b.Write(events)
	}
	b.Write(raw[end:])
	return b.Bytes()
}

func testDecodeEdits(t *testing.T, raws map[string][]byte) {
	for path, raw := range raws {
		sameAsStrict(t, path, raw, true)
		for _, e := range edits {
			if !bytes.Contains(raw, []byte(e.old)) {
				continue
			}
			b := bytes.Replace(raw, []byte(e.old), []byte(e.new), 1)
			sameAsStrict(t, fmt.Sprintf("%s: %q → %q", filepath.Base(path), e.old, trim(e.new)), b, false)
			sameAsStrict(t, fmt.Sprintf("%s, all: %q → %q", filepath.Base(path), e.old, trim(e.new)), bytes.ReplaceAll(raw, []byte(e.old), []byte(e.new)), false)
		}
		doc, err := canonicaljson.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range patches {
			patched, err := vectors.Apply(doc, op)
			if err != nil {
				continue // not in this bundle
			}
			b, err := json.Marshal(patched)
			if err != nil {
				t.Fatal(err)
			}
			sameAsStrict(t, fmt.Sprintf("%s: %s %s %v", filepath.Base(path), op.Op, op.Path, op.Value), b, false)
			doc, _ = canonicaljson.Parse(raw) // Apply may change doc in place
		}
		// Cut short anywhere: refused by both.
		for n := 0; n < len(raw); n += 1 + n/8 + len(raw)/2000 {
			sameAsStrict(t, fmt.Sprintf("%s cut at %d", filepath.Base(path), n), raw[:n], false)
		}
	}
}

func trim(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func FuzzDecodeBundle(f *testing.F) {
	old := splitEvents
	splitEvents = 0
	defer func() { splitEvents = old }()
	raw, err := os.ReadFile(filepath.Join(vectorsDir, "bundles", "single-photo.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	for _, e := range edits {
		f.Add(bytes.Replace(raw, []byte(e.old), []byte(e.new), 1))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sameAsStrict(t, "fuzz", b, false)
	})
}

func FuzzDecodeEventLine(f *testing.F) {
	raw, err := os.ReadFile(filepath.Join(vectorsDir, "raw", "every-event-stream-form.jsonl"))
	if err != nil {
		f.Fatal(err)
	}
	lines := bytes.Split(raw, []byte("\n"))
	for _, line := range lines[1:3] {
		f.Add(line)
		for _, e := range edits {
			f.Add(bytes.Replace(line, []byte(strings.ReplaceAll(e.old, ": ", ":")), []byte(e.new), 1))
		}
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		sameLineAsStrict(t, "fuzz", line, false)
	})
}

// TestHasher: the proof hasher hashes as rfc6962.DefaultHasher does.
func TestHasher(t *testing.T) {
	for _, n := range [][2]int{{32, 32}, {0, 0}, {1, 31}, {32, 33}, {100, 7}} {
		l, r := bytes.Repeat([]byte{byte(n[0])}, n[0]), bytes.Repeat([]byte{0xa5}, n[1])
		if got, want := (hasher{}).HashChildren(l, r), rfc6962.DefaultHasher.HashChildren(l, r); !bytes.Equal(got, want) {
			t.Errorf("HashChildren(%d, %d bytes) = %x, want %x", n[0], n[1], got, want)
		}
		if got, want := (hasher{}).HashLeaf(l), rfc6962.DefaultHasher.HashLeaf(l); !bytes.Equal(got, want) {
			t.Errorf("HashLeaf(%d bytes) = %x, want %x", n[0], got, want)
		}
	}
	if !bytes.Equal((hasher{}).EmptyRoot(), rfc6962.DefaultHasher.EmptyRoot()) || (hasher{}).Size() != rfc6962.DefaultHasher.Size() {
		t.Error("EmptyRoot or Size differ")
	}
}

// TestCheckNames: an event's check names, as fmt spells them.
func TestCheckNames(t *testing.T) {
	for _, ev := range []Event{{}, {Seq: 7, LogIndex: 1234}, {Seq: 1<<64 - 1, LogIndex: 1<<64 - 1}} {
		base := fmt.Sprintf("event #%d (log %d)", ev.Seq, ev.LogIndex)
		e, r, i, c := checkNames(ev)
		if e != base+": entry" || r != base+": record commitment" || i != base+": inclusion" || c != base+": receipt" {
			t.Errorf("checkNames(%d, %d) = %q, %q, %q, %q", ev.Seq, ev.LogIndex, e, r, i, c)
		}
	}
}
