package evidence

import (
	"fmt"
	"math"
	"time"
)

// Every field a caller can state about a custody event is checked here,
// once, before anything is stored or logged: the record is append-only, so
// a field too large for any reader would deny the item's history to
// everyone forever (docs/SECURITY.md, "Input limits"). The limits on
// upload metadata are in metadata.go (UploadMeta.Validate), on content
// reads in read.go (Access.validate).

// Limits on coordinates (WGS 84) and times.
const (
	minAltitudeM = -12_000.0 // deeper than any ocean trench
	maxAltitudeM = 100_000.0 // the edge of space
	maxAccuracyM = 100_000.0
	// minEventTime and the clock skew bound the times a caller states
	// (started_at, ended_at, authorities' validity).
	minEventTime  = 1990
	maxFutureSkew = 24 * time.Hour
)

// validateLocation checks a place: its description is bounded text, its
// point finite and on the globe.
func validateLocation(field string, l *Location) error {
	if l == nil {
		return nil
	}
	if err := checkText(field+".description", l.Description, maxDescription); err != nil {
		return err
	}
	p := l.Point
	if p == nil {
		return nil
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	if !finite(p.Latitude) || !finite(p.Longitude) || p.Latitude < -90 || p.Latitude > 90 || p.Longitude < -180 || p.Longitude > 180 {
		return fmt.Errorf("%w: %s.point (%v, %v) is outside WGS 84 bounds", ErrInvalid, field, p.Latitude, p.Longitude)
	}
	if a := p.AltitudeM; a != nil && (!finite(*a) || *a < minAltitudeM || *a > maxAltitudeM) {
		return fmt.Errorf("%w: %s.point.altitude_m %v is not between %v and %v", ErrInvalid, field, *a, minAltitudeM, maxAltitudeM)
	}
	if a := p.AccuracyM; a != nil && (!finite(*a) || *a < 0 || *a > maxAccuracyM) {
		return fmt.Errorf("%w: %s.point.accuracy_m %v is not between 0 and %v", ErrInvalid, field, *a, maxAccuracyM)
	}
	return nil
}

// validateTime checks a time a caller states about an event.
func validateTime(field string, t, now time.Time) error {
	if t.IsZero() {
		return nil
	}
	if t.Year() < minEventTime || t.After(now.Add(maxFutureSkew)) {
		return fmt.Errorf("%w: %s %s is not a plausible time", ErrInvalid, field, t.UTC().Format(time.RFC3339))
	}
	return nil
}

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
	return validateLocation("location", h.Location)
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
	if err := validateLocation("location", in.Location); err != nil {
		return err
	}
	if err := validateTime("started_at", in.StartedAt, now); err != nil {
		return err
	}
	if err := validateTime("ended_at", in.EndedAt, now); err != nil {
		return err
	}
	if !in.StartedAt.IsZero() && !in.EndedAt.IsZero() && in.EndedAt.Before(in.StartedAt) {
		return fmt.Errorf("%w: ended_at is before started_at", ErrInvalid)
	}
	return nil
}
