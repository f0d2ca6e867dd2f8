// Package historymap builds and verifies the history map: a verifiable map,
// committed to in the custody log itself, from each evidence id to the last
// custody entry of that item among the first N log entries. A court bundle
// carries the map leaf of its item with an inclusion proof to a committed map
// root, which proves that the bundle's chain is complete as of tree size N:
// no later event of the item was left out before N.
//
// The construction is specified in docs/HISTORY_MAP.md. In short: the map
// at tree size N is the RFC 6962 Merkle tree over the canonical JSON texts
// of one leaf per item, sorted by evidence id; a commitment is a log entry
// {"map_root","map_size","tree_size","type":"history_map","v":1}.
package historymap

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/custody-dev/custody/canonicaljson"
	"github.com/custody-dev/custody/events"
)

// EntryType is the "type" of a map commitment entry. No custody event has
// this type (events.Type), and a commitment has no "evidence_id".
const EntryType = "history_map"

// FormatVersion is the "v" of map leaves and commitment entries.
const FormatVersion = 1

// Leaf is one item's map leaf: its last custody entry among the log
// entries the map covers.
type Leaf struct {
	EvidenceID string
	// Seq is the entry's "seq"; LogIndex its index in the log; LeafHash
	// its RFC 6962 leaf hash, SHA-256(0x00 ‖ entry).
	Seq      uint64
	LogIndex uint64
	LeafHash [32]byte
}

// Text returns the leaf's canonical JSON text, the bytes the map tree
// hashes: {"evidence_id":…,"leaf_hash":"<hex>","log_index":…,"seq":…}.
func (l Leaf) Text() ([]byte, error) {
	return canonicaljson.Marshal(canonicaljson.Object{
		"evidence_id": l.EvidenceID,
		"leaf_hash":   hex.EncodeToString(l.LeafHash[:]),
		"log_index":   l.LogIndex,
		"seq":         l.Seq,
	})
}

// ParseLeaf decodes a leaf text, which must be exactly the canonical
// encoding of a leaf.
func ParseLeaf(b []byte) (Leaf, error) {
	obj, err := events.ParseCanonical(b)
	if err != nil {
		return Leaf{}, fmt.Errorf("map leaf: %w", err)
	}
	var l Leaf
	var ok bool
	if l.EvidenceID, ok = obj["evidence_id"].(string); !ok || l.EvidenceID == "" {
		return Leaf{}, errors.New(`map leaf: "evidence_id" missing or not a string`)
	}
	if l.Seq, ok = nonNeg(obj["seq"]); !ok {
		return Leaf{}, errors.New(`map leaf: "seq" is not a non-negative integer`)
	}
	if l.LogIndex, ok = nonNeg(obj["log_index"]); !ok {
		return Leaf{}, errors.New(`map leaf: "log_index" is not a non-negative integer`)
	}
	if l.LeafHash, ok = hash(obj["leaf_hash"]); !ok {
		return Leaf{}, errors.New(`map leaf: "leaf_hash" is not 32 bytes of lower-case hex`)
	}
	again, err := l.Text()
	if err != nil || !bytes.Equal(again, b) {
		return Leaf{}, errors.New("map leaf: unknown fields")
	}
	return l, nil
}

func nonNeg(v any) (uint64, bool) {
	n, ok := v.(int64)
	return uint64(n), ok && n >= 0
}

func hash(v any) ([32]byte, bool) {
	var h [32]byte
	s, _ := v.(string)
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 || s != strings.ToLower(s) {
		return h, false
	}
	copy(h[:], b)
	return h, true
}

// item is the builder's state of one evidence id.
type item struct {
	leaf Leaf
	// hash is the RFC 6962 leaf hash of leaf.Text(), kept so that a
	// snapshot re-encodes only the items that changed since the last one.
	hash  [32]byte
	dirty bool
}

// Builder computes the map from the log's entries, fed in index order.
// It is not safe for concurrent use; the Maps it returns are immutable.
type Builder struct {
	next   uint64
	items  map[string]*item
	sorted []*item // the items as of the last snapshot, by evidence id
	added  []*item // items first seen since, unsorted
	dirty  []*item // items changed since the last snapshot
}

// NewBuilder returns a builder for an empty log.
func NewBuilder() *Builder {
	return &Builder{items: map[string]*item{}}
}

// TreeSize is how many log entries the builder has been fed.
func (b *Builder) TreeSize() uint64 { return b.next }

// Changed reports whether a custody entry was fed since the last Map: a
// new map would differ from the last one (commitment entries change
// nothing).
func (b *Builder) Changed() bool { return len(b.dirty) > 0 || len(b.added) > 0 }

// Add feeds the log entry at index, which must be the next one
// (TreeSize()). A custody entry (one with an "evidence_id") becomes its
// item's leaf; a commitment entry (type "history_map") is checked for
// form and otherwise ignored. Anything else is an error, and an entry
// that fails leaves the builder as it was.
func (b *Builder) Add(index uint64, entry []byte) error {
	if index != b.next {
		return fmt.Errorf("history map: entry %d fed after %d entries; entries go in index order", index, b.next)
	}
	obj, err := events.ParseEntry(entry)
	if err != nil {
		return fmt.Errorf("history map: entry %d: %w", index, err)
	}
	if obj["type"] == EntryType {
		if _, _, err := ParseEntry(entry); err != nil {
			return fmt.Errorf("history map: entry %d: %w", index, err)
		}
		b.next++
		return nil
	}
	id, _ := obj["evidence_id"].(string)
	seq, ok := nonNeg(obj["seq"])
	if id == "" || !ok {
		return fmt.Errorf("history map: entry %d is neither a custody entry (evidence_id, seq) nor a map commitment", index)
	}
	l := Leaf{EvidenceID: id, Seq: seq, LogIndex: index}
	copy(l.LeafHash[:], rfc6962.DefaultHasher.HashLeaf(entry))
	it := b.items[id]
	if it == nil {
		it = &item{}
		b.items[id] = it
		b.added = append(b.added, it)
	}
	it.leaf = l
	if !it.dirty {
		it.dirty = true
		b.dirty = append(b.dirty, it)
	}
	b.next++
	return nil
}

// Map returns the map at treeSize, which must be TreeSize(): the builder
// keeps no history. Its cost is O(n) hashes for n items plus
// O(k log k) for the k items first seen since the last call, and the
// re-encoding of the items changed since the last call.
func (b *Builder) Map(treeSize uint64) (Map, error) {
	if treeSize != b.next {
		return Map{}, fmt.Errorf("history map: asked for tree size %d, the builder is at %d", treeSize, b.next)
	}
	for _, it := range b.dirty {
		text, err := it.leaf.Text()
		if err != nil {
			return Map{}, fmt.Errorf("history map: %s: %w", it.leaf.EvidenceID, err)
		}
		copy(it.hash[:], rfc6962.DefaultHasher.HashLeaf(text))
		it.dirty = false
	}
	b.dirty = b.dirty[:0]
	if len(b.added) > 0 {
		slices.SortFunc(b.added, func(x, y *item) int { return strings.Compare(x.leaf.EvidenceID, y.leaf.EvidenceID) })
		merged := make([]*item, 0, len(b.sorted)+len(b.added))
		i, j := 0, 0
		for i < len(b.sorted) && j < len(b.added) {
			if b.sorted[i].leaf.EvidenceID < b.added[j].leaf.EvidenceID {
				merged = append(merged, b.sorted[i])
				i++
			} else {
				merged = append(merged, b.added[j])
				j++
			}
		}
		merged = append(append(merged, b.sorted[i:]...), b.added[j:]...)
		b.sorted, b.added = merged, b.added[:0]
	}
	m := Map{treeSize: treeSize, leaves: make([]Leaf, len(b.sorted))}
	level := make([][32]byte, len(b.sorted))
	for i, it := range b.sorted {
		m.leaves[i], level[i] = it.leaf, it.hash
	}
	m.build(level)
	return m, nil
}

// Map is the history map at one tree size. It is immutable.
type Map struct {
	treeSize uint64
	leaves   []Leaf // sorted by evidence id
	// levels[k][i] is the hash of the perfect subtree of height k over
	// leaves [i·2^k, (i+1)·2^k): every node an inclusion proof needs.
	levels [][][32]byte
	root   [32]byte
}

func (m *Map) build(level [][32]byte) {
	m.levels = [][][32]byte{level}
	for len(level) > 1 {
		up := make([][32]byte, len(level)/2)
		var buf [1 + 2*sha256.Size]byte
		buf[0] = rfc6962.RFC6962NodeHashPrefix
		for i := range up {
			// rfc6962.DefaultHasher.HashChildren, without its allocations.
			copy(buf[1:], level[2*i][:])
			copy(buf[1+sha256.Size:], level[2*i+1][:])
			up[i] = sha256.Sum256(buf[:])
		}
		m.levels = append(m.levels, up)
		level = up
	}
	n := uint64(len(m.leaves))
	if n == 0 {
		copy(m.root[:], rfc6962.DefaultHasher.EmptyRoot())
		return
	}
	ids := compact.RangeNodes(0, n, nil)
	hashes := make([][]byte, len(ids))
	for i, id := range ids {
		hashes[i] = m.levels[id.Level][id.Index][:]
	}
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r, err := rf.NewRange(0, n, hashes)
	if err != nil {
		panic(err) // the ids come from RangeNodes(0, n)
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		panic(err)
	}
	copy(m.root[:], root)
}

// TreeSize is the number of log entries the map covers.
func (m Map) TreeSize() uint64 { return m.treeSize }

// Root is the map root.
func (m Map) Root() [32]byte { return m.root }

// Size is the number of leaves: items with an entry among the first
// TreeSize() log entries.
func (m Map) Size() uint64 { return uint64(len(m.leaves)) }

// Leaf returns the item's leaf and its index in the map.
func (m Map) Leaf(evidenceID string) (Leaf, uint64, bool) {
	i, ok := slices.BinarySearchFunc(m.leaves, evidenceID, func(l Leaf, id string) int {
		return strings.Compare(l.EvidenceID, id)
	})
	if !ok {
		return Leaf{}, 0, false
	}
	return m.leaves[i], uint64(i), true
}

// LeafProof proves a leaf is in a map: its index, the map's size, and the
// RFC 9162 inclusion proof (§2.1.3) from the leaf's hash to the root.
type LeafProof struct {
	Index, MapSize uint64
	Hashes         [][]byte
}

// ErrNoLeaf: the map has no leaf for the item (it has no entry among the
// entries the map covers).
var ErrNoLeaf = errors.New("history map: no leaf for the item")

// Proof returns the item's leaf text and its inclusion proof.
func (m Map) Proof(evidenceID string) ([]byte, LeafProof, error) {
	l, i, ok := m.Leaf(evidenceID)
	if !ok {
		return nil, LeafProof{}, ErrNoLeaf
	}
	text, err := l.Text()
	if err != nil {
		return nil, LeafProof{}, err
	}
	n := m.Size()
	nodes, err := proof.Inclusion(i, n)
	if err != nil {
		return nil, LeafProof{}, err
	}
	hashes := make([][]byte, len(nodes.IDs))
	for k, id := range nodes.IDs {
		h := m.levels[id.Level][id.Index]
		hashes[k] = append([]byte(nil), h[:]...)
	}
	hashes, err = nodes.Rehash(hashes, rfc6962.DefaultHasher.HashChildren)
	if err != nil {
		return nil, LeafProof{}, err
	}
	return text, LeafProof{Index: i, MapSize: n, Hashes: hashes}, nil
}
