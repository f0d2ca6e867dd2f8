package logaudit

import (
	"context"
	"fmt"
	"slices"

	"github.com/custody-dev/custody/historymap"
)

// MapReport is what an audit of the history map commitments found.
type MapReport struct {
	// Commitments is how many commitment entries the log holds, all of
	// them checked; Last the newest one, at log index LastIndex (both zero
	// without commitments).
	Commitments int
	Last        historymap.Commitment
	LastIndex   uint64
}

// AuditHistoryMaps reads the first size entries of the log (size from a
// checkpoint that Audit checked) and checks every history map commitment
// among them (CheckHistoryMaps).
func AuditHistoryMaps(ctx context.Context, fetch Fetch, size uint64) (MapReport, error) {
	_, entries, err := readEntries(ctx, fetch, size)
	if err != nil {
		return MapReport{}, err
	}
	return CheckHistoryMaps(entries)
}

// CheckHistoryMaps recomputes the history map (docs/HISTORY_MAP.md) from
// the log's entries, in index order, and checks every commitment entry
// among them: it commits only to entries before it (tree_size ≤ its own
// index), and its map_size and map_root are those of the map recomputed at
// its tree_size.
func CheckHistoryMaps(entries [][]byte) (MapReport, error) {
	var rep MapReport
	type found struct {
		index uint64
		c     historymap.Commitment
	}
	var commits []found
	var sizes []uint64
	for i, e := range entries {
		c, ok, err := historymap.ParseEntry(e)
		if err != nil {
			return rep, fmt.Errorf("entry %d: %w", i, err)
		}
		if !ok {
			continue
		}
		if c.TreeSize > uint64(i) {
			return rep, fmt.Errorf("entry %d: a history map commitment for tree size %d, beyond itself", i, c.TreeSize)
		}
		commits = append(commits, found{uint64(i), c})
		sizes = append(sizes, c.TreeSize)
	}
	slices.Sort(sizes)
	sizes = slices.Compact(sizes)
	maps := make(map[uint64]historymap.Commitment, len(sizes))
	b := historymap.NewBuilder()
	for i := 0; len(sizes) > 0; i++ {
		if uint64(i) == sizes[0] {
			m, err := b.Map(uint64(i))
			if err != nil {
				return rep, err
			}
			maps[sizes[0]] = m.Commit()
			sizes = sizes[1:]
			if len(sizes) == 0 {
				break
			}
		}
		if err := b.Add(uint64(i), entries[i]); err != nil {
			return rep, fmt.Errorf("entry %d: %w", i, err)
		}
	}
	for _, f := range commits {
		if want := maps[f.c.TreeSize]; f.c != want {
			return rep, fmt.Errorf("entry %d: the history map commitment for tree size %d says %d leaves, root %x; the entries give %d leaves, root %x",
				f.index, f.c.TreeSize, f.c.MapSize, f.c.MapRoot, want.MapSize, want.MapRoot)
		}
	}
	rep.Commitments = len(commits)
	if len(commits) > 0 {
		rep.Last, rep.LastIndex = commits[len(commits)-1].c, commits[len(commits)-1].index
	}
	return rep, nil
}
