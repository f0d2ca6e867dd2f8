package evidence

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"syscall"

	"github.com/custody-dev/custody/canonicaljson"
	"github.com/custody-dev/custody/catalog"
	"github.com/custody-dev/custody/custodylog"
	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/journal"
	"github.com/custody-dev/custody/receipt"
)

// journalRecord is one record of the journal: an event record (with the
// new item's catalog row for an ingest) written before its log entry, or
// the receipt of a logged entry.
type journalRecord struct {
	Kind     string            `json:"kind"` // item, event or receipt
	Record   []byte            `json:"record,omitempty"`
	Item     *catalog.Evidence `json:"item,omitempty"`
	LeafHash string            `json:"leaf_hash,omitempty"`
	Receipt  *receipt.Receipt  `json:"receipt,omitempty"`
}

func (s *Service) journalAppend(ctx context.Context, jr journalRecord) error {
	b, err := json.Marshal(jr)
	if err != nil {
		return err
	}
	if err := s.journal.Append(ctx, b); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, syscall.ENOSPC) {
			return fmt.Errorf("%w: the data disk is full; nothing was recorded; retry when the operator has freed space", ErrNoSpace)
		}
		return fmt.Errorf("%w: the record journal cannot be written: %v", ErrUnavailable, err)
	}
	return nil
}

// signReceipt signs a receipt and journals it, so a rebuilt catalog holds
// the very receipt the caller got. The receipt goes out with the next
// journal write without waiting for it: if a crash loses it, replay signs
// the same statement again.
func (s *Service) signReceipt(ctx context.Context, fields canonicaljson.Object, leaf [32]byte) (receipt.Receipt, error) {
	r, err := s.receipts.Sign(fields)
	if err != nil {
		return r, err
	}
	b, err := json.Marshal(journalRecord{Kind: "receipt", LeafHash: hex.EncodeToString(leaf[:]), Receipt: &r})
	if err != nil {
		return r, err
	}
	return r, s.journal.Enqueue(b)
}

// Replay brings the catalog up to date with the log: every log entry the
// catalog lacks (after a crash, or all of them for a deleted catalog) is
// rebuilt from its journaled record, in log order. It runs before serving.
func (s *Service) Replay(ctx context.Context, journalPath string) (int, error) {
	applied, err := s.catalog.LogApplied(ctx)
	if err != nil {
		return 0, err
	}
	size, err := s.log.Settled(ctx)
	if err != nil {
		return 0, err
	}
	if applied >= size {
		return 0, nil
	}
	records := map[string]journalRecord{} // by commitment
	receipts := map[string]receipt.Receipt{}
	err = journal.Scan(journalPath, func(b []byte) error {
		var jr journalRecord
		if err := json.Unmarshal(b, &jr); err != nil {
			return fmt.Errorf("journal record: %w", err)
		}
		switch jr.Kind {
		case "item", "event":
			records[sha256Hex(jr.Record)] = jr
		case "receipt":
			receipts[jr.LeafHash] = *jr.Receipt
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for i := applied; i < size; i++ {
		done, err := s.catalog.HasEventAt(ctx, i)
		if err != nil {
			return n, err
		}
		if done {
			continue
		}
		entry, err := s.log.Entry(ctx, i, size)
		if err != nil {
			return n, fmt.Errorf("log entry %d: %w", i, err)
		}
		if err := s.replayEntry(ctx, i, entry, records, receipts); err != nil {
			return n, fmt.Errorf("replaying log entry %d: %w", i, err)
		}
		n++
	}
	return n, s.catalog.SetLogApplied(ctx, size)
}

func (s *Service) replayEntry(ctx context.Context, index uint64, entry []byte, records map[string]journalRecord, receipts map[string]receipt.Receipt) error {
	fields, err := events.ParseEntry(entry)
	if err != nil {
		return err
	}
	commitment, _ := fields["record_sha256"].(string)
	jr, ok := records[commitment]
	if !ok {
		return errors.New("no journaled record has its commitment; the journal is incomplete")
	}
	rec, err := events.ParseRecord(jr.Record)
	if err != nil {
		return err
	}
	leaf := custodylog.LeafHash(entry)
	appended := custodylog.Appended{Index: index, LeafHash: leaf}
	rcpt, ok := receipts[hex.EncodeToString(leaf[:])]
	e := catalog.Event{
		EvidenceID: rec.EvidenceID, Seq: rec.Sequence, Type: string(rec.Type), RecordedAt: rec.RecordedAt,
		LogIndex: index, LeafHash: leaf, Record: jr.Record,
	}
	if rec.Sequence == 0 {
		if jr.Item == nil {
			return errors.New("an ingest record was journaled without its item")
		}
		ev := *jr.Item
		ev.LastSeq, ev.LastLogIndex, ev.LastLeafHash = 0, index, leaf
		if !ok {
			// The receipt was signed but not journaled before a crash:
			// sign the same statement again.
			if rcpt, err = s.receipts.Sign(ingestReceipt(ev, index, leaf, s.log.Origin())); err != nil {
				return err
			}
		}
		e.ReceiptPayload, e.ReceiptSignature, e.ReceiptKeyID = rcpt.Payload, rcpt.Signature, rcpt.KeyID
		return s.catalog.AddEvidence(ctx, ev, e)
	}
	item, err := s.catalog.Evidence(ctx, rec.EvidenceID)
	if err != nil {
		return err
	}
	if !ok {
		if rcpt, err = s.receipts.Sign(eventReceipt(rec, appended, s.log.Origin())); err != nil {
			return err
		}
	}
	e.ReceiptPayload, e.ReceiptSignature, e.ReceiptKeyID = rcpt.Payload, rcpt.Signature, rcpt.KeyID
	state := nextState(catalog.ItemState{Custodian: item.Custodian, Pending: item.Pending}, rec)
	return s.catalog.AddEvent(ctx, e, rec.Sequence-1, state)
}
