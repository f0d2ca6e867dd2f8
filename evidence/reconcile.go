package evidence

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/custody-dev/custody/catalog"
)

// Reconciled is what Reconcile found.
type Reconciled struct {
	// Checked items had their row compared with their logged ingest.
	Checked int
	// Repaired rows disagreed and were rewritten from the log.
	Repaired int
	// Unrepairable rows have no ingest event in the catalog, or one that
	// does not point at the item's ingest entry: reads of them stay
	// refused until the operator restores the catalog (or deletes it,
	// to have it rebuilt from the log and the journal).
	Unrepairable int
}

// reconcileBatch is how many items Reconcile checks at a time.
const reconcileBatch = 256

// Reconcile checks every item's catalog row against its logged ingest and
// rewrites the columns the ingest record states where they disagree (see
// logbinding.go). custodyd runs it at start, after Replay, before serving.
//
// Cost: per batch of 256 items, one catalog page, one query for their
// ingest events, one read of each distinct entry bundle holding their
// ingest entries (at most one per item; items ingested together share
// them), and a SHA-256 and a JSON parse of each entry and ingest record:
// a few tens of microseconds per item on local disk, all in sequence. The
// journal is read only for rows whose ingest record in the catalog is not
// the committed one. The facts checked warm the read cache.
func (s *Service) Reconcile(ctx context.Context) (Reconciled, error) {
	var r Reconciled
	size, err := s.log.Settled(ctx)
	if err != nil {
		return r, wrapCause(ErrUnavailable, err, "the custody log cannot be read; retry later")
	}
	s.noteLogSize(size)
	after := ""
	for {
		items, err := s.catalog.ListAll(ctx, after, reconcileBatch)
		if err != nil || len(items) == 0 {
			return r, err
		}
		after = items[len(items)-1].ID
		if err := s.reconcileBatch(ctx, items, &r); err != nil {
			return r, err
		}
	}
}

func (s *Service) reconcileBatch(ctx context.Context, items []catalog.Evidence, r *Reconciled) error {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ID
	}
	evs, err := s.catalog.IngestEvents(ctx, ids)
	if err != nil {
		return err
	}
	ingest := make(map[string]catalog.Event, len(evs))
	for _, e := range evs {
		ingest[e.EvidenceID] = e
	}
	type check struct {
		item       catalog.Evidence
		event      catalog.Event
		facts      ingestFacts
		commitment string
		record     bool
	}
	var checks []*check
	for _, it := range items {
		e, ok := ingest[it.ID]
		if !ok {
			s.unrepairable(ctx, it.ID, fmt.Errorf("%w: the catalog holds no ingest event of %s", ErrCatalogDisagrees, it.ID), r)
			continue
		}
		if _, err := s.logSizeCovering(ctx, e.LogIndex); err != nil {
			if !errors.Is(err, ErrCatalogDisagrees) {
				return err
			}
			s.unrepairable(ctx, it.ID, err, r)
			continue
		}
		checks = append(checks, &check{item: it, event: e})
	}
	slices.SortFunc(checks, func(a, b *check) int { return cmp.Compare(a.event.LogIndex, b.event.LogIndex) })
	indexes := make([]uint64, len(checks))
	for i, c := range checks {
		indexes[i] = c.event.LogIndex
	}
	entries, err := s.log.Entries(ctx, indexes, s.logSize.Load())
	if err != nil {
		return wrapCause(ErrUnavailable, err, "the custody log cannot be read; retry later")
	}
	var missing []string
	kept := checks[:0]
	for i, c := range checks {
		c.facts, c.commitment, err = factsFromEntry(c.item.ID, c.event.LogIndex, entries[i])
		if err != nil {
			s.unrepairable(ctx, c.item.ID, err, r)
			continue
		}
		if c.record = c.facts.withRecord(c.item.ID, c.event.Record, c.commitment); !c.record {
			missing = append(missing, c.commitment)
		}
		kept = append(kept, c)
	}
	var journaled map[string][]byte
	if len(missing) > 0 {
		if journaled, err = s.ledger.Records(ctx, missing); err != nil {
			return err
		}
	}
	for _, c := range kept {
		if !c.record {
			c.facts.withRecord(c.item.ID, journaled[c.commitment], c.commitment)
		}
		s.ingests.put(c.item.ID, c.facts)
		r.Checked++
		bad := c.facts.disagreements(c.item)
		if len(bad) == 0 {
			continue
		}
		s.countDisagreement("start")
		if err := s.catalog.RepairEvidence(ctx, c.facts.apply(c.item)); err != nil {
			return fmt.Errorf("rewriting the catalog row of %s from the log: %w", c.item.ID, err)
		}
		r.Repaired++
		s.logger.WarnContext(ctx, "catalog row disagreed with the custody log: rewritten from the logged ingest record",
			"evidence_id", c.item.ID, "fields", strings.Join(bad, ","), "record_known", c.facts.rec != nil)
	}
	return nil
}

func (s *Service) unrepairable(ctx context.Context, id string, err error, r *Reconciled) {
	r.Checked++
	r.Unrepairable++
	s.countDisagreement("start")
	s.logger.ErrorContext(ctx, "catalog row cannot be checked against the custody log: its reads stay refused until the catalog is restored or rebuilt",
		"evidence_id", id, "err", err)
}
