package evidence

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/custody-dev/custody/canonicaljson"
	"github.com/custody-dev/custody/catalog"
	"github.com/custody-dev/custody/custodylog"
	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/failure"
	"github.com/custody-dev/custody/historymap"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/verify"
)

// checkpointWait bounds how long a bundle waits for a checkpoint that
// covers the item's latest event.
const checkpointWait = 15 * time.Second

// MaxBundleEvents is the longest history served as one bundle document;
// a longer one is served in the stream form (StreamBundle), which has no
// limit.
const MaxBundleEvents = 10_000

// bundleAccessPurpose is the purpose of the access event a bundle of a
// special-category item records.
const bundleAccessPurpose = "court bundle: the special-category item's metadata and records exported"

// bundlePage is how many events a bundle reads from the catalog and the
// log at a time.
const bundlePage = 256

// Bundle builds the court bundle of an item (docs/BUNDLE.md): its record,
// every event with its entry, record, receipt and inclusion proof to one
// signed checkpoint covering them all, and the service's keys as hints.
// Callers who may not read a special-category item get the commitments
// only. consistencyFrom, if not 0, adds a consistency proof from that tree
// size. A history longer than the configured limit (MaxBundleEvents by
// default) is refused with ErrFailedPrecondition: StreamBundle serves it.
func (s *Service) Bundle(ctx context.Context, who identity.Identity, id string, consistencyFrom uint64) (*verify.Bundle, error) {
	h, item, readable, err := s.bundleHeader(ctx, who, id, consistencyFrom)
	if err != nil {
		return nil, err
	}
	if limit := s.maxBundleEvents(); h.EventCount > uint64(limit) {
		return nil, fmt.Errorf("%w: the history of %s has %d events, more than the %d one bundle document holds; fetch the stream form (custody bundle writes it by itself; gRPC StreamBundle; GET /v1/evidence/%s/bundle:stream)", ErrFailedPrecondition, id, h.EventCount, limit, id)
	}
	b := &verify.Bundle{
		Format: verify.Format, Version: verify.Version, CreatedAt: h.CreatedAt, Evidence: h.Evidence,
		Log: h.Log, Keys: h.Keys, Consistency: h.Consistency, Completeness: h.Completeness,
	}
	err = s.bundleEvents(ctx, item, readable, h, func(ev verify.Event) error {
		b.Events = append(b.Events, ev)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// StreamBundle writes an item's bundle in the stream form (docs/BUNDLE.md):
// the header line, then one line per event, each handed to emit without a
// newline. It holds one page of events at a time, so a history of any
// length can be exported.
func (s *Service) StreamBundle(ctx context.Context, who identity.Identity, id string, consistencyFrom uint64, emit func(line []byte) error) error {
	h, item, readable, err := s.bundleHeader(ctx, who, id, consistencyFrom)
	if err != nil {
		return err
	}
	line, err := json.Marshal(h)
	if err != nil {
		return err
	}
	if err := emit(line); err != nil {
		return err
	}
	return s.bundleEvents(ctx, item, readable, h, func(ev verify.Event) error {
		line, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		return emit(line)
	})
}

func (s *Service) maxBundleEvents() int {
	if s.cfg.MaxBundleEvents > 0 {
		return s.cfg.MaxBundleEvents
	}
	return MaxBundleEvents
}

// bundleHeader is everything a bundle states but its events, for the item
// as it is now: the events up to its latest, under a checkpoint covering
// that one.
func (s *Service) bundleHeader(ctx context.Context, who identity.Identity, id string, consistencyFrom uint64) (verify.StreamHeader, catalog.Evidence, bool, error) {
	item, err := s.loadItem(ctx, id)
	if err != nil {
		return verify.StreamHeader{}, catalog.Evidence{}, false, err
	}
	readable := !item.Special || s.mayReadSpecial(who, item)
	if item.Special && readable {
		// The bundle carries the decrypted metadata and every record of
		// special-category data: like any read of it, an access event,
		// logged first (and so part of the bundle).
		if _, err := s.appendEvent(ctx, id, func(_ catalog.Evidence, rec *events.Record) error {
			rec.Type = events.Access
			rec.Performer = who.String()
			rec.Purpose = bundleAccessPurpose
			return nil
		}); err != nil {
			return verify.StreamHeader{}, catalog.Evidence{}, false, err
		}
		if item, err = s.loadItem(ctx, id); err != nil {
			return verify.StreamHeader{}, catalog.Evidence{}, false, err
		}
	}
	cp, history, err := s.checkpointCovering(ctx, item.ID, item.LastLogIndex)
	for tries := 0; err == nil && history != nil && tries < 3; tries++ {
		// The map may name an event logged after the item was read: the
		// bundle must hold it, or it proves itself cut short.
		leaf, perr := historymap.ParseLeaf(history.Leaf)
		if perr != nil {
			return verify.StreamHeader{}, catalog.Evidence{}, false, perr
		}
		if leaf.Seq <= item.LastSeq {
			break
		}
		if item, err = s.loadItem(ctx, id); err != nil {
			return verify.StreamHeader{}, catalog.Evidence{}, false, err
		}
		cp, history, err = s.checkpointCovering(ctx, item.ID, item.LastLogIndex)
	}
	if err != nil {
		return verify.StreamHeader{}, catalog.Evidence{}, false, err
	}
	completeness, err := s.completeness(ctx, history, cp.Size)
	if err != nil {
		return verify.StreamHeader{}, catalog.Evidence{}, false, err
	}
	h := verify.StreamHeader{
		Format: verify.StreamFormat, Version: verify.StreamVersion, CreatedAt: events.FormatTime(s.now()),
		Evidence: verify.Evidence{
			EvidenceID: item.ID, SHA256: item.SHA256, Size: item.Size, MediaType: item.MediaType,
			Kind: item.Kind, CaseID: item.CaseID, Withheld: !readable,
		},
		Log:          verify.Log{Origin: s.log.Origin(), Checkpoint: string(cp.Raw), TreeSize: cp.Size, Timestamps: bundleTimestamps(cp.Timestamps)},
		Keys:         s.keys,
		Completeness: completeness,
		EventCount:   item.LastSeq + 1,
	}
	if readable {
		full, err := s.decode(item, true)
		if err != nil {
			return verify.StreamHeader{}, catalog.Evidence{}, false, err
		}
		if h.Evidence.Metadata, err = canonicalMetadata(full.Meta); err != nil {
			return verify.StreamHeader{}, catalog.Evidence{}, false, err
		}
	}
	if consistencyFrom > 0 {
		if consistencyFrom > cp.Size {
			return verify.StreamHeader{}, catalog.Evidence{}, false, fmt.Errorf("%w: consistency_from_size %d is past the log's %d entries", ErrInvalid, consistencyFrom, cp.Size)
		}
		p, err := s.log.ConsistencyProof(ctx, consistencyFrom, cp.Size)
		if err != nil {
			return verify.StreamHeader{}, catalog.Evidence{}, false, err
		}
		h.Consistency = &verify.Consistency{FromSize: consistencyFrom, Proof: p}
	}
	return h, item, readable, nil
}

// bundleEvents hands emit the item's events 0..h.EventCount-1 with their
// entries and inclusion proofs to h's checkpoint, a page at a time.
func (s *Service) bundleEvents(ctx context.Context, item catalog.Evidence, readable bool, h verify.StreamHeader, emit func(verify.Event) error) error {
	size := h.Log.TreeSize
	for from := uint64(0); from < h.EventCount; {
		rows, err := s.catalog.EventsFrom(ctx, item.ID, from, bundlePage)
		if err != nil {
			return err
		}
		for len(rows) > 0 && rows[len(rows)-1].Seq >= h.EventCount {
			rows = rows[:len(rows)-1] // logged after the header was taken
		}
		if len(rows) == 0 {
			return fmt.Errorf("%w: the catalog lacks events of %s from %d", ErrUnavailable, item.ID, from)
		}
		indexes := make([]uint64, len(rows))
		for i, row := range rows {
			indexes[i] = row.LogIndex
		}
		entries, err := s.log.Entries(ctx, indexes, size)
		if err != nil {
			return fmt.Errorf("log entries of %s: %w", item.ID, err)
		}
		for i, row := range rows {
			p, err := s.log.InclusionProof(ctx, row.LogIndex, size)
			if err != nil {
				return fmt.Errorf("inclusion proof of %d: %w", row.LogIndex, err)
			}
			ev := verify.Event{
				Seq: row.Seq, LogIndex: row.LogIndex, Entry: string(entries[i]), InclusionProof: p,
				Receipt: &verify.Receipt{Payload: string(row.ReceiptPayload), Signature: row.ReceiptSignature, KeyID: row.ReceiptKeyID},
			}
			if readable {
				ev.Record = string(row.Record)
			}
			if err := emit(ev); err != nil {
				return err
			}
		}
		from = rows[len(rows)-1].Seq + 1
	}
	return nil
}

// checkpointCovering waits until a published checkpoint includes the
// item's event at index, and returns it with the item's history-map proof
// under it (nil: none). It prefers the newest timestamped checkpoint that
// includes the event, waiting up to Config.StampWait for one, and one
// under which a history-map commitment covers the event, waiting up to
// Config.HistoryWait; after those waits it settles for what there is.
func (s *Service) checkpointCovering(ctx context.Context, id string, index uint64) (custodylog.Stamped, *custodylog.HistoryProof, error) {
	start := time.Now()
	deadline := start.Add(max(checkpointWait, s.cfg.StampWait, s.cfg.HistoryWait))
	// history is the item's map proof under a tree of size, and whether
	// its map covers the event at index.
	history := func(size uint64) (*custodylog.HistoryProof, bool, error) {
		p, ok, err := s.log.HistoryProof(ctx, id, size)
		if err != nil || !ok {
			return nil, false, err
		}
		return &p, p.TreeSize > index, nil
	}
	for {
		waited := time.Since(start)
		st, stamped, err := s.log.Timestamped(ctx, index)
		if err == nil && stamped {
			p, covered, err := history(st.Size)
			if err != nil {
				return custodylog.Stamped{}, nil, err
			}
			if covered || waited >= s.cfg.HistoryWait {
				return st, p, nil
			}
		}
		cp, err := s.log.Latest(ctx)
		if err == nil && cp.Size > index && waited >= s.cfg.StampWait {
			p, covered, err := history(cp.Size)
			if err != nil {
				return custodylog.Stamped{}, nil, err
			}
			if covered || waited >= s.cfg.HistoryWait {
				return custodylog.Stamped{Published: cp}, p, nil
			}
		}
		if time.Now().After(deadline) {
			return custodylog.Stamped{}, nil, fmt.Errorf("%w: no checkpoint covers log entry %d yet; retry shortly", ErrUnavailable, index)
		}
		select {
		case <-ctx.Done():
			return custodylog.Stamped{}, nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// completeness is the bundle's history-map proof under a checkpoint of
// treeSize (nil for none).
func (s *Service) completeness(ctx context.Context, p *custodylog.HistoryProof, treeSize uint64) (*verify.Completeness, error) {
	if p == nil {
		return nil, nil
	}
	incl, err := s.log.InclusionProof(ctx, p.LogIndex, treeSize)
	if err != nil {
		return nil, fmt.Errorf("inclusion proof of the history-map commitment %d: %w", p.LogIndex, err)
	}
	return &verify.Completeness{
		Entry: string(p.Entry), LogIndex: p.LogIndex, InclusionProof: incl,
		MapLeaf: string(p.Leaf), MapIndex: p.Proof.Index, MapProof: p.Proof.Hashes,
	}, nil
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
	if contentErr != nil {
		s.logger.WarnContext(ctx, "re-verification: stored bytes", "evidence_id", id, "err", contentErr)
	}
	checks = append(checks, verify.Check{Name: "stored bytes", OK: contentErr == nil, Detail: detail(contentErr, "the stored object hashes to "+item.SHA256)})

	b, err := s.Bundle(ctx, identity.Identity{Role: identity.RoleCourt, Name: "custodyd"}, id, 0)
	if err != nil {
		return Verification{}, err
	}
	report := verify.Verify(b, verify.Options{LogVerifierKey: s.keys.LogVerifierKey, ReceiptKeyPEM: []byte(s.keys.ReceiptPublicKeyPEM),
		Policy: s.cfg.WitnessPolicy, TSAChains: s.cfg.TSAChains})
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

// detail is a check's text for the caller: okText, or what the error says
// to callers — never its cause (a storage endpoint, a path), which the
// caller logs.
func detail(err error, okText string) string {
	if err == nil {
		return okText
	}
	if m := failure.Message(err); m != "" {
		return m
	}
	return "the stored bytes could not be read; the server log has the details"
}

func bundleTimestamps(ts []custodylog.Timestamp) []verify.Timestamp {
	var out []verify.Timestamp
	for _, t := range ts {
		out = append(out, verify.Timestamp{Authority: t.Authority, Response: t.Response})
	}
	return out
}
