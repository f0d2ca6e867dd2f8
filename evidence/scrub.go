package evidence

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"filippo.io/age"

	"github.com/custody-dev/custody/catalog"
)

// rehash checks an item's catalog row against its logged ingest, reads
// the stored object (decrypting it if needed) and compares its digest and
// size with what the log commits to. It serves VerifyStored.
func (s *Service) rehash(ctx context.Context, item catalog.Evidence) error {
	return s.rehashAs(ctx, item, "verify")
}

// rehashAs is rehash, reporting a catalog disagreement under op.
func (s *Service) rehashAs(ctx context.Context, item catalog.Evidence, op string) error {
	facts, err := s.checkRow(ctx, item, op)
	if err != nil {
		return err
	}
	want, size := facts.sha256, facts.contentSize(item)
	rc, err := s.store.Open(ctx, item.Object)
	if err != nil {
		return classifyStorage(err)
	}
	defer rc.Close()
	var r io.Reader = rc
	if item.Encrypted {
		if r, err = age.Decrypt(rc, s.identity); err != nil {
			return wrapCause(ErrCorrupt, err, "the stored ciphertext does not decrypt")
		}
	}
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return classifyStorage(err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want || n != size {
		return fmt.Errorf("%w: logged %s (%d bytes), stored bytes hash to %s (%d bytes)", ErrCorrupt, want, size, got, n)
	}
	return nil
}

// Scrub re-hashes every stored item, calling report with each item's id
// and nil or the mismatch: bytes that no longer match the logged digest,
// or a catalog row that disagrees with the item's logged ingest
// (ErrCatalogDisagrees). It logs every mismatch and returns the counts.
func (s *Service) Scrub(ctx context.Context, report func(id string, err error)) (checked, bad int, err error) {
	after := ""
	for {
		items, err := s.catalog.ListAll(ctx, after, 100)
		if err != nil {
			return checked, bad, err
		}
		if len(items) == 0 {
			return checked, bad, nil
		}
		for _, item := range items {
			err := s.rehashAs(ctx, item, "scrub")
			if ctx.Err() != nil {
				return checked, bad, ctx.Err()
			}
			checked++
			if err != nil {
				bad++
				s.logger.ErrorContext(ctx, "scrub: stored evidence does not match its record", "evidence_id", item.ID, "err", err)
			}
			report(item.ID, err)
		}
		after = items[len(items)-1].ID
	}
}
