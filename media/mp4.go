package media

import (
	"encoding/binary"
	"time"
)

// ReadMP4 reads creation time and duration from the movie header of an ISO
// base media file's head (MP4, MOV, 3GP), when the moov box lies within
// head (files written for streaming put it first). Any inconsistency means
// nothing found: it returns nil.
func ReadMP4(head []byte) *Capture {
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
		out.CapturedAt = plausible(time.Unix(int64(created-mp4Epoch), 0).UTC())
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
