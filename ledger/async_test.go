package ledger

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custody-dev/custody/catalog"
	"github.com/custody-dev/custody/catalog/sqlite"
	"github.com/custody-dev/custody/custodylog"
	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/journal"
)

// lossyCatalog is the SQLite catalog (which takes events without the
// writer waiting for the commit) whose next queued event is lost: its
// commit fails after the event was acknowledged.
type lossyCatalog struct {
	*sqlite.Catalog
	lose atomic.Bool
}

func (c *lossyCatalog) AddEventAsync(e catalog.Event, prev uint64, st catalog.ItemState, done func(error)) error {
	if c.lose.CompareAndSwap(true, false) {
		go done(errInjected)
		return nil
	}
	return c.Catalog.AddEventAsync(e, prev, st, done)
}

// delayedJournal makes every record durable only when the test says.
type delayedJournal struct {
	journal.Store
	release chan struct{}
	started atomic.Int32
}

func (j *delayedJournal) Start(r journal.Record) (<-chan error, error) {
	inner, err := j.Store.(journal.Starter).Start(r)
	if err != nil {
		return nil, err
	}
	j.started.Add(1)
	out := make(chan error, 1)
	go func() {
		err := <-inner
		<-j.release
		out <- err
	}()
	return out, nil
}

func TestAsyncCatalogWrites(t *testing.T) {
	t.Run("an acknowledged event whose catalog write fails is cataloged before the next links", func(t *testing.T) {
		w := newTestWriter(t)
		lossy := &lossyCatalog{Catalog: w.cat.Catalog.(*sqlite.Catalog)}
		w.cat.Catalog = lossy
		w.Writer = New(Config{Journal: w.journal, Log: w.log, Catalog: lossy, Locks: &testLocks{}, Receipts: w.receipts, Domain: testDomain{}})
		const id = "ev-lostcatalogwrite"
		if _, err := w.ingest(t, id, "lost catalog write"); err != nil {
			t.Fatal(err)
		}
		lossy.lose.Store(true)
		a, err := w.note(t, id, "A")
		if err != nil {
			t.Fatalf("A is logged: its acknowledgement does not wait for the catalog: %v", err)
		}
		b, err := w.note(t, id, "B")
		if err != nil {
			t.Fatal(err)
		}
		evs, err := lossy.Events(t.Context(), id)
		if err != nil || len(evs) != 3 {
			t.Fatalf("%d events (%v), want ingest, A, B", len(evs), err)
		}
		brec, _ := events.ParseRecord(b.Row.Record)
		if evs[1].LogIndex != a.Row.LogIndex || b.Row.Seq != 2 || brec.Previous.Index != a.Row.LogIndex || brec.Previous.LeafHash != a.Row.LeafHash {
			t.Fatalf("B (seq %d, previous %+v) does not follow A (at %d)", b.Row.Seq, brec.Previous, a.Row.LogIndex)
		}
	})

	t.Run("no entry is in the log before its record is durable", func(t *testing.T) {
		w := newTestWriter(t)
		dj := &delayedJournal{Store: w.journal, release: make(chan struct{})}
		w.Writer = New(Config{Journal: dj, Log: w.log, Catalog: w.cat, Locks: &testLocks{}, Receipts: w.receipts, Domain: testDomain{}})
		const id = "ev-slowjournal"
		done := make(chan error, 1)
		go func() { _, err := w.ingest(t, id, "slow journal"); done <- err }()
		for dj.started.Load() == 0 {
			select {
			case err := <-done:
				t.Fatalf("ingest returned before its record was durable: %v", err)
			default:
			}
		}
		// Well past the log's batching: the entry still waits.
		time.Sleep(5 * custodylog.DefaultBatchMaxAge)
		size, err := w.log.Reader().NextIndex(t.Context())
		if err != nil || size != 0 {
			t.Fatalf("log sequenced %d entries before the record was durable (%v)", size, err)
		}
		close(dj.release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if size, err := w.log.Reader().NextIndex(context.Background()); err != nil || size != 1 {
			t.Fatalf("log has %d entries after the ingest (%v), want 1", size, err)
		}
	})
}
