package evidence

import (
	"encoding/binary"
	"net/http"
	"strings"
	"time"
)

// sniffMediaType reads the media type from an item's first bytes.
func sniffMediaType(head []byte) string {
	mt := http.DetectContentType(head[:min(len(head), 512)])
	if i := strings.IndexByte(mt, ';'); i >= 0 && !strings.HasPrefix(mt, "text/") {
		mt = mt[:i]
	}
	return mt
}

// readMP4 reads creation time and duration from an ISO base media file's
// movie header (MP4, MOV, 3GP), when the moov box lies within head (files
// written for streaming put it first). Untrusted input: any inconsistency
// means "nothing found".
func readMP4(head []byte) *Capture {
	moov := findBox(head, "moov")
	if moov == nil {
		return nil
	}
	mvhd := findBox(moov, "mvhd")
	if len(mvhd) < 4 {
		return nil
	}
	var created, timescale, duration uint64
	switch mvhd[0] { // version
	case 0:
		if len(mvhd) < 20 {
			return nil
		}
		created = uint64(binary.BigEndian.Uint32(mvhd[4:]))
		timescale = uint64(binary.BigEndian.Uint32(mvhd[12:]))
		duration = uint64(binary.BigEndian.Uint32(mvhd[16:]))
	case 1:
		if len(mvhd) < 32 {
			return nil
		}
		created = binary.BigEndian.Uint64(mvhd[4:])
		timescale = uint64(binary.BigEndian.Uint32(mvhd[20:]))
		duration = binary.BigEndian.Uint64(mvhd[24:])
	default:
		return nil
	}
	out := &Capture{}
	// Seconds since 1904-01-01 UTC; 0 means unset. Converted in seconds
	// (time.Duration overflows past 292 years: 2^40 s once read as 1672),
	// and kept only from 1970 to a day from now: earlier is an unset or
	// wrapped clock, later is no capture yet.
	if created > mp4Epoch && created-mp4Epoch < 1<<40 {
		out.CapturedAt = plausibleEmbedded(time.Unix(int64(created-mp4Epoch), 0).UTC())
	}
	if timescale > 0 && duration > 0 && duration/timescale < 1<<30 {
		secs, rest := duration/timescale, duration%timescale
		out.Duration = time.Duration(secs)*time.Second + time.Duration(rest*uint64(time.Second)/timescale)
	}
	if out.CapturedAt.IsZero() && out.Duration == 0 {
		return nil
	}
	return out
}

// mp4Epoch is 1970-01-01 in seconds since 1904-01-01, the ISO BMFF epoch.
const mp4Epoch = 2082844800

// sanitized is metadata read from an item's own bytes made safe to keep
// and return whatever the reader missed: strings cleaned (cleanText), a
// time kept only if plausible, a position only if finite and within
// bounds (an altitude or accuracy that is not is dropped alone), a
// negative duration dropped. Nil when nothing is left.
func (c *Capture) sanitized() *Capture {
	if c == nil {
		return nil
	}
	out := Capture{CapturedAt: plausibleEmbedded(c.CapturedAt), Duration: max(c.Duration, 0)}
	if d := c.Device; d != nil {
		dev := Device{Make: cleanText(d.Make), Model: cleanText(d.Model), SerialNumber: cleanText(d.SerialNumber), UniqueID: cleanText(d.UniqueID), Software: cleanText(d.Software)}
		if dev != (Device{}) {
			out.Device = &dev
		}
	}
	if l := c.Location; l != nil {
		loc := &Location{Description: cleanText(l.Description)}
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

// findBox returns the payload of the first box of the given type at this
// level of an ISO BMFF byte range.
func findBox(b []byte, typ string) []byte {
	for len(b) >= 8 {
		size := uint64(binary.BigEndian.Uint32(b))
		hdr := uint64(8)
		if size == 1 {
			if len(b) < 16 {
				return nil
			}
			size, hdr = binary.BigEndian.Uint64(b[8:]), 16
		}
		if size == 0 {
			size = uint64(len(b))
		}
		if size < hdr || size > uint64(len(b)) {
			return nil
		}
		if string(b[4:8]) == typ {
			return b[hdr:size]
		}
		b = b[size:]
	}
	return nil
}
