package historymap_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/custody-dev/custody/historymap"
)

func TestComplete(t *testing.T) {
	A, B, C := id(1), id(2), id(3)
	l := newLog()
	for _, it := range []string{A, B, A, C, A, B} { // A0 B0 A1 C0 A2 B1
		l.event(t, it, -1)
	}
	m, c := l.commit(t) // entry 6, tree size 6
	l.event(t, A, -1)   // A3, entry 7: after N
	l.event(t, B, -1)   // B2, entry 8
	if c.TreeSize != 6 || c.MapSize != 3 {
		t.Fatalf("commitment %+v", c)
	}
	if leaf, _, _ := m.Leaf(A); leaf.Seq != 2 || leaf.LogIndex != 4 {
		t.Fatalf("A's leaf %+v", leaf)
	}
	proofOf := func(id string) ([]byte, historymap.LeafProof) {
		text, p, err := m.Proof(id)
		if err != nil {
			t.Fatal(err)
		}
		return text, p
	}
	aText, aProof := proofOf(A)
	bText, bProof := proofOf(B)
	all := l.events[A]
	edit := func(f func([]historymap.Event) []historymap.Event) []historymap.Event {
		return f(slices.Clone(all))
	}
	flip := func(b []byte, i int) []byte {
		b = slices.Clone(b)
		b[i] ^= 1
		return b
	}
	for _, tc := range []struct {
		name   string
		c      historymap.Commitment
		id     string
		text   []byte
		p      historymap.LeafProof
		evs    []historymap.Event
		errHas string // "" = complete
	}{
		{name: "honest A", c: c, id: A, text: aText, p: aProof, evs: all},
		{name: "honest B", c: c, id: B, text: bText, p: bProof, evs: l.events[B]},
		{name: "honest C", c: c, id: C, text: func() []byte { t, _ := proofOf(C); return t }(), p: func() historymap.LeafProof { _, p := proofOf(C); return p }(), evs: l.events[C]},
		{name: "events in any order", c: c, id: A, text: aText, p: aProof, evs: edit(func(e []historymap.Event) []historymap.Event { slices.Reverse(e); return e })},
		// The residual: events after N are not covered.
		{name: "cut after N passes", c: c, id: A, text: aText, p: aProof, evs: all[:3]},
		{name: "last event before N cut off", c: c, id: A, text: aText, p: aProof, evs: all[:2], errHas: "cut short"},
		{name: "all but the ingest cut off", c: c, id: A, text: aText, p: aProof, evs: all[:1], errHas: "cut short"},
		{name: "the leaf's event cut out of the middle", c: c, id: A, text: aText, p: aProof, evs: slices.Delete(slices.Clone(all), 2, 3), errHas: "cut short"},
		{name: "later event moved before N", c: c, id: A, text: aText, p: aProof, evs: edit(func(e []historymap.Event) []historymap.Event { e[3].LogIndex = 5; return e }), errHas: "before tree size"},
		{name: "leaf's event moved", c: c, id: A, text: aText, p: aProof, evs: edit(func(e []historymap.Event) []historymap.Event { e[2].LogIndex = 3; return e }), errHas: "last entry is 4"},
		{name: "leaf's event another entry", c: c, id: A, text: aText, p: aProof, evs: edit(func(e []historymap.Event) []historymap.Event { e[2].LeafHash[0] ^= 1; return e }), errHas: "last entry is 4"},
		{name: "earlier event after the leaf's", c: c, id: A, text: aText, p: aProof, evs: edit(func(e []historymap.Event) []historymap.Event { e[1].LogIndex = 5; return e }), errHas: "not before"},
		{name: "two events with the leaf's seq", c: c, id: A, text: aText, p: aProof, evs: append(slices.Clone(all), all[2]), errHas: "two events"},
		{name: "another item's leaf", c: c, id: A, text: bText, p: bProof, evs: all, errHas: "the bundle is"},
		{name: "tampered leaf text", c: c, id: A, text: []byte(strings.Replace(string(aText), `"seq":2`, `"seq":3`, 1)), p: aProof, evs: all, errHas: "root"},
		{name: "tampered leaf id", c: c, id: A, text: flip(aText, 40), p: aProof, evs: all, errHas: "map leaf"},
		{name: "tampered proof", c: c, id: A, text: aText, p: historymap.LeafProof{Index: aProof.Index, MapSize: aProof.MapSize, Hashes: [][]byte{flip(aProof.Hashes[0], 0), aProof.Hashes[1]}}, evs: all, errHas: "root"},
		{name: "short proof", c: c, id: A, text: aText, p: historymap.LeafProof{Index: aProof.Index, MapSize: aProof.MapSize, Hashes: aProof.Hashes[:1]}, evs: all, errHas: "map leaf"},
		{name: "wrong leaf index", c: c, id: A, text: aText, p: historymap.LeafProof{Index: 1, MapSize: aProof.MapSize, Hashes: aProof.Hashes}, evs: all, errHas: "root"},
		{name: "wrong map size", c: c, id: A, text: aText, p: historymap.LeafProof{Index: aProof.Index, MapSize: 4, Hashes: aProof.Hashes}, evs: all, errHas: "leaves"},
		{name: "other root", c: historymap.Commitment{TreeSize: 6, MapSize: 3, MapRoot: [32]byte{1}}, id: A, text: aText, p: aProof, evs: all, errHas: "root"},
		{name: "leaf beyond the tree size", c: historymap.Commitment{TreeSize: 4, MapSize: 3, MapRoot: c.MapRoot}, id: A, text: aText, p: aProof, evs: all, errHas: "not among"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := historymap.Complete(tc.c, tc.id, tc.text, tc.p, tc.evs)
			switch {
			case tc.errHas == "" && err != nil:
				t.Fatalf("an honest bundle failed: %v", err)
			case tc.errHas != "" && err == nil:
				t.Fatal("passed")
			case tc.errHas != "" && !strings.Contains(err.Error(), tc.errHas):
				t.Fatalf("error %q does not say %q", err, tc.errHas)
			}
		})
	}

	t.Run("item newer than the map", func(t *testing.T) {
		l.event(t, id(4), -1)
		if _, _, err := m.Proof(id(4)); !errors.Is(err, historymap.ErrNoLeaf) {
			t.Fatalf("a leaf for an item after N: %v", err)
		}
	})
}

// TestDuplicateSeq: a forked chain (two entries with the same seq) makes
// the later entry the item's leaf, so a bundle showing the earlier branch
// alone fails.
func TestDuplicateSeq(t *testing.T) {
	A := id(1)
	l := newLog()
	l.event(t, A, -1) // A0, entry 0
	l.event(t, A, -1) // A1, entry 1
	first := slices.Clone(l.events[A])
	l.event(t, A, 1) // A1', entry 2: a second event 1
	m, c := l.commit(t)
	leaf, _, _ := m.Leaf(A)
	if leaf.Seq != 1 || leaf.LogIndex != 2 {
		t.Fatalf("leaf %+v, want the later event 1 (entry 2)", leaf)
	}
	text, p, err := m.Proof(A)
	if err != nil {
		t.Fatal(err)
	}
	if err := historymap.Complete(c, A, text, p, first); err == nil || !strings.Contains(err.Error(), "last entry is 2") {
		t.Fatalf("the earlier branch passed: %v", err)
	}
	second := []historymap.Event{first[0], l.events[A][2]}
	if err := historymap.Complete(c, A, text, p, second); err != nil {
		t.Fatalf("the later branch: %v", err)
	}
	// A lower seq after a higher one is also the last entry in log order.
	l.event(t, A, 0) // a second ingest, entry 4
	m = build(t, l.entries)
	if leaf, _, _ := m.Leaf(A); leaf.Seq != 0 || leaf.LogIndex != 4 {
		t.Fatalf("leaf %+v, want the re-ingest (entry 4)", leaf)
	}
}
