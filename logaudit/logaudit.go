// Package logaudit audits a custody log from its public resources alone
// (the C2SP tlog-tiles read API: checkpoint, tiles, entry bundles), trusting
// nothing the server computes: it checks the checkpoint's signature,
// rebuilds the Merkle tree from every entry and compares it with the
// checkpoint and with every tile the log serves, proves an older trusted
// checkpoint is a prefix of the new one, and checks every item's custody
// chain as the entries themselves state it (one entry per item and
// sequence, each linked to its predecessor's index and leaf hash).
package logaudit

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"
	"golang.org/x/mod/sumdb/note"

	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/historymap"
)

// Fetch reads one public log resource by its path ("checkpoint",
// "tile/0/000", "tile/entries/001.p/7", …).
type Fetch func(ctx context.Context, path string) ([]byte, error)

// Report is what an audit found.
type Report struct {
	// Checkpoint is the audited checkpoint.
	Checkpoint log.Checkpoint
	// Items is how many custody chains the entries hold; Entries how many
	// entries were checked, Tiles how many tiles.
	Items, Entries, Tiles int
	// Chains maps each item to the sequence of its latest entry.
	Chains map[string]uint64
	// Maps says what the history-map commitments in the log hold, every
	// one recomputed from the entries (docs/HISTORY_MAP.md).
	Maps MapReport
}

// Audit audits the log whose checkpoint fetch returns, signed by verifier
// under origin. If trusted is not nil (a checkpoint seen earlier), the new
// checkpoint must extend it.
func Audit(ctx context.Context, fetch Fetch, origin string, verifier note.Verifier, trusted *log.Checkpoint) (Report, error) {
	raw, err := fetch(ctx, layout.CheckpointPath)
	if err != nil {
		return Report{}, fmt.Errorf("checkpoint: %w", err)
	}
	cp, _, _, err := log.ParseCheckpoint(raw, origin, verifier)
	if err != nil {
		return Report{}, fmt.Errorf("checkpoint: %w", err)
	}
	rep := Report{Checkpoint: *cp}
	leaves, entries, err := readEntries(ctx, fetch, cp.Size)
	if err != nil {
		return rep, err
	}
	rep.Entries = len(entries)
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := rf.NewEmptyRange(0)
	for i, h := range leaves {
		if trusted != nil && uint64(i) == trusted.Size {
			if err := checkRoot(r, trusted.Hash, "the trusted checkpoint"); err != nil {
				return rep, err
			}
		}
		if err := r.Append(h, nil); err != nil {
			return rep, err
		}
	}
	if trusted != nil {
		if trusted.Size > cp.Size {
			return rep, fmt.Errorf("the log shrank: checkpoint size %d, trusted size %d", cp.Size, trusted.Size)
		}
		if trusted.Size == cp.Size && !bytes.Equal(trusted.Hash, cp.Hash) {
			return rep, fmt.Errorf("two checkpoints of size %d with different roots: a fork", cp.Size)
		}
	}
	if err := checkRoot(r, cp.Hash, "the checkpoint"); err != nil {
		return rep, err
	}
	if rep.Tiles, err = checkTiles(ctx, fetch, leaves); err != nil {
		return rep, err
	}
	if rep.Chains, err = checkChains(entries, leaves); err != nil {
		return rep, err
	}
	if rep.Maps, err = CheckHistoryMaps(entries); err != nil {
		return rep, err
	}
	rep.Items = len(rep.Chains)
	return rep, nil
}

func checkRoot(r *compact.Range, want []byte, what string) error {
	root, err := r.GetRootHash(nil)
	if err != nil {
		return err
	}
	if r.End() == 0 {
		root = rfc6962.DefaultHasher.EmptyRoot()
	}
	if !bytes.Equal(root, want) {
		return fmt.Errorf("the entries' Merkle root at size %d is %x, %s says %x", r.End(), root, what, want)
	}
	return nil
}

// readEntries fetches every entry bundle of a tree of size n.
func readEntries(ctx context.Context, fetch Fetch, n uint64) ([][]byte, [][]byte, error) {
	leaves := make([][]byte, 0, n)
	entries := make([][]byte, 0, n)
	for idx := uint64(0); idx*layout.EntryBundleWidth < n; idx++ {
		p := layout.PartialTileSize(0, idx, n)
		raw, err := fetch(ctx, layout.EntriesPath(idx, p))
		if err != nil {
			return nil, nil, fmt.Errorf("entry bundle %d: %w", idx, err)
		}
		var b api.EntryBundle
		if err := b.UnmarshalText(raw); err != nil {
			return nil, nil, fmt.Errorf("entry bundle %d: %w", idx, err)
		}
		want := int(p)
		if p == 0 {
			want = layout.EntryBundleWidth
		}
		if len(b.Entries) != want {
			return nil, nil, fmt.Errorf("entry bundle %d holds %d entries, want %d", idx, len(b.Entries), want)
		}
		for _, e := range b.Entries {
			entries = append(entries, e)
			leaves = append(leaves, rfc6962.DefaultHasher.HashLeaf(e))
		}
	}
	return leaves, entries, nil
}

// checkTiles fetches every tile of the tree over leaves and compares each
// hash with the one rebuilt from the entries.
func checkTiles(ctx context.Context, fetch Fetch, leaves [][]byte) (int, error) {
	n := uint64(len(leaves))
	level := leaves // hashes of tree level 8*tileLevel
	tiles := 0
	for tileLevel := uint64(0); len(level) > 0; tileLevel++ {
		for idx := uint64(0); idx*layout.TileWidth < uint64(len(level)); idx++ {
			p := layout.PartialTileSize(tileLevel, idx, n)
			raw, err := fetch(ctx, layout.TilePath(tileLevel, idx, p))
			if err != nil {
				return tiles, fmt.Errorf("tile %d/%d: %w", tileLevel, idx, err)
			}
			var t api.HashTile
			if err := t.UnmarshalText(raw); err != nil {
				return tiles, fmt.Errorf("tile %d/%d: %w", tileLevel, idx, err)
			}
			want := level[idx*layout.TileWidth : min(uint64(len(level)), (idx+1)*layout.TileWidth)]
			if len(t.Nodes) != len(want) {
				return tiles, fmt.Errorf("tile %d/%d holds %d hashes, want %d", tileLevel, idx, len(t.Nodes), len(want))
			}
			for i := range want {
				if !bytes.Equal(t.Nodes[i], want[i]) {
					return tiles, fmt.Errorf("tile %d/%d hash %d differs from the one rebuilt from the entries", tileLevel, idx, i)
				}
			}
			tiles++
		}
		// Eight tree levels up: the roots of complete 256-node subtrees.
		next := make([][]byte, 0, len(level)/layout.TileWidth)
		for i := 0; i+layout.TileWidth <= len(level); i += layout.TileWidth {
			next = append(next, perfectRoot(level[i:i+layout.TileWidth]))
		}
		level = next
	}
	return tiles, nil
}

func perfectRoot(hs [][]byte) []byte {
	for len(hs) > 1 {
		up := make([][]byte, len(hs)/2)
		for i := range up {
			up[i] = rfc6962.DefaultHasher.HashChildren(hs[2*i], hs[2*i+1])
		}
		hs = up
	}
	return hs[0]
}

// checkChains checks every item's chain as the entries state it and
// returns each item's latest sequence.
func checkChains(entries, leaves [][]byte) (map[string]uint64, error) {
	type last struct {
		seq   int64
		index int
	}
	items := map[string]last{}
	for i, e := range entries {
		f, err := events.ParseEntry(e)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		if f["type"] == historymap.EntryType {
			continue // a history-map commitment: CheckHistoryMaps checks it
		}
		id, _ := f["evidence_id"].(string)
		seq, _ := f["seq"].(int64)
		prev, seen := items[id]
		switch {
		case !seen && seq != 0:
			return nil, fmt.Errorf("entry %d: %s sequence %d comes before its ingest", i, id, seq)
		case seen && seq != prev.seq+1:
			return nil, fmt.Errorf("entry %d: %s sequence %d follows sequence %d (a gap or a fork)", i, id, seq, prev.seq)
		case seen:
			pi, _ := f["prev_index"].(int64)
			ph, _ := f["prev_leaf_hash"].(string)
			if pi != int64(prev.index) || ph != hex.EncodeToString(leaves[prev.index]) {
				return nil, fmt.Errorf("entry %d: %s sequence %d links to %d/%s, its predecessor is entry %d", i, id, seq, pi, ph, prev.index)
			}
		}
		items[id] = last{seq, i}
	}
	chains := make(map[string]uint64, len(items))
	for id, l := range items {
		chains[id] = uint64(l.seq)
	}
	return chains, nil
}
