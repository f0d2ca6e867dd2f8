// Package catalogtest is the shared test suite every catalog.Catalog
// backend passes: call Run with a constructor for a fresh, empty catalog.
package catalogtest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/custody-dev/custody/catalog"
	"github.com/custody-dev/custody/storage"
)

// Run runs the suite.
func Run(t *testing.T, newCatalog func(t *testing.T) catalog.Catalog) {
	t.Run("AddAndRead", func(t *testing.T) { testAddAndRead(t, newCatalog(t)) })
	t.Run("Lists", func(t *testing.T) { testLists(t, newCatalog(t)) })
	t.Run("Events", func(t *testing.T) { testEvents(t, newCatalog(t)) })
	t.Run("ConcurrentAppendsConflict", func(t *testing.T) { testConflicts(t, newCatalog(t)) })
	t.Run("LogApplied", func(t *testing.T) { testLogApplied(t, newCatalog(t)) })
	t.Run("Repair", func(t *testing.T) { testRepair(t, newCatalog(t)) })
}

func item(i int, caseID string) (catalog.Evidence, catalog.Event) {
	id := fmt.Sprintf("ev-%026d", i)
	now := time.Unix(1790000000+int64(i), 123).UTC()
	ev := catalog.Evidence{
		ID: id, CaseID: caseID, Kind: "photo", SHA256: fmt.Sprintf("%064x", i), Size: int64(i * 10),
		MediaType: "image/jpeg", DeclaredMediaType: "image/jpeg", Collector: "urn:custody:collector:c",
		IngestedAt: now, Object: storage.Object{Backend: "s3", Bucket: "b", Key: fmt.Sprintf("sha256/%d", i), VersionID: "v1", Size: int64(i * 10), RetainUntil: now.Add(time.Hour).Truncate(time.Second)},
		Metadata: []byte(`{"filename":"a.jpg"}`), Custodian: "urn:custody:collector:c",
		LastLogIndex: uint64(i * 2), LastLeafHash: [32]byte{byte(i)},
	}
	first := catalog.Event{EvidenceID: id, Seq: 0, Type: "ingest", RecordedAt: now, LogIndex: uint64(i * 2), LeafHash: [32]byte{byte(i)},
		Record: []byte(`{"v":1}`), ReceiptPayload: []byte(`{}`), ReceiptSignature: []byte{1, 2}, ReceiptKeyID: "k"}
	return ev, first
}

func testAddAndRead(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	ev, first := item(1, "case-a")
	if err := c.AddEvidence(ctx, ev, first); err != nil {
		t.Fatal(err)
	}
	got, err := c.Evidence(ctx, ev.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != ev.ID || got.SHA256 != ev.SHA256 || got.Object.VersionID != "v1" || !got.IngestedAt.Equal(ev.IngestedAt) ||
		!got.Object.RetainUntil.Equal(ev.Object.RetainUntil) || string(got.Metadata) != string(ev.Metadata) || got.LastLeafHash != ev.LastLeafHash {
		t.Fatalf("read back %+v, wrote %+v", got, ev)
	}
	if err := c.AddEvidence(ctx, ev, first); !errors.Is(err, catalog.ErrExists) {
		t.Fatalf("adding an id twice: %v, want ErrExists", err)
	}
	if _, err := c.Evidence(ctx, "ev-missing"); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("missing item: %v, want ErrNotFound", err)
	}
	same, ok, err := c.EvidenceBySHA256(ctx, ev.SHA256)
	if err != nil || !ok || same.ID != ev.ID || same.Object.Key != ev.Object.Key {
		t.Fatalf("EvidenceBySHA256 = %+v, %v, %v", same, ok, err)
	}
	if _, ok, _ := c.EvidenceBySHA256(ctx, fmt.Sprintf("%064x", 999)); ok {
		t.Fatal("found an item for unknown content")
	}
}

// testRepair checks RepairEvidence rewrites the logged columns and keeps
// the rest, and IngestEvents finds ingest events by item.
func testRepair(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	var firsts []catalog.Event
	for i := 1; i <= 3; i++ {
		ev, first := item(i, "case-a")
		if err := c.AddEvidence(ctx, ev, first); err != nil {
			t.Fatal(err)
		}
		firsts = append(firsts, first)
	}
	ev, _ := item(2, "case-a")
	next := catalog.Event{EvidenceID: ev.ID, Seq: 1, Type: "annotation", RecordedAt: time.Unix(1790000100, 0).UTC(), LogIndex: 40, LeafHash: [32]byte{40},
		Record: []byte(`{"v":1,"seq":1}`), ReceiptPayload: []byte(`{}`), ReceiptSignature: []byte{3}, ReceiptKeyID: "k"}
	pending := &catalog.PendingRelease{To: "urn:custody:custodian:l", Reason: "lab", Seq: 1, ExpiresAt: time.Unix(1790003600, 0).UTC()}
	if err := c.AddEvent(ctx, next, 0, catalog.ItemState{Custodian: "urn:custody:custodian:k", Pending: pending}); err != nil {
		t.Fatal(err)
	}
	before, _ := c.Evidence(ctx, ev.ID)

	got, err := c.IngestEvents(ctx, []string{firsts[0].EvidenceID, ev.ID, "ev-missing"})
	if err != nil || len(got) != 2 {
		t.Fatalf("IngestEvents: %d events, %v; want 2", len(got), err)
	}
	for _, e := range got {
		if e.Seq != 0 || (e.EvidenceID != firsts[0].EvidenceID && e.EvidenceID != ev.ID) || string(e.Record) != `{"v":1}` {
			t.Fatalf("IngestEvents returned %+v", e)
		}
	}
	if got, err := c.IngestEvents(ctx, nil); err != nil || len(got) != 0 {
		t.Fatalf("IngestEvents(nil) = %v, %v", got, err)
	}

	fixed := before
	fixed.CaseID, fixed.Kind, fixed.SHA256, fixed.Size, fixed.MediaType, fixed.Collector = "case-b", "video", fmt.Sprintf("%064x", 77), 77, "video/mp4", "urn:custody:collector:d"
	fixed.IngestedAt = before.IngestedAt.Add(time.Second)
	fixed.Object = storage.Object{Backend: "disk", Key: "sha256/77", Size: 77, RetainUntil: before.Object.RetainUntil.Add(time.Hour)}
	fixed.Encrypted, fixed.Special = true, true
	// Columns the log does not state are kept whatever ev says.
	attempt := fixed
	attempt.Metadata, attempt.Custodian, attempt.Pending, attempt.LastSeq, attempt.DerivedFrom = []byte("x"), "y", nil, 0, "ev-z"
	if err := c.RepairEvidence(ctx, attempt); err != nil {
		t.Fatal(err)
	}
	after, _ := c.Evidence(ctx, ev.ID)
	if !reflect.DeepEqual(after, fixed) {
		t.Fatalf("repaired row\n%+v\nwant\n%+v", after, fixed)
	}
	if same, ok, _ := c.EvidenceBySHA256(ctx, fixed.SHA256); ok {
		t.Fatalf("an encrypted item offered for sharing: %+v", same)
	}
	missing := fixed
	missing.ID = "ev-missing"
	if err := c.RepairEvidence(ctx, missing); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("repairing a missing item: %v, want ErrNotFound", err)
	}
}

func testLists(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	var want []string
	for i := range 7 {
		caseID := "case-a"
		if i%2 == 1 {
			caseID = "case-b"
		}
		ev, first := item(i, caseID) // item 0 sits at log index 0
		if err := c.AddEvidence(ctx, ev, first); err != nil {
			t.Fatal(err)
		}
		if caseID == "case-a" {
			want = append(want, ev.ID)
		}
	}
	var got []string
	after := ""
	for {
		page, err := c.ListByCase(ctx, "case-a", after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, ev := range page {
			got = append(got, ev.ID)
		}
		after = page[len(page)-1].ID
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ListByCase pages %v, want %v", got, want)
	}
	all, err := c.ListAll(ctx, "", 100)
	if err != nil || len(all) != 7 || all[0].ID != fmt.Sprintf("ev-%026d", 0) {
		t.Fatalf("ListAll: %d items, %v", len(all), err)
	}
}

func testEvents(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	ev, first := item(3, "case-a")
	if err := c.AddEvidence(ctx, ev, first); err != nil {
		t.Fatal(err)
	}
	next := catalog.Event{EvidenceID: ev.ID, Seq: 1, Type: "release", RecordedAt: time.Unix(1790000100, 0).UTC(), LogIndex: 40, LeafHash: [32]byte{40},
		Record: []byte(`{"v":1,"seq":1}`), ReceiptPayload: []byte(`{}`), ReceiptSignature: []byte{3}, ReceiptKeyID: "k"}
	pending := &catalog.PendingRelease{To: "urn:custody:custodian:l", Reason: "lab", Seq: 1, ExpiresAt: time.Unix(1790003600, 0).UTC()}
	if err := c.AddEvent(ctx, next, 0, catalog.ItemState{Custodian: ev.Custodian, Pending: pending}); err != nil {
		t.Fatal(err)
	}
	got, _ := c.Evidence(ctx, ev.ID)
	if got.LastSeq != 1 || got.LastLogIndex != 40 || got.Pending == nil || got.Pending.To != pending.To || !got.Pending.ExpiresAt.Equal(pending.ExpiresAt) {
		t.Fatalf("after the event: %+v, pending %+v", got, got.Pending)
	}
	evs, err := c.Events(ctx, ev.ID)
	if err != nil || len(evs) != 2 || evs[1].Type != "release" || string(evs[1].Record) != string(next.Record) {
		t.Fatalf("Events: %+v, %v", evs, err)
	}
	for _, tc := range []struct {
		from     uint64
		limit    int
		wantSeqs []uint64
	}{{0, 1, []uint64{0}}, {1, 5, []uint64{1}}, {0, 5, []uint64{0, 1}}, {2, 5, nil}} {
		page, err := c.EventsFrom(ctx, ev.ID, tc.from, tc.limit)
		var seqs []uint64
		for _, e := range page {
			seqs = append(seqs, e.Seq)
		}
		if err != nil || !slices.Equal(seqs, tc.wantSeqs) {
			t.Fatalf("EventsFrom(%d, %d) = %v, %v; want %v", tc.from, tc.limit, seqs, err, tc.wantSeqs)
		}
	}
	if ok, err := c.HasEventAt(ctx, 40); err != nil || !ok {
		t.Fatalf("HasEventAt(40) = %v, %v", ok, err)
	}
	if ok, _ := c.HasEventAt(ctx, 41); ok {
		t.Fatal("HasEventAt(41) for no event")
	}
	// The ingest is at log index 6, the release at 40.
	for _, tc := range []struct {
		from, to uint64
		want     string
	}{
		{5, 8, "[5 7]"}, {6, 7, "[]"}, {39, 42, "[39 41]"}, {40, 41, "[]"}, {0, 0, "[]"},
	} {
		got, err := c.MissingLogIndexes(ctx, tc.from, tc.to)
		if err != nil || fmt.Sprint(got) != tc.want {
			t.Fatalf("MissingLogIndexes(%d, %d) = %v, %v, want %s", tc.from, tc.to, got, err, tc.want)
		}
	}
}

func testConflicts(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	ev, first := item(5, "case-a")
	if err := c.AddEvidence(ctx, ev, first); err != nil {
		t.Fatal(err)
	}
	// Eight writers race to append event 1 after event 0: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	won, conflicts := 0, 0
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := catalog.Event{EvidenceID: ev.ID, Seq: 1, Type: "annotation", RecordedAt: time.Now().UTC(), LogIndex: uint64(100 + w), LeafHash: [32]byte{byte(w)},
				Record: []byte(`{}`), ReceiptPayload: []byte(`{}`), ReceiptSignature: []byte{1}, ReceiptKeyID: "k"}
			err := c.AddEvent(ctx, e, 0, catalog.ItemState{Custodian: ev.Custodian})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errors.Is(err, catalog.ErrConflict), errors.Is(err, catalog.ErrExists):
				conflicts++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if won != 1 || conflicts != 7 {
		t.Fatalf("%d writers won and %d conflicted, want 1 and 7", won, conflicts)
	}
}

func testLogApplied(t *testing.T, c catalog.Catalog) {
	ctx := t.Context()
	if n, err := c.LogApplied(ctx); err != nil || n != 0 {
		t.Fatalf("fresh LogApplied = %d, %v", n, err)
	}
	for _, n := range []uint64{5, 12} {
		if err := c.SetLogApplied(ctx, n); err != nil {
			t.Fatal(err)
		}
		if got, err := c.LogApplied(ctx); err != nil || got != n {
			t.Fatalf("LogApplied = %d, %v, want %d", got, err, n)
		}
	}
	// The mark never goes back (a replica that read an older size).
	if err := c.SetLogApplied(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.LogApplied(ctx); got != 12 {
		t.Fatalf("LogApplied went back to %d after SetLogApplied(7)", got)
	}
}
