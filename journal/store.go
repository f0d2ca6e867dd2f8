package journal

import (
	"context"
	"encoding/json"
	"sync"
)

// Record is one journaled record: Data under Key. Records of an event carry
// the item and sequence they are about; other records (receipts) leave
// EvidenceID empty.
type Record struct {
	Key        string `json:"key"`
	EvidenceID string `json:"evidence_id,omitempty"`
	Seq        uint64 `json:"seq,omitempty"`
	Data       []byte `json:"data"`
}

// Store is where the service journals each event record before the
// record's commitment goes into the log, so the catalog can be rebuilt from
// the log and the journal. File (in this package) serves one process; Mem
// (mem.go) serves unit tests; the PostgreSQL store (package postgres) serves
// replicas.
type Store interface {
	// Put stores r. With wait it returns once r is durable; without, it
	// may return before (a crash may lose r: only for records that can be
	// made again).
	Put(ctx context.Context, r Record, wait bool) error
	// Get returns the data of the records with these keys; keys with no
	// record are absent from the map.
	Get(ctx context.Context, keys []string) (map[string][]byte, error)
	// Unresolved returns the event records of evidenceID with a sequence
	// above afterSeq that have not been resolved: records journaled before
	// a log append whose outcome no catalog write recorded (the writer
	// died, or its catalog write failed). Sequence 0 (ingest) records are
	// never returned: there is no chain to fork.
	Unresolved(ctx context.Context, evidenceID string, afterSeq uint64) ([]Record, error)
	// Resolve says the outcome of the record under key is known: logged
	// (and cataloged), or judged never logged. A record resolved as never
	// logged is no longer unresolved, but stays readable by Get (its
	// writer may have been cut off rather than dead). A store may keep
	// reporting a record resolved as logged until the item's chain passes
	// its sequence (callers ask with the item's latest sequence).
	Resolve(ctx context.Context, key string, logged bool) error
}

// Starter is a Store that can start a Put without waiting for it: Start
// stores r as Put does and returns at once; the channel yields nil once r
// is durable, or the error that kept it from being so. A writer that
// must not act before r is durable (the log append, package ledger)
// hands the channel on instead of waiting itself.
type Starter interface {
	Start(r Record) (<-chan error, error)
}

var (
	_ Starter = (*File)(nil)
	_ Starter = (*Mem)(nil)
)

// File is the Store of a single process: records in a Journal file, the
// unresolved ones also tracked in memory (after a restart, replay resolves
// everything the log holds before the service takes requests).
type File struct {
	j *Journal

	mu      sync.Mutex
	pending map[string][]Record // evidence id -> unresolved event records
	byKey   map[string]string   // key -> evidence id, for Resolve
}

var _ Store = (*File)(nil)

// OpenFile opens (creating) the journal file at path as a Store; see Open.
func OpenFile(path string, opts ...Option) (*File, error) {
	j, err := Open(path, opts...)
	if err != nil {
		return nil, err
	}
	return &File{j: j, pending: map[string][]Record{}, byKey: map[string]string{}}, nil
}

// Put implements Store.
func (f *File) Put(ctx context.Context, r Record, wait bool) error {
	done, err := f.Start(r)
	if err != nil || !wait {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Start implements Starter: r goes out with the next group.
func (f *File) Start(r Record) (<-chan error, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	if r.EvidenceID != "" && r.Seq > 0 {
		f.mu.Lock()
		f.pending[r.EvidenceID] = append(f.pending[r.EvidenceID], Record{Key: r.Key, EvidenceID: r.EvidenceID, Seq: r.Seq, Data: r.Data})
		f.byKey[r.Key] = r.EvidenceID
		f.mu.Unlock()
	}
	return f.j.Start(b)
}

// Get implements Store by reading the whole file: it serves replay (at
// start, and when a writer finds an unresolved record — rare, after a
// failed catalog write), never the common request path.
func (f *File) Get(_ context.Context, keys []string) (map[string][]byte, error) {
	want := make(map[string]bool, len(keys))
	for _, k := range keys {
		want[k] = true
	}
	out := map[string][]byte{}
	err := f.j.Scan(func(b []byte) error {
		var r Record
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		if want[r.Key] {
			out[r.Key] = r.Data
		}
		return nil
	})
	return out, err
}

// Unresolved implements Store.
func (f *File) Unresolved(_ context.Context, evidenceID string, afterSeq uint64) ([]Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Record
	for _, r := range f.pending[evidenceID] {
		if r.Seq > afterSeq {
			out = append(out, r)
		}
	}
	return out, nil
}

// Resolve implements Store: the record leaves the in-memory set (the file
// keeps it; a record the log never refers to is never used).
func (f *File) Resolve(_ context.Context, key string, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, ok := f.byKey[key]
	if !ok {
		return nil
	}
	delete(f.byKey, key)
	rs := f.pending[id]
	for i, r := range rs {
		if r.Key == key {
			rs = append(rs[:i], rs[i+1:]...)
			break
		}
	}
	if len(rs) == 0 {
		delete(f.pending, id)
	} else {
		f.pending[id] = rs
	}
	return nil
}

// Close closes the file.
func (f *File) Close() error { return f.j.Close() }
