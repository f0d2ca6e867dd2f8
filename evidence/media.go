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
	// Seconds since 1904-01-01 UTC; 0 means unset.
	if created > 0 && created < 1<<40 {
		out.CapturedAt = time.Date(1904, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(created) * time.Second)
	}
	if timescale > 0 && duration > 0 && duration/timescale < 1<<30 {
		out.Duration = time.Duration(duration) * time.Second / time.Duration(timescale)
	}
	if out.CapturedAt.IsZero() && out.Duration == 0 {
		return nil
	}
	return out
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
