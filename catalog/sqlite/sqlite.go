// Package sqlite is the SQLite catalog (modernc.org/sqlite, no cgo), the
// embedded default at <data-dir>/catalog.db.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite"

	"github.com/custody-dev/custody/catalog"
)

// Catalog is a catalog.Catalog in one SQLite file. It is a projection the
// service rebuilds from the log and the journal, so it runs in WAL mode
// with synchronous=NORMAL: a crash may lose its last transactions, never
// corrupt it, and replay restores them.
//
// Writes are queued to one writer, which commits what is queued together
// (group commit). A write may be queued without waiting for its commit
// (AddEventAsync): every read waits for the writes queued before it
// (read-your-writes), except that an item's row is answered from memory
// (below) without waiting.
//
// Items' rows are kept in memory once read (at most maxCached of them),
// as they will be once the queued writes commit: the writer of an item's
// next event reads its row without waiting for the previous event's
// commit. Only this process writes the file, so the memory cannot go
// stale.
type Catalog struct {
	db    *sql.DB
	stmts sync.Map // query text -> *sql.Stmt

	mu        sync.Mutex
	cond      *sync.Cond // signalled after each commit
	queue     []writeRequest
	queued    uint64         // writes queued so far
	committed uint64         // writes done (committed or failed) so far
	pendingID map[string]int // item id -> its queued writes not done yet
	items     map[string]*catalog.Evidence
	closed    bool
	wake      chan struct{}
	done      chan struct{}
}

// maxCached bounds the item rows kept in memory.
const maxCached = 100_000

// writeRequest is one write waiting for the writer.
type writeRequest struct {
	fn   func(*sql.Tx) error
	id   string // the item written, if any
	done func(error)
}

// write runs fn in a transaction shared with the writes queued beside it
// (group commit): SQLite has one writer anyway, and one transaction for
// many small writes costs about what one costs. Each write is isolated in
// a savepoint, so one failing leaves the others in.
func (c *Catalog) write(ctx context.Context, id string, fn func(*sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ch := make(chan error, 1)
	c.mu.Lock()
	// The row in memory is read again once this write is done.
	delete(c.items, id)
	err := c.enqueueLocked(writeRequest{fn: fn, id: id, done: func(err error) { ch <- err }})
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return <-ch
}

var errClosed = errors.New("catalog closed")

// enqueueLocked queues r; the caller holds c.mu.
func (c *Catalog) enqueueLocked(r writeRequest) error {
	if c.closed {
		return errClosed
	}
	c.queue = append(c.queue, r)
	c.queued++
	if r.id != "" {
		c.pendingID[r.id]++
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return nil
}

// barrier waits until every write queued before the call is done: a read
// after it sees them.
func (c *Catalog) barrier() {
	c.mu.Lock()
	for target := c.queued; c.committed < target; {
		c.cond.Wait()
	}
	c.mu.Unlock()
}

func (c *Catalog) writer() {
	defer close(c.done)
	for range c.wake {
		for {
			c.mu.Lock()
			n := min(len(c.queue), 256)
			batch := c.queue[:n:n]
			c.queue = c.queue[n:]
			closed := c.closed
			c.mu.Unlock()
			if n == 0 {
				if closed {
					return
				}
				break
			}
			c.commit(batch)
		}
	}
}

func (c *Catalog) commit(batch []writeRequest) {
	ctx := context.Background()
	results := make([]error, len(batch))
	tx, err := c.db.BeginTx(ctx, nil)
	if err == nil {
		for i, r := range batch {
			if _, err := tx.ExecContext(ctx, "SAVEPOINT w"); err != nil {
				results[i] = err
				continue
			}
			if results[i] = r.fn(tx); results[i] != nil {
				tx.ExecContext(ctx, "ROLLBACK TO w")
			}
			tx.ExecContext(ctx, "RELEASE w")
		}
		err = tx.Commit()
	}
	if err != nil {
		for i := range results {
			results[i] = err
		}
	}
	c.mu.Lock()
	for i, r := range batch {
		if r.id == "" {
			continue
		}
		if results[i] != nil {
			// The row in memory took this write: it no longer says
			// what the file does.
			delete(c.items, r.id)
		}
		if c.pendingID[r.id]--; c.pendingID[r.id] <= 0 {
			delete(c.pendingID, r.id)
		}
	}
	c.committed += uint64(len(batch))
	c.cond.Broadcast()
	c.mu.Unlock()
	for i, r := range batch {
		r.done(results[i])
	}
}

// stmt returns the prepared statement for q, preparing it once: SQL
// parsing is otherwise a large part of every call.
func (c *Catalog) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := c.stmts.Load(q); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := c.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if prev, loaded := c.stmts.LoadOrStore(q, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

func (c *Catalog) exec(ctx context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	st, err := c.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
}

// rowResult defers a prepare error to Scan, like *sql.Row does.
type rowResult struct {
	row *sql.Row
	err error
}

func (r rowResult) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	return r.row.Scan(dest...)
}

// queryRow and query read once the writes queued before them are done.
func (c *Catalog) queryRow(ctx context.Context, q string, args ...any) rowResult {
	c.barrier()
	return c.queryRowNow(ctx, q, args...)
}

// queryRowNow reads without waiting for queued writes.
func (c *Catalog) queryRowNow(ctx context.Context, q string, args ...any) rowResult {
	st, err := c.stmt(ctx, q)
	if err != nil {
		return rowResult{err: err}
	}
	return rowResult{row: st.QueryRowContext(ctx, args...)}
}

func (c *Catalog) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	c.barrier()
	st, err := c.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

var _ catalog.Catalog = (*Catalog)(nil)

// schema is applied with migrations in order; user_version records how far.
var migrations = []string{
	`CREATE TABLE evidence (
		id TEXT PRIMARY KEY,
		case_id TEXT NOT NULL,
		kind TEXT NOT NULL,
		sha256 TEXT NOT NULL,
		size INTEGER NOT NULL,
		media_type TEXT NOT NULL,
		declared_media_type TEXT NOT NULL,
		collector TEXT NOT NULL,
		ingested_at INTEGER NOT NULL,
		backend TEXT NOT NULL,
		bucket TEXT NOT NULL,
		object_key TEXT NOT NULL,
		version_id TEXT NOT NULL,
		object_size INTEGER NOT NULL,
		retain_until INTEGER NOT NULL,
		encrypted INTEGER NOT NULL,
		special INTEGER NOT NULL,
		metadata BLOB NOT NULL,
		custodian TEXT NOT NULL,
		derived_from TEXT NOT NULL,
		last_seq INTEGER NOT NULL,
		last_log_index INTEGER NOT NULL,
		last_leaf_hash BLOB NOT NULL,
		rowid_order INTEGER NOT NULL
	);
	CREATE INDEX evidence_by_case ON evidence(case_id, rowid_order);
	CREATE INDEX evidence_by_sha256 ON evidence(sha256) WHERE encrypted = 0;
	CREATE TABLE events (
		evidence_id TEXT NOT NULL REFERENCES evidence(id),
		seq INTEGER NOT NULL,
		type TEXT NOT NULL,
		recorded_at INTEGER NOT NULL,
		log_index INTEGER NOT NULL UNIQUE,
		leaf_hash BLOB NOT NULL,
		record BLOB NOT NULL,
		receipt_payload BLOB NOT NULL,
		receipt_signature BLOB NOT NULL,
		receipt_key_id TEXT NOT NULL,
		PRIMARY KEY (evidence_id, seq)
	);`,
	`ALTER TABLE evidence ADD COLUMN pending_to TEXT NOT NULL DEFAULT '';
	ALTER TABLE evidence ADD COLUMN pending_reason TEXT NOT NULL DEFAULT '';
	ALTER TABLE evidence ADD COLUMN pending_seq INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE evidence ADD COLUMN pending_expires INTEGER NOT NULL DEFAULT 0;`,
	`CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);`,
}

// Open opens (creating and migrating) the catalog at path.
func Open(ctx context.Context, path string) (*Catalog, error) {
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	// Readers run beside the writer: keep their connections open rather
	// than opening one per read under load (database/sql keeps 2).
	db.SetMaxIdleConns(8)
	c := &Catalog{db: db, pendingID: map[string]int{}, items: map[string]*catalog.Evidence{}, wake: make(chan struct{}, 1), done: make(chan struct{})}
	c.cond = sync.NewCond(&c.mu)
	if err := c.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("catalog %s: %w", path, err)
	}
	go c.writer()
	return c, nil
}

func (c *Catalog) migrate(ctx context.Context) error {
	var version int
	if err := c.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return err
	}
	for i := version; i < len(migrations); i++ {
		tx, err := c.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", i+1)); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

// Close implements catalog.Catalog.
func (c *Catalog) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.wake)
	c.mu.Unlock()
	<-c.done
	c.stmts.Range(func(_, st any) bool { st.(*sql.Stmt).Close(); return true })
	return c.db.Close()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// AddEvidence implements catalog.Catalog.
func (c *Catalog) AddEvidence(ctx context.Context, ev catalog.Evidence, first catalog.Event) error {
	return c.write(ctx, ev.ID, func(tx *sql.Tx) error { return c.addEvidence(ctx, tx, ev, first) })
}

func (c *Catalog) addEvidence(ctx context.Context, tx *sql.Tx, ev catalog.Evidence, first catalog.Event) error {
	o := ev.Object
	to, reason, seq, expires := pendingColumns(ev.Pending)
	_, err := c.exec(ctx, tx, `INSERT INTO evidence (`+evidenceColumns+`, rowid_order) VALUES
		(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?, ?)`,
		ev.ID, ev.CaseID, ev.Kind, ev.SHA256, ev.Size, ev.MediaType, ev.DeclaredMediaType, ev.Collector,
		ev.IngestedAt.UnixNano(), o.Backend, o.Bucket, o.Key, o.VersionID, o.Size, o.RetainUntil.Unix(),
		b2i(ev.Encrypted), b2i(ev.Special), ev.Metadata, ev.Custodian, ev.DerivedFrom,
		ev.LastSeq, ev.LastLogIndex, ev.LastLeafHash[:], to, reason, seq, expires, first.LogIndex)
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE constraint failed: evidence.id") {
			return fmt.Errorf("evidence %s: %w", ev.ID, catalog.ErrExists)
		}
		return err
	}
	return c.insertEvent(ctx, tx, first)
}

// pendingColumns flattens a pending release into its four columns.
func pendingColumns(p *catalog.PendingRelease) (string, string, uint64, int64) {
	if p == nil {
		return "", "", 0, 0
	}
	return p.To, p.Reason, p.Seq, p.ExpiresAt.UnixNano()
}

func (c *Catalog) insertEvent(ctx context.Context, tx *sql.Tx, e catalog.Event) error {
	_, err := c.exec(ctx, tx, `INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?)`,
		e.EvidenceID, e.Seq, e.Type, e.RecordedAt.UnixNano(), e.LogIndex, e.LeafHash[:], e.Record,
		e.ReceiptPayload, e.ReceiptSignature, e.ReceiptKeyID)
	if err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed") {
		return fmt.Errorf("event %s/%d: %w", e.EvidenceID, e.Seq, catalog.ErrExists)
	}
	return err
}

// AddEvent implements catalog.Catalog.
func (c *Catalog) AddEvent(ctx context.Context, e catalog.Event, prevSeq uint64, state catalog.ItemState) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ch := make(chan error, 1)
	if err := c.AddEventAsync(e, prevSeq, state, func(err error) { ch <- err }); err != nil {
		return err
	}
	return <-ch
}

// AddEventAsync is AddEvent without waiting for the commit: the event is
// queued, and every later read sees it (the item's row in memory at
// once). A conflict the row in memory shows is returned at once; done
// is called (by the writer, so it must be quick) with the commit's
// outcome. A write that fails leaves the catalog as it was, as AddEvent
// does.
func (c *Catalog) AddEventAsync(e catalog.Event, prevSeq uint64, state catalog.ItemState, done func(error)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if item := c.items[e.EvidenceID]; item != nil {
		if item.LastSeq != prevSeq {
			return fmt.Errorf("evidence %s is no longer at event %d: %w", e.EvidenceID, prevSeq, catalog.ErrConflict)
		}
		// A new row, not an update in place: readers hold copies of the
		// old one.
		next := *item
		next.LastSeq, next.LastLogIndex, next.LastLeafHash = e.Seq, e.LogIndex, e.LeafHash
		next.Custodian, next.Pending = state.Custodian, clonePending(state.Pending)
		c.items[e.EvidenceID] = &next
	}
	ctx := context.Background()
	return c.enqueueLocked(writeRequest{id: e.EvidenceID, done: done, fn: func(tx *sql.Tx) error { return c.addEvent(ctx, tx, e, prevSeq, state) }})
}

func clonePending(p *catalog.PendingRelease) *catalog.PendingRelease {
	if p == nil {
		return nil
	}
	q := *p
	return &q
}

func (c *Catalog) addEvent(ctx context.Context, tx *sql.Tx, e catalog.Event, prevSeq uint64, state catalog.ItemState) error {
	to, reason, seq, expires := pendingColumns(state.Pending)
	res, err := c.exec(ctx, tx, `UPDATE evidence SET last_seq = ?, last_log_index = ?, last_leaf_hash = ?, custodian = ?,
		pending_to = ?, pending_reason = ?, pending_seq = ?, pending_expires = ?
		WHERE id = ? AND last_seq = ?`, e.Seq, e.LogIndex, e.LeafHash[:], state.Custodian, to, reason, seq, expires, e.EvidenceID, prevSeq)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return fmt.Errorf("evidence %s is no longer at event %d: %w", e.EvidenceID, prevSeq, catalog.ErrConflict)
	}
	return c.insertEvent(ctx, tx, e)
}

const evidenceColumns = `id, case_id, kind, sha256, size, media_type, declared_media_type, collector, ingested_at,
	backend, bucket, object_key, version_id, object_size, retain_until, encrypted, special, metadata, custodian,
	derived_from, last_seq, last_log_index, last_leaf_hash, pending_to, pending_reason, pending_seq, pending_expires`

type scanner interface{ Scan(...any) error }

func scanEvidence(s scanner) (catalog.Evidence, error) {
	var ev catalog.Evidence
	var ingested, retain int64
	var encrypted, special int
	var leaf []byte
	var p catalog.PendingRelease
	var pendingExpires int64
	o := &ev.Object
	err := s.Scan(&ev.ID, &ev.CaseID, &ev.Kind, &ev.SHA256, &ev.Size, &ev.MediaType, &ev.DeclaredMediaType,
		&ev.Collector, &ingested, &o.Backend, &o.Bucket, &o.Key, &o.VersionID, &o.Size, &retain,
		&encrypted, &special, &ev.Metadata, &ev.Custodian, &ev.DerivedFrom, &ev.LastSeq, &ev.LastLogIndex, &leaf,
		&p.To, &p.Reason, &p.Seq, &pendingExpires)
	if err != nil {
		return ev, err
	}
	if p.To != "" {
		p.ExpiresAt = time.Unix(0, pendingExpires).UTC()
		ev.Pending = &p
	}
	ev.IngestedAt = time.Unix(0, ingested).UTC()
	o.RetainUntil = time.Unix(retain, 0).UTC()
	ev.Encrypted, ev.Special = encrypted == 1, special == 1
	copy(ev.LastLeafHash[:], leaf)
	return ev, nil
}

// Evidence implements catalog.Catalog: from the file, once the writes
// queued before the call are done.
func (c *Catalog) Evidence(ctx context.Context, id string) (catalog.Evidence, error) {
	ev, err := scanEvidence(c.queryRow(ctx, `SELECT `+evidenceColumns+` FROM evidence WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return ev, fmt.Errorf("evidence %s: %w", id, catalog.ErrNotFound)
	}
	return ev, err
}

// EvidenceForAppend is Evidence for the writer of an item's next event,
// who holds the item's lock: the row as it will be once the item's queued
// writes are done, from memory once read. (Other readers read the file:
// a row edited there behind the service's back must show.) Holding c.mu
// while reading the file keeps any write to the item from being queued
// meanwhile, so the row kept is the current one.
func (c *Catalog) EvidenceForAppend(ctx context.Context, id string) (catalog.Evidence, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if item := c.items[id]; item != nil {
			ev := *item
			ev.Pending = clonePending(item.Pending)
			return ev, nil
		}
		if c.pendingID[id] == 0 || c.closed {
			break
		}
		c.cond.Wait()
	}
	ev, err := scanEvidence(c.queryRowNow(ctx, `SELECT `+evidenceColumns+` FROM evidence WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return ev, fmt.Errorf("evidence %s: %w", id, catalog.ErrNotFound)
	}
	if err != nil {
		return ev, err
	}
	if len(c.items) >= maxCached {
		// Forget an arbitrary half: a forgotten row is read again.
		n := 0
		for k := range c.items {
			delete(c.items, k)
			if n++; n >= maxCached/2 {
				break
			}
		}
	}
	kept := ev
	kept.Pending = clonePending(ev.Pending)
	c.items[id] = &kept
	return ev, nil
}

// ListByCase implements catalog.Catalog.
func (c *Catalog) ListByCase(ctx context.Context, caseID, after string, limit int) ([]catalog.Evidence, error) {
	return c.listEvidence(ctx, `SELECT `+evidenceColumns+` FROM evidence
		WHERE case_id = ? AND rowid_order > COALESCE((SELECT rowid_order FROM evidence WHERE id = ?), -1)
		ORDER BY rowid_order LIMIT ?`, caseID, after, limit)
}

// ListAll implements catalog.Catalog.
func (c *Catalog) ListAll(ctx context.Context, after string, limit int) ([]catalog.Evidence, error) {
	return c.listEvidence(ctx, `SELECT `+evidenceColumns+` FROM evidence
		WHERE rowid_order > COALESCE((SELECT rowid_order FROM evidence WHERE id = ?), -1)
		ORDER BY rowid_order LIMIT ?`, after, limit)
}

func (c *Catalog) listEvidence(ctx context.Context, q string, args ...any) ([]catalog.Evidence, error) {
	rows, err := c.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []catalog.Evidence
	for rows.Next() {
		ev, err := scanEvidence(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, rows.Err()
}

// EvidenceBySHA256 implements catalog.Catalog.
func (c *Catalog) EvidenceBySHA256(ctx context.Context, sha string) (catalog.Evidence, bool, error) {
	ev, err := scanEvidence(c.queryRow(ctx, `SELECT `+evidenceColumns+` FROM evidence
		WHERE sha256 = ? AND encrypted = 0 ORDER BY rowid_order LIMIT 1`, sha))
	if errors.Is(err, sql.ErrNoRows) {
		return catalog.Evidence{}, false, nil
	}
	if err != nil {
		return catalog.Evidence{}, false, err
	}
	return ev, true, nil
}

// RepairEvidence implements catalog.Catalog.
func (c *Catalog) RepairEvidence(ctx context.Context, ev catalog.Evidence) error {
	return c.write(ctx, ev.ID, func(tx *sql.Tx) error {
		o := ev.Object
		res, err := c.exec(ctx, tx, `UPDATE evidence SET case_id = ?, kind = ?, sha256 = ?, size = ?, media_type = ?, collector = ?,
			ingested_at = ?, backend = ?, bucket = ?, object_key = ?, version_id = ?, object_size = ?, retain_until = ?,
			encrypted = ?, special = ? WHERE id = ?`,
			ev.CaseID, ev.Kind, ev.SHA256, ev.Size, ev.MediaType, ev.Collector, ev.IngestedAt.UnixNano(),
			o.Backend, o.Bucket, o.Key, o.VersionID, o.Size, o.RetainUntil.Unix(), b2i(ev.Encrypted), b2i(ev.Special), ev.ID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return fmt.Errorf("evidence %s: %w", ev.ID, catalog.ErrNotFound)
		}
		return nil
	})
}

// HasEventAt implements catalog.Catalog.
func (c *Catalog) HasEventAt(ctx context.Context, logIndex uint64) (bool, error) {
	var n int
	err := c.queryRow(ctx, `SELECT COUNT(*) FROM events WHERE log_index = ?`, logIndex).Scan(&n)
	return n > 0, err
}

// MissingLogIndexes implements catalog.Catalog.
func (c *Catalog) MissingLogIndexes(ctx context.Context, from, to uint64) ([]uint64, error) {
	c.barrier()
	rows, err := c.db.QueryContext(ctx, `SELECT log_index FROM events WHERE log_index >= ? AND log_index < ? ORDER BY log_index`, from, to)
	if err != nil {
		return nil, err
	}
	return catalog.MissingFromRows(rows, from, to)
}

// LogApplied implements catalog.Catalog.
func (c *Catalog) LogApplied(ctx context.Context) (uint64, error) {
	var n uint64
	c.barrier()
	err := c.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'log_applied'`).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return n, err
}

// SetLogApplied implements catalog.Catalog.
func (c *Catalog) SetLogApplied(ctx context.Context, n uint64) error {
	c.barrier()
	_, err := c.db.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('log_applied', ?)
		ON CONFLICT (key) DO UPDATE SET value = MAX(meta.value, excluded.value)`, n)
	return err
}

const eventColumns = `evidence_id, seq, type, recorded_at, log_index, leaf_hash, record,
	receipt_payload, receipt_signature, receipt_key_id`

// Events implements catalog.Catalog.
func (c *Catalog) Events(ctx context.Context, evidenceID string) ([]catalog.Event, error) {
	rows, err := c.query(ctx, `SELECT `+eventColumns+` FROM events WHERE evidence_id = ? ORDER BY seq`, evidenceID)
	if err != nil {
		return nil, err
	}
	return scanEvents(rows)
}

// EventsFrom implements catalog.Catalog.
func (c *Catalog) EventsFrom(ctx context.Context, evidenceID string, from uint64, limit int) ([]catalog.Event, error) {
	rows, err := c.query(ctx, `SELECT `+eventColumns+` FROM events WHERE evidence_id = ? AND seq >= ? ORDER BY seq LIMIT ?`, evidenceID, int64(from), limit)
	if err != nil {
		return nil, err
	}
	return scanEvents(rows)
}

// IngestEvents implements catalog.Catalog. The statement is not kept
// prepared: its text varies with len(ids).
func (c *Catalog) IngestEvents(ctx context.Context, ids []string) ([]catalog.Event, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	c.barrier()
	rows, err := c.db.QueryContext(ctx, `SELECT `+eventColumns+` FROM events
		WHERE seq = 0 AND evidence_id IN (`+catalog.Placeholders(len(ids), 1, false)+`)`, args...)
	if err != nil {
		return nil, err
	}
	return scanEvents(rows)
}

func scanEvents(rows *sql.Rows) ([]catalog.Event, error) {
	defer rows.Close()
	var out []catalog.Event
	for rows.Next() {
		var e catalog.Event
		var at int64
		var leaf []byte
		if err := rows.Scan(&e.EvidenceID, &e.Seq, &e.Type, &at, &e.LogIndex, &leaf, &e.Record,
			&e.ReceiptPayload, &e.ReceiptSignature, &e.ReceiptKeyID); err != nil {
			return nil, err
		}
		e.RecordedAt = time.Unix(0, at).UTC()
		copy(e.LeafHash[:], leaf)
		out = append(out, e)
	}
	return out, rows.Err()
}
