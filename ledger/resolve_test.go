package ledger

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/custody-dev/custody/canonicaljson"
	"github.com/custody-dev/custody/catalog"
	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/internal/testenv/parts"
	"github.com/custody-dev/custody/journal"
	"github.com/custody-dev/custody/receipt"
	"github.com/custody-dev/custody/storage"
)

// A writer that dies (or whose catalog write fails) between its log append
// and its catalog write leaves an entry only the log and the journal hold.
// These tests make such writers with real parts (POSIX log, SQLite, file
// journal) and a catalog or log that fails once on purpose.

type (
	flakyCatalog = parts.FlakyCatalog
	flakyLog     = parts.FlakyLog
)

var errInjected = parts.ErrInjected

// testDomain states receipts plainly and applies no custody rules: the
// protocol's tests need none (package evidence has them).
type testDomain struct{}

func (testDomain) Receipt(rec events.Record, _ *catalog.Evidence, index uint64, leaf [32]byte) canonicaljson.Object {
	return canonicaljson.Object{"evidence_id": rec.EvidenceID, "seq": rec.Sequence, "log_index": index, "leaf_hash": hex.EncodeToString(leaf[:])}
}

func (testDomain) ReplayedItem(_ context.Context, _ events.Record, _ []byte, _ uint64, _ []byte, row catalog.Evidence) catalog.Evidence {
	return row
}

func (testDomain) NextState(st catalog.ItemState, _ events.Record) (catalog.ItemState, error) {
	return st, nil
}

// testLocks is an in-process Locker (package local has the service's; it
// is not imported here to keep the test free of it).
type testLocks struct{ m sync.Map }

func (l *testLocks) Lock(ctx context.Context, key string) (func(), error) {
	v, _ := l.m.LoadOrStore(key, make(chan struct{}, 1))
	ch := v.(chan struct{})
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *testLocks) Held(context.Context, string) error { return nil }

type testWriter struct {
	*Writer
	cat     *flakyCatalog
	log     *flakyLog
	journal journal.Store
}

func newTestWriter(t *testing.T) *testWriter {
	t.Helper()
	dir := t.TempDir()
	l := parts.Log(t, dir, "custody.test/resolve")
	lite := parts.Catalog(t, dir)
	jnl, err := journal.OpenFile(filepath.Join(dir, "journal"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { jnl.Close() })
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sign := func(m []byte) ([]byte, error) {
		sum := sha256.Sum256(m)
		return ecdsa.SignASN1(rand.Reader, key, sum[:])
	}
	cat := &flakyCatalog{Catalog: lite}
	fl := &flakyLog{Log: l}
	w := New(Config{Journal: jnl, Log: fl, Catalog: cat, Locks: &testLocks{}, Receipts: receipt.NewSigner(sign, "test-key"), Domain: testDomain{}})
	return &testWriter{Writer: w, cat: cat, log: fl, journal: jnl}
}

const (
	testCollector = "urn:custody:collector:c"
	testCourt     = "urn:custody:court:k"
)

// ingest appends a new item's first record, as package evidence does.
func (w *testWriter) ingest(t *testing.T, id, body string) (Event, error) {
	t.Helper()
	at := time.Now().UTC()
	sum := sha256.Sum256([]byte(body))
	row := catalog.Evidence{
		ID: id, CaseID: "case-resolve", Kind: "document", SHA256: hex.EncodeToString(sum[:]), Size: int64(len(body)),
		MediaType: "text/plain", Collector: testCollector, IngestedAt: at, Metadata: []byte(`{}`),
		Object: storage.Object{Backend: "disk", Key: id, Size: int64(len(body))}, Custodian: testCollector,
	}
	rec := events.Record{EvidenceID: id, Type: events.Ingest, Performer: testCollector, RecordedAt: at, Salt: events.NewSalt()}
	return w.Append(t.Context(), rec, Projection{Item: &row})
}

// note appends an annotation to item id the way package evidence appends
// any event: under the item's lock, its earlier records resolved first.
func (w *testWriter) note(t *testing.T, id, text string) (Event, error) {
	t.Helper()
	unlock, err := w.Lock(t.Context(), id)
	if err != nil {
		return Event{}, err
	}
	defer unlock()
	item, err := w.cat.Evidence(t.Context(), id)
	if err != nil {
		return Event{}, err
	}
	if item, err = w.Resolve(t.Context(), item); err != nil {
		return Event{}, err
	}
	rec := events.Record{
		EvidenceID: id, Sequence: item.LastSeq + 1, Type: events.Annotation, Performer: testCourt, RecordedAt: time.Now().UTC(),
		Previous: &events.Link{Index: item.LastLogIndex, LeafHash: item.LastLeafHash}, Salt: events.NewSalt(),
		Details: canonicaljson.Object{"note": text},
	}
	return w.Append(t.Context(), rec, Projection{State: catalog.ItemState{Custodian: item.Custodian, Pending: item.Pending}})
}

func TestOrphansAreResolved(t *testing.T) {
	t.Run("an event logged but not cataloged is cataloged before the next links", func(t *testing.T) {
		w := newTestWriter(t)
		const id = "ev-orphanedevent"
		if _, err := w.ingest(t, id, "orphaned event"); err != nil {
			t.Fatal(err)
		}
		w.cat.FailAddEvent.Armed.Store(true)
		if _, err := w.note(t, id, "A"); !errors.Is(err, errInjected) {
			t.Fatalf("the catalog write was to fail: %v", err)
		}
		b, err := w.note(t, id, "B")
		if err != nil {
			t.Fatal(err)
		}
		evs, err := w.cat.Events(t.Context(), id)
		if err != nil || len(evs) != 3 {
			t.Fatalf("%d events (%v), want ingest, A, B", len(evs), err)
		}
		a, _ := events.ParseRecord(evs[1].Record)
		brec, _ := events.ParseRecord(b.Row.Record)
		if a.Details["note"] != "A" || b.Row.Seq != 2 || brec.Previous.Index != evs[1].LogIndex || brec.Previous.LeafHash != evs[1].LeafHash {
			t.Fatalf("B (seq %d, previous %+v) does not follow the orphaned A (%v at %d)", b.Row.Seq, brec.Previous, a.Details, evs[1].LogIndex)
		}
	})

	t.Run("a record journaled but never logged is dropped", func(t *testing.T) {
		w := newTestWriter(t)
		const id = "ev-neverlogged"
		if _, err := w.ingest(t, id, "never logged"); err != nil {
			t.Fatal(err)
		}
		w.log.FailAppend.Armed.Store(true)
		if _, err := w.note(t, id, "lost"); err == nil {
			t.Fatal("the log append was to fail")
		}
		b, err := w.note(t, id, "B")
		if err != nil {
			t.Fatal(err)
		}
		if b.Row.Seq != 1 {
			t.Fatalf("the next event is %d, want 1: the lost record was not dropped", b.Row.Seq)
		}
		if left, _ := w.journal.Unresolved(t.Context(), id, 0); len(left) != 0 {
			t.Fatalf("%d records still unresolved", len(left))
		}
	})

	t.Run("an ingest the repair loop cataloged first is still a success", func(t *testing.T) {
		w := newTestWriter(t)
		const id = "ev-racedbyrepair"
		// Another replica's repair runs between this ingest's log append
		// and its catalog write.
		w.cat.BeforeAddEvidence = func() {
			if n, err := w.Replay(context.Background()); err != nil || n != 1 {
				t.Errorf("the racing replay cataloged %d entries (%v), want 1", n, err)
			}
		}
		ev, err := w.ingest(t, id, "raced by repair")
		if err != nil {
			t.Fatalf("the ingest failed although its entry is logged and cataloged: %v", err)
		}
		if got, err := w.cat.Evidence(t.Context(), id); err != nil || got.LastLogIndex != ev.Row.LogIndex {
			t.Fatalf("catalog has %+v (%v)", got, err)
		}
	})

	t.Run("an ingest logged but not cataloged is cataloged by replay", func(t *testing.T) {
		w := newTestWriter(t)
		// The catalog write fails, and so does the replay right after it.
		w.cat.FailAddEvidence.Armed.Store(true)
		w.cat.FailAddEvidence.Extra.Store(1)
		if _, err := w.ingest(t, "ev-orphanedingest", "orphaned ingest"); err != nil {
			t.Fatalf("a logged ingest whose catalog write failed is still acknowledged: %v", err)
		}
		n, err := w.Replay(t.Context())
		if err != nil || n != 1 {
			t.Fatalf("Replay cataloged %d entries (%v), want 1", n, err)
		}
		items, _ := w.cat.ListByCase(t.Context(), "case-resolve", "", 10)
		if len(items) != 1 || items[0].Collector != testCollector {
			t.Fatalf("after replay the case has %+v", items)
		}
	})
}

// An ingest that is in the log returns its event and receipt, whatever
// fails after the append: a failed catalog write is repaired from the
// journal, not reported as a failed upload (which invites a second one).
func TestLoggedIngestReturnsItsReceipt(t *testing.T) {
	w := newTestWriter(t)
	const id = "ev-loggedingest"
	w.cat.FailAddEvidence.Armed.Store(true)
	ev, err := w.ingest(t, id, "logged, then the catalog write fails")
	if err != nil || len(ev.Receipt.Signature) == 0 || len(ev.Entry) == 0 {
		t.Fatalf("Append = %v, receipt %d bytes; the ingest is logged and must be acknowledged", err, len(ev.Receipt.Signature))
	}
	got, err := w.cat.Evidence(t.Context(), id)
	if err != nil || got.LastLogIndex != ev.Row.LogIndex || got.LastLeafHash != ev.Row.LeafHash {
		t.Fatalf("the item is not cataloged after the repair: %+v, %v", got, err)
	}
}

// TestReplaySkipsHistoryMapCommitments: the log's own history-map
// commitments (custodylog) are no item's events; replay into an empty
// catalog catalogs every event and steps over them, rather than failing
// on an entry no journal record commits to.
func TestReplaySkipsHistoryMapCommitments(t *testing.T) {
	w := newTestWriter(t)
	for _, id := range []string{"ev-replaymapone", "ev-replaymaptwo"} {
		if _, err := w.ingest(t, id, id); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until the log holds a commitment after the events.
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := w.log.HistoryMapping(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if st.CommittedSize >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no history-map commitment covers the two events: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	size, err := w.log.Settled(t.Context())
	if err != nil || size < 3 {
		t.Fatalf("the log holds %d entries (%v), want the events and a commitment", size, err)
	}
	// A catalog lost: a new, empty one, rebuilt from the log and journal.
	fresh := parts.Catalog(t, t.TempDir())
	w2 := New(Config{Journal: w.journal, Log: w.log, Catalog: fresh, Locks: &testLocks{}, Receipts: w.receipts, Domain: testDomain{}})
	n, err := w2.Replay(t.Context())
	if err != nil || n != 2 {
		t.Fatalf("Replay cataloged %d entries (%v), want the 2 events", n, err)
	}
	if applied, err := fresh.LogApplied(t.Context()); err != nil || applied < size {
		t.Fatalf("after replay the catalog has applied %d of %d entries (%v)", applied, size, err)
	}
}
