package evidence

import (
	"encoding/binary"
	"net/http"
	"strings"
	"time"

	exif "github.com/dsoprea/go-exif/v3"
	exifcommon "github.com/dsoprea/go-exif/v3/common"
)

// sniffMediaType reads the media type from an item's first bytes.
func sniffMediaType(head []byte) string {
	mt := http.DetectContentType(head[:min(len(head), 512)])
	if i := strings.IndexByte(mt, ';'); i >= 0 && !strings.HasPrefix(mt, "text/") {
		mt = mt[:i]
	}
	return mt
}

// readEXIF extracts capture time, GPS position and camera from a photo's
// first bytes. EXIF is attacker-controlled input: a parser panic or error
// means "no EXIF", never a failed upload.
func readEXIF(head []byte) (c *Capture) {
	defer func() {
		if recover() != nil {
			c = nil
		}
	}()
	raw, err := exif.SearchAndExtractExif(head)
	if err != nil {
		return nil
	}
	tags, _, err := exif.GetFlatExifData(raw, nil)
	if err != nil {
		return nil
	}
	byName := map[string]exif.ExifTag{}
	for _, t := range tags {
		if _, seen := byName[t.TagName]; !seen {
			byName[t.TagName] = t
		}
	}
	str := func(name string) string {
		if t, ok := byName[name]; ok {
			if s, ok := t.Value.(string); ok {
				return strings.TrimRight(strings.TrimSpace(s), "\x00")
			}
		}
		return ""
	}
	out := &Capture{}
	for _, name := range []string{"DateTimeOriginal", "DateTimeDigitized", "DateTime"} {
		if s := str(name); s != "" {
			if t, err := time.Parse("2006:01:02 15:04:05", s); err == nil {
				out.CapturedAt = t // EXIF has no zone; read as UTC, as stated in docs
				break
			}
		}
	}
	dev := Device{Make: str("Make"), Model: str("Model"), SerialNumber: str("BodySerialNumber"), Software: str("Software")}
	if dev != (Device{}) {
		out.Device = &dev
	}
	if lat, ok := gpsCoordinate(byName, "GPSLatitude", "GPSLatitudeRef"); ok {
		if lon, ok := gpsCoordinate(byName, "GPSLongitude", "GPSLongitudeRef"); ok {
			p := &GeoPoint{Latitude: lat, Longitude: lon}
			if t, ok := byName["GPSAltitude"]; ok {
				if r, ok := t.Value.([]exifcommon.Rational); ok && len(r) == 1 && r[0].Denominator != 0 {
					alt := float64(r[0].Numerator) / float64(r[0].Denominator)
					p.AltitudeM = &alt
				}
			}
			out.Location = &Location{Point: p}
		}
	}
	if out.CapturedAt.IsZero() && out.Device == nil && out.Location == nil {
		return nil
	}
	return out
}

func gpsCoordinate(byName map[string]exif.ExifTag, valueTag, refTag string) (float64, bool) {
	t, ok := byName[valueTag]
	if !ok {
		return 0, false
	}
	r, ok := t.Value.([]exifcommon.Rational)
	if !ok || len(r) != 3 {
		return 0, false
	}
	ref := ""
	if rt, ok := byName[refTag]; ok {
		ref, _ = rt.Value.(string)
	}
	d, err := exif.NewGpsDegreesFromRationals(ref, r)
	if err != nil {
		return 0, false
	}
	v := d.Decimal()
	if v < -180 || v > 180 {
		return 0, false
	}
	return v, true
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
