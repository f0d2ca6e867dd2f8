package custodylog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
)

// ErrBeyondTree is returned for an index or size past the published tree.
var ErrBeyondTree = errors.New("beyond the published tree")

// readTile reads a tile, falling back from a partial tile to the full one
// (partial tiles are removed once the full tile exists).
func (l *Log) readTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
	b, err := l.reader.ReadTile(ctx, level, index, p)
	if errors.Is(err, os.ErrNotExist) && p != 0 {
		return l.reader.ReadTile(ctx, level, index, 0)
	}
	return b, err
}

func (l *Log) readBundle(ctx context.Context, index uint64, p uint8) ([]byte, error) {
	b, err := l.reader.ReadEntryBundle(ctx, index, p)
	if errors.Is(err, os.ErrNotExist) && p != 0 {
		return l.reader.ReadEntryBundle(ctx, index, 0)
	}
	return b, err
}

// Published is the latest checkpoint, verified and parsed.
type Published struct {
	Raw  []byte
	Size uint64
	Root []byte
}

// Latest reads and verifies the latest published checkpoint.
func (l *Log) Latest(ctx context.Context) (Published, error) {
	raw, err := l.reader.ReadCheckpoint(ctx)
	if err != nil {
		return Published{}, err
	}
	cp, _, _, err := log.ParseCheckpoint(raw, l.origin, l.verifier)
	if err != nil {
		return Published{}, fmt.Errorf("own checkpoint does not verify: %w", err)
	}
	return Published{Raw: raw, Size: cp.Size, Root: cp.Hash}, nil
}

// PublishedAt is when the checkpoint was last written (republished
// unchanged or not): its file's or object's modification time.
func (l *Log) PublishedAt(ctx context.Context) (time.Time, error) {
	return l.checkpointTime(ctx)
}

// InclusionProof proves that the entry at index is in the tree of treeSize.
func (l *Log) InclusionProof(ctx context.Context, index, treeSize uint64) ([][]byte, error) {
	if index >= treeSize {
		return nil, fmt.Errorf("%w: index %d, tree size %d", ErrBeyondTree, index, treeSize)
	}
	pb, err := client.NewProofBuilder(ctx, treeSize, l.readTile)
	if err != nil {
		return nil, err
	}
	return pb.InclusionProof(ctx, index)
}

// ConsistencyProof proves the tree of size first is a prefix of size second.
func (l *Log) ConsistencyProof(ctx context.Context, first, second uint64) ([][]byte, error) {
	if first > second {
		return nil, fmt.Errorf("%w: first size %d is larger than second size %d", ErrBeyondTree, first, second)
	}
	pb, err := client.NewProofBuilder(ctx, second, l.readTile)
	if err != nil {
		return nil, err
	}
	return pb.ConsistencyProof(ctx, first, second)
}

// Entry returns the entry at index from a tree of treeSize.
func (l *Log) Entry(ctx context.Context, index, treeSize uint64) ([]byte, error) {
	if index >= treeSize {
		return nil, fmt.Errorf("%w: index %d, tree size %d", ErrBeyondTree, index, treeSize)
	}
	bundle, err := client.GetEntryBundle(ctx, l.readBundle, index/256, treeSize)
	if err != nil {
		return nil, err
	}
	i := index % 256
	if i >= uint64(len(bundle.Entries)) {
		return nil, fmt.Errorf("%w: entry %d not in its bundle", ErrBeyondTree, index)
	}
	return bundle.Entries[i], nil
}

// Entries returns the entries at indexes from the tree of treeSize,
// reading each entry bundle once for a run of indexes in the same bundle
// (pass them ascending to read each bundle once in all).
func (l *Log) Entries(ctx context.Context, indexes []uint64, treeSize uint64) ([][]byte, error) {
	out := make([][]byte, len(indexes))
	var bundle api.EntryBundle
	for i, index := range indexes {
		if index >= treeSize {
			return nil, fmt.Errorf("%w: index %d, tree size %d", ErrBeyondTree, index, treeSize)
		}
		if i == 0 || indexes[i-1]/layout.EntryBundleWidth != index/layout.EntryBundleWidth {
			var err error
			if bundle, err = client.GetEntryBundle(ctx, l.readBundle, index/layout.EntryBundleWidth, treeSize); err != nil {
				return nil, err
			}
		}
		j := index % layout.EntryBundleWidth
		if j >= uint64(len(bundle.Entries)) {
			return nil, fmt.Errorf("%w: entry %d not in its bundle", ErrBeyondTree, index)
		}
		out[i] = bundle.Entries[j]
	}
	return out, nil
}

// Resource reads one public log resource by its C2SP tlog-tiles path
// (relative to the log's root): "checkpoint", "tile/<L>/<N>[.p/<W>]" or
// "tile/entries/<N>[.p/<W>]". A resource that does not exist (yet, or any
// more, as partial tiles once the full tile is written) is os.ErrNotExist.
func (l *Log) Resource(ctx context.Context, path string) ([]byte, error) {
	if path == "checkpoint" {
		return l.reader.ReadCheckpoint(ctx)
	}
	parts := strings.SplitN(path, "/", 3)
	if len(parts) != 3 || parts[0] != "tile" {
		return nil, fmt.Errorf("%w: %q is not a log resource", os.ErrNotExist, path)
	}
	if parts[1] == "entries" {
		index, p, err := layout.ParseTileIndexPartial(parts[2])
		if err != nil {
			return nil, fmt.Errorf("%w: %v", os.ErrNotExist, err)
		}
		b, err := l.readBundle(ctx, index, p)
		if err != nil || p == 0 {
			return b, err
		}
		return bundlePrefix(b, int(p))
	}
	level, index, p, err := layout.ParseTileLevelIndexPartial(parts[1], parts[2])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", os.ErrNotExist, err)
	}
	b, err := l.readTile(ctx, level, index, p)
	if err != nil || p == 0 {
		return b, err
	}
	// Once the full tile exists the partial one may be gone; the partial
	// tile is the full one's prefix.
	if len(b) < int(p)*32 {
		return nil, fmt.Errorf("tile %s holds %d bytes, fewer than its %d hashes", path, len(b), p)
	}
	return b[:int(p)*32], nil
}

// bundlePrefix returns the first n entries of an entry bundle (each a
// two-byte big-endian length and the entry).
func bundlePrefix(b []byte, n int) ([]byte, error) {
	off := 0
	for range n {
		if off+2 > len(b) {
			return nil, errors.New("entry bundle is shorter than its width")
		}
		off += 2 + (int(b[off])<<8 | int(b[off+1]))
	}
	if off > len(b) {
		return nil, errors.New("entry bundle is shorter than its width")
	}
	return b[:off], nil
}
