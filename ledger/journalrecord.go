package ledger

import (
	"time"

	"github.com/custody-dev/custody/catalog"
	"github.com/custody-dev/custody/receipt"
	"github.com/custody-dev/custody/storage"
)

// The kinds of journal record.
const (
	kindItem    = "item"    // an ingest's event record, with the new item's catalog row
	kindEvent   = "event"   // any later event record
	kindReceipt = "receipt" // the receipt of a logged entry
)

// journalRecord is the body of every record the service journals
// (journal.Record.Data): an event record (with the new item's catalog row
// for an ingest) written before its log entry, or the receipt of a logged
// entry.
//
// It and the types below are an on-disk format: journals written years
// ago are replayed through them. Every field therefore carries its JSON
// name explicitly, and those names never change, whatever the Go fields
// or the catalog's types are called: the nested item keeps the Go field
// names of the catalog row it was first encoded from. Golden files
// (testdata/journal/*.json) pin the encoding; TestJournalRecordGolden
// fails on any change.
type journalRecord struct {
	Kind     string          `json:"kind"` // kindItem, kindEvent or kindReceipt
	Record   []byte          `json:"record,omitempty"`
	Item     *journalItem    `json:"item,omitempty"`
	LeafHash string          `json:"leaf_hash,omitempty"`
	Receipt  *journalReceipt `json:"receipt,omitempty"`
}

// journalItem is a catalog.Evidence in the journal.
type journalItem struct {
	ID                string          `json:"ID"`
	CaseID            string          `json:"CaseID"`
	Kind              string          `json:"Kind"`
	SHA256            string          `json:"SHA256"`
	Size              int64           `json:"Size"`
	MediaType         string          `json:"MediaType"`
	DeclaredMediaType string          `json:"DeclaredMediaType"`
	Collector         string          `json:"Collector"`
	IngestedAt        time.Time       `json:"IngestedAt"`
	Object            journalObject   `json:"Object"`
	Encrypted         bool            `json:"Encrypted"`
	Special           bool            `json:"Special"`
	Metadata          []byte          `json:"Metadata"`
	Custodian         string          `json:"Custodian"`
	Pending           *journalPending `json:"Pending"`
	DerivedFrom       string          `json:"DerivedFrom"`
	LastSeq           uint64          `json:"LastSeq"`
	LastLogIndex      uint64          `json:"LastLogIndex"`
	LastLeafHash      [32]byte        `json:"LastLeafHash"` // a JSON array of 32 numbers
}

// journalObject is a storage.Object in the journal.
type journalObject struct {
	Backend     string    `json:"Backend"`
	Bucket      string    `json:"Bucket"`
	Key         string    `json:"Key"`
	VersionID   string    `json:"VersionID"`
	Size        int64     `json:"Size"`
	RetainUntil time.Time `json:"RetainUntil"`
}

// journalPending is a catalog.PendingRelease in the journal.
type journalPending struct {
	To        string    `json:"To"`
	Reason    string    `json:"Reason"`
	Seq       uint64    `json:"Seq"`
	ExpiresAt time.Time `json:"ExpiresAt"`
}

// journalReceipt is a receipt.Receipt in the journal.
type journalReceipt struct {
	Payload   []byte `json:"Payload"`
	Signature []byte `json:"Signature"`
	KeyID     string `json:"KeyID"`
}

func newJournalItem(e catalog.Evidence) *journalItem {
	ji := &journalItem{
		ID: e.ID, CaseID: e.CaseID, Kind: e.Kind, SHA256: e.SHA256, Size: e.Size,
		MediaType: e.MediaType, DeclaredMediaType: e.DeclaredMediaType, Collector: e.Collector, IngestedAt: e.IngestedAt,
		Object: journalObject{
			Backend: e.Object.Backend, Bucket: e.Object.Bucket, Key: e.Object.Key, VersionID: e.Object.VersionID,
			Size: e.Object.Size, RetainUntil: e.Object.RetainUntil,
		},
		Encrypted: e.Encrypted, Special: e.Special, Metadata: e.Metadata, Custodian: e.Custodian, DerivedFrom: e.DerivedFrom,
		LastSeq: e.LastSeq, LastLogIndex: e.LastLogIndex, LastLeafHash: e.LastLeafHash,
	}
	if p := e.Pending; p != nil {
		ji.Pending = &journalPending{To: p.To, Reason: p.Reason, Seq: p.Seq, ExpiresAt: p.ExpiresAt}
	}
	return ji
}

func (ji *journalItem) evidence() catalog.Evidence {
	e := catalog.Evidence{
		ID: ji.ID, CaseID: ji.CaseID, Kind: ji.Kind, SHA256: ji.SHA256, Size: ji.Size,
		MediaType: ji.MediaType, DeclaredMediaType: ji.DeclaredMediaType, Collector: ji.Collector, IngestedAt: ji.IngestedAt,
		Object: storage.Object{
			Backend: ji.Object.Backend, Bucket: ji.Object.Bucket, Key: ji.Object.Key, VersionID: ji.Object.VersionID,
			Size: ji.Object.Size, RetainUntil: ji.Object.RetainUntil,
		},
		Encrypted: ji.Encrypted, Special: ji.Special, Metadata: ji.Metadata, Custodian: ji.Custodian, DerivedFrom: ji.DerivedFrom,
		LastSeq: ji.LastSeq, LastLogIndex: ji.LastLogIndex, LastLeafHash: ji.LastLeafHash,
	}
	if p := ji.Pending; p != nil {
		e.Pending = &catalog.PendingRelease{To: p.To, Reason: p.Reason, Seq: p.Seq, ExpiresAt: p.ExpiresAt}
	}
	return e
}

func newJournalReceipt(r receipt.Receipt) *journalReceipt {
	return &journalReceipt{Payload: r.Payload, Signature: r.Signature, KeyID: r.KeyID}
}

func (jr *journalReceipt) receipt() receipt.Receipt {
	return receipt.Receipt{Payload: jr.Payload, Signature: jr.Signature, KeyID: jr.KeyID}
}
