package media

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"time"
)

// The EXIF reader: just the tags Custody keeps (capture time, camera,
// position), from a photo's first bytes. EXIF is attacker-controlled, so
// the reader is small and bounded by construction — three IFDs at most
// (IFD0, Exif, GPS), each read once, at most maxIFDEntries entries each,
// every offset and length checked against the buffer — where a general
// parser (go-exif, used before) could be driven by a crafted upload into
// long or unbounded work.

const maxIFDEntries = 512

// TIFF tags read, by IFD.
const (
	tagMake             = 0x010F
	tagModel            = 0x0110
	tagSoftware         = 0x0131
	tagDateTime         = 0x0132
	tagExifIFD          = 0x8769
	tagGPSIFD           = 0x8825
	tagDateTimeOriginal = 0x9003
	tagDateTimeDigit    = 0x9004
	tagBodySerialNumber = 0xA431
	tagGPSLatitudeRef   = 1
	tagGPSLatitude      = 2
	tagGPSLongitudeRef  = 3
	tagGPSLongitude     = 4
	tagGPSAltitudeRef   = 5
	tagGPSAltitude      = 6
)

// tiff is the TIFF structure inside an EXIF block.
type tiff struct {
	b     []byte
	order binary.ByteOrder
}

// findTIFF locates the TIFF header: in a JPEG's APP1 "Exif" segment, at
// the start of a TIFF file, or after an "Exif\0\0" marker elsewhere in the
// head (HEIF and others embed it so).
func findTIFF(head []byte) (tiff, bool) {
	if len(head) >= 4 && head[0] == 0xFF && head[1] == 0xD8 {
		for off := 2; off+4 <= len(head); {
			if head[off] != 0xFF {
				break
			}
			marker := head[off+1]
			if marker == 0xD9 || marker == 0xDA { // end of image, start of scan
				break
			}
			n := int(binary.BigEndian.Uint16(head[off+2:]))
			if n < 2 || off+2+n > len(head) {
				break
			}
			seg := head[off+4 : off+2+n]
			if marker == 0xE1 && bytes.HasPrefix(seg, []byte("Exif\x00\x00")) {
				return tiffAt(seg[6:])
			}
			off += 2 + n
		}
		return tiff{}, false
	}
	if t, ok := tiffAt(head); ok {
		return t, true
	}
	if i := bytes.Index(head, []byte("Exif\x00\x00")); i >= 0 {
		return tiffAt(head[i+6:])
	}
	return tiff{}, false
}

func tiffAt(b []byte) (tiff, bool) {
	if len(b) < 8 {
		return tiff{}, false
	}
	switch {
	case bytes.HasPrefix(b, []byte("II*\x00")):
		return tiff{b, binary.LittleEndian}, true
	case bytes.HasPrefix(b, []byte("MM\x00*")):
		return tiff{b, binary.BigEndian}, true
	}
	return tiff{}, false
}

// entry is one IFD entry's type and raw value bytes.
type entry struct {
	typ   uint16
	count uint32
	value []byte
}

var typeSize = map[uint16]uint32{1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1, 9: 4, 10: 8}

// ifd reads the IFD at off into a map by tag (first occurrence wins).
func (t tiff) ifd(off uint32) map[uint16]entry {
	if uint64(off)+2 > uint64(len(t.b)) {
		return nil
	}
	n := int(t.order.Uint16(t.b[off:]))
	if n > maxIFDEntries {
		return nil
	}
	out := make(map[uint16]entry, n)
	for i := range n {
		e := uint64(off) + 2 + uint64(i)*12
		if e+12 > uint64(len(t.b)) {
			break
		}
		tag := t.order.Uint16(t.b[e:])
		typ := t.order.Uint16(t.b[e+2:])
		count := t.order.Uint32(t.b[e+4:])
		size, ok := typeSize[typ]
		if !ok || count > 1<<16 {
			continue
		}
		total := uint64(size) * uint64(count)
		var value []byte
		if total <= 4 {
			value = t.b[e+8 : e+8+total]
		} else {
			at := uint64(t.order.Uint32(t.b[e+8:]))
			if at+total > uint64(len(t.b)) {
				continue
			}
			value = t.b[at : at+total]
		}
		if _, seen := out[tag]; !seen {
			out[tag] = entry{typ, count, value}
		}
	}
	return out
}

func (t tiff) str(ifd map[uint16]entry, tag uint16) string {
	e, ok := ifd[tag]
	if !ok || e.typ != 2 {
		return ""
	}
	return CleanText(strings.TrimRight(string(e.value), "\x00"))
}

func (t tiff) offset(ifd map[uint16]entry, tag uint16) (uint32, bool) {
	e, ok := ifd[tag]
	if !ok || e.typ != 4 || e.count != 1 {
		return 0, false
	}
	return t.order.Uint32(e.value), true
}

// rationals reads an unsigned RATIONAL value; a zero denominator fails.
func (t tiff) rationals(ifd map[uint16]entry, tag uint16) ([]float64, bool) {
	e, ok := ifd[tag]
	if !ok || e.typ != 5 {
		return nil, false
	}
	out := make([]float64, e.count)
	for i := range out {
		num := t.order.Uint32(e.value[8*i:])
		den := t.order.Uint32(e.value[8*i+4:])
		if den == 0 {
			return nil, false
		}
		out[i] = float64(num) / float64(den)
	}
	return out, true
}

// ReadEXIF reads capture time, camera and GPS position from the EXIF block
// of a photo's head: a JPEG's APP1 segment, a TIFF, or an "Exif\0\0" block
// in the head of another format (HEIF and others embed it so). It returns
// nil when there is nothing usable.
func ReadEXIF(head []byte) *Capture {
	t, ok := findTIFF(head)
	if !ok {
		return nil
	}
	ifd0 := t.ifd(t.order.Uint32(t.b[4:]))
	if ifd0 == nil {
		return nil
	}
	var exifIFD, gpsIFD map[uint16]entry
	if off, ok := t.offset(ifd0, tagExifIFD); ok {
		exifIFD = t.ifd(off)
	}
	if off, ok := t.offset(ifd0, tagGPSIFD); ok {
		gpsIFD = t.ifd(off)
	}
	out := &Capture{}
	for _, s := range []string{t.str(exifIFD, tagDateTimeOriginal), t.str(exifIFD, tagDateTimeDigit), t.str(ifd0, tagDateTime)} {
		if at, err := time.Parse("2006:01:02 15:04:05", s); err == nil {
			// EXIF has no zone; read as UTC, as stated in docs. An unset
			// clock (0000:00:00) or one from before 1970 is no capture time.
			out.CapturedAt = plausible(at)
			break
		}
	}
	dev := Device{Make: t.str(ifd0, tagMake), Model: t.str(ifd0, tagModel), SerialNumber: t.str(exifIFD, tagBodySerialNumber), Software: t.str(ifd0, tagSoftware)}
	if dev != (Device{}) {
		out.Device = &dev
	}
	lat, okLat := t.coordinate(gpsIFD, tagGPSLatitude, tagGPSLatitudeRef, "N", "S", 90)
	lon, okLon := t.coordinate(gpsIFD, tagGPSLongitude, tagGPSLongitudeRef, "E", "W", 180)
	if okLat && okLon {
		p := &Position{Latitude: lat, Longitude: lon}
		if alt, ok := t.rationals(gpsIFD, tagGPSAltitude); ok && len(alt) == 1 {
			a := alt[0]
			if ref, ok := gpsIFD[tagGPSAltitudeRef]; ok && ref.typ == 1 && len(ref.value) == 1 && ref.value[0] == 1 {
				a = -a // below sea level
			}
			if !math.IsInf(a, 0) && a >= minAltitudeM && a <= maxAltitudeM {
				p.AltitudeM = &a
			}
		}
		out.Position = p
	}
	if out.CapturedAt.IsZero() && out.Device == nil && out.Position == nil {
		return nil
	}
	return out
}

// coordinate reads a GPS degrees/minutes/seconds value and its reference
// (positive or negative hemisphere) as decimal degrees within ±limit.
func (t tiff) coordinate(gps map[uint16]entry, valueTag, refTag uint16, pos, neg string, limit float64) (float64, bool) {
	dms, ok := t.rationals(gps, valueTag)
	if !ok || len(dms) != 3 {
		return 0, false
	}
	v := dms[0] + dms[1]/60 + dms[2]/3600
	switch strings.ToUpper(t.str(gps, refTag)) {
	case pos:
	case neg:
		v = -v
	default:
		return 0, false
	}
	if math.IsNaN(v) || math.Abs(v) > limit {
		return 0, false
	}
	return v, true
}
