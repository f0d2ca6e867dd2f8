package evidence

import (
	"github.com/custody-dev/custody/media"
)

// embedded is what package media read from an item's head as the
// Capture kept beside the collector's statement; nil when it read nothing.
func embedded(c *media.Capture) *Capture {
	if c == nil {
		return nil
	}
	out := &Capture{CapturedAt: c.CapturedAt, Duration: c.Duration}
	if d := c.Device; d != nil {
		out.Device = &Device{Make: d.Make, Model: d.Model, SerialNumber: d.SerialNumber, Software: d.Software}
	}
	if p := c.Position; p != nil {
		out.Location = &Location{Point: &GeoPoint{Latitude: p.Latitude, Longitude: p.Longitude, AltitudeM: p.AltitudeM}}
	}
	return out
}

// sanitized is metadata read from an item's own bytes made safe to keep
// and return whatever the reader missed (package media cleans what it
// returns; this does not rely on it): strings cleaned (media.CleanText), a
// time kept only if plausible, a position only if finite and within
// bounds (an altitude or accuracy that is not is dropped alone), a
// negative duration dropped. Nil when nothing is left.
func (c *Capture) sanitized() *Capture {
	if c == nil {
		return nil
	}
	out := Capture{CapturedAt: plausibleEmbedded(c.CapturedAt), Duration: max(c.Duration, 0)}
	if d := c.Device; d != nil {
		dev := Device{Make: media.CleanText(d.Make), Model: media.CleanText(d.Model), SerialNumber: media.CleanText(d.SerialNumber), UniqueID: media.CleanText(d.UniqueID), Software: media.CleanText(d.Software)}
		if dev != (Device{}) {
			out.Device = &dev
		}
	}
	if l := c.Location; l != nil {
		loc := &Location{Description: media.CleanText(l.Description)}
		if p := l.Point; p != nil {
			pt := *p
			if pt.AltitudeM != nil && (&Location{Point: &GeoPoint{AltitudeM: pt.AltitudeM}}).validate("") != nil {
				pt.AltitudeM = nil
			}
			if pt.AccuracyM != nil && (&Location{Point: &GeoPoint{AccuracyM: pt.AccuracyM}}).validate("") != nil {
				pt.AccuracyM = nil
			}
			if (&Location{Point: &pt}).validate("") == nil {
				loc.Point = &pt
			}
		}
		if loc.Description != "" || loc.Point != nil {
			out.Location = loc
		}
	}
	if out.CapturedAt.IsZero() && out.Duration == 0 && out.Device == nil && out.Location == nil {
		return nil
	}
	return &out
}
