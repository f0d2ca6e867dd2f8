// Package media reads what a file says about itself: its media type sniffed
// from the first bytes, EXIF capture time/place/device in photos,
// MP4/QuickTime creation time and duration — pure functions over bytes,
// bounded, never trusting the input.
//
// Each reader takes a file's head (its first bytes, as many as the caller
// buffered) and returns nil when it finds nothing usable. The bytes are
// attacker-controlled: damaged or crafted input yields less or nothing,
// never a panic or unbounded work. What a reader returns is cleaned
// already: text is valid UTF-8 without control characters, trimmed, at most
// 256 bytes; a time is from 1970 to a day from now; a position is finite
// and on the globe, its altitude from -12 km to 100 km.
package media

import (
	"net/http"
	"strings"
	"time"
)

// Capture is what a file's own bytes say about its capture. A zero field
// (a nil pointer) was not found or not believable.
type Capture struct {
	// CapturedAt is when the file says it was captured, in UTC (EXIF
	// times carry no zone and are read as UTC).
	CapturedAt time.Time
	// Duration is a media container's playing time.
	Duration time.Duration
	// Device is the capture device the file names.
	Device *Device
	// Position is where the file says it was captured.
	Position *Position
}

// Device is a capture device as a file names it.
type Device struct {
	Make         string
	Model        string
	SerialNumber string
	Software     string
}

// Position is a WGS 84 position read from a file.
type Position struct {
	Latitude  float64
	Longitude float64
	// AltitudeM is metres above sea level (negative below), if given.
	AltitudeM *float64
}

// SniffType returns the media type of a file from its first bytes (at most
// 512 are read, by http.DetectContentType's algorithm), without parameters
// except for text types, which keep their charset.
func SniffType(head []byte) string {
	mt := http.DetectContentType(head[:min(len(head), 512)])
	if i := strings.IndexByte(mt, ';'); i >= 0 && !strings.HasPrefix(mt, "text/") {
		mt = mt[:i]
	}
	return mt
}

// Bounds on what the readers return.
const (
	// maxText is the longest string kept, in bytes.
	maxText = 256
	// minAltitudeM and maxAltitudeM: from below the deepest ocean trench
	// to the edge of space.
	minAltitudeM = -12_000
	maxAltitudeM = 100_000
	// maxFutureSkew is how far in the future a time may be (clocks in the
	// field are wrong by hours, not days).
	maxFutureSkew = 24 * time.Hour
)

// minTime is the earliest time kept: earlier ones are unset clocks (the
// MP4 epoch, 1904) or overflows.
var minTime = time.Unix(0, 0).UTC()

// plausible is t if it is a time a device could have written (from 1970 to
// a day from now), else the zero time.
func plausible(t time.Time) time.Time {
	if t.Before(minTime) || t.After(time.Now().Add(maxFutureSkew)) {
		return time.Time{}
	}
	return t
}

// CleanText makes a string read from a file safe to keep, return and log:
// valid UTF-8 (invalid bytes become U+FFFD), control characters replaced by
// U+FFFD, outer spaces trimmed, at most maxText bytes.
func CleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r >= 0x7f && r <= 0x9f {
			return '\uFFFD'
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > maxText {
		s = strings.ToValidUTF8(s[:maxText], "")
	}
	return s
}
