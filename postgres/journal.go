package postgres

import (
	"context"
	"database/sql"

	"github.com/custody-dev/custody/journal"
)

// Journal is the record journal (journal.Store) of replicas, in the
// catalog's database: a record committed here is durable and visible to
// every replica, so whichever replica catalogs a log entry finds its
// record.
type Journal struct {
	db *sql.DB
}

var _ journal.Store = (*Journal)(nil)

// Journal returns the journal in c's database.
func (c *Catalog) Journal() *Journal { return &Journal{db: c.db} }

// Put implements journal.Store; every record is committed before it
// returns, wait or not.
func (j *Journal) Put(ctx context.Context, r journal.Record, _ bool) error {
	_, err := j.db.ExecContext(ctx, `INSERT INTO journal (key, evidence_id, seq, data) VALUES ($1, $2, $3, $4)
		ON CONFLICT (key) DO NOTHING`, r.Key, r.EvidenceID, int64(r.Seq), r.Data)
	return err
}

// Get implements journal.Store.
func (j *Journal) Get(ctx context.Context, keys []string) (map[string][]byte, error) {
	out := map[string][]byte{}
	if len(keys) == 0 {
		return out, nil
	}
	rows, err := j.db.QueryContext(ctx, `SELECT key, data FROM journal WHERE key = ANY($1)`, keys)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var b []byte
		if err := rows.Scan(&k, &b); err != nil {
			return nil, err
		}
		out[k] = b
	}
	return out, rows.Err()
}

// Unresolved implements journal.Store.
func (j *Journal) Unresolved(ctx context.Context, evidenceID string, afterSeq uint64) ([]journal.Record, error) {
	rows, err := j.db.QueryContext(ctx, `SELECT key, seq, data FROM journal
		WHERE evidence_id = $1 AND seq > $2 AND NOT abandoned ORDER BY seq`, evidenceID, int64(afterSeq))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []journal.Record
	for rows.Next() {
		r := journal.Record{EvidenceID: evidenceID}
		var seq int64
		if err := rows.Scan(&r.Key, &seq, &r.Data); err != nil {
			return nil, err
		}
		r.Seq = uint64(seq)
		out = append(out, r)
	}
	return out, rows.Err()
}

// Resolve implements journal.Store. A logged record needs nothing: it stops
// being unresolved once the item's chain passes its sequence. One judged
// never logged is marked abandoned, not deleted: its writer may have been
// cut off rather than dead, and if its entry does reach the log after all,
// replay needs the record to name what happened.
func (j *Journal) Resolve(ctx context.Context, key string, logged bool) error {
	if logged {
		return nil
	}
	_, err := j.db.ExecContext(ctx, `UPDATE journal SET abandoned = TRUE WHERE key = $1`, key)
	return err
}
