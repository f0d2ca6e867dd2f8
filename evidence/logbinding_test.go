package evidence

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/custody-dev/custody/canonicaljson"
	"github.com/custody-dev/custody/catalog"
	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/journal"
)

// The log is the truth, the catalog a projection: these tests edit catalog
// rows behind the service (SQL on its SQLite file, as someone with the
// data disk would) and expect reads, VerifyStored, the scrub and dedup to
// go by the logged ingest record, and Reconcile to rewrite the rows.

// opsSeen records the disagreements a service reports.
type opsSeen struct {
	mu  sync.Mutex
	ops []string
}

func (o *opsSeen) add(op string) { o.mu.Lock(); o.ops = append(o.ops, op); o.mu.Unlock() }
func (o *opsSeen) list() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.ops)
}

type tamperEnv struct {
	s         *Service
	cat       *flakyCatalog
	dir       string
	seen      *opsSeen
	collector identity.Identity
	court     identity.Identity
}

func newTamperEnv(t *testing.T) *tamperEnv {
	t.Helper()
	dir := t.TempDir()
	s, cat, _ := newTestServiceIn(t, dir)
	seen := &opsSeen{}
	s.disagreed = seen.add
	collector, _ := identity.New(identity.RoleCollector, "c")
	court, _ := identity.New(identity.RoleCourt, "judge")
	return &tamperEnv{s: s, cat: cat, dir: dir, seen: seen, collector: collector, court: court}
}

// fresh is another service over the same catalog, log, journal and store:
// a restarted process, whose binding cache is empty.
func (e *tamperEnv) fresh() *Service {
	s := e.s
	d := depsOf(s)
	f := New(Deps{Store: s.store, Catalog: s.catalog, Log: s.log, Journal: d.Journal, Receipts: d.Receipts, Identity: s.identity,
		OnCatalogDisagreement: e.seen.add}, s.cfg)
	return f
}

func (e *tamperEnv) ingest(t *testing.T, body string, special bool) Item {
	t.Helper()
	sum := sha256.Sum256([]byte(body))
	item, _, err := e.s.Ingest(t.Context(), e.collector, UploadMeta{
		CaseID: "case-tamper", Kind: KindDocument, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(body)), Special: special,
	}, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	return item
}

// sql runs one statement on the catalog file.
func (e *tamperEnv) sql(t *testing.T, q string, args ...any) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(e.dir, "catalog.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.ExecContext(t.Context(), q, args...)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("%q changed %d rows, want 1", q, n)
	}
}

// pointAt edits a's row to name b's content and object.
func (e *tamperEnv) pointAt(t *testing.T, a, b Item) {
	t.Helper()
	e.sql(t, `UPDATE evidence SET sha256 = ?, size = ?, object_key = ?, version_id = ?, object_size = ? WHERE id = ?`,
		b.SHA256, b.Size, b.Object.Key, b.Object.VersionID, b.Object.Size, a.ID)
}

func (e *tamperEnv) read(t *testing.T, s *Service, who identity.Identity, id string) ([]byte, error) {
	t.Helper()
	_, _, rc, err := s.Open(t.Context(), who, id, Access{Purpose: "test"})
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func (e *tamperEnv) events(t *testing.T, id string) int {
	t.Helper()
	evs, err := e.s.catalog.Events(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}

func TestEditedRowIsNeverServed(t *testing.T) {
	for _, cache := range []string{"binding cached at ingest", "binding read from the log"} {
		t.Run(cache, func(t *testing.T) {
			e := newTamperEnv(t)
			a := e.ingest(t, "the collector's own photo", false)
			b := e.ingest(t, "another item entirely", false)
			e.pointAt(t, a, b)
			s := e.s
			if cache == "binding read from the log" {
				s = e.fresh()
			}
			got, err := e.read(t, s, e.court, a.ID)
			if !errors.Is(err, ErrCatalogDisagrees) || got != nil {
				t.Fatalf("read of the edited row: %q, %v; want ErrCatalogDisagrees", got, err)
			}
			if n := e.events(t, a.ID); n != 1 {
				t.Fatalf("a refused read logged an access: %d events", n)
			}
			if got, err := e.read(t, s, e.court, b.ID); err != nil || string(got) != "another item entirely" {
				t.Fatalf("B reads %q, %v", got, err)
			}
			v, err := s.VerifyStored(t.Context(), e.court, a.ID)
			if err != nil || v.OK || v.Checks[0].OK {
				t.Fatalf("VerifyStored of the edited row: %+v, %v; want a failed stored-bytes check", v, err)
			}
			var flagged []string
			checked, bad, err := s.Scrub(t.Context(), func(id string, err error) {
				if err != nil {
					flagged = append(flagged, id)
					if !errors.Is(err, ErrCatalogDisagrees) {
						t.Errorf("scrub reported %v, want ErrCatalogDisagrees", err)
					}
				}
			})
			if err != nil || checked != 2 || bad != 1 || len(flagged) != 1 || flagged[0] != a.ID {
				t.Fatalf("scrub: checked %d, bad %d, flagged %v, %v", checked, bad, flagged, err)
			}
			if got := e.seen.list(); !reflect.DeepEqual(got, []string{"read", "verify", "scrub"}) {
				t.Fatalf("disagreements reported %v, want read, verify, scrub", got)
			}
		})
	}
}

// A special-category item whose special flag is cleared in the catalog
// must not become readable by a role that may not read it.
func TestClearedSpecialFlagIsRefused(t *testing.T) {
	e := newTamperEnv(t)
	c := e.ingest(t, "fingerprint export", true)
	auditor, _ := identity.New(identity.RoleAuditor, "a")
	if _, err := e.read(t, e.s, auditor, c.ID); !errors.Is(err, identity.ErrPermissionDenied) {
		t.Fatalf("auditor reading special content: %v, want permission denied", err)
	}
	e.sql(t, `UPDATE evidence SET special = 0 WHERE id = ?`, c.ID)
	for _, s := range []*Service{e.s, e.fresh()} {
		if got, err := e.read(t, s, auditor, c.ID); !errors.Is(err, ErrCatalogDisagrees) {
			t.Fatalf("auditor reading special content with the flag cleared: %q, %v; want ErrCatalogDisagrees", got, err)
		}
	}
}

// With the ingest record in the catalog's events table edited as well, the
// binding comes from the journaled record the log commits to.
func TestEditedIngestRecordFallsBackToTheJournal(t *testing.T) {
	e := newTamperEnv(t)
	a := e.ingest(t, "original", false)
	b := e.ingest(t, "substitute", false)
	evsB, _ := e.s.catalog.Events(t.Context(), b.ID)
	forged := bytes.ReplaceAll(evsB[0].Record, []byte(b.ID), []byte(a.ID))
	e.sql(t, `UPDATE events SET record = ? WHERE evidence_id = ? AND seq = 0`, forged, a.ID)
	e.pointAt(t, a, b)
	s := e.fresh()
	if _, err := e.read(t, s, e.court, a.ID); !errors.Is(err, ErrCatalogDisagrees) {
		t.Fatalf("read: %v, want ErrCatalogDisagrees", err)
	}
	r, err := s.Reconcile(t.Context())
	if err != nil || r.Checked != 2 || r.Repaired != 1 || r.Unrepairable != 0 {
		t.Fatalf("Reconcile: %+v, %v; want 2 checked, 1 repaired", r, err)
	}
	if got, err := e.read(t, e.fresh(), e.court, a.ID); err != nil || string(got) != "original" {
		t.Fatalf("after the repair A reads %q, %v", got, err)
	}
}

// A catalog whose ingest event points at another item's log entry cannot
// be trusted for anything about the item: refused, and reported at start.
func TestIngestEventPointingElsewhereIsRefused(t *testing.T) {
	e := newTamperEnv(t)
	a := e.ingest(t, "first", false)
	b := e.ingest(t, "second", false)
	evsA, _ := e.s.catalog.Events(t.Context(), a.ID)
	evsB, _ := e.s.catalog.Events(t.Context(), b.ID)
	e.sql(t, `UPDATE events SET log_index = ? WHERE log_index = ?`, 1<<40, evsA[0].LogIndex)
	e.sql(t, `UPDATE events SET log_index = ? WHERE log_index = ?`, evsA[0].LogIndex, evsB[0].LogIndex)
	e.sql(t, `UPDATE events SET log_index = ? WHERE log_index = ?`, evsB[0].LogIndex, 1<<40)
	e.pointAt(t, a, b)
	s := e.fresh()
	for _, id := range []string{a.ID, b.ID} {
		if _, err := e.read(t, s, e.court, id); !errors.Is(err, ErrCatalogDisagrees) {
			t.Fatalf("read of %s: %v, want ErrCatalogDisagrees", id, err)
		}
	}
	r, err := e.fresh().Reconcile(t.Context())
	if err != nil || r.Checked != 2 || r.Repaired != 0 || r.Unrepairable != 2 {
		t.Fatalf("Reconcile: %+v, %v; want both unrepairable", r, err)
	}
}

func TestReconcileRewritesFromTheLog(t *testing.T) {
	e := newTamperEnv(t)
	a := e.ingest(t, "evidence A", false)
	b := e.ingest(t, "evidence B", true)
	before := map[string]catalog.Evidence{}
	for _, id := range []string{a.ID, b.ID} {
		before[id], _ = e.s.catalog.Evidence(t.Context(), id)
	}
	e.pointAt(t, a, b)
	e.sql(t, `UPDATE evidence SET case_id = 'case-other', kind = 'photo', media_type = 'image/png', collector = 'urn:custody:collector:x',
		ingested_at = 1, backend = 'x', bucket = 'x', retain_until = 1, encrypted = 1, special = 1 WHERE id = ?`, a.ID)
	e.sql(t, `UPDATE evidence SET encrypted = 0, special = 0 WHERE id = ?`, b.ID)
	r, err := e.fresh().Reconcile(t.Context())
	if err != nil || r.Checked != 2 || r.Repaired != 2 || r.Unrepairable != 0 {
		t.Fatalf("Reconcile: %+v, %v; want 2 repaired", r, err)
	}
	if got := e.seen.list(); !reflect.DeepEqual(got, []string{"start", "start"}) {
		t.Fatalf("disagreements reported %v", got)
	}
	for id, want := range before {
		got, _ := e.s.catalog.Evidence(t.Context(), id)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("repaired row\n%+v\nwant\n%+v", got, want)
		}
	}
	if got, err := e.read(t, e.fresh(), e.court, a.ID); err != nil || string(got) != "evidence A" {
		t.Fatalf("A reads %q, %v", got, err)
	}
	if r, err := e.fresh().Reconcile(t.Context()); err != nil || r.Repaired != 0 {
		t.Fatalf("a second Reconcile: %+v, %v", r, err)
	}
}

// Rows the service itself wrote always agree with the log: shared objects
// of duplicate content, encrypted and special items, items with a chain.
func TestReconcileLeavesLegitRowsAlone(t *testing.T) {
	e := newTamperEnv(t)
	a := e.ingest(t, "same bytes", false)
	dup := e.ingest(t, "same bytes", false)
	if dup.Object.Key != a.Object.Key {
		t.Fatalf("duplicate stored apart: %s, %s", dup.Object.Key, a.Object.Key)
	}
	e.ingest(t, "special bytes", true)
	custodian, _ := identity.New(identity.RoleCourt, "k") // the court may annotate any item
	if _, err := e.s.RecordEvent(t.Context(), custodian, a.ID, EventInput{Type: events.Annotation, Note: "n"}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Service{e.s, e.fresh()} {
		r, err := s.Reconcile(t.Context())
		if err != nil || r.Checked != 3 || r.Repaired != 0 || r.Unrepairable != 0 {
			t.Fatalf("Reconcile: %+v, %v", r, err)
		}
		if _, bad, err := s.Scrub(t.Context(), func(string, error) {}); bad != 0 || err != nil {
			t.Fatalf("scrub: %d bad, %v", bad, err)
		}
		if got, err := e.read(t, s, e.court, dup.ID); err != nil || string(got) != "same bytes" {
			t.Fatalf("duplicate reads %q, %v", got, err)
		}
	}
	if got := e.seen.list(); len(got) != 0 {
		t.Fatalf("disagreements reported for legit rows: %v", got)
	}
}

// Dedup shares an object only through a row that agrees with the log: a
// row edited to claim new content must not swallow an upload of it.
func TestDedupTrustsOnlyRowsThatAgree(t *testing.T) {
	e := newTamperEnv(t)
	a := e.ingest(t, "old content", false)
	sum := sha256.Sum256([]byte("new content"))
	e.sql(t, `UPDATE evidence SET sha256 = ?, size = ? WHERE id = ?`, hex.EncodeToString(sum[:]), len("new content"), a.ID)
	for _, s := range []*Service{e.s, e.fresh()} {
		e.s = s
		n := e.ingest(t, "new content", false)
		if n.Object.Key == a.Object.Key {
			t.Fatal("the upload shares the object of a row that disagrees with the log")
		}
		if got, err := e.read(t, s, e.court, n.ID); err != nil || string(got) != "new content" {
			t.Fatalf("the new item reads %q, %v", got, err)
		}
	}
	if got := e.seen.list(); len(got) == 0 || got[0] != "ingest" {
		t.Fatalf("disagreements reported %v, want ingest first", got)
	}
}

// Replay catalogs an ingest from its journaled row, which the log does not
// commit to: where it disagrees with the committed record, the record wins.
func TestReplayCatalogsWhatTheRecordStates(t *testing.T) {
	e := newTamperEnv(t)
	b := e.ingest(t, "some other item", false)
	// The catalog write fails, and so does the replay right after it.
	e.cat.FailAddEvidence.Armed.Store(true)
	e.cat.FailAddEvidence.Extra.Store(1)
	sum := sha256.Sum256([]byte("orphaned ingest"))
	if _, _, err := e.s.Ingest(t.Context(), e.collector, UploadMeta{CaseID: "case-tamper", Kind: KindDocument, SHA256: hex.EncodeToString(sum[:]), Size: 15},
		bytes.NewReader([]byte("orphaned ingest"))); err != nil {
		t.Fatalf("a logged ingest whose catalog write failed is still acknowledged: %v", err)
	}
	size, err := e.s.log.Settled(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// The last custody entry (the log may have committed to its history
	// map since).
	var fields canonicaljson.Object
	for i := size; fields["evidence_id"] == nil && i > 0; i-- {
		entry, err := e.s.log.Entry(t.Context(), i-1, size)
		if err != nil {
			t.Fatal(err)
		}
		fields, _ = events.ParseEntry(entry)
	}
	id, commitment := fields["evidence_id"].(string), fields["record_sha256"].(string)
	// The journaled row is made to name the other item's content; the
	// file journal's Get returns the last record under a key.
	jnl := depsOf(e.s).Journal
	found, err := jnl.Get(t.Context(), []string{commitment})
	if err != nil {
		t.Fatal(err)
	}
	var want struct {
		Item catalog.Evidence `json:"item"`
	}
	var jr map[string]any
	if err := json.Unmarshal(found[commitment], &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(found[commitment], &jr); err != nil {
		t.Fatal(err)
	}
	row := jr["item"].(map[string]any)
	row["SHA256"], row["Size"], row["Object"] = b.SHA256, b.Size, b.Object
	tampered, err := json.Marshal(jr)
	if err != nil {
		t.Fatal(err)
	}
	if err := jnl.Put(t.Context(), journal.Record{Key: commitment, EvidenceID: id, Data: tampered}, true); err != nil {
		t.Fatal(err)
	}
	if n, err := e.s.Replay(t.Context()); err != nil || n != 1 {
		t.Fatalf("Replay cataloged %d entries (%v), want 1", n, err)
	}
	got, err := e.s.catalog.Evidence(t.Context(), id)
	if err != nil || got.SHA256 != want.Item.SHA256 || got.Size != want.Item.Size || got.Object.Key != want.Item.Object.Key || got.SHA256 == b.SHA256 {
		t.Fatalf("replayed row %+v (%v), want the logged digest and object %s", got, err, want.Item.Object.Key)
	}
	if got := e.seen.list(); !reflect.DeepEqual(got, []string{"replay"}) {
		t.Fatalf("disagreements reported %v, want replay", got)
	}
	if data, err := e.read(t, e.fresh(), e.court, id); err != nil || string(data) != "orphaned ingest" {
		t.Fatalf("the replayed item reads %q, %v", data, err)
	}
}

func TestFactsCacheIsBounded(t *testing.T) {
	c := factsCache{half: 4}
	for i := range 20 {
		c.put(fmt.Sprint(i), ingestFacts{index: uint64(i)})
		if _, ok := c.get("0"); i < 4 && !ok {
			t.Fatalf("item 0 gone after %d puts", i+1)
		}
	}
	if n := len(c.cur) + len(c.old); n > 8 {
		t.Fatalf("the cache holds %d items, at most 8", n)
	}
	if f, ok := c.get("19"); !ok || f.index != 19 {
		t.Fatalf("the latest item: %+v, %v", f, ok)
	}
	if _, ok := c.get("1"); ok {
		t.Fatal("an item from long ago is still cached")
	}
}
