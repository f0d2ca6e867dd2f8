// Package catalog defines the service's queryable index of evidence and
// custody events: a small interface, its types and errors. The catalog is a
// projection: everything in it can be rebuilt from the log and the stored
// records. Backends are one package each (catalog/sqlite).
package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/custody-dev/custody/storage"
)

// Evidence is one item's catalog row.
type Evidence struct {
	ID                string
	CaseID            string
	Kind              string
	SHA256            string
	Size              int64
	MediaType         string
	DeclaredMediaType string
	Collector         string
	IngestedAt        time.Time
	Object            storage.Object
	// Encrypted says the stored bytes are age ciphertext.
	Encrypted bool
	// Special marks GDPR Art. 9 data: Metadata is then age ciphertext.
	Special bool
	// Metadata is the descriptive metadata as JSON (package evidence owns
	// its shape), encrypted for special-category items.
	Metadata []byte
	// Custodian is the identity holding the item now, and Pending a
	// release waiting for its recipient.
	Custodian   string
	Pending     *PendingRelease
	DerivedFrom string
	// LastSeq, LastLogIndex and LastLeafHash locate the item's latest event.
	LastSeq      uint64
	LastLogIndex uint64
	LastLeafHash [32]byte
}

// PendingRelease is a release not yet accepted, cancelled or expired.
type PendingRelease struct {
	To        string
	Reason    string
	Seq       uint64
	ExpiresAt time.Time
}

// ItemState is the part of an item that events change.
type ItemState struct {
	Custodian string
	Pending   *PendingRelease
}

// Event is one custody event's catalog row.
type Event struct {
	EvidenceID string
	Seq        uint64
	Type       string
	RecordedAt time.Time
	LogIndex   uint64
	LeafHash   [32]byte
	// Record is the canonical event record (package events).
	Record []byte
	// Receipt is the signed receipt: payload, signature, key id.
	ReceiptPayload   []byte
	ReceiptSignature []byte
	ReceiptKeyID     string
}

// Catalog stores and answers queries about evidence and events.
// Implementations are safe for concurrent use.
type Catalog interface {
	// AddEvidence inserts a new item with its first (ingest) event, in one
	// transaction. It fails with ErrExists if the id is taken. Items list
	// in the order of their ingest events in the log.
	AddEvidence(ctx context.Context, ev Evidence, first Event) error
	// Evidence returns one item, or ErrNotFound.
	Evidence(ctx context.Context, id string) (Evidence, error)
	// ListByCase returns up to limit items of a case in ingest order,
	// starting after the item with id after (empty: from the start).
	ListByCase(ctx context.Context, caseID, after string, limit int) ([]Evidence, error)
	// ListAll returns up to limit items of every case in ingest order,
	// starting after the item with id after (empty: from the start).
	ListAll(ctx context.Context, after string, limit int) ([]Evidence, error)
	// EvidenceBySHA256 returns the first item (in ingest order) whose
	// content has this digest and is stored unencrypted, if the catalog
	// knows one: its sealed object can hold another upload of the same
	// content.
	EvidenceBySHA256(ctx context.Context, sha256 string) (Evidence, bool, error)
	// AddEvent appends an event to an item's chain, if the item's latest
	// event is still prevSeq (else ErrConflict), and sets its new state.
	AddEvent(ctx context.Context, e Event, prevSeq uint64, state ItemState) error
	// HasEventAt reports whether the event at a log index is cataloged.
	HasEventAt(ctx context.Context, logIndex uint64) (bool, error)
	// MissingLogIndexes returns the log indexes in [from, to) with no
	// cataloged event, ascending.
	MissingLogIndexes(ctx context.Context, from, to uint64) ([]uint64, error)
	// LogApplied returns how many log entries are known to be in the
	// catalog (every entry below it is); SetLogApplied records it. The
	// mark never goes back: a smaller n than the recorded one is ignored
	// (replicas record it concurrently).
	LogApplied(ctx context.Context) (uint64, error)
	SetLogApplied(ctx context.Context, n uint64) error
	// Events returns an item's events in sequence order.
	Events(ctx context.Context, evidenceID string) ([]Event, error)
	// EventsFrom returns at most limit of an item's events with sequence
	// from or later, in sequence order: a page of a history of any length.
	EventsFrom(ctx context.Context, evidenceID string, from uint64, limit int) ([]Event, error)
	// IngestEvents returns the ingest (sequence 0) events of those of the
	// items ids that the catalog holds, in no particular order.
	IngestEvents(ctx context.Context, ids []string) ([]Event, error)
	// RepairEvidence rewrites the columns of item ev.ID that its logged
	// ingest record states (case, kind, digest, size, media type,
	// collector, ingest time, special flag, stored object, encrypted
	// flag) with ev's, and keeps the others (metadata, custody state, the
	// latest event). It fails with ErrNotFound if there is no such item.
	RepairEvidence(ctx context.Context, ev Evidence) error
	// Close releases the catalog.
	Close() error
}

// Errors of every backend.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrConflict = errors.New("concurrent update")
)

// MissingFromRows reads the cataloged log indexes in [from, to) from rows
// (one integer column, ascending) and returns the indexes in that range
// that are not among them: the shared half of MissingLogIndexes for SQL
// backends. It closes rows.
func MissingFromRows(rows *sql.Rows, from, to uint64) ([]uint64, error) {
	defer rows.Close()
	var missing []uint64
	next := from
	for rows.Next() {
		var i int64
		if err := rows.Scan(&i); err != nil {
			return nil, err
		}
		for ; next < uint64(i); next++ {
			missing = append(missing, next)
		}
		next = uint64(i) + 1
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for ; next < to; next++ {
		missing = append(missing, next)
	}
	return missing, nil
}

// Placeholders returns n SQL placeholders separated by commas, numbered
// from first when numbered ($1, $2… for PostgreSQL) or "?" each.
func Placeholders(n, first int, numbered bool) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		if numbered {
			fmt.Fprintf(&b, "$%d", first+i)
		} else {
			b.WriteByte('?')
		}
	}
	return b.String()
}
