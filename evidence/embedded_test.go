package evidence

import (
	"testing"
	"time"

	"github.com/custody-dev/custody/media"
)

// What package media read is kept field for field, and nothing is made up.
func TestEmbeddedKeepsWhatMediaRead(t *testing.T) {
	if c := embedded(nil); c != nil {
		t.Fatalf("embedded(nil) = %+v", c)
	}
	alt := -420.5
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	c := embedded(&media.Capture{
		CapturedAt: at, Duration: 95 * time.Second,
		Device:   &media.Device{Make: "Canon", Model: "R5", SerialNumber: "123", Software: "fw 1.0"},
		Position: &media.Position{Latitude: -38.4, Longitude: 144.2, AltitudeM: &alt},
	}).sanitized()
	want := Device{Make: "Canon", Model: "R5", SerialNumber: "123", Software: "fw 1.0"}
	if c == nil || !c.CapturedAt.Equal(at) || c.Duration != 95*time.Second || c.Device == nil || *c.Device != want {
		t.Fatalf("embedded = %+v", c)
	}
	if l := c.Location; l == nil || l.Description != "" || l.Point == nil || l.Point.Latitude != -38.4 || l.Point.Longitude != 144.2 ||
		l.Point.AltitudeM == nil || *l.Point.AltitudeM != alt || l.Point.AccuracyM != nil {
		t.Fatalf("location %+v", c.Location)
	}
	if c := embedded(&media.Capture{Duration: time.Second}); c.Device != nil || c.Location != nil || !c.CapturedAt.IsZero() {
		t.Fatalf("embedded made up %+v", c)
	}
}
