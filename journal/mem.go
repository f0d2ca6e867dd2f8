package journal

import (
	"context"
	"slices"
	"sync"
)

// Mem is a Store in memory, for unit tests: it keeps the Store contract
// (it passes journal/journaltest, the suite File and the PostgreSQL store
// pass) with no file. Nothing survives the process.
type Mem struct {
	mu       sync.Mutex
	data     map[string][]byte
	resolved map[string]bool
	order    []Record // event records (sequence > 0), in Put order
}

var _ Store = (*Mem)(nil)

// NewMem returns an empty Mem.
func NewMem() *Mem {
	return &Mem{data: map[string][]byte{}, resolved: map[string]bool{}}
}

// Put implements Store; every record is durable at once.
func (m *Mem) Put(_ context.Context, r Record, _ bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r.Data = slices.Clone(r.Data)
	m.data[r.Key] = r.Data
	delete(m.resolved, r.Key)
	if r.EvidenceID != "" && r.Seq > 0 {
		m.order = append(m.order, r)
	}
	return nil
}

// Start implements Starter: r is durable at once.
func (m *Mem) Start(r Record) (<-chan error, error) {
	done := make(chan error, 1)
	done <- m.Put(context.Background(), r, true)
	return done, nil
}

// Get implements Store.
func (m *Mem) Get(_ context.Context, keys []string) (map[string][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string][]byte{}
	for _, k := range keys {
		if d, ok := m.data[k]; ok {
			out[k] = slices.Clone(d)
		}
	}
	return out, nil
}

// Unresolved implements Store.
func (m *Mem) Unresolved(_ context.Context, evidenceID string, afterSeq uint64) ([]Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Record
	for _, r := range m.order {
		if r.EvidenceID == evidenceID && r.Seq > afterSeq && !m.resolved[r.Key] {
			r.Data = slices.Clone(r.Data)
			out = append(out, r)
		}
	}
	return out, nil
}

// Resolve implements Store: the record stays readable by Get.
func (m *Mem) Resolve(_ context.Context, key string, _ bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.resolved[key] = true
	return nil
}
