// Package media reads what a file says about itself: its media type sniffed
// from the first bytes, EXIF capture time/place/device in photos,
// MP4/QuickTime creation time, duration, device and place — pure functions over bytes,
// bounded, never trusting the input.
//
// SniffType and ReadEXIF take a file's head (its first bytes, as many as
// the caller buffered); the MP4/QuickTime reader finds the movie box
// wherever it sits in the file (ReadMP4At, or MP4Scanner over a stream).
// Each returns nil when it finds nothing usable. The bytes are
// attacker-controlled: damaged or crafted input yields less or nothing,
// never a panic or unbounded work. What a reader returns is cleaned
// already: text is valid UTF-8 without control characters, trimmed, at most
// 256 bytes; a time is from 1970 to a day from now; a position is finite
// and on the globe, its altitude from -12 km to 100 km.
package media

import (
	"encoding/binary"
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
// 512 are read), without parameters except for text types, which keep
// their charset. An ISO base media file is named by its ftyp box's major
// brand where that is one of isoBrands (QuickTime movies, 3GPP, M4A audio,
// HEIF and AVIF images), else by a compatible brand if
// http.DetectContentType finds nothing; everything else is
// http.DetectContentType's answer.
func SniffType(head []byte) string {
	head = head[:min(len(head), 512)]
	mt := http.DetectContentType(head)
	if i := strings.IndexByte(mt, ';'); i >= 0 && !strings.HasPrefix(mt, "text/") {
		mt = mt[:i]
	}
	if major, compatible, ok := ftypBrands(head); ok {
		if t := isoBrandType(major); t != "" {
			return t
		}
		if mt == "application/octet-stream" {
			for _, b := range compatible {
				if t := isoBrandType(b); t != "" {
					return t
				}
			}
		}
	}
	return mt
}

// ftypBrands reads the brands of the ftyp box at the start of head.
func ftypBrands(head []byte) (major string, compatible []string, ok bool) {
	if len(head) < 16 || string(head[4:8]) != "ftyp" {
		return "", nil, false
	}
	size := int(binary.BigEndian.Uint32(head))
	if size < 16 || size > len(head) {
		return "", nil, false
	}
	for i := 16; i+4 <= size; i += 4 {
		compatible = append(compatible, string(head[i:i+4]))
	}
	return string(head[8:12]), compatible, true
}

// isoBrandType is the media type of an ISO base media file of a brand, or
// "" for unknown ones.
func isoBrandType(brand string) string {
	switch brand {
	case "qt  ":
		return "video/quicktime"
	case "M4A ", "M4B ", "M4P ":
		return "audio/mp4"
	case "M4V ", "M4VH", "M4VP", "isom", "iso2", "iso3", "iso4", "iso5", "iso6", "mp41", "mp42", "avc1", "dash":
		return "video/mp4"
	case "3g2a", "3g2b", "3g2c":
		return "video/3gpp2"
	case "heic", "heix", "heim", "heis":
		return "image/heic"
	case "hevc", "hevx", "hevm", "hevs":
		return "image/heic-sequence"
	case "mif1":
		return "image/heif"
	case "msf1":
		return "image/heif-sequence"
	case "avif", "avis":
		return "image/avif"
	}
	if strings.HasPrefix(brand, "3gp") || strings.HasPrefix(brand, "3gg") || strings.HasPrefix(brand, "3ge") || strings.HasPrefix(brand, "3gs") {
		return "video/3gpp"
	}
	return ""
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
