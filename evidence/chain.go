package evidence

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/custody-dev/custody/canonicaljson"
	"github.com/custody-dev/custody/catalog"
	"github.com/custody-dev/custody/custodylog"
	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/receipt"
)

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// appendRecord writes a record's entry to the log and returns where it
// landed and the record's canonical bytes.
func (s *Service) appendRecord(ctx context.Context, rec events.Record) (custodylog.Appended, []byte, error) {
	if err := rec.Validate(); err != nil {
		return custodylog.Appended{}, nil, err
	}
	canon, err := rec.Canonical()
	if err != nil {
		return custodylog.Appended{}, nil, err
	}
	entry, err := rec.Entry()
	if err != nil {
		return custodylog.Appended{}, nil, err
	}
	appended, err := s.log.Append(ctx, entry)
	if err != nil {
		if ctx.Err() != nil {
			return custodylog.Appended{}, nil, ctx.Err()
		}
		return custodylog.Appended{}, nil, fmt.Errorf("%w: the custody log cannot take the event: %v", ErrUnavailable, err)
	}
	return appended, canon, nil
}

// Event is a recorded custody event with its receipt.
type Event struct {
	catalog.Event
	Receipt receipt.Receipt
}

// appendEvent adds the next event to an item's chain: it takes the item's
// lock, links the record to the item's latest event, logs it, signs the
// receipt and writes the catalog. build fills in the record from the
// item's current state and may refuse with an error.
func (s *Service) appendEvent(ctx context.Context, id string, build func(item catalog.Evidence, rec *events.Record) error) (Event, error) {
	unlock := s.lockItem(id)
	defer unlock()
	item, err := s.loadItem(ctx, id)
	if err != nil {
		return Event{}, err
	}
	rec := events.Record{
		EvidenceID: id,
		Sequence:   item.LastSeq + 1,
		RecordedAt: s.now().UTC(),
		Previous:   &events.Link{Index: item.LastLogIndex, LeafHash: item.LastLeafHash},
		Salt:       events.NewSalt(),
	}
	if err := build(item, &rec); err != nil {
		return Event{}, err
	}
	appended, canon, err := s.appendRecord(ctx, rec)
	if err != nil {
		return Event{}, err
	}
	rcpt, err := s.receipts.Sign(eventReceipt(rec, appended, s.log.Origin()))
	if err != nil {
		return Event{}, err
	}
	e := catalog.Event{
		EvidenceID: id, Seq: rec.Sequence, Type: string(rec.Type), RecordedAt: rec.RecordedAt,
		LogIndex: appended.Index, LeafHash: appended.LeafHash, Record: canon,
		ReceiptPayload: rcpt.Payload, ReceiptSignature: rcpt.Signature, ReceiptKeyID: rcpt.KeyID,
	}
	if err := s.catalog.AddEvent(ctx, e, item.LastSeq, custodianAfter(item, rec)); err != nil {
		if errors.Is(err, catalog.ErrConflict) {
			return Event{}, fmt.Errorf("%w: another event was recorded for %s at the same time; retry", ErrConflict, id)
		}
		return Event{}, err
	}
	return Event{Event: e, Receipt: rcpt}, nil
}

// ErrConflict: a concurrent change won; the caller may retry.
var ErrConflict = errors.New("conflict")

// custodianAfter is who holds the item once rec is recorded.
func custodianAfter(item catalog.Evidence, rec events.Record) string {
	if rec.Type == events.Accept {
		return rec.Performer
	}
	return item.Custodian
}

func eventReceipt(rec events.Record, a custodylog.Appended, origin string) canonicaljson.Object {
	return canonicaljson.Object{
		"type":        "event",
		"event_type":  string(rec.Type),
		"evidence_id": rec.EvidenceID,
		"seq":         rec.Sequence,
		"performer":   rec.Performer,
		"time":        events.FormatTime(rec.RecordedAt),
		"log_origin":  origin,
		"log_index":   a.Index,
		"leaf_hash":   hex.EncodeToString(a.LeafHash[:]),
	}
}
