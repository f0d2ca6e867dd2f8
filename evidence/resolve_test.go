package evidence

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/sigstore/sigstore/pkg/signature"
	"golang.org/x/mod/sumdb/note"

	"github.com/custody-dev/custody/catalog"
	"github.com/custody-dev/custody/catalog/sqlite"
	"github.com/custody-dev/custody/custodylog"
	"github.com/custody-dev/custody/custodylog/posixlog"
	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/journal"
	"github.com/custody-dev/custody/receipt"
	"github.com/custody-dev/custody/storage/disk"
)

// A writer that dies (or whose catalog write fails) between its log append
// and its catalog write leaves an entry only the log and the journal hold.
// These tests make such writers with real parts (POSIX log, SQLite, file
// journal, disk store) and a catalog or log that fails once on purpose.

// failOnce fails the next call it is armed for, and as many more after it
// as extra says.
type failOnce struct {
	armed atomic.Bool
	extra atomic.Int32
}

func (f *failOnce) fire() bool {
	if f.armed.CompareAndSwap(true, false) {
		return true
	}
	for n := f.extra.Load(); n > 0; n = f.extra.Load() {
		if f.extra.CompareAndSwap(n, n-1) {
			return true
		}
	}
	return false
}

var errInjected = errors.New("injected failure")

type flakyCatalog struct {
	catalog.Catalog
	addEvent, addEvidence failOnce
	// beforeAddEvidence runs just before the next AddEvidence, once.
	beforeAddEvidence func()
}

func (c *flakyCatalog) AddEvent(ctx context.Context, e catalog.Event, prev uint64, st catalog.ItemState) error {
	if c.addEvent.fire() {
		return errInjected
	}
	return c.Catalog.AddEvent(ctx, e, prev, st)
}

func (c *flakyCatalog) AddEvidence(ctx context.Context, ev catalog.Evidence, first catalog.Event) error {
	if c.addEvidence.fire() {
		return errInjected
	}
	if f := c.beforeAddEvidence; f != nil {
		c.beforeAddEvidence = nil
		f()
	}
	return c.Catalog.AddEvidence(ctx, ev, first)
}

type flakyLog struct {
	*custodylog.Log
	append failOnce
}

func (l *flakyLog) Append(ctx context.Context, entry []byte) (custodylog.Appended, error) {
	if l.append.fire() {
		return custodylog.Appended{}, errInjected // dies before sequencing
	}
	return l.Log.Append(ctx, entry)
}

func newTestService(t *testing.T) (*Service, *flakyCatalog, *flakyLog) {
	t.Helper()
	return newTestServiceIn(t, t.TempDir())
}

// newTestServiceIn is newTestService with its data (catalog.db, log,
// journal, blobs) under dir.
func newTestServiceIn(t *testing.T, dir string) (*Service, *flakyCatalog, *flakyLog) {
	t.Helper()
	skey, vkey, _ := note.GenerateKey(rand.Reader, "custody.test/resolve")
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	backend, err := posixlog.New(t.Context(), filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := custodylog.Open(t.Context(), custodylog.Config{Backend: backend, Signer: signer, Verifier: verifier, CheckpointInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(context.Background()) })
	lite, err := sqlite.Open(t.Context(), filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lite.Close() })
	jnl, err := journal.OpenFile(filepath.Join(dir, "journal"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { jnl.Close() })
	store, err := disk.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sv, err := signature.LoadSignerVerifier(key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	ageID, _ := age.GenerateX25519Identity()
	cat := &flakyCatalog{Catalog: lite}
	fl := &flakyLog{Log: l}
	d := Deps{Store: store, Catalog: cat, Log: fl, Journal: jnl, Receipts: receipt.NewSigner(func(m []byte) ([]byte, error) { return sv.SignMessage(bytes.NewReader(m)) }, "test-key"), Identity: ageID}
	s := New(d, Config{UploadDir: filepath.Join(dir, "upload-sessions")})
	testServiceDeps.Store(s, d)
	t.Cleanup(func() { testServiceDeps.Delete(s) })
	return s, cat, fl
}

// testServiceDeps keeps the Deps each test service was made with (the
// service hands its journal and signer to its ledger.Writer).
var testServiceDeps sync.Map

func depsOf(s *Service) Deps {
	d, _ := testServiceDeps.Load(s)
	return d.(Deps)
}

func ingestDoc(t *testing.T, s *Service, who identity.Identity, body string) (Item, error) {
	t.Helper()
	sum := sha256.Sum256([]byte(body))
	item, _, err := s.Ingest(t.Context(), who, UploadMeta{CaseID: "case-resolve", Kind: KindDocument, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(body))}, bytes.NewReader([]byte(body)))
	return item, err
}

func TestOrphansAreResolved(t *testing.T) {
	collector, _ := identity.New(identity.RoleCollector, "c")
	custodian, _ := identity.New(identity.RoleCourt, "k") // the court may annotate any item
	note := func(s *Service, id, text string) (Event, error) {
		return s.RecordEvent(t.Context(), custodian, id, EventInput{Type: events.Annotation, Note: text})
	}

	t.Run("an event logged but not cataloged is cataloged before the next links", func(t *testing.T) {
		s, cat, _ := newTestService(t)
		item, err := ingestDoc(t, s, collector, "orphaned event")
		if err != nil {
			t.Fatal(err)
		}
		cat.addEvent.armed.Store(true)
		if _, err := note(s, item.ID, "A"); !errors.Is(err, errInjected) {
			t.Fatalf("the catalog write was to fail: %v", err)
		}
		b, err := note(s, item.ID, "B")
		if err != nil {
			t.Fatal(err)
		}
		evs, err := s.catalog.Events(t.Context(), item.ID)
		if err != nil || len(evs) != 3 {
			t.Fatalf("%d events (%v), want ingest, A, B", len(evs), err)
		}
		a, _ := events.ParseRecord(evs[1].Record)
		if a.Details["note"] != "A" || b.Seq != 2 || b.Record.Previous.Index != evs[1].LogIndex || b.Record.Previous.LeafHash != evs[1].LeafHash {
			t.Fatalf("B (seq %d, previous %+v) does not follow the orphaned A (%v at %d)", b.Seq, b.Record.Previous, a.Details, evs[1].LogIndex)
		}
	})

	t.Run("a record journaled but never logged is dropped", func(t *testing.T) {
		s, _, fl := newTestService(t)
		item, err := ingestDoc(t, s, collector, "never logged")
		if err != nil {
			t.Fatal(err)
		}
		fl.append.armed.Store(true)
		if _, err := note(s, item.ID, "lost"); err == nil {
			t.Fatal("the log append was to fail")
		}
		b, err := note(s, item.ID, "B")
		if err != nil {
			t.Fatal(err)
		}
		if b.Seq != 1 {
			t.Fatalf("the next event is %d, want 1: the lost record was not dropped", b.Seq)
		}
		if left, _ := depsOf(s).Journal.Unresolved(t.Context(), item.ID, 0); len(left) != 0 {
			t.Fatalf("%d records still unresolved", len(left))
		}
	})

	t.Run("an ingest the repair loop cataloged first is still a success", func(t *testing.T) {
		s, cat, _ := newTestService(t)
		// Another replica's repair runs between this ingest's log append
		// and its catalog write.
		cat.beforeAddEvidence = func() {
			if n, err := s.Replay(context.Background()); err != nil || n != 1 {
				t.Errorf("the racing replay cataloged %d entries (%v), want 1", n, err)
			}
		}
		item, err := ingestDoc(t, s, collector, "raced by repair")
		if err != nil {
			t.Fatalf("the ingest failed although its entry is logged and cataloged: %v", err)
		}
		if got, err := s.catalog.Evidence(t.Context(), item.ID); err != nil || got.SHA256 != item.SHA256 {
			t.Fatalf("catalog has %+v (%v)", got, err)
		}
	})

	t.Run("an ingest logged but not cataloged is cataloged by replay", func(t *testing.T) {
		s, cat, _ := newTestService(t)
		// The catalog write fails, and so does the replay right after it.
		cat.addEvidence.armed.Store(true)
		cat.addEvidence.extra.Store(1)
		if _, err := ingestDoc(t, s, collector, "orphaned ingest"); err != nil {
			t.Fatalf("a logged ingest whose catalog write failed is still acknowledged: %v", err)
		}
		n, err := s.Replay(t.Context())
		if err != nil || n != 1 {
			t.Fatalf("Replay cataloged %d entries (%v), want 1", n, err)
		}
		items, _ := s.catalog.ListByCase(t.Context(), "case-resolve", "", 10)
		if len(items) != 1 || items[0].Collector != collector.String() {
			t.Fatalf("after replay the case has %+v", items)
		}
	})
}
