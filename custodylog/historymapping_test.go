package custodylog_test

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/custody-dev/custody/custodylog"
	"github.com/custody-dev/custody/custodylog/posixlog"
	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/historymap"
)

// openMapped opens a POSIX log under dir with its history map on.
func openMapped(t *testing.T, dir string, skey string, verifier note.Verifier) *custodylog.Log {
	t.Helper()
	signer, _ := note.NewSigner(skey)
	backend, err := posixlog.New(t.Context(), filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := custodylog.Open(t.Context(), custodylog.Config{Backend: backend, Signer: signer, Verifier: verifier, CheckpointInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// appendEvent logs item id's next custody entry (seq) and returns it.
func appendEvent(t *testing.T, l *custodylog.Log, id string, seq uint64, prev *events.Link) (custodylog.Appended, []byte) {
	t.Helper()
	rec := events.Record{EvidenceID: id, Sequence: seq, Type: events.Annotation, RecordedAt: time.Now().UTC(), Performer: "urn:custody:custodian:c", Previous: prev}
	if seq == 0 {
		rec.Type, rec.ContentSHA256 = events.Ingest, strings.Repeat("ab", 32)
	}
	entry, err := rec.Entry()
	if err != nil {
		t.Fatal(err)
	}
	a, err := l.Append(t.Context(), entry)
	if err != nil {
		t.Fatal(err)
	}
	return a, entry
}

// waitProof waits for a history-map proof of id, under the latest
// checkpoint, whose map covers index.
func waitProof(t *testing.T, l *custodylog.Log, id string, index uint64) (custodylog.HistoryProof, custodylog.Published) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		cp, err := l.Latest(t.Context())
		if err == nil {
			p, ok, err := l.HistoryProof(t.Context(), id, cp.Size)
			if err != nil {
				t.Fatal(err)
			}
			if ok && p.TreeSize > index {
				return p, cp
			}
		}
		if time.Now().After(deadline) {
			st, _ := l.HistoryMapping(t.Context())
			t.Fatalf("no history-map proof of %s covers entry %d: %+v", id, index, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHistoryMapping: the log commits to its history map by itself; the
// proof it gives verifies against the commitment entry it logged (which a
// checkpoint includes); after a restart it rebuilds the map from its
// entries and commits again; an entry the map cannot take stops it, and
// it says so, rather than commit to a map it cannot define.
func TestHistoryMapping(t *testing.T) {
	dir := t.TempDir()
	skey, vkey, err := note.GenerateKey(rand.Reader, "custody.test/mapping")
	if err != nil {
		t.Fatal(err)
	}
	verifier, _ := note.NewVerifier(vkey)
	l := openMapped(t, dir, skey, verifier)
	ids := []string{"ev-mapping-a", "ev-mapping-b", "ev-mapping-c"}
	last := map[string]custodylog.Appended{}
	for seq := range uint64(3) {
		for _, id := range ids {
			var prev *events.Link
			if a, ok := last[id]; ok {
				prev = &events.Link{Index: a.Index, LeafHash: a.LeafHash}
			}
			last[id], _ = appendEvent(t, l, id, seq, prev)
		}
	}
	check := func(l *custodylog.Log, id string) custodylog.HistoryProof {
		t.Helper()
		p, cp := waitProof(t, l, id, last[id].Index)
		entry, err := l.Entry(t.Context(), p.LogIndex, cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		c, ok, err := historymap.ParseEntry(entry)
		if err != nil || !ok || string(entry) != string(p.Entry) || c.TreeSize != p.TreeSize {
			t.Fatalf("the log holds %q at %d (%v), the proof names %q", entry, p.LogIndex, err, p.Entry)
		}
		leaf, err := historymap.VerifyLeaf(c, p.Leaf, p.Proof)
		if err != nil {
			t.Fatal(err)
		}
		if leaf.EvidenceID != id || leaf.LogIndex != last[id].Index || leaf.LeafHash != last[id].LeafHash || leaf.Seq != 2 {
			t.Fatalf("the map's leaf of %s is %+v, want its last entry %d", id, leaf, last[id].Index)
		}
		return p
	}
	for _, id := range ids {
		check(l, id)
	}
	if _, ok, _ := l.HistoryProof(t.Context(), "ev-never-logged", 1<<20); ok {
		t.Fatal("a proof for an item the log never held")
	}
	// Nothing new: no further commitment.
	size, err := l.Settled(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if again, _ := l.Settled(t.Context()); again != size {
		t.Fatalf("the log grew from %d to %d with no custody entry: it committed to its own commitments", size, again)
	}

	// A restart: the map is rebuilt from the entries and committed anew.
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	l = openMapped(t, dir, skey, verifier)
	t.Cleanup(func() { l.Close(context.Background()) })
	p := check(l, ids[0])
	if p.LogIndex < size {
		t.Fatalf("after the restart the proof uses commitment %d, from before it (size %d): the map was not rebuilt", p.LogIndex, size)
	}

	// An entry that is neither a custody entry nor a commitment.
	if _, err := l.Append(t.Context(), []byte(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := l.HistoryMapping(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if st.Err != "" {
			if !strings.Contains(st.Err, "neither a custody entry") {
				t.Fatalf("the map stopped for %q", st.Err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the map did not stop at a foreign entry: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
