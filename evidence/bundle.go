package evidence

import (
	"context"
	"fmt"
	"time"

	"github.com/custody-dev/custody/canonicaljson"
	"github.com/custody-dev/custody/catalog"
	"github.com/custody-dev/custody/custodylog"
	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/verify"
)

// checkpointWait bounds how long a bundle waits for a checkpoint that
// covers the item's latest event.
const checkpointWait = 15 * time.Second

// Bundle builds the court bundle of an item (docs/BUNDLE.md): its record,
// every event with its entry, record, receipt and inclusion proof to one
// signed checkpoint covering them all, and the service's keys as hints.
// Callers who may not read a special-category item get the commitments
// only. consistencyFrom, if not 0, adds a consistency proof from that tree
// size.
func (s *Service) Bundle(ctx context.Context, who identity.Identity, id string, consistencyFrom uint64) (*verify.Bundle, error) {
	item, err := s.loadItem(ctx, id)
	if err != nil {
		return nil, err
	}
	readable := !item.Special || s.mayReadSpecial(who, item)
	rows, err := s.catalog.Events(ctx, id)
	if err != nil {
		return nil, err
	}
	cp, err := s.checkpointCovering(ctx, rows[len(rows)-1].LogIndex)
	if err != nil {
		return nil, err
	}
	b := &verify.Bundle{
		Format: verify.Format, Version: verify.Version, CreatedAt: events.FormatTime(s.now()),
		Evidence: verify.Evidence{
			EvidenceID: item.ID, SHA256: item.SHA256, Size: item.Size, MediaType: item.MediaType,
			Kind: item.Kind, CaseID: item.CaseID, Withheld: !readable,
		},
		Log:  verify.Log{Origin: s.log.Origin(), Checkpoint: string(cp.Raw), TreeSize: cp.Size},
		Keys: s.keys,
	}
	if readable {
		full, err := s.decode(item, true)
		if err != nil {
			return nil, err
		}
		if b.Evidence.Metadata, err = canonicalMetadata(full.Meta); err != nil {
			return nil, err
		}
	}
	for _, row := range rows {
		entry, err := s.log.Entry(ctx, row.LogIndex, cp.Size)
		if err != nil {
			return nil, fmt.Errorf("log entry %d: %w", row.LogIndex, err)
		}
		p, err := s.log.InclusionProof(ctx, row.LogIndex, cp.Size)
		if err != nil {
			return nil, fmt.Errorf("inclusion proof of %d: %w", row.LogIndex, err)
		}
		ev := verify.Event{
			Seq: row.Seq, LogIndex: row.LogIndex, Entry: string(entry), InclusionProof: p,
			Receipt: &verify.Receipt{Payload: string(row.ReceiptPayload), Signature: row.ReceiptSignature, KeyID: row.ReceiptKeyID},
		}
		if readable {
			ev.Record = string(row.Record)
		}
		b.Events = append(b.Events, ev)
	}
	if consistencyFrom > 0 {
		if consistencyFrom > cp.Size {
			return nil, fmt.Errorf("%w: consistency_from_size %d is past the log's %d entries", ErrInvalid, consistencyFrom, cp.Size)
		}
		p, err := s.log.ConsistencyProof(ctx, consistencyFrom, cp.Size)
		if err != nil {
			return nil, err
		}
		b.Consistency = &verify.Consistency{FromSize: consistencyFrom, Proof: p}
	}
	return b, nil
}

// checkpointCovering waits until a published checkpoint includes index.
func (s *Service) checkpointCovering(ctx context.Context, index uint64) (custodylog.Published, error) {
	deadline := time.Now().Add(checkpointWait)
	for {
		cp, err := s.log.Latest(ctx)
		if err == nil && cp.Size > index {
			return cp, nil
		}
		if time.Now().After(deadline) {
			return custodylog.Published{}, fmt.Errorf("%w: no checkpoint covers log entry %d yet; retry shortly", ErrUnavailable, index)
		}
		select {
		case <-ctx.Done():
			return custodylog.Published{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Verification is the outcome of VerifyStored.
type Verification struct {
	OK     bool
	Checks []verify.Check
	Event  Event
}

// VerifyStored re-hashes the stored bytes of an item, checks its events
// against the current checkpoint with the offline verifier and the
// service's own keys, and logs the result as a verification event.
func (s *Service) VerifyStored(ctx context.Context, who identity.Identity, id string) (Verification, error) {
	item, err := s.loadItem(ctx, id)
	if err != nil {
		return Verification{}, err
	}
	var checks []verify.Check
	contentErr := s.rehash(ctx, item)
	checks = append(checks, verify.Check{Name: "stored bytes", OK: contentErr == nil, Detail: detail(contentErr, "the stored object hashes to "+item.SHA256)})

	b, err := s.Bundle(ctx, identity.Identity{Role: identity.RoleCourt, Name: "custodyd"}, id, 0)
	if err != nil {
		return Verification{}, err
	}
	report := verify.Verify(b, verify.Options{LogVerifierKey: s.keys.LogVerifierKey, ReceiptKeyPEM: []byte(s.keys.ReceiptPublicKeyPEM)})
	checks = append(checks, report.Checks...)
	ok := contentErr == nil && report.OK
	ev, err := s.appendEvent(ctx, id, func(_ catalog.Evidence, rec *events.Record) error {
		rec.Type = events.Verification
		rec.Performer = who.String()
		outcome := "succeeded"
		if !ok {
			outcome = "failed"
		}
		rec.Details = canonicaljson.Object{"outcome": outcome, "content_ok": contentErr == nil, "log_ok": report.OK, "tree_size": b.Log.TreeSize}
		return nil
	})
	if err != nil {
		return Verification{}, err
	}
	if !ok {
		s.logger.ErrorContext(ctx, "evidence failed verification", "evidence_id", id, "content_ok", contentErr == nil, "log_ok", report.OK)
	}
	return Verification{OK: ok, Checks: checks, Event: ev}, nil
}

func detail(err error, okText string) string {
	if err != nil {
		return err.Error()
	}
	return okText
}
