// Package journaltest is the test suite every journal.Store runs (the
// file journal and the PostgreSQL one).
package journaltest

import (
	"fmt"
	"testing"

	"github.com/custody-dev/custody/journal"
)

// Run runs the suite against stores made by newStore (each empty).
func Run(t *testing.T, newStore func(t *testing.T) journal.Store) {
	t.Run("PutGet", func(t *testing.T) { testPutGet(t, newStore(t)) })
	t.Run("Unresolved", func(t *testing.T) { testUnresolved(t, newStore(t)) })
}

func testPutGet(t *testing.T, s journal.Store) {
	ctx := t.Context()
	for i, wait := range []bool{true, false, true} {
		r := journal.Record{Key: fmt.Sprintf("k%d", i), EvidenceID: "ev-a", Seq: uint64(i), Data: []byte(fmt.Sprintf("record %d", i))}
		if err := s.Put(ctx, r, wait); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Put(ctx, journal.Record{Key: "receipt:x", Data: []byte("receipt")}, false); err != nil {
		t.Fatal(err)
	}
	// Records put without waiting are there once a later waited one is.
	if err := s.Put(ctx, journal.Record{Key: "k9", EvidenceID: "ev-b", Data: []byte("x")}, true); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, []string{"k0", "k1", "k2", "receipt:x", "absent"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"k0": "record 0", "k1": "record 1", "k2": "record 2", "receipt:x": "receipt"}
	if len(got) != len(want) {
		t.Fatalf("Get returned %d records, want %d: %q", len(got), len(want), got)
	}
	for k, v := range want {
		if string(got[k]) != v {
			t.Fatalf("Get[%s] = %q, want %q", k, got[k], v)
		}
	}
}

func testUnresolved(t *testing.T, s journal.Store) {
	ctx := t.Context()
	put := func(key, id string, seq uint64) {
		t.Helper()
		if err := s.Put(ctx, journal.Record{Key: key, EvidenceID: id, Seq: seq, Data: []byte(key)}, true); err != nil {
			t.Fatal(err)
		}
	}
	put("ingest", "ev-a", 0)
	put("a1", "ev-a", 1)
	put("a2", "ev-a", 2)
	put("b1", "ev-b", 1)
	keys := func(after uint64) string {
		t.Helper()
		rs, err := s.Unresolved(ctx, "ev-a", after)
		if err != nil {
			t.Fatal(err)
		}
		var ks []string
		for _, r := range rs {
			if r.EvidenceID != "ev-a" || string(r.Data) != r.Key {
				t.Fatalf("unresolved record %+v", r)
			}
			ks = append(ks, r.Key)
		}
		return fmt.Sprint(ks)
	}
	// Ingest records never count; the chain's position hides the rest.
	if got := keys(0); got != "[a1 a2]" {
		t.Fatalf("Unresolved(ev-a, 0) = %s, want [a1 a2]", got)
	}
	if got := keys(1); got != "[a2]" {
		t.Fatalf("Unresolved(ev-a, 1) = %s, want [a2]", got)
	}
	// A record that never reached the log is resolved as such and is gone.
	if err := s.Resolve(ctx, "a2", false); err != nil {
		t.Fatal(err)
	}
	if got := keys(1); got != "[]" {
		t.Fatalf("after resolving a2: Unresolved(ev-a, 1) = %s, want []", got)
	}
	if err := s.Resolve(ctx, "a1", true); err != nil {
		t.Fatal(err)
	}
	if got := keys(1); got != "[]" {
		t.Fatalf("after resolving a1: %s", got)
	}
	if rs, _ := s.Unresolved(ctx, "ev-b", 0); len(rs) != 1 {
		t.Fatalf("ev-b has %d unresolved records, want 1", len(rs))
	}
	// Resolved records stay readable for replay, logged or not.
	if got, _ := s.Get(ctx, []string{"a1", "a2"}); string(got["a1"]) != "a1" || string(got["a2"]) != "a2" {
		t.Fatalf("resolved records are no longer readable: %q", got)
	}
}
