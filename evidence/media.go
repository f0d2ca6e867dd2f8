package evidence

import (
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
