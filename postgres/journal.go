package postgres

import (
	"context"
	"database/sql"
	"sync"
	"time"

	"github.com/custody-dev/custody/journal"
)

// Journal is the record journal (journal.Store) of replicas, in the
// catalog's database: a record committed here is durable and visible to
// every replica, so whichever replica catalogs a log entry finds its
// record.
//
// Records put without waiting (receipts, which replay can sign again) are
// written by a background writer, many in one statement, as the file
// journal writes them with its next group: on the event path they cost no
// database round trip.
type Journal struct {
	db *sql.DB

	mu      sync.Mutex
	queued  []journal.Record // put without waiting, not yet written
	writing []journal.Record // being written now
	wake    chan struct{}
	closed  bool
	done    chan struct{}
}

var _ journal.Store = (*Journal)(nil)

// maxQueued bounds the records put without waiting that wait for the
// background writer; beyond it Put writes them itself.
const maxQueued = 4096

func newJournal(db *sql.DB) *Journal {
	j := &Journal{db: db, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go j.writer()
	return j
}

// Journal returns the journal in c's database.
func (c *Catalog) Journal() *Journal { return c.journal }

// Put implements journal.Store. With wait, the record is committed before
// Put returns; without, it goes with the background writer's next
// statement (a crash may lose it, as journal.Store allows).
func (j *Journal) Put(ctx context.Context, r journal.Record, wait bool) error {
	if !wait && r.Seq == 0 { // never an event record: Unresolved must see those
		j.mu.Lock()
		if !j.closed && len(j.queued) < maxQueued {
			j.queued = append(j.queued, r)
			j.mu.Unlock()
			select {
			case j.wake <- struct{}{}:
			default:
			}
			return nil
		}
		j.mu.Unlock()
	}
	_, err := j.db.ExecContext(ctx, `INSERT INTO journal (key, evidence_id, seq, data) VALUES ($1, $2, $3, $4)
		ON CONFLICT (key) DO NOTHING`, r.Key, r.EvidenceID, int64(r.Seq), r.Data)
	return err
}

// writer writes the records put without waiting, all those queued in one
// statement, until Close.
func (j *Journal) writer() {
	defer close(j.done)
	for {
		j.mu.Lock()
		for len(j.queued) == 0 {
			if j.closed {
				j.mu.Unlock()
				return
			}
			j.mu.Unlock()
			<-j.wake
			j.mu.Lock()
		}
		j.writing, j.queued = j.queued, nil
		batch := j.writing
		j.mu.Unlock()
		err := j.insert(batch)
		for attempt := 1; err != nil && attempt < 3; attempt++ {
			time.Sleep(time.Duration(attempt) * 100 * time.Millisecond)
			err = j.insert(batch)
		}
		// A batch that cannot be written is dropped: its records (receipts)
		// are signed again by replay, as after a crash.
		j.mu.Lock()
		j.writing = nil
		j.mu.Unlock()
	}
}

func (j *Journal) insert(rs []journal.Record) error {
	keys, ids, seqs, data := make([]string, len(rs)), make([]string, len(rs)), make([]int64, len(rs)), make([][]byte, len(rs))
	for i, r := range rs {
		keys[i], ids[i], seqs[i], data[i] = r.Key, r.EvidenceID, int64(r.Seq), r.Data
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := j.db.ExecContext(ctx, `INSERT INTO journal (key, evidence_id, seq, data)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[])
		ON CONFLICT (key) DO NOTHING`, keys, ids, seqs, data)
	return err
}

// close writes what is queued and stops the writer.
func (j *Journal) close() {
	j.mu.Lock()
	j.closed = true
	j.mu.Unlock()
	select {
	case j.wake <- struct{}{}:
	default:
	}
	<-j.done
}

// Get implements journal.Store; records still queued count as written.
func (j *Journal) Get(ctx context.Context, keys []string) (map[string][]byte, error) {
	out := map[string][]byte{}
	if len(keys) == 0 {
		return out, nil
	}
	want := make(map[string]bool, len(keys))
	for _, k := range keys {
		want[k] = true
	}
	j.mu.Lock()
	for _, rs := range [][]journal.Record{j.writing, j.queued} {
		for _, r := range rs {
			if want[r.Key] {
				out[r.Key] = r.Data
			}
		}
	}
	j.mu.Unlock()
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
		if _, ok := out[k]; !ok {
			out[k] = b
		}
	}
	return out, rows.Err()
}

// Unresolved implements journal.Store.
func (j *Journal) Unresolved(ctx context.Context, evidenceID string, afterSeq uint64) ([]journal.Record, error) {
	// "seq > 0" is implied by "seq > $2" but must be written out: it is
	// what lets a generic plan (pgx prepares every statement, and
	// PostgreSQL switches a prepared statement to a generic plan after
	// five runs) use the partial index journal_by_item, whose predicate
	// it is. Without it, some connections scanned the whole journal on
	// every event (thousands of rows read per event in the benchmark).
	rows, err := j.db.QueryContext(ctx, `SELECT key, seq, data FROM journal
		WHERE evidence_id = $1 AND seq > $2 AND seq > 0 AND NOT abandoned ORDER BY seq`, evidenceID, int64(afterSeq))
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
