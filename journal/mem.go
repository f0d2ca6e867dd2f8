package journal

import (
	"cmp"
	"context"
	"slices"
	"sync"
)

// Mem is an in-memory Store for unit tests of the domain (as sumdb keeps
// mem.go beside its storage interface): the same contract as File and the
// PostgreSQL store — it passes journal/journaltest — but nothing is
// durable. Never used by custodyd.
type Mem struct {
	mu         sync.Mutex
	data       map[string]Record
	unresolved map[string]bool // keys of event records not yet resolved
}

// NewMem returns an empty in-memory journal.
func NewMem() *Mem { return &Mem{data: map[string]Record{}, unresolved: map[string]bool{}} }

var _ Store = (*Mem)(nil)

// Put implements Store.
func (m *Mem) Put(ctx context.Context, r Record, wait bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r.Data = slices.Clone(r.Data)
	m.data[r.Key] = r
	if r.EvidenceID != "" && r.Seq > 0 {
		m.unresolved[r.Key] = true
	}
	return nil
}

// Get implements Store.
func (m *Mem) Get(_ context.Context, keys []string) (map[string][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string][]byte{}
	for _, k := range keys {
		if r, ok := m.data[k]; ok {
			out[k] = slices.Clone(r.Data)
		}
	}
	return out, nil
}

// Unresolved implements Store, in sequence order.
func (m *Mem) Unresolved(_ context.Context, evidenceID string, afterSeq uint64) ([]Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Record
	for k := range m.unresolved {
		if r := m.data[k]; r.EvidenceID == evidenceID && r.Seq > afterSeq {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Record) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

// Resolve implements Store.
func (m *Mem) Resolve(_ context.Context, key string, _ bool) error {
	m.mu.Lock()
	delete(m.unresolved, key)
	m.mu.Unlock()
	return nil
}
