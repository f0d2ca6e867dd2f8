package historymap

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/custody-dev/custody/canonicaljson"
	"github.com/custody-dev/custody/events"
)

// Commitment is a map commitment: the root and size of the map over the
// first TreeSize log entries. It is published as a log entry (Entry).
type Commitment struct {
	TreeSize uint64
	MapSize  uint64
	MapRoot  [32]byte
}

// Commit returns the map's commitment.
func (m Map) Commit() Commitment {
	return Commitment{TreeSize: m.treeSize, MapSize: m.Size(), MapRoot: m.root}
}

// Entry returns the commitment's log entry, canonical JSON:
// {"map_root":"<hex>","map_size":…,"tree_size":…,"type":"history_map","v":1}.
func (c Commitment) Entry() []byte {
	b, err := canonicaljson.Marshal(canonicaljson.Object{
		"map_root":  hex.EncodeToString(c.MapRoot[:]),
		"map_size":  c.MapSize,
		"tree_size": c.TreeSize,
		"type":      EntryType,
		"v":         FormatVersion,
	})
	if err != nil {
		panic(err) // only sizes beyond 2^53 fail, which no log reaches
	}
	return b
}

// EntryFor returns the commitment entry of m.
func EntryFor(m Map) []byte { return m.Commit().Entry() }

// ParseEntry reads a log entry as a map commitment. It returns ok false,
// and no error, for an entry that is not one (its "type" is not
// "history_map": a custody entry), and an error for a commitment that is
// malformed or not canonical.
func ParseEntry(b []byte) (c Commitment, ok bool, err error) {
	obj, err := events.ParseEntry(b)
	if err != nil {
		return Commitment{}, false, err
	}
	if obj["type"] != EntryType {
		return Commitment{}, false, nil
	}
	var good bool
	if c.TreeSize, good = nonNeg(obj["tree_size"]); !good {
		return Commitment{}, true, errors.New(`map commitment: "tree_size" is not a non-negative integer`)
	}
	if c.MapSize, good = nonNeg(obj["map_size"]); !good {
		return Commitment{}, true, errors.New(`map commitment: "map_size" is not a non-negative integer`)
	}
	if c.MapRoot, good = hash(obj["map_root"]); !good {
		return Commitment{}, true, errors.New(`map commitment: "map_root" is not 32 bytes of lower-case hex`)
	}
	if !bytes.Equal(c.Entry(), b) {
		return Commitment{}, true, errors.New("map commitment: unknown fields")
	}
	if c.MapSize > c.TreeSize {
		return Commitment{}, true, fmt.Errorf("map commitment: %d leaves from %d entries", c.MapSize, c.TreeSize)
	}
	return c, true, nil
}

// VerifyLeaf checks that leafText is a well-formed leaf at p.Index of the
// committed map, and returns it.
func VerifyLeaf(c Commitment, leafText []byte, p LeafProof) (Leaf, error) {
	l, err := ParseLeaf(leafText)
	if err != nil {
		return Leaf{}, err
	}
	if p.MapSize != c.MapSize {
		return Leaf{}, fmt.Errorf("map leaf: the proof is for a map of %d leaves, the commitment's has %d", p.MapSize, c.MapSize)
	}
	if l.LogIndex >= c.TreeSize {
		return Leaf{}, fmt.Errorf("map leaf: log index %d is not among the %d entries the map covers", l.LogIndex, c.TreeSize)
	}
	h := rfc6962.DefaultHasher.HashLeaf(leafText)
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, p.Index, p.MapSize, h, p.Hashes, c.MapRoot[:]); err != nil {
		return Leaf{}, fmt.Errorf("map leaf: %w", err)
	}
	return l, nil
}

// Event is what Complete needs of one bundle event: its sequence, its log
// index and the leaf hash of its entry (SHA-256(0x00 ‖ entry)).
type Event struct {
	Seq      uint64
	LogIndex uint64
	LeafHash [32]byte
}

// Complete checks that a bundle's chain of evidenceID (evs, in any order)
// is complete as of the commitment's tree size N: the proven map leaf is
// the item's, it names one of evs (same seq, log index and leaf hash), and
// every event of evs with a higher seq lies at or after N while every
// other one lies before the leaf's. A bundle with its last events before
// N cut off fails, and so does one whose events were moved.
//
// The caller must have checked, separately, that the commitment entry is
// in the log the bundle's checkpoint commits to, and that each event's
// entry hashes to LeafHash and is included at LogIndex. Events from N up
// to the bundle's checkpoint are not covered.
func Complete(c Commitment, evidenceID string, leafText []byte, p LeafProof, evs []Event) error {
	k, err := NewCompletion(c, evidenceID, leafText, p)
	if err != nil {
		return err
	}
	for _, e := range evs {
		if err := k.Event(e); err != nil {
			return err
		}
	}
	return k.Done()
}

// Completion is Complete fed one event at a time, for a history too long
// to hold (the stream form of a bundle): its memory does not grow with
// the events.
type Completion struct {
	c     Commitment
	leaf  Leaf
	found bool
}

// NewCompletion verifies the item's leaf against the commitment
// (VerifyLeaf) and that it is evidenceID's.
func NewCompletion(c Commitment, evidenceID string, leafText []byte, p LeafProof) (*Completion, error) {
	l, err := VerifyLeaf(c, leafText, p)
	if err != nil {
		return nil, err
	}
	if l.EvidenceID != evidenceID {
		return nil, fmt.Errorf("history map: the leaf is %s's, the bundle is %s's", l.EvidenceID, evidenceID)
	}
	return &Completion{c: c, leaf: l}, nil
}

// Leaf is the proven leaf: the item's last entry among the first
// TreeSize entries.
func (k *Completion) Leaf() Leaf { return k.leaf }

// Event checks one of the bundle's events against the leaf.
func (k *Completion) Event(e Event) error {
	l, c := k.leaf, k.c
	switch {
	case e.Seq == l.Seq:
		if k.found {
			return fmt.Errorf("history map: the bundle holds two events %d", e.Seq)
		}
		if e.LogIndex != l.LogIndex || e.LeafHash != l.LeafHash {
			return fmt.Errorf("history map: as of tree size %d the item's last entry is %d (seq %d, leaf %x); the bundle's event %d is entry %d (leaf %x)",
				c.TreeSize, l.LogIndex, l.Seq, l.LeafHash, e.Seq, e.LogIndex, e.LeafHash)
		}
		k.found = true
	case e.Seq > l.Seq && e.LogIndex < c.TreeSize:
		return fmt.Errorf("history map: the bundle's event %d is entry %d, before tree size %d, yet the item's last entry there is event %d", e.Seq, e.LogIndex, c.TreeSize, l.Seq)
	case e.Seq < l.Seq && e.LogIndex >= l.LogIndex:
		return fmt.Errorf("history map: the bundle's event %d is entry %d, not before the item's last entry %d (event %d)", e.Seq, e.LogIndex, l.LogIndex, l.Seq)
	}
	return nil
}

// Done checks, after the last event, that the leaf's event was among
// them.
func (k *Completion) Done() error {
	if !k.found {
		return fmt.Errorf("history map: as of tree size %d the item's last entry is event %d (entry %d), which the bundle does not hold: the bundle is cut short", k.c.TreeSize, k.leaf.Seq, k.leaf.LogIndex)
	}
	return nil
}
