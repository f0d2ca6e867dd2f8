package evidence

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/custody-dev/custody/canonicaljson"
	"github.com/custody-dev/custody/catalog"
	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/storage"
)

// The log is the truth; the catalog is a projection of it. Content is
// served, re-hashed and verified against what an item's logged ingest
// commits to, never against the catalog row alone: the content digest from
// the ingest's log entry, and the rest (size, stored object, encryption,
// case, kind, media type, special flag, collector, time) from the ingest
// record whose SHA-256 the entry commits to. A row that disagrees is
// refused with ErrCatalogDisagrees; Reconcile rewrites such rows at start.
//
// Reading a log entry costs an entry-bundle read (a file, or an S3 GET
// for a shared log) and the catalog query that says where the entry is, so
// what was checked is cached per item: the facts never change, the log
// being append-only.

// ingestFacts is what an item's logged ingest commits to.
type ingestFacts struct {
	// index is the ingest entry's position in the log; sha256 the content
	// digest the entry states.
	index  uint64
	sha256 string
	// rec is what the ingest record states, nil when the record is
	// neither in the catalog nor in the journal (the digest alone is then
	// known).
	rec *recordFacts
}

type recordFacts struct {
	size       int64
	object     storage.Object // Backend, Bucket, Key, VersionID, RetainUntil
	encrypted  bool
	special    bool
	caseID     string
	kind       string
	mediaType  string
	collector  string
	ingestedAt time.Time
}

// contentSize is the size the content must have.
func (f ingestFacts) contentSize(ev catalog.Evidence) int64 {
	if f.rec != nil {
		return f.rec.size
	}
	return ev.Size
}

// disagreements names the fields of ev that differ from the facts.
func (f ingestFacts) disagreements(ev catalog.Evidence) []string {
	var bad []string
	check := func(field string, same bool) {
		if !same {
			bad = append(bad, field)
		}
	}
	check("sha256", ev.SHA256 == f.sha256)
	r := f.rec
	if r == nil {
		return bad
	}
	o := ev.Object
	check("size", ev.Size == r.size)
	check("object", o.Backend == r.object.Backend && o.Bucket == r.object.Bucket && o.Key == r.object.Key && o.VersionID == r.object.VersionID)
	// The catalog keeps retention to the second.
	check("retain_until", o.RetainUntil.Unix() == r.object.RetainUntil.Unix())
	check("encrypted", ev.Encrypted == r.encrypted)
	check("special", ev.Special == r.special)
	check("case_id", ev.CaseID == r.caseID)
	check("kind", ev.Kind == r.kind)
	check("media_type", ev.MediaType == r.mediaType)
	check("collector", ev.Collector == r.collector)
	check("ingested_at", ev.IngestedAt.Equal(r.ingestedAt))
	return bad
}

// apply returns ev with the facts in place of what its row says. The
// stored object's byte count is not logged: for plain content it is the
// content size; an encrypted object keeps the row's (reads do not use it).
func (f ingestFacts) apply(ev catalog.Evidence) catalog.Evidence {
	ev.SHA256 = f.sha256
	r := f.rec
	if r == nil {
		return ev
	}
	objectSize := ev.Object.Size
	if !r.encrypted {
		objectSize = r.size
	}
	ev.Size, ev.Object, ev.Encrypted, ev.Special = r.size, r.object, r.encrypted, r.special
	ev.Object.Size = objectSize
	ev.CaseID, ev.Kind, ev.MediaType, ev.Collector, ev.IngestedAt = r.caseID, r.kind, r.mediaType, r.collector, r.ingestedAt
	return ev
}

// factsFromEntry checks that entry, read at index, is the ingest of id and
// returns the digest it states and the record commitment.
func factsFromEntry(id string, index uint64, entry []byte) (ingestFacts, string, error) {
	fields, err := events.ParseEntry(entry)
	if err != nil {
		return ingestFacts{}, "", wrapCause(ErrCatalogDisagrees, err, "log entry %d, where the catalog places the ingest of %s, does not parse", index, id)
	}
	entryID, _ := fields["evidence_id"].(string)
	seq, _ := fields["seq"].(int64)
	typ, _ := fields["type"].(string)
	sha, _ := fields["sha256"].(string)
	commitment, _ := fields["record_sha256"].(string)
	if entryID != id || seq != 0 || typ != string(events.Ingest) {
		return ingestFacts{}, "", fmt.Errorf("%w: log entry %d, where the catalog places the ingest of %s, is not that item's ingest", ErrCatalogDisagrees, index, id)
	}
	if CheckSHA256(sha) != nil || CheckSHA256(commitment) != nil {
		return ingestFacts{}, "", fmt.Errorf("%w: the ingest entry %d of %s lacks a content digest or record commitment", ErrCatalogDisagrees, index, id)
	}
	return ingestFacts{index: index, sha256: sha}, commitment, nil
}

// withRecord adds what record states if it is the one the entry commits
// to; it reports whether it was.
func (f *ingestFacts) withRecord(id string, record []byte, commitment string) bool {
	if len(record) == 0 || sha256Hex(record) != commitment {
		return false
	}
	rec, err := events.ParseRecord(record)
	if err != nil || rec.EvidenceID != id || rec.Sequence != 0 || rec.Type != events.Ingest || rec.ContentSHA256 != f.sha256 {
		// Committed to by the log yet not an ingest record of this
		// service: keep to the entry's digest.
		return true
	}
	d := rec.Details
	st, _ := d["storage"].(canonicaljson.Object)
	r := &recordFacts{collector: rec.Performer, ingestedAt: rec.RecordedAt}
	var ok [11]bool
	r.size, ok[0] = d["size"].(int64)
	r.caseID, ok[1] = d["case_id"].(string)
	r.kind, ok[2] = d["kind"].(string)
	r.mediaType, ok[3] = d["media_type"].(string)
	r.special, ok[4] = d["special"].(bool)
	r.encrypted, ok[5] = st["encrypted"].(bool)
	r.object.Backend, ok[6] = st["backend"].(string)
	r.object.Bucket, ok[7] = st["bucket"].(string)
	r.object.Key, ok[8] = st["key"].(string)
	r.object.VersionID, ok[9] = st["version_id"].(string)
	retain, _ := st["retain_until"].(string)
	var err2 error
	r.object.RetainUntil, err2 = time.Parse(time.RFC3339Nano, retain)
	ok[10] = err2 == nil
	for _, o := range ok {
		if !o {
			return true
		}
	}
	f.rec = r
	return true
}

// factsOf returns what item id's logged ingest commits to: cached, or read
// from the log (the catalog's ingest event says where) with the record
// from the catalog or, if that one is not the committed record, the
// journal. Errors that mean the catalog is wrong wrap ErrCatalogDisagrees.
func (s *Service) factsOf(ctx context.Context, id string) (ingestFacts, error) {
	if f, ok := s.ingests.get(id); ok {
		return f, nil
	}
	evs, err := s.catalog.IngestEvents(ctx, []string{id})
	if err != nil {
		return ingestFacts{}, err
	}
	if len(evs) == 0 {
		return ingestFacts{}, fmt.Errorf("%w: the catalog holds no ingest event of %s", ErrCatalogDisagrees, id)
	}
	ev := evs[0]
	size, err := s.logSizeCovering(ctx, ev.LogIndex)
	if err != nil {
		return ingestFacts{}, err
	}
	entry, err := s.log.Entry(ctx, ev.LogIndex, size)
	if err != nil {
		return ingestFacts{}, wrapCause(ErrUnavailable, err, "the custody log cannot be read; retry later")
	}
	f, commitment, err := factsFromEntry(id, ev.LogIndex, entry)
	if err != nil {
		return ingestFacts{}, err
	}
	if !f.withRecord(id, ev.Record, commitment) {
		found, err := s.ledger.Records(ctx, []string{commitment})
		if err != nil {
			return ingestFacts{}, err
		}
		f.withRecord(id, found[commitment], commitment)
	}
	s.ingests.put(id, f)
	return f, nil
}

// logSizeCovering returns an integrated log size above index, waiting for
// the log to integrate what it has sequenced if need be. An index past
// the integrated log is one the catalog made up.
func (s *Service) logSizeCovering(ctx context.Context, index uint64) (uint64, error) {
	if n := s.logSize.Load(); index < n {
		return n, nil
	}
	n, err := s.log.Settled(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, wrapCause(ErrUnavailable, err, "the custody log cannot be read; retry later")
	}
	s.noteLogSize(n)
	if index >= n {
		return 0, fmt.Errorf("%w: the catalog places an ingest at log index %d, past the log's %d entries", ErrCatalogDisagrees, index, n)
	}
	return n, nil
}

func (s *Service) noteLogSize(n uint64) {
	for {
		old := s.logSize.Load()
		if n <= old || s.logSize.CompareAndSwap(old, n) {
			return
		}
	}
}

// rememberIngest caches the facts of an ingest this process just logged:
// the record and entry it built, so its first reads need no log read.
func (s *Service) rememberIngest(id string, index uint64, entry, record []byte) {
	f, commitment, err := factsFromEntry(id, index, entry)
	if err != nil {
		s.logger.Warn("an ingest entry of this service does not parse", "evidence_id", id, "err", err)
		return
	}
	f.withRecord(id, record, commitment)
	s.ingests.put(id, f)
}

// checkRow checks an item's catalog row against its logged ingest and
// returns the facts. A row that disagrees is refused with
// ErrCatalogDisagrees, logged with the item's id and counted under op.
func (s *Service) checkRow(ctx context.Context, ev catalog.Evidence, op string) (ingestFacts, error) {
	f, err := s.factsOf(ctx, ev.ID)
	if err == nil {
		if bad := f.disagreements(ev); len(bad) > 0 {
			err = fmt.Errorf("%w: the catalog's %s of %s differ from its logged ingest record; the operator must repair the catalog (custodyd rewrites it from the log at start)",
				ErrCatalogDisagrees, strings.Join(bad, ", "), ev.ID)
		}
	}
	if errors.Is(err, ErrCatalogDisagrees) {
		s.logger.ErrorContext(ctx, "catalog row disagrees with the custody log; refused", "evidence_id", ev.ID, "op", op, "err", err)
		s.countDisagreement(op)
	}
	return f, err
}

func (s *Service) countDisagreement(op string) {
	if s.disagreed != nil {
		s.disagreed(op)
	}
}

// dedupObject returns the stored object an upload of content sha can
// share: that of an unencrypted item whose row agrees with its logged
// ingest. A row that disagrees is not trusted (its object may hold other
// bytes): the upload is then stored itself.
func (s *Service) dedupObject(ctx context.Context, sha string) (storage.Object, bool, error) {
	ev, found, err := s.catalog.EvidenceBySHA256(ctx, sha)
	if err != nil || !found {
		return storage.Object{}, false, err
	}
	if _, err := s.checkRow(ctx, ev, "ingest"); err != nil {
		if errors.Is(err, ErrCatalogDisagrees) {
			return storage.Object{}, false, nil
		}
		return storage.Object{}, false, err
	}
	return ev.Object, true, nil
}

// factsCacheHalf bounds the cache: at most twice this many items (about
// half a KiB each).
const factsCacheHalf = 16384

// factsCache keeps checked ingest facts per item in two generations: when
// the newer fills it becomes the older and the older is dropped, so the
// items read lately stay. Nothing is ever invalidated: the log does not
// change what it committed to.
// The zero value is ready; half 0 means factsCacheHalf.
type factsCache struct {
	mu       sync.Mutex
	half     int
	cur, old map[string]ingestFacts
}

func (c *factsCache) get(id string) (ingestFacts, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.cur[id]; ok {
		return f, true
	}
	f, ok := c.old[id]
	if ok {
		c.putLocked(id, f)
	}
	return f, ok
}

func (c *factsCache) put(id string, f ingestFacts) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(id, f)
}

func (c *factsCache) putLocked(id string, f ingestFacts) {
	half := c.half
	if half == 0 {
		half = factsCacheHalf
	}
	if c.cur == nil || len(c.cur) >= half {
		c.old, c.cur = c.cur, make(map[string]ingestFacts)
	}
	c.cur[id] = f
}

// replayedRow is the row a replayed ingest catalogs: the journaled row is
// not committed to, the record is, so where they disagree the row takes
// what the record states.
func (s *Service) replayedRow(ctx context.Context, rec events.Record, record []byte, index uint64, entry []byte, ev catalog.Evidence) catalog.Evidence {
	if f, commitment, err := factsFromEntry(rec.EvidenceID, index, entry); err == nil {
		f.withRecord(rec.EvidenceID, record, commitment)
		bad := f.disagreements(ev)
		if ev.ID != rec.EvidenceID {
			bad = append(bad, "id")
		}
		if len(bad) > 0 {
			s.logger.WarnContext(ctx, "journaled catalog row disagrees with its logged ingest record: cataloged as the log states",
				"evidence_id", rec.EvidenceID, "fields", strings.Join(bad, ","))
			s.countDisagreement("replay")
			ev = f.apply(ev)
			ev.ID = rec.EvidenceID
		}
	}
	return ev
}
