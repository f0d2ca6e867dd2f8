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

// rehash reads the stored object (decrypting it if needed) and compares
// its digest and size with the record.
func (s *Service) rehash(ctx context.Context, item catalog.Evidence) error {
	rc, err := s.store.Open(ctx, item.Object)
	if err != nil {
		return classifyStorage(err)
	}
	defer rc.Close()
	var r io.Reader = rc
	if item.Encrypted {
		if r, err = age.Decrypt(rc, s.identity); err != nil {
			return fmt.Errorf("%w: the stored ciphertext does not decrypt: %v", ErrCorrupt, err)
		}
	}
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return classifyStorage(err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != item.SHA256 || n != item.Size {
		return fmt.Errorf("%w: recorded %s (%d bytes), stored bytes hash to %s (%d bytes)", ErrCorrupt, item.SHA256, item.Size, got, n)
	}
	return nil
}

// Scrub re-hashes every stored item, calling report with each item's id
// and nil or the mismatch. It logs every mismatch and returns the counts.
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
			err := s.rehash(ctx, item)
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
