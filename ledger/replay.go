package ledger

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/custody-dev/custody/canonicaljson"
	"github.com/custody-dev/custody/catalog"
	"github.com/custody-dev/custody/custodylog"
	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/historymap"
	"github.com/custody-dev/custody/journal"
	"github.com/custody-dev/custody/receipt"
)

// journalPut stores jr under r's key and item, waiting for it to be
// durable when wait is set.
func (w *Writer) journalPut(ctx context.Context, r journal.Record, jr journalRecord, wait bool) error {
	b, err := json.Marshal(jr)
	if err != nil {
		return err
	}
	r.Data = b
	if err := w.journal.Put(ctx, r, wait); err != nil {
		return w.journalError(ctx, err)
	}
	return nil
}

// journalStart starts journaling jr under r's key and item, and returns
// the channel that yields nil once it is durable.
func (w *Writer) journalStart(ctx context.Context, s journal.Starter, r journal.Record, jr journalRecord) (<-chan error, error) {
	b, err := json.Marshal(jr)
	if err != nil {
		return nil, err
	}
	r.Data = b
	durable, err := s.Start(r)
	if err != nil {
		return nil, w.journalError(ctx, err)
	}
	return durable, nil
}

// journalError is what the caller reads of a failed journal write.
func (w *Writer) journalError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if diskFull(err) {
		return wrapCause(ErrNoSpace, err, "the data disk is full; nothing was recorded; retry when the operator has freed space")
	}
	return wrapCause(ErrUnavailable, err, "the record journal cannot be written; nothing was recorded; retry later")
}

// resolveCataloged tells the journal a record's event is cataloged. A
// failure only costs a later log scan (resolve), so it is logged, not
// returned.
func (w *Writer) resolveCataloged(ctx context.Context, key string) {
	if err := w.journal.Resolve(ctx, key, true); err != nil {
		w.logger.WarnContext(ctx, "resolving a journal record", "err", err)
	}
}

func receiptKey(leaf [32]byte) string { return "receipt:" + hex.EncodeToString(leaf[:]) }

// signReceipt signs a receipt and journals it, so a rebuilt catalog holds
// the very receipt the caller got. The receipt goes out with the next
// journal write without waiting for it: if a crash loses it, replay signs
// the same statement again.
func (w *Writer) signReceipt(ctx context.Context, fields canonicaljson.Object, leaf [32]byte) (receipt.Receipt, error) {
	r, err := w.receipts.Sign(fields)
	if err != nil {
		return r, err
	}
	// The entry is in the log already: failing the call now would invite a
	// retry that logs the event twice. A receipt the journal lacks is
	// signed again by replay.
	if err := w.journalPut(ctx, journal.Record{Key: receiptKey(leaf)}, journalRecord{Kind: kindReceipt, LeafHash: hex.EncodeToString(leaf[:]), Receipt: newJournalReceipt(r)}, false); err != nil {
		w.logger.WarnContext(ctx, "journaling a receipt", "err", err)
	}
	return r, nil
}

// Replay brings the catalog up to date with the log: every log entry the
// catalog lacks (after a crash, a failed catalog write, or all of them for
// a deleted catalog) is rebuilt from its journaled record, in log order,
// under its item's lock. It runs before serving and, with replicas, now
// and then while serving: a replica killed between its log append and its
// catalog write leaves entries only another replica can catalog.
func (w *Writer) Replay(ctx context.Context) (int, error) {
	applied, err := w.catalog.LogApplied(ctx)
	if err != nil {
		return 0, err
	}
	size, err := w.log.Settled(ctx)
	if err != nil {
		return 0, err
	}
	if applied >= size {
		return 0, nil
	}
	missing, err := w.catalog.MissingLogIndexes(ctx, applied, size)
	if err != nil {
		return 0, err
	}
	n, err := w.replayIndexes(ctx, missing, size, "")
	if err != nil {
		return n, err
	}
	return n, w.catalog.SetLogApplied(ctx, size)
}

// Resolve decides the outcome of item's unresolved journal records (see journal.Store)
// before a new event links to the item's latest one: a record that reached
// the log is cataloged now, so the chain continues after it; one that never
// did is dropped. The caller holds the item's lock.
func (w *Writer) Resolve(ctx context.Context, item catalog.Evidence) (catalog.Evidence, error) {
	recs, err := w.journal.Unresolved(ctx, item.ID, item.LastSeq)
	if err != nil || len(recs) == 0 {
		return item, err
	}
	size, err := w.log.Settled(ctx)
	if err != nil {
		return item, wrapCause(ErrUnavailable, err, "the custody log cannot be read; retry later")
	}
	applied, err := w.catalog.LogApplied(ctx)
	if err != nil {
		return item, err
	}
	missing, err := w.catalog.MissingLogIndexes(ctx, applied, size)
	if err != nil {
		return item, err
	}
	n, err := w.replayIndexes(ctx, missing, size, item.ID)
	if err != nil {
		return item, err
	}
	if item, err = w.catalog.Evidence(ctx, item.ID); err != nil {
		return item, err
	}
	for _, r := range recs {
		if err := w.journal.Resolve(ctx, r.Key, r.Seq <= item.LastSeq); err != nil {
			return item, err
		}
	}
	w.logger.WarnContext(ctx, "resolved the item's unresolved journal records before appending", "evidence_id", item.ID,
		"records", len(recs), "cataloged_from_log", n)
	return item, nil
}

// replayBatch bounds how many log entries replay reads at a time (and so
// its memory); the file journal is read once per batch.
const replayBatch = 16384

// replayIndexes catalogs the log entries at indexes (ascending, all below
// size) from their journaled records: all of them, or only those of item
// only, whose lock the caller then holds.
func (w *Writer) replayIndexes(ctx context.Context, indexes []uint64, size uint64, only string) (int, error) {
	n := 0
	for len(indexes) > 0 {
		batch := indexes[:min(len(indexes), replayBatch)]
		indexes = indexes[len(batch):]
		type pending struct {
			index uint64
			entry []byte
			id    string
		}
		var todo []pending
		var keys []string
		for _, i := range batch {
			entry, err := w.log.Entry(ctx, i, size)
			if err != nil {
				return n, fmt.Errorf("log entry %d: %w", i, err)
			}
			fields, err := events.ParseEntry(entry)
			if err != nil {
				return n, fmt.Errorf("log entry %d: %w", i, err)
			}
			if fields["type"] == historymap.EntryType {
				// The log's own commitment to its history map
				// (custodylog): no item's event, nothing to catalog.
				continue
			}
			id, _ := fields["evidence_id"].(string)
			if only != "" && id != only {
				continue
			}
			commitment, _ := fields["record_sha256"].(string)
			todo = append(todo, pending{i, entry, id})
			keys = append(keys, commitment, receiptKey(custodylog.LeafHash(entry)))
		}
		if len(todo) == 0 {
			continue
		}
		found, err := w.journal.Get(ctx, keys)
		if err != nil {
			return n, fmt.Errorf("reading the journal: %w", err)
		}
		records := map[string]journalRecord{}
		receipts := map[string]receipt.Receipt{}
		for _, b := range found {
			var jr journalRecord
			if err := json.Unmarshal(b, &jr); err != nil {
				return n, fmt.Errorf("journal record: %w", err)
			}
			switch jr.Kind {
			case kindItem, kindEvent:
				records[sha256Hex(jr.Record)] = jr
			case kindReceipt:
				if jr.Receipt == nil {
					return n, fmt.Errorf("journal record of a receipt (leaf %s) without the receipt", jr.LeafHash)
				}
				receipts[jr.LeafHash] = jr.Receipt.receipt()
			}
		}
		for _, p := range todo {
			applied, err := w.replayOne(ctx, p.index, p.entry, p.id, only != "", records, receipts)
			if err != nil {
				return n, fmt.Errorf("replaying log entry %d: %w", p.index, err)
			}
			if applied {
				n++
			}
		}
	}
	return n, nil
}

// replayOne catalogs one entry unless it is there by now, taking its
// item's lock unless the caller holds it.
func (w *Writer) replayOne(ctx context.Context, index uint64, entry []byte, id string, locked bool, records map[string]journalRecord, receipts map[string]receipt.Receipt) (bool, error) {
	if !locked {
		unlock, err := w.Lock(ctx, id)
		if err != nil {
			return false, err
		}
		defer unlock()
	}
	// Whoever held the lock may have cataloged it meanwhile.
	if done, err := w.catalog.HasEventAt(ctx, index); err != nil || done {
		return false, err
	}
	err := w.replayEntry(ctx, index, entry, records, receipts)
	if errors.Is(err, catalog.ErrConflict) || errors.Is(err, catalog.ErrExists) {
		// The catalog holds another event at this place in the item's
		// chain: the log has two (a fork, see docs/DEPLOYMENT.md). Both
		// stay in the log for every auditor to see; the catalog keeps the
		// first, and replay moves on rather than stopping the service.
		w.logger.ErrorContext(ctx, "log entry forks an item's chain: another event already holds its place; the catalog keeps the first",
			"log_index", index, "evidence_id", id, "err", err)
		return false, nil
	}
	return err == nil, err
}

func (w *Writer) replayEntry(ctx context.Context, index uint64, entry []byte, records map[string]journalRecord, receipts map[string]receipt.Receipt) error {
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
	rcpt, ok := receipts[hex.EncodeToString(leaf[:])]
	e := catalog.Event{
		EvidenceID: rec.EvidenceID, Seq: rec.Sequence, Type: string(rec.Type), RecordedAt: rec.RecordedAt,
		LogIndex: index, LeafHash: leaf, Record: jr.Record,
	}
	if rec.Sequence == 0 {
		if jr.Item == nil {
			return errors.New("an ingest record was journaled without its item")
		}
		ev := jr.Item.evidence()
		ev.LastSeq, ev.LastLogIndex, ev.LastLeafHash = 0, index, leaf
		// The journaled row is not committed to; the record is: the row
		// takes what the record states.
		ev = w.domain.ReplayedItem(ctx, rec, jr.Record, index, entry, ev)
		if !ok {
			// The receipt was signed but not journaled before a crash:
			// sign the same statement again.
			if rcpt, err = w.receipts.Sign(w.domain.Receipt(rec, &ev, index, leaf)); err != nil {
				return err
			}
		}
		e.ReceiptPayload, e.ReceiptSignature, e.ReceiptKeyID = rcpt.Payload, rcpt.Signature, rcpt.KeyID
		return w.catalog.AddEvidence(ctx, ev, e)
	}
	item, err := w.catalog.Evidence(ctx, rec.EvidenceID)
	if err != nil {
		return err
	}
	if !ok {
		if rcpt, err = w.receipts.Sign(w.domain.Receipt(rec, nil, index, leaf)); err != nil {
			return err
		}
	}
	e.ReceiptPayload, e.ReceiptSignature, e.ReceiptKeyID = rcpt.Payload, rcpt.Signature, rcpt.KeyID
	state, err := w.domain.NextState(catalog.ItemState{Custodian: item.Custodian, Pending: item.Pending}, rec)
	if err != nil {
		w.logger.WarnContext(ctx, "replay: a logged event breaks the custody rules; its effect is applied anyway", "evidence_id", rec.EvidenceID, "seq", rec.Sequence, "err", err)
	}
	return w.catalog.AddEvent(ctx, e, rec.Sequence-1, state)
}

// Records returns the journaled event records with these commitments (the
// file journal reads its whole file: for the rare record the catalog does
// not hold as committed).
func (w *Writer) Records(ctx context.Context, commitments []string) (map[string][]byte, error) {
	found, err := w.journal.Get(ctx, commitments)
	if err != nil {
		return nil, wrapCause(ErrUnavailable, err, "the record journal cannot be read; retry later")
	}
	out := make(map[string][]byte, len(found))
	for key, b := range found {
		var jr journalRecord
		if json.Unmarshal(b, &jr) == nil && sha256Hex(jr.Record) == key {
			out[key] = jr.Record
		}
	}
	return out, nil
}
