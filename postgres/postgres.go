// Package postgres holds everything custodyd replicas share in one
// PostgreSQL database (pgx): the catalog (Catalog), the record journal
// (Catalog.Journal), the item locks (Locker, session-level advisory locks)
// and the resumable upload sessions (Catalog.Sessions). It is the replica
// state of the replicated assembly (internal/daemon). Per-item ordering
// holds across replicas through conditional updates in transactions and
// the advisory locks, not in-process locks.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/custody-dev/custody/catalog"
)

// Catalog is a catalog.Catalog in a PostgreSQL database.
type Catalog struct {
	db      *sql.DB
	journal *Journal
}

var _ catalog.Catalog = (*Catalog)(nil)

// migrations are applied in order; schema_migrations records how far.
var migrations = []string{
	`CREATE TABLE evidence (
		id TEXT PRIMARY KEY,
		case_id TEXT NOT NULL,
		kind TEXT NOT NULL,
		sha256 TEXT NOT NULL,
		size BIGINT NOT NULL,
		media_type TEXT NOT NULL,
		declared_media_type TEXT NOT NULL,
		collector TEXT NOT NULL,
		ingested_at BIGINT NOT NULL,
		backend TEXT NOT NULL,
		bucket TEXT NOT NULL,
		object_key TEXT NOT NULL,
		version_id TEXT NOT NULL,
		object_size BIGINT NOT NULL,
		retain_until BIGINT NOT NULL,
		encrypted BOOLEAN NOT NULL,
		special BOOLEAN NOT NULL,
		metadata BYTEA NOT NULL,
		custodian TEXT NOT NULL,
		derived_from TEXT NOT NULL,
		last_seq BIGINT NOT NULL,
		last_log_index BIGINT NOT NULL,
		last_leaf_hash BYTEA NOT NULL,
		pending_to TEXT NOT NULL DEFAULT '',
		pending_reason TEXT NOT NULL DEFAULT '',
		pending_seq BIGINT NOT NULL DEFAULT 0,
		pending_expires BIGINT NOT NULL DEFAULT 0,
		list_order BIGINT NOT NULL
	);
	CREATE INDEX evidence_by_case ON evidence (case_id, list_order);
	CREATE INDEX evidence_by_order ON evidence (list_order);
	CREATE INDEX evidence_by_sha256 ON evidence (sha256) WHERE NOT encrypted;
	CREATE TABLE events (
		evidence_id TEXT NOT NULL REFERENCES evidence (id),
		seq BIGINT NOT NULL,
		type TEXT NOT NULL,
		recorded_at BIGINT NOT NULL,
		log_index BIGINT NOT NULL UNIQUE,
		leaf_hash BYTEA NOT NULL,
		record BYTEA NOT NULL,
		receipt_payload BYTEA NOT NULL,
		receipt_signature BYTEA NOT NULL,
		receipt_key_id TEXT NOT NULL,
		PRIMARY KEY (evidence_id, seq)
	);
	CREATE TABLE meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL);`,
	// 2: the record journal shared by replicas (see Journal).
	`CREATE TABLE journal (
		key TEXT PRIMARY KEY,
		evidence_id TEXT NOT NULL,
		seq BIGINT NOT NULL,
		abandoned BOOLEAN NOT NULL DEFAULT FALSE,
		data BYTEA NOT NULL
	);
	CREATE INDEX journal_by_item ON journal (evidence_id, seq) WHERE seq > 0 AND NOT abandoned;`,
	// 3: resumable upload sessions shared by replicas (see Sessions).
	`CREATE TABLE upload_sessions (
		id TEXT PRIMARY KEY,
		state BYTEA NOT NULL,
		expires_at BIGINT NOT NULL
	);
	CREATE INDEX upload_sessions_by_expiry ON upload_sessions (expires_at);`,
}

// maxConns bounds the catalog's (and journal's) connections per replica.
const maxConns = 32

// Open connects to dsn and migrates the schema.
func Open(ctx context.Context, dsn string) (*Catalog, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, err
	}
	// Keep as many connections idle as may be open: database/sql keeps
	// two by default, so under load every call beyond those opened a new
	// connection, and PostgreSQL forked a backend for it (measured: 7 ms
	// of PostgreSQL CPU per custody event, most of the replica's cost).
	// Idle ones close after a while.
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	c := &Catalog{db: db}
	if err := c.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("catalog: %w", err)
	}
	c.journal = newJournal(db)
	return c, nil
}

func (c *Catalog) migrate(ctx context.Context) error {
	if _, err := c.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INT NOT NULL)`); err != nil {
		return err
	}
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// One migrator at a time, whichever replica starts first.
	if _, err := tx.ExecContext(ctx, `LOCK TABLE schema_migrations IN EXCLUSIVE MODE`); err != nil {
		return err
	}
	var version int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&version); err != nil {
		return err
	}
	for i := version; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, i+1); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Close implements catalog.Catalog; the journal's queued records are
// written first.
func (c *Catalog) Close() error {
	c.journal.close()
	return c.db.Close()
}

func uniqueViolation(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "23505"
}

func pendingColumns(p *catalog.PendingRelease) (string, string, int64, int64) {
	if p == nil {
		return "", "", 0, 0
	}
	return p.To, p.Reason, int64(p.Seq), p.ExpiresAt.UnixNano()
}

// AddEvidence implements catalog.Catalog.
func (c *Catalog) AddEvidence(ctx context.Context, ev catalog.Evidence, first catalog.Event) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	o := ev.Object
	to, reason, seq, expires := pendingColumns(ev.Pending)
	_, err = tx.ExecContext(ctx, `INSERT INTO evidence (`+evidenceColumns+`, list_order) VALUES
		($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$26,$27,$28)`,
		ev.ID, ev.CaseID, ev.Kind, ev.SHA256, ev.Size, ev.MediaType, ev.DeclaredMediaType, ev.Collector,
		ev.IngestedAt.UnixNano(), o.Backend, o.Bucket, o.Key, o.VersionID, o.Size, o.RetainUntil.Unix(),
		ev.Encrypted, ev.Special, ev.Metadata, ev.Custodian, ev.DerivedFrom,
		int64(ev.LastSeq), int64(ev.LastLogIndex), ev.LastLeafHash[:], to, reason, seq, expires, int64(first.LogIndex))
	if err != nil {
		if uniqueViolation(err) {
			return fmt.Errorf("evidence %s: %w", ev.ID, catalog.ErrExists)
		}
		return err
	}
	if err := insertEvent(ctx, tx, first); err != nil {
		return err
	}
	return tx.Commit()
}

func insertEvent(ctx context.Context, tx *sql.Tx, e catalog.Event) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO events VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)`,
		e.EvidenceID, int64(e.Seq), e.Type, e.RecordedAt.UnixNano(), int64(e.LogIndex), e.LeafHash[:], e.Record,
		e.ReceiptPayload, e.ReceiptSignature, e.ReceiptKeyID)
	if uniqueViolation(err) {
		return fmt.Errorf("event %s/%d: %w", e.EvidenceID, e.Seq, catalog.ErrExists)
	}
	return err
}

// AddEvent implements catalog.Catalog: the conditional update serialises
// appends to one item across every replica sharing the database. The
// update and the event's insert are one statement (one round trip, atomic
// as a statement is): no row updated inserts nothing, and a duplicate
// event fails the whole statement.
func (c *Catalog) AddEvent(ctx context.Context, e catalog.Event, prevSeq uint64, state catalog.ItemState) error {
	to, reason, seq, expires := pendingColumns(state.Pending)
	res, err := c.db.ExecContext(ctx, `WITH moved AS (
			UPDATE evidence SET last_seq = $2, last_log_index = $5, last_leaf_hash = $6, custodian = $11,
				pending_to = $12, pending_reason = $13, pending_seq = $14, pending_expires = $15
			WHERE id = $1 AND last_seq = $16 RETURNING id)
		INSERT INTO events (`+eventColumns+`)
		SELECT id, $2::bigint, $3::text, $4::bigint, $5::bigint, $6::bytea, $7::bytea, $8::bytea, $9::bytea, $10::text FROM moved`,
		e.EvidenceID, int64(e.Seq), e.Type, e.RecordedAt.UnixNano(), int64(e.LogIndex), e.LeafHash[:], e.Record,
		e.ReceiptPayload, e.ReceiptSignature, e.ReceiptKeyID,
		state.Custodian, to, reason, seq, expires, int64(prevSeq))
	if uniqueViolation(err) {
		return fmt.Errorf("event %s/%d: %w", e.EvidenceID, e.Seq, catalog.ErrExists)
	}
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return fmt.Errorf("evidence %s is no longer at event %d: %w", e.EvidenceID, prevSeq, catalog.ErrConflict)
	}
	return nil
}

const evidenceColumns = `id, case_id, kind, sha256, size, media_type, declared_media_type, collector, ingested_at,
	backend, bucket, object_key, version_id, object_size, retain_until, encrypted, special, metadata, custodian,
	derived_from, last_seq, last_log_index, last_leaf_hash, pending_to, pending_reason, pending_seq, pending_expires`

type scanner interface{ Scan(...any) error }

func scanEvidence(s scanner) (catalog.Evidence, error) {
	var ev catalog.Evidence
	var ingested, retain, lastSeq, lastIndex, pendingSeq, pendingExpires int64
	var leaf []byte
	var p catalog.PendingRelease
	o := &ev.Object
	err := s.Scan(&ev.ID, &ev.CaseID, &ev.Kind, &ev.SHA256, &ev.Size, &ev.MediaType, &ev.DeclaredMediaType,
		&ev.Collector, &ingested, &o.Backend, &o.Bucket, &o.Key, &o.VersionID, &o.Size, &retain,
		&ev.Encrypted, &ev.Special, &ev.Metadata, &ev.Custodian, &ev.DerivedFrom, &lastSeq, &lastIndex, &leaf,
		&p.To, &p.Reason, &pendingSeq, &pendingExpires)
	if err != nil {
		return ev, err
	}
	ev.IngestedAt = time.Unix(0, ingested).UTC()
	o.RetainUntil = time.Unix(retain, 0).UTC()
	ev.LastSeq, ev.LastLogIndex = uint64(lastSeq), uint64(lastIndex)
	copy(ev.LastLeafHash[:], leaf)
	if p.To != "" {
		p.Seq, p.ExpiresAt = uint64(pendingSeq), time.Unix(0, pendingExpires).UTC()
		ev.Pending = &p
	}
	return ev, nil
}

// Evidence implements catalog.Catalog.
func (c *Catalog) Evidence(ctx context.Context, id string) (catalog.Evidence, error) {
	ev, err := scanEvidence(c.db.QueryRowContext(ctx, `SELECT `+evidenceColumns+` FROM evidence WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return ev, fmt.Errorf("evidence %s: %w", id, catalog.ErrNotFound)
	}
	return ev, err
}

// ListByCase implements catalog.Catalog.
func (c *Catalog) ListByCase(ctx context.Context, caseID, after string, limit int) ([]catalog.Evidence, error) {
	return c.list(ctx, `SELECT `+evidenceColumns+` FROM evidence
		WHERE case_id = $1 AND list_order > COALESCE((SELECT list_order FROM evidence WHERE id = $2), -1)
		ORDER BY list_order LIMIT $3`, caseID, after, limit)
}

// ListAll implements catalog.Catalog.
func (c *Catalog) ListAll(ctx context.Context, after string, limit int) ([]catalog.Evidence, error) {
	return c.list(ctx, `SELECT `+evidenceColumns+` FROM evidence
		WHERE list_order > COALESCE((SELECT list_order FROM evidence WHERE id = $1), -1)
		ORDER BY list_order LIMIT $2`, after, limit)
}

func (c *Catalog) list(ctx context.Context, q string, args ...any) ([]catalog.Evidence, error) {
	rows, err := c.db.QueryContext(ctx, q, args...)
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
	ev, err := scanEvidence(c.db.QueryRowContext(ctx, `SELECT `+evidenceColumns+` FROM evidence
		WHERE sha256 = $1 AND NOT encrypted ORDER BY list_order LIMIT 1`, sha))
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
	o := ev.Object
	res, err := c.db.ExecContext(ctx, `UPDATE evidence SET case_id = $1, kind = $2, sha256 = $3, size = $4, media_type = $5, collector = $6,
		ingested_at = $7, backend = $8, bucket = $9, object_key = $10, version_id = $11, object_size = $12, retain_until = $13,
		encrypted = $14, special = $15 WHERE id = $16`,
		ev.CaseID, ev.Kind, ev.SHA256, ev.Size, ev.MediaType, ev.Collector, ev.IngestedAt.UnixNano(),
		o.Backend, o.Bucket, o.Key, o.VersionID, o.Size, o.RetainUntil.Unix(), ev.Encrypted, ev.Special, ev.ID)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return fmt.Errorf("evidence %s: %w", ev.ID, catalog.ErrNotFound)
	}
	return nil
}

// HasEventAt implements catalog.Catalog.
func (c *Catalog) HasEventAt(ctx context.Context, logIndex uint64) (bool, error) {
	var n int
	err := c.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM events WHERE log_index = $1`, int64(logIndex)).Scan(&n)
	return n > 0, err
}

// MissingLogIndexes implements catalog.Catalog.
func (c *Catalog) MissingLogIndexes(ctx context.Context, from, to uint64) ([]uint64, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT log_index FROM events WHERE log_index >= $1 AND log_index < $2 ORDER BY log_index`, int64(from), int64(to))
	if err != nil {
		return nil, err
	}
	return catalog.MissingFromRows(rows, from, to)
}

// LogApplied implements catalog.Catalog.
func (c *Catalog) LogApplied(ctx context.Context) (uint64, error) {
	var n int64
	err := c.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'log_applied'`).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return uint64(n), err
}

// SetLogApplied implements catalog.Catalog.
func (c *Catalog) SetLogApplied(ctx context.Context, n uint64) error {
	_, err := c.db.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('log_applied', $1)
		ON CONFLICT (key) DO UPDATE SET value = GREATEST(meta.value, excluded.value)`, int64(n))
	return err
}

const eventColumns = `evidence_id, seq, type, recorded_at, log_index, leaf_hash, record,
	receipt_payload, receipt_signature, receipt_key_id`

// Events implements catalog.Catalog.
func (c *Catalog) Events(ctx context.Context, evidenceID string) ([]catalog.Event, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT `+eventColumns+` FROM events WHERE evidence_id = $1 ORDER BY seq`, evidenceID)
	if err != nil {
		return nil, err
	}
	return scanEvents(rows)
}

// EventsFrom implements catalog.Catalog.
func (c *Catalog) EventsFrom(ctx context.Context, evidenceID string, from uint64, limit int) ([]catalog.Event, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT `+eventColumns+` FROM events WHERE evidence_id = $1 AND seq >= $2 ORDER BY seq LIMIT $3`, evidenceID, int64(from), limit)
	if err != nil {
		return nil, err
	}
	return scanEvents(rows)
}

// IngestEvents implements catalog.Catalog.
func (c *Catalog) IngestEvents(ctx context.Context, ids []string) ([]catalog.Event, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := c.db.QueryContext(ctx, `SELECT `+eventColumns+` FROM events
		WHERE seq = 0 AND evidence_id IN (`+catalog.Placeholders(len(ids), 1, true)+`)`, args...)
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
		var seq, at, idx int64
		var leaf []byte
		if err := rows.Scan(&e.EvidenceID, &seq, &e.Type, &at, &idx, &leaf, &e.Record,
			&e.ReceiptPayload, &e.ReceiptSignature, &e.ReceiptKeyID); err != nil {
			return nil, err
		}
		e.Seq, e.LogIndex, e.RecordedAt = uint64(seq), uint64(idx), time.Unix(0, at).UTC()
		copy(e.LeafHash[:], leaf)
		out = append(out, e)
	}
	return out, rows.Err()
}
