package evidence

import (
	"context"
	"fmt"
	"time"
)

// Readiness is the state of what the service depends on.
type Readiness struct {
	Storage         error
	Catalog         error
	Log             error
	CheckpointAge   time.Duration
	CheckpointSize  uint64
	CheckpointKnown bool
}

// Ready reports whether storage, the catalog and the log answer, and how
// old the latest checkpoint is.
func (s *Service) Ready(ctx context.Context) Readiness {
	var r Readiness
	if _, err := s.store.Exists(ctx, "health/probe"); err != nil {
		r.Storage = classifyStorage(err)
	}
	if _, err := s.catalog.LogApplied(ctx); err != nil {
		r.Catalog = fmt.Errorf("catalog: %w", err)
	}
	cp, err := s.log.Latest(ctx)
	if err != nil {
		r.Log = fmt.Errorf("log: no verified checkpoint: %w", err)
	} else {
		r.CheckpointKnown, r.CheckpointSize = true, cp.Size
		if at, err := s.log.PublishedAt(ctx); err != nil {
			r.Log = fmt.Errorf("log: when the checkpoint was written is unknown: %w", err)
		} else {
			r.CheckpointAge = s.now().Sub(at)
		}
	}
	return r
}
