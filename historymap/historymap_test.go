package historymap_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/historymap"
)

// testLog is an in-memory log of entries, with each item's events as a
// bundle would list them.
type testLog struct {
	entries [][]byte
	events  map[string][]historymap.Event
}

func newLog() *testLog { return &testLog{events: map[string][]historymap.Event{}} }

// event appends the item's next custody event (or, with seq >= 0, an event
// of that sequence: a fork) and returns its index.
func (l *testLog) event(t testing.TB, id string, seq int) uint64 {
	t.Helper()
	evs := l.events[id]
	rec := events.Record{EvidenceID: id, Type: events.Annotation, RecordedAt: time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC), Performer: "urn:custody:custodian:c"}
	rec.Sequence = uint64(len(evs))
	if seq >= 0 {
		rec.Sequence = uint64(seq)
	}
	if rec.Sequence == 0 {
		rec.Type, rec.ContentSHA256 = events.Ingest, strings.Repeat("ab", 32)
	} else {
		prev := evs[rec.Sequence-1]
		rec.Previous = &events.Link{Index: prev.LogIndex, LeafHash: prev.LeafHash}
	}
	entry, err := rec.Entry()
	if err != nil {
		t.Fatal(err)
	}
	idx := uint64(len(l.entries))
	l.entries = append(l.entries, entry)
	e := historymap.Event{Seq: rec.Sequence, LogIndex: idx}
	copy(e.LeafHash[:], rfc6962.DefaultHasher.HashLeaf(entry))
	l.events[id] = append(evs, e)
	return idx
}

// commit feeds the log to a builder and appends the commitment of its map
// at the current size.
func (l *testLog) commit(t testing.TB) (historymap.Map, historymap.Commitment) {
	t.Helper()
	m := build(t, l.entries)
	l.entries = append(l.entries, historymap.EntryFor(m))
	return m, m.Commit()
}

func build(t testing.TB, entries [][]byte) historymap.Map {
	t.Helper()
	b := historymap.NewBuilder()
	for i, e := range entries {
		if err := b.Add(uint64(i), e); err != nil {
			t.Fatal(err)
		}
	}
	m, err := b.Map(uint64(len(entries)))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func id(i int) string { return fmt.Sprintf("ev-%026d", i) }

// refRoot is RFC 6962 §2.1's MTH, written from the RFC, over the leaves.
func refRoot(leaves [][]byte) []byte {
	switch n := len(leaves); n {
	case 0:
		h := sha256.Sum256(nil)
		return h[:]
	case 1:
		h := sha256.Sum256(append([]byte{0}, leaves[0]...))
		return h[:]
	default:
		k := 1
		for k*2 < n {
			k *= 2
		}
		h := sha256.Sum256(slices.Concat([]byte{1}, refRoot(leaves[:k]), refRoot(leaves[k:])))
		return h[:]
	}
}

// refMap computes the map from scratch, as docs/HISTORY_MAP.md says: each
// item's last entry in log order, leaves sorted by evidence id.
func refMap(t *testing.T, entries [][]byte, n int) ([][]byte, []byte) {
	t.Helper()
	last := map[string]historymap.Leaf{}
	for i, e := range entries[:n] {
		obj, err := events.ParseEntry(e)
		if err != nil {
			t.Fatal(err)
		}
		id, ok := obj["evidence_id"].(string)
		if !ok {
			continue
		}
		l := historymap.Leaf{EvidenceID: id, Seq: uint64(obj["seq"].(int64)), LogIndex: uint64(i), LeafHash: sha256.Sum256(append([]byte{0}, e...))}
		last[id] = l
	}
	var texts [][]byte
	for _, l := range last {
		text, err := l.Text()
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, text)
	}
	slices.SortFunc(texts, func(a, b []byte) int {
		la, _ := historymap.ParseLeaf(a)
		lb, _ := historymap.ParseLeaf(b)
		return strings.Compare(la.EvidenceID, lb.EvidenceID)
	})
	return texts, refRoot(texts)
}

func TestLeafText(t *testing.T) {
	l := historymap.Leaf{EvidenceID: "ev-67xkwdbmqyjbahxthun4ynsfqa", Seq: 2, LogIndex: 41, LeafHash: [32]byte{0x9f, 1}}
	text, err := l.Text()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"evidence_id":"ev-67xkwdbmqyjbahxthun4ynsfqa","leaf_hash":"9f01000000000000000000000000000000000000000000000000000000000000","log_index":41,"seq":2}`
	if string(text) != want {
		t.Fatalf("leaf text\n%s\nwant\n%s", text, want)
	}
	back, err := historymap.ParseLeaf(text)
	if err != nil || back != l {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	for name, bad := range map[string]string{
		"extra field":  strings.Replace(want, `"seq":2`, `"seq":2,"x":1`, 1),
		"upper hex":    strings.Replace(want, "9f01", "9F01", 1),
		"short hash":   strings.Replace(want, "9f01", "9f", 1),
		"spacing":      strings.Replace(want, `"seq":2`, `"seq": 2`, 1),
		"negative seq": strings.Replace(want, `"seq":2`, `"seq":-2`, 1),
		"no id":        strings.Replace(want, `"evidence_id":"ev-67xkwdbmqyjbahxthun4ynsfqa",`, "", 1),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := historymap.ParseLeaf([]byte(bad)); err == nil {
				t.Fatalf("%s parsed", bad)
			}
		})
	}
}

func TestCommitmentEntry(t *testing.T) {
	c := historymap.Commitment{TreeSize: 1000, MapSize: 7, MapRoot: [32]byte{1, 2, 3}}
	entry := c.Entry()
	want := `{"map_root":"0102030000000000000000000000000000000000000000000000000000000000","map_size":7,"tree_size":1000,"type":"history_map","v":1}`
	if string(entry) != want {
		t.Fatalf("entry\n%s\nwant\n%s", entry, want)
	}
	back, ok, err := historymap.ParseEntry(entry)
	if err != nil || !ok || back != c {
		t.Fatalf("round trip: %+v %v %v", back, ok, err)
	}
	t.Run("custody entry", func(t *testing.T) {
		l := newLog()
		l.event(t, id(1), -1)
		if _, ok, err := historymap.ParseEntry(l.entries[0]); ok || err != nil {
			t.Fatalf("a custody entry read as a commitment: %v %v", ok, err)
		}
	})
	for name, bad := range map[string]string{
		"extra field":   strings.Replace(want, `"v":1`, `"v":1,"x":1`, 1),
		"evidence_id":   strings.Replace(want, `"map_root"`, `"evidence_id":"ev-1","map_root"`, 1),
		"upper hex":     strings.Replace(want, "0102", "0A02", 1),
		"no tree size":  strings.Replace(want, `"tree_size":1000,`, "", 1),
		"more leaves":   strings.Replace(want, `"map_size":7`, `"map_size":1001`, 1),
		"not canonical": strings.Replace(want, `"v":1`, `"v": 1`, 1),
		"version 2":     strings.Replace(want, `"v":1`, `"v":2`, 1),
		"base64 root":   strings.Replace(want, "0102030000000000000000000000000000000000000000000000000000000000", "AQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", 1),
		"negative size": strings.Replace(want, `"map_size":7`, `"map_size":-7`, 1),
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := historymap.ParseEntry([]byte(bad)); err == nil {
				t.Fatalf("%s parsed", bad)
			}
		})
	}
}

// TestAgainstReference checks every map size and every proof against the
// RFC 6962 reference, with commitment entries mixed into the log, and
// builds the maps incrementally with one builder.
func TestAgainstReference(t *testing.T) {
	l := newLog()
	rng := rand.New(rand.NewPCG(1, 2))
	b := historymap.NewBuilder()
	fed := 0
	for step := range 120 {
		l.event(t, id(rng.IntN(40)), -1)
		if step%7 == 3 {
			l.entries = append(l.entries, historymap.Commitment{TreeSize: uint64(len(l.entries))}.Entry())
		}
		for ; fed < len(l.entries); fed++ {
			if err := b.Add(uint64(fed), l.entries[fed]); err != nil {
				t.Fatal(err)
			}
		}
		if step%3 != 0 && step < 100 {
			continue // snapshots at some sizes only: the builder must catch up
		}
		m, err := b.Map(uint64(fed))
		if err != nil {
			t.Fatal(err)
		}
		texts, root := refMap(t, l.entries, fed)
		if got := m.Root(); !bytes.Equal(got[:], root) || m.Size() != uint64(len(texts)) || m.TreeSize() != uint64(fed) {
			t.Fatalf("size %d: root %x (%d leaves), reference %x (%d leaves)", fed, got, m.Size(), root, len(texts))
		}
		c := m.Commit()
		for i, want := range texts {
			leaf, _ := historymap.ParseLeaf(want)
			text, p, err := m.Proof(leaf.EvidenceID)
			if err != nil || !bytes.Equal(text, want) || p.Index != uint64(i) {
				t.Fatalf("size %d leaf %d: %s at %d, %v", fed, i, text, p.Index, err)
			}
			if _, err := historymap.VerifyLeaf(c, text, p); err != nil {
				t.Fatalf("size %d leaf %d: %v", fed, i, err)
			}
		}
	}
}

func TestEmptyMap(t *testing.T) {
	m := build(t, nil)
	want := sha256.Sum256(nil)
	if m.Root() != want || m.Size() != 0 {
		t.Fatalf("empty map root %x size %d", m.Root(), m.Size())
	}
	if _, _, err := m.Proof(id(1)); err != historymap.ErrNoLeaf {
		t.Fatalf("proof in an empty map: %v", err)
	}
}

// TestOrderIndependence: the root depends on the leaves alone, not on the
// order in which items first appeared nor on how often the map was taken.
func TestOrderIndependence(t *testing.T) {
	// Two logs whose items appear in opposite orders but end with the same
	// last entries: the ingests come first, in different orders, then one
	// annotation per item in the same order.
	a, b := newLog(), newLog()
	for i := range 10 {
		a.event(t, id(i), -1)
		b.event(t, id(9-i), -1)
	}
	ma, mb := build(t, a.entries), build(t, b.entries)
	if ma.Root() == mb.Root() {
		t.Fatal("different last entries, same root")
	}
	for i := range 10 {
		a.event(t, id(i), -1)
	}
	// b's second events link to b's ingests, so they differ from a's;
	// compare a with a shuffled rebuild of its own leaves instead.
	m := build(t, a.entries)
	texts, root := refMap(t, a.entries, len(a.entries))
	rand.Shuffle(len(texts), func(i, j int) { texts[i], texts[j] = texts[j], texts[i] })
	slices.SortFunc(texts, func(x, y []byte) int { return bytes.Compare(x, y) }) // same ids prefix: byte order of texts is id order
	if got := m.Root(); !bytes.Equal(got[:], root) || !bytes.Equal(refRoot(texts), root) {
		t.Fatalf("root %x, reference %x", got, root)
	}
	// Snapshots along the way do not change the final root.
	inc := historymap.NewBuilder()
	for i, e := range a.entries {
		if err := inc.Add(uint64(i), e); err != nil {
			t.Fatal(err)
		}
		if _, err := inc.Map(uint64(i + 1)); err != nil {
			t.Fatal(err)
		}
	}
	if final, _ := inc.Map(uint64(len(a.entries))); final.Root() != m.Root() {
		t.Fatal("the incremental builder's root differs from a fresh one's")
	}
}

func TestBuilderErrors(t *testing.T) {
	l := newLog()
	l.event(t, id(1), -1)
	good := l.entries[0]
	for name, tc := range map[string]struct {
		index uint64
		entry []byte
	}{
		"out of order":   {1, good},
		"not canonical":  {0, append([]byte(" "), good...)},
		"not json":       {0, []byte("hello")},
		"no evidence id": {0, []byte(`{"seq":0,"type":"ingest","v":1}`)},
		"no seq":         {0, []byte(`{"evidence_id":"ev-1","type":"ingest","v":1}`)},
		"bad commitment": {0, []byte(`{"map_root":"00","map_size":0,"tree_size":0,"type":"history_map","v":1}`)},
		"version 2":      {0, bytes.Replace(good, []byte(`"v":1`), []byte(`"v":2`), 1)},
	} {
		t.Run(name, func(t *testing.T) {
			b := historymap.NewBuilder()
			if err := b.Add(tc.index, tc.entry); err == nil {
				t.Fatal("added")
			}
			if b.TreeSize() != 0 {
				t.Fatal("a failed Add advanced the builder")
			}
			if err := b.Add(0, good); err != nil {
				t.Fatalf("the builder is stuck after a failed Add: %v", err)
			}
		})
	}
	t.Run("wrong tree size", func(t *testing.T) {
		b := historymap.NewBuilder()
		b.Add(0, good)
		for _, n := range []uint64{0, 2} {
			if _, err := b.Map(n); err == nil {
				t.Fatalf("a map at size %d from a builder at 1", n)
			}
		}
	})
}

// TestBuilderChanged: a builder reports a change after a custody entry and
// none after a map or after only commitment entries, so a committer that
// commits only on change never commits to its own commitments.
func TestBuilderChanged(t *testing.T) {
	l := newLog()
	b := historymap.NewBuilder()
	feed := func() {
		for i := b.TreeSize(); i < uint64(len(l.entries)); i++ {
			if err := b.Add(i, l.entries[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if b.Changed() {
		t.Fatal("a new builder reports a change")
	}
	l.event(t, id(1), -1)
	feed()
	if !b.Changed() {
		t.Fatal("no change after a custody entry")
	}
	m, err := b.Map(b.TreeSize())
	if err != nil {
		t.Fatal(err)
	}
	if b.Changed() {
		t.Fatal("a change reported right after Map")
	}
	l.entries = append(l.entries, historymap.EntryFor(m))
	feed()
	if b.Changed() {
		t.Fatal("a commitment entry counted as a change")
	}
	l.event(t, id(1), -1)
	feed()
	if !b.Changed() {
		t.Fatal("no change after the item's next event")
	}
}
