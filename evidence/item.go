package evidence

import (
	"time"

	"github.com/custody-dev/custody/catalog"
	"github.com/custody-dev/custody/storage"
)

// Item is an evidence item as callers see it: the service's own type, made
// from a catalog row by itemOf and nowhere else.
type Item struct {
	ID                string
	CaseID            string
	Kind              Kind
	SHA256            string
	Size              int64
	MediaType         string // sniffed from the bytes
	DeclaredMediaType string // as the collector declared it
	Collector         string
	IngestedAt        time.Time
	// Object is where the bytes are stored; Encrypted says they are age
	// ciphertext.
	Object    storage.Object
	Encrypted bool
	// Special marks special-category (GDPR Art. 9) data.
	Special bool
	// Custodian is the identity holding the item now, and Pending a
	// release waiting for its recipient.
	Custodian   string
	Pending     *PendingRelease
	DerivedFrom string
	// LastSeq, LastLogIndex and LastLeafHash locate the item's latest
	// event in its chain and in the log.
	LastSeq      uint64
	LastLogIndex uint64
	LastLeafHash [32]byte
	// Meta is the decoded descriptive metadata (decrypted for special
	// categories, and empty where the caller may not read it).
	Meta Metadata
}

// PendingRelease is a release not yet accepted, cancelled or lapsed.
type PendingRelease struct {
	To        string
	Reason    string
	Seq       uint64
	ExpiresAt time.Time
}

// itemOf is the item a catalog row describes, with its decoded metadata.
func itemOf(ev catalog.Evidence, md Metadata) Item {
	item := Item{
		ID: ev.ID, CaseID: ev.CaseID, Kind: Kind(ev.Kind), SHA256: ev.SHA256, Size: ev.Size,
		MediaType: ev.MediaType, DeclaredMediaType: ev.DeclaredMediaType, Collector: ev.Collector, IngestedAt: ev.IngestedAt,
		Object: ev.Object, Encrypted: ev.Encrypted, Special: ev.Special,
		Custodian: ev.Custodian, DerivedFrom: ev.DerivedFrom,
		LastSeq: ev.LastSeq, LastLogIndex: ev.LastLogIndex, LastLeafHash: ev.LastLeafHash,
		Meta: md,
	}
	if p := ev.Pending; p != nil {
		item.Pending = &PendingRelease{To: p.To, Reason: p.Reason, Seq: p.Seq, ExpiresAt: p.ExpiresAt}
	}
	return item
}
