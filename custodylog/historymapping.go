package custodylog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/custody-dev/custody/historymap"
)

// The history map (docs/HISTORY_MAP.md): the log commits, in entries of
// its own, to a map from each evidence id to the item's last entry among
// the first N entries, so that a bundle proves its chain complete as of N.
//
// Every process that opens the log follows it: it reads the published
// entries in order into a historymap.Builder and, when custody entries came
// since its last commitment, appends the commitment of the map at the size
// it has read. It keeps the maps of its last few commitments in memory to
// prove items' leaves (HistoryProof). With replicas each one commits (a
// replica can prove only from maps it computed); commitments cost one
// entry each and nothing reads them but verifiers.

// keptMaps is how many of its newest maps a process keeps to prove from:
// a bundle may use a checkpoint a little older than the latest (the newest
// timestamped one), whose newest commitment is then not the newest.
const keptMaps = 4

// mapFollowBatch bounds how many entries the follower reads at a time.
const mapFollowBatch = 4096

// HistoryProof proves an item's leaf in a committed history map.
type HistoryProof struct {
	// Entry is the commitment log entry, at LogIndex.
	Entry    []byte
	LogIndex uint64
	// TreeSize is how many log entries the map covers.
	TreeSize uint64
	// Leaf is the item's leaf text, Proof its inclusion in the map.
	Leaf  []byte
	Proof historymap.LeafProof
}

// HistoryState is how far the history map lags the published log.
type HistoryState struct {
	// PublishedSize is the latest checkpoint's size; CommittedSize the
	// tree size of this process's newest commitment that checkpoint
	// covers (0: none yet).
	PublishedSize, CommittedSize uint64
	// Err is why the map stopped (a malformed entry), if it did.
	Err string
}

type mapCommit struct {
	index uint64 // the commitment entry's log index
	entry []byte
	m     historymap.Map
}

// mapper follows the log and appends history-map commitments.
type mapper struct {
	log     *Log
	builder *historymap.Builder // used by run only

	mu        sync.Mutex
	commits   []mapCommit // oldest first, at most keptMaps
	published uint64
	err       error // the builder stopped: the log holds an entry the map cannot take
}

// run follows the log until ctx ends: every poll it reads what the latest
// checkpoint added and, at most once per interval (and no more often than
// ten times the last map took, so the map costs at most a tenth of a
// core), commits to the map if custody entries came.
func (m *mapper) run(ctx context.Context, interval time.Duration) {
	poll := time.NewTicker(max(interval/4, 25*time.Millisecond))
	defer poll.Stop()
	var next time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
		}
		if err := m.follow(ctx); err != nil {
			if ctx.Err() == nil {
				slog.WarnContext(ctx, "history map: reading the log", "err", err)
			}
			continue
		}
		if time.Now().Before(next) || !m.builder.Changed() {
			continue
		}
		start := time.Now()
		if err := m.commit(ctx); err != nil {
			if ctx.Err() == nil {
				slog.WarnContext(ctx, "history map: committing", "err", err)
			}
			continue
		}
		next = start.Add(max(interval, 10*time.Since(start)))
	}
}

// follow feeds the builder the entries the latest checkpoint added.
func (m *mapper) follow(ctx context.Context) error {
	m.mu.Lock()
	stopped := m.err
	m.mu.Unlock()
	if stopped != nil {
		return nil
	}
	cp, err := m.log.Latest(ctx)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.published = cp.Size
	m.mu.Unlock()
	for from := m.builder.TreeSize(); from < cp.Size; from = m.builder.TreeSize() {
		n := min(cp.Size-from, mapFollowBatch)
		indexes := make([]uint64, n)
		for i := range indexes {
			indexes[i] = from + uint64(i)
		}
		entries, err := m.log.Entries(ctx, indexes, cp.Size)
		if err != nil {
			return err
		}
		for i, e := range entries {
			if err := m.builder.Add(indexes[i], e); err != nil {
				// The log holds an entry that is neither a custody entry
				// nor a commitment: the map is undefined from here, and
				// an auditor will say so. Stop committing.
				m.mu.Lock()
				m.err = err
				m.mu.Unlock()
				slog.ErrorContext(ctx, "history map stopped: the log holds an entry it cannot take", "index", indexes[i], "err", err)
				return nil
			}
		}
	}
	return nil
}

// commit appends the commitment of the map at the size read so far.
func (m *mapper) commit(ctx context.Context) error {
	mp, err := m.builder.Map(m.builder.TreeSize())
	if err != nil {
		return err
	}
	entry := historymap.EntryFor(mp)
	a, err := m.log.Append(ctx, entry)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.commits = append(m.commits, mapCommit{index: a.Index, entry: entry, m: mp})
	if len(m.commits) > keptMaps {
		m.commits = append(m.commits[:0], m.commits[len(m.commits)-keptMaps:]...)
	}
	return nil
}

// proof proves id's leaf in the newest kept map whose commitment a tree of
// treeSize includes.
func (m *mapper) proof(id string, treeSize uint64) (HistoryProof, bool, error) {
	m.mu.Lock()
	var c *mapCommit
	for i := len(m.commits) - 1; i >= 0; i-- {
		if m.commits[i].index < treeSize {
			c = &m.commits[i]
			break
		}
	}
	m.mu.Unlock()
	if c == nil {
		return HistoryProof{}, false, nil
	}
	leaf, p, err := c.m.Proof(id)
	if errors.Is(err, historymap.ErrNoLeaf) {
		return HistoryProof{}, false, nil
	}
	if err != nil {
		return HistoryProof{}, false, err
	}
	return HistoryProof{Entry: c.entry, LogIndex: c.index, TreeSize: c.m.TreeSize(), Leaf: leaf, Proof: p}, true, nil
}

func (m *mapper) state() HistoryState {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := HistoryState{PublishedSize: m.published}
	for i := len(m.commits) - 1; i >= 0; i-- {
		if m.commits[i].index < m.published {
			st.CommittedSize = m.commits[i].m.TreeSize()
			break
		}
	}
	if m.err != nil {
		st.Err = m.err.Error()
	}
	return st
}

// HistoryProof proves the leaf of evidenceID in the newest history map
// this process committed to that a tree of treeSize includes (ok false:
// no such map yet, or the item has no entry among those it covers).
// The commitment's inclusion proof is InclusionProof(p.LogIndex,
// treeSize).
func (l *Log) HistoryProof(_ context.Context, evidenceID string, treeSize uint64) (HistoryProof, bool, error) {
	if l.mapper == nil {
		return HistoryProof{}, false, nil
	}
	return l.mapper.proof(evidenceID, treeSize)
}

// HistoryMapping is how far the history map lags the published log.
func (l *Log) HistoryMapping(context.Context) (HistoryState, error) {
	if l.mapper == nil {
		return HistoryState{}, fmt.Errorf("the log keeps no history map")
	}
	return l.mapper.state(), nil
}
