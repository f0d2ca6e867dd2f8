package sqlite_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/custody-dev/custody/catalog"
	"github.com/custody-dev/custody/catalog/sqlite"
	"github.com/custody-dev/custody/storage"
)

func newItem(i int) (catalog.Evidence, catalog.Event) {
	id := fmt.Sprintf("ev-%026d", i)
	now := time.Unix(1790000000+int64(i), 0).UTC()
	ev := catalog.Evidence{
		ID: id, CaseID: "case", Kind: "photo", SHA256: fmt.Sprintf("%064x", i), Size: 10, MediaType: "image/jpeg",
		Collector: "urn:custody:collector:c", IngestedAt: now, Object: storage.Object{Backend: "disk", Key: id, Size: 10},
		Metadata: []byte(`{}`), Custodian: "urn:custody:collector:c", LastLogIndex: uint64(i * 1000),
	}
	first := catalog.Event{EvidenceID: id, Type: "ingest", RecordedAt: now, LogIndex: uint64(i * 1000), Record: []byte(`{}`), ReceiptPayload: []byte(`{}`), ReceiptSignature: []byte{1}, ReceiptKeyID: "k"}
	return ev, first
}

func event(id string, seq uint64, index uint64) catalog.Event {
	return catalog.Event{EvidenceID: id, Seq: seq, Type: "annotation", RecordedAt: time.Unix(1790000000, 0).UTC(), LogIndex: index, LeafHash: [32]byte{byte(seq)},
		Record: []byte(`{}`), ReceiptPayload: []byte(`{}`), ReceiptSignature: []byte{1}, ReceiptKeyID: "k"}
}

// An event taken without waiting for its commit is seen by every read
// after AddEventAsync returns (read-your-writes), under concurrent writers.
func TestAsyncEventsAreReadAtOnce(t *testing.T) {
	c, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var wg sync.WaitGroup
	for i := range 8 {
		ev, first := newItem(i + 1)
		if err := c.AddEvidence(t.Context(), ev, first); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for seq := uint64(1); seq <= 100; seq++ {
				item, err := c.EvidenceForAppend(t.Context(), ev.ID)
				if err != nil || item.LastSeq != seq-1 {
					t.Errorf("%s before event %d: at %d, %v", ev.ID, seq, item.LastSeq, err)
					return
				}
				e := event(ev.ID, seq, ev.LastLogIndex+seq)
				if err := c.AddEventAsync(e, seq-1, catalog.ItemState{Custodian: "urn:custody:court:k"}, func(err error) {
					if err != nil {
						t.Errorf("%s event %d: %v", ev.ID, seq, err)
					}
				}); err != nil {
					t.Error(err)
					return
				}
				if got, err := c.Evidence(t.Context(), ev.ID); err != nil || got.LastSeq != seq || got.LastLogIndex != e.LogIndex || got.Custodian != "urn:custody:court:k" {
					t.Errorf("%s right after event %d: row at %d (log %d, %s), %v", ev.ID, seq, got.LastSeq, got.LastLogIndex, got.Custodian, err)
					return
				}
				evs, err := c.EventsFrom(t.Context(), ev.ID, seq, 10)
				if err != nil || len(evs) != 1 || evs[0].LogIndex != e.LogIndex {
					t.Errorf("%s right after event %d: events %v, %v", ev.ID, seq, evs, err)
					return
				}
				if ok, err := c.HasEventAt(t.Context(), e.LogIndex); !ok || err != nil {
					t.Errorf("%s right after event %d: HasEventAt %v, %v", ev.ID, seq, ok, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// A conflict the row in memory shows is returned at once; one only the
// file shows fails the commit, and the row is then read from the file
// again.
func TestAsyncEventConflicts(t *testing.T) {
	c, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ev, first := newItem(1)
	if err := c.AddEvidence(t.Context(), ev, first); err != nil {
		t.Fatal(err)
	}
	// Not in memory yet: the commit finds the conflict.
	done := make(chan error, 1)
	if err := c.AddEventAsync(event(ev.ID, 5, 7), 4, catalog.ItemState{}, func(err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, catalog.ErrConflict) {
		t.Fatalf("commit of a conflicting event: %v, want ErrConflict", err)
	}
	item, err := c.EvidenceForAppend(t.Context(), ev.ID)
	if err != nil || item.LastSeq != 0 {
		t.Fatalf("after the failed write: at %d, %v", item.LastSeq, err)
	}
	// In memory now: the conflict is returned at once.
	if err := c.AddEventAsync(event(ev.ID, 5, 7), 4, catalog.ItemState{}, func(error) { t.Error("queued") }); !errors.Is(err, catalog.ErrConflict) {
		t.Fatalf("conflicting event with the row in memory: %v, want ErrConflict", err)
	}
	// A write that fails in the file (its log index is taken) leaves the
	// row as the file has it.
	if err := c.AddEventAsync(event(ev.ID, 1, first.LogIndex), 0, catalog.ItemState{Custodian: "x"}, func(err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Fatal("an event at a taken log index was committed")
	}
	if item, err := c.EvidenceForAppend(t.Context(), ev.ID); err != nil || item.LastSeq != 0 || item.Custodian != ev.Custodian {
		t.Fatalf("after the failed write: row at %d held by %s, %v; want the file's", item.LastSeq, item.Custodian, err)
	}
}
