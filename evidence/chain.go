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
	"github.com/custody-dev/custody/failure"
	"github.com/custody-dev/custody/journal"
	"github.com/custody-dev/custody/receipt"
)

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// appendRecord journals a record (with the new item's row, for an ingest),
// then writes its entry to the log, and returns where it landed, the
// record's canonical bytes and its journal key. The caller resolves the key
// (resolveCataloged) once the catalog holds the event.
func (s *Service) appendRecord(ctx context.Context, rec events.Record, item *catalog.Evidence) (custodylog.Appended, []byte, string, error) {
	if err := rec.Validate(); err != nil {
		return custodylog.Appended{}, nil, "", err
	}
	canon, err := rec.Canonical()
	if err != nil {
		return custodylog.Appended{}, nil, "", err
	}
	entry, err := rec.Entry()
	if err != nil {
		return custodylog.Appended{}, nil, "", err
	}
	jr := journalRecord{Kind: kindEvent, Record: canon}
	if item != nil {
		jr.Kind, jr.Item = kindItem, newJournalItem(*item)
	}
	key := sha256Hex(canon)
	if err := s.journalPut(ctx, journal.Record{Key: key, EvidenceID: rec.EvidenceID, Seq: rec.Sequence}, jr, true); err != nil {
		return custodylog.Appended{}, nil, "", err
	}
	// An event on an existing item links to the predecessor read under
	// the item's lock: the lock must still be ours when the entry goes in.
	if rec.Sequence > 0 {
		if err := s.locks.Held(ctx, rec.EvidenceID); err != nil {
			return custodylog.Appended{}, nil, "", wrapCause(ErrUnavailable, err, "the item's lock was lost; nothing was logged; retry")
		}
	}
	// Once journaled, the append runs to its end whatever happens to the
	// caller: an append abandoned half-way could land after the item's
	// lock is released, beside the next writer's event.
	appended, err := s.log.Append(context.WithoutCancel(ctx), entry)
	if err != nil {
		if diskFull(err) {
			return custodylog.Appended{}, nil, "", wrapCause(ErrNoSpace, err, "the log's disk is full; the event was not recorded")
		}
		return custodylog.Appended{}, nil, "", wrapCause(ErrUnavailable, err, "the custody log cannot take the event now; nothing was logged; retry later")
	}
	if rec.Type == events.Ingest {
		s.rememberIngest(rec.EvidenceID, appended.Index, entry, canon)
	}
	return appended, canon, key, nil
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
	item, err := s.loadItem(ctx, id)
	if err != nil {
		return Event{}, err
	}
	if item, err = s.resolve(ctx, item); err != nil {
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
	appended, canon, key, err := s.appendRecord(ctx, rec, nil)
	if err != nil {
		return Event{}, item, err
	}
	// The event is in the log: catalog it even if the caller has gone.
	ctx = context.WithoutCancel(ctx)
	rcpt, err := s.signReceipt(ctx, eventReceipt(rec, appended, s.log.Origin()), appended.LeafHash)
	if err != nil {
		return Event{}, item, err
	}
	e := catalog.Event{
		EvidenceID: item.ID, Seq: rec.Sequence, Type: string(rec.Type), RecordedAt: rec.RecordedAt,
		LogIndex: appended.Index, LeafHash: appended.LeafHash, Record: canon,
		ReceiptPayload: rcpt.Payload, ReceiptSignature: rcpt.Signature, ReceiptKeyID: rcpt.KeyID,
	}
	state := catalogState(next)
	if err := s.catalog.AddEvent(ctx, e, item.LastSeq, state); err != nil {
		if errors.Is(err, catalog.ErrConflict) {
			return Event{}, item, fmt.Errorf("%w: another event was recorded for %s at the same time; retry", ErrConflict, item.ID)
		}
		return Event{}, item, err
	}
	s.resolveCataloged(ctx, key)
	item.LastSeq, item.LastLogIndex, item.LastLeafHash = rec.Sequence, appended.Index, appended.LeafHash
	item.Custodian, item.Pending = state.Custodian, state.Pending
	return Event{Event: e, Receipt: rcpt, Record: rec}, item, nil
}

// ErrConflict: a concurrent change won; the caller may retry.
var ErrConflict error = failure.New(failure.Conflict, "conflict")

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
