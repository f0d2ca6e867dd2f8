package evidence

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/custody-dev/custody/canonicaljson"
	"github.com/custody-dev/custody/catalog"
	"github.com/custody-dev/custody/custodylog"
	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/ledger"
	"github.com/custody-dev/custody/receipt"
)

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Event is a recorded custody event with its receipt.
type Event struct {
	catalog.Event
	Receipt receipt.Receipt
	Record  events.Record
}

// appendEvent adds the next event to an item's chain: it takes the item's
// lock, lapses a release whose time is up (itself an event), then links
// the new record to the item's latest event, logs it, signs the receipt and
// writes the catalog. build fills in the record from the item's current
// state and may refuse with an error.
func (s *Service) appendEvent(ctx context.Context, id string, build func(item catalog.Evidence, rec *events.Record) error) (Event, error) {
	if err := CheckID(id); err != nil {
		return Event{}, err
	}
	unlock, err := s.lockItem(ctx, id)
	if err != nil {
		return Event{}, err
	}
	defer unlock()
	item, err := s.loadItemForAppend(ctx, id)
	if err != nil {
		return Event{}, err
	}
	if item, err = s.ledger.Resolve(ctx, item); err != nil {
		return Event{}, err
	}
	// One clock reading decides whether a pending release has lapsed and
	// dates the event, so the record shows exactly what the rule saw.
	at := s.now().UTC()
	if p := item.Pending; p != nil && !at.Before(p.ExpiresAt) {
		_, item, err = s.appendLocked(ctx, item, at, func(_ catalog.Evidence, rec *events.Record) error {
			rec.Type = events.ReleaseExpired
			rec.Performer = ServicePerformer
			rec.Counterparty = p.To
			rec.Details = canonicaljson.Object{"release_seq": p.Seq, "expired_at": events.FormatTime(p.ExpiresAt)}
			return nil
		})
		if err != nil {
			return Event{}, err
		}
	}
	ev, _, err := s.appendLocked(ctx, item, at, build)
	return ev, err
}

// appendLocked appends one event dated at to item, whose lock the caller
// holds, and returns the event and the item as it now is. Every event is
// checked against the custody rules (events.State.Next) before it is
// logged.
func (s *Service) appendLocked(ctx context.Context, item catalog.Evidence, at time.Time, build func(item catalog.Evidence, rec *events.Record) error) (Event, catalog.Evidence, error) {
	rec := events.Record{
		EvidenceID: item.ID,
		Sequence:   item.LastSeq + 1,
		RecordedAt: at,
		Previous:   &events.Link{Index: item.LastLogIndex, LeafHash: item.LastLeafHash},
		Salt:       events.NewSalt(),
	}
	if err := build(item, &rec); err != nil {
		return Event{}, item, err
	}
	next, err := stateOf(item).Next(rec)
	if err != nil {
		return Event{}, item, ruleError(err)
	}
	state := catalogState(next)
	ack, err := s.ledger.Append(ctx, rec, ledger.Projection{State: state})
	if err != nil {
		return Event{}, item, err
	}
	item.LastSeq, item.LastLogIndex, item.LastLeafHash = rec.Sequence, ack.Row.LogIndex, ack.Row.LeafHash
	item.Custodian, item.Pending = state.Custodian, state.Pending
	return Event{Event: ack.Row, Receipt: ack.Receipt, Record: rec}, item, nil
}

// appendCatalog is a catalog that keeps the rows of items being appended
// to in memory (catalog/sqlite, one process): EvidenceForAppend answers,
// for the holder of the item's lock, what Evidence would once the item's
// queued writes are done, without reading the file.
type appendCatalog interface {
	EvidenceForAppend(ctx context.Context, id string) (catalog.Evidence, error)
}

// loadItemForAppend is loadItem for the holder of the item's lock who
// appends its next event.
func (s *Service) loadItemForAppend(ctx context.Context, id string) (catalog.Evidence, error) {
	ac, ok := s.catalog.(appendCatalog)
	if !ok {
		return s.loadItem(ctx, id)
	}
	ev, err := ac.EvidenceForAppend(ctx, id)
	if errors.Is(err, catalog.ErrNotFound) {
		return ev, fmt.Errorf("%w: no evidence %s", ErrNotFound, id)
	}
	if err != nil && ctx.Err() == nil {
		return ev, wrapCause(ErrUnavailable, err, "the catalog cannot be read; retry later")
	}
	return ev, err
}

// ErrConflict: a concurrent change won; the caller may retry.
var ErrConflict = ledger.ErrConflict

func eventReceipt(rec events.Record, a custodylog.Appended, origin string) canonicaljson.Object {
	return canonicaljson.Object{
		"type":        "event",
		"event_type":  string(rec.Type),
		"evidence_id": rec.EvidenceID,
		"seq":         rec.Sequence,
		"time":        events.FormatTime(rec.RecordedAt),
		"log_origin":  origin,
		"log_index":   a.Index,
		"leaf_hash":   hex.EncodeToString(a.LeafHash[:]),
	}
}
