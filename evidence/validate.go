package evidence

import (
	"fmt"
	"time"
)

// Every field a caller can state about a custody event is checked here,
// once, before anything is stored or logged: the record is append-only, so
// a field too large for any reader would deny the item's history to
// everyone forever (docs/SECURITY.md, "Input limits"). Places and times
// share their checks with upload metadata (metadata.go: Location.validate,
// checkTimeIn); content reads are checked in read.go (Access.validate).

func (i *Instrument) validate() error {
	if i == nil {
		return nil
	}
	if err := checkText("instrument.name", i.Name, maxShortText); err != nil {
		return err
	}
	return checkText("instrument.version", i.Version, maxShortText)
}

// validate checks what a release, accept or cancellation states.
func (h Handoff) validate() error {
	if err := checkText("reason", h.Reason, maxDescription); err != nil {
		return err
	}
	return h.Location.validate("location")
}

// validate checks what an analysis, derivation, submission or annotation
// states.
func (in EventInput) validate(now time.Time) error {
	for _, f := range []struct{ name, v string }{{"note", in.Note}, {"purpose", in.Purpose}, {"outcome", in.Outcome}} {
		if err := checkText(f.name, f.v, maxDescription); err != nil {
			return err
		}
	}
	if err := checkText("related_evidence_id", in.RelatedEvidenceID, maxShortText); err != nil {
		return err
	}
	if err := in.Authority.validate(); err != nil {
		return err
	}
	if err := in.Instrument.validate(); err != nil {
		return err
	}
	if err := in.Location.validate("location"); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		t    time.Time
	}{{"started_at", in.StartedAt}, {"ended_at", in.EndedAt}} {
		if !f.t.IsZero() {
			if err := checkTimeIn(f.name, f.t, minCaptureTime, now.Add(maxFutureSkew)); err != nil {
				return err
			}
		}
	}
	if !in.StartedAt.IsZero() && !in.EndedAt.IsZero() && in.EndedAt.Before(in.StartedAt) {
		return fmt.Errorf("%w: ended_at is before started_at", ErrInvalid)
	}
	return nil
}
