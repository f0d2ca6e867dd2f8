package media

import (
	"bytes"
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"time"
)

// QuickTime metadata, as phones and cameras write it in a movie:
//
//   - user data (moov/udta) text items: ©xyz (the place, ISO 6709), ©mak
//     and ©mod (make and model); each a QuickTime text item (16-bit length,
//     16-bit language, text) or an iTunes-style item holding a data box;
//     and the 3GPP location box loci;
//   - metadata (moov/meta, or moov/udta/meta) of the mdta handler: a keys
//     box naming the items of an ilst box, read for
//     com.apple.quicktime.location.ISO6709, com.apple.quicktime.make,
//     com.apple.quicktime.model, com.apple.quicktime.software and
//     com.apple.quicktime.creationdate.
//
// The first value found for a field wins: moov/meta, then moov/udta.

// Apple's metadata keys read.
const (
	keyLocation = "com.apple.quicktime.location.ISO6709"
	keyMake     = "com.apple.quicktime.make"
	keyModel    = "com.apple.quicktime.model"
	keySoftware = "com.apple.quicktime.software"
	keyCreated  = "com.apple.quicktime.creationdate"
)

// quickTimeMeta collects what the metadata says.
type quickTimeMeta struct {
	make, model, software string
	position              *Position
	created               time.Time
}

func (q *quickTimeMeta) set(field *string, v string) {
	if *field == "" {
		*field = CleanText(v)
	}
}

func (q *quickTimeMeta) setPosition(iso6709 string) {
	if q.position == nil {
		q.position = ParseISO6709(iso6709)
	}
}

// readUdta reads a movie's user data box.
func (q *quickTimeMeta) readUdta(udta []byte) {
	children(udta, func(typ string, b []byte) bool {
		switch typ {
		case "\xa9xyz":
			if s, ok := itemText(b); ok {
				q.setPosition(s)
			}
		case "\xa9mak":
			if s, ok := itemText(b); ok {
				q.set(&q.make, s)
			}
		case "\xa9mod":
			if s, ok := itemText(b); ok {
				q.set(&q.model, s)
			}
		case "loci":
			if q.position == nil {
				q.position = readLoci(b)
			}
		case "meta":
			q.readMeta(b)
		}
		return true
	})
}

// readMeta reads a metadata box: QuickTime's (its children follow at once)
// or ISO's (a full box: version and flags first).
func (q *quickTimeMeta) readMeta(meta []byte) {
	if len(meta) >= 8 && string(meta[4:8]) != "hdlr" {
		meta = meta[4:]
	}
	var keys []string
	var ilst []byte
	children(meta, func(typ string, b []byte) bool {
		switch typ {
		case "keys":
			if keys == nil {
				keys = readKeys(b)
			}
		case "ilst":
			if ilst == nil {
				ilst = b
			}
		}
		return true
	})
	children(ilst, func(typ string, b []byte) bool {
		name := typ
		if i := binary.BigEndian.Uint32([]byte(typ)); i >= 1 && uint64(i) <= uint64(len(keys)) {
			name = keys[i-1]
		}
		v, ok := dataText(b)
		if !ok {
			return true
		}
		switch name {
		case keyLocation, "\xa9xyz":
			q.setPosition(v)
		case keyMake, "\xa9mak":
			q.set(&q.make, v)
		case keyModel, "\xa9mod":
			q.set(&q.model, v)
		case keySoftware:
			q.set(&q.software, v)
		case keyCreated:
			if q.created.IsZero() {
				q.created = parseQuickTimeDate(v)
			}
		}
		return true
	})
}

// readKeys reads a keys box: version and flags, an entry count, then each
// key as size (with its 8-byte header), namespace and name.
func readKeys(b []byte) []string {
	if len(b) < 8 {
		return nil
	}
	count := binary.BigEndian.Uint32(b[4:])
	b = b[8:]
	keys := []string{}
	for uint32(len(keys)) < count && len(keys) < maxInnerBoxes && len(b) >= 8 {
		size := binary.BigEndian.Uint32(b)
		if size < 8 || uint64(size) > uint64(len(b)) {
			break
		}
		keys = append(keys, string(b[8:size]))
		b = b[size:]
	}
	return keys
}

// dataText is the UTF-8 value of the first data box in an item: type
// indicator (a zero byte and a 24-bit type, 1 for UTF-8), locale, value.
func dataText(item []byte) (string, bool) {
	var v string
	var ok bool
	children(item, func(typ string, b []byte) bool {
		if typ != "data" {
			return true
		}
		if len(b) >= 8 && binary.BigEndian.Uint32(b) == 1 {
			v, ok = string(b[8:]), true
		}
		return false
	})
	return v, ok
}

// itemText is the text of a user-data item: an iTunes-style item (a data
// box) or a QuickTime text item (its first entry: 16-bit length, 16-bit
// language code, text).
func itemText(b []byte) (string, bool) {
	if len(b) >= 16 && string(b[4:8]) == "data" && uint64(binary.BigEndian.Uint32(b)) <= uint64(len(b)) {
		return dataText(b)
	}
	if len(b) < 4 {
		return "", false
	}
	n := int(binary.BigEndian.Uint16(b))
	if 4+n > len(b) {
		return "", false
	}
	return string(b[4 : 4+n]), true
}

// readLoci reads a 3GPP location box (3GPP TS 26.244): version and flags,
// language, a null-terminated name, a role byte, then longitude, latitude
// and altitude as signed 16.16 fixed-point numbers.
func readLoci(b []byte) *Position {
	if len(b) < 6 {
		return nil
	}
	b = b[6:]
	end := bytes.IndexByte(b, 0)
	if end < 0 || len(b) < end+2+12 {
		return nil
	}
	b = b[end+2:]
	fixed := func(i int) float64 { return float64(int32(binary.BigEndian.Uint32(b[4*i:]))) / 65536 }
	lon, lat, alt := fixed(0), fixed(1), fixed(2)
	if math.Abs(lat) > 90 || math.Abs(lon) > 180 {
		return nil
	}
	p := &Position{Latitude: lat, Longitude: lon}
	if alt != 0 && alt >= minAltitudeM && alt <= maxAltitudeM {
		p.AltitudeM = &alt
	}
	return p
}

// parseQuickTimeDate reads com.apple.quicktime.creationdate: ISO 8601 with
// a zone ("2024-05-01T14:22:05+0300", "…Z", "…+03:00"), fractions of a
// second allowed. A time without a zone is not read (it names no instant),
// nor one that is not plausible.
func parseQuickTimeDate(s string) time.Time {
	s = strings.TrimSpace(s)
	for _, layout := range []string{"2006-01-02T15:04:05Z0700", "2006-01-02T15:04:05Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return plausible(t.UTC())
		}
	}
	return time.Time{}
}

// ParseISO6709 reads a point in the ISO 6709 string form QuickTime and
// Android use ("+50.4501+030.5234/", "+37.3349-122.0090+011.989/",
// optionally "CRS…" before the final "/"): latitude and longitude in
// decimal degrees, degrees and minutes, or degrees, minutes and seconds
// (told apart by the digits before the decimal point: 2, 4 or 6 for
// latitude, 3, 5 or 7 for longitude), then an optional altitude in metres.
// It returns nil for anything else or a point off the globe; an altitude
// outside -12 km to 100 km is dropped alone.
func ParseISO6709(s string) *Position {
	s = strings.TrimSpace(s)
	if len(s) > 128 {
		return nil
	}
	s = strings.TrimSuffix(s, "/")
	if i := strings.Index(s, "CRS"); i >= 0 {
		s = s[:i]
	}
	var parts []string
	for len(s) > 0 {
		if s[0] != '+' && s[0] != '-' {
			return nil
		}
		end := strings.IndexAny(s[1:], "+-")
		if end < 0 {
			end = len(s) - 1
		}
		parts = append(parts, s[:end+1])
		s = s[end+1:]
	}
	if len(parts) != 2 && len(parts) != 3 {
		return nil
	}
	lat, ok := sexagesimal(parts[0], 2)
	if !ok || math.Abs(lat) > 90 {
		return nil
	}
	lon, ok := sexagesimal(parts[1], 3)
	if !ok || math.Abs(lon) > 180 {
		return nil
	}
	p := &Position{Latitude: lat, Longitude: lon}
	if len(parts) == 3 {
		if alt, err := strconv.ParseFloat(parts[2], 64); err == nil && validNumber(parts[2][1:]) && alt >= minAltitudeM && alt <= maxAltitudeM {
			p.AltitudeM = &alt
		}
	}
	return p
}

// sexagesimal reads one signed ISO 6709 coordinate whose degrees take
// degDigits digits: D.D, DM.M or DMS.S by the count of digits before the
// point.
func sexagesimal(s string, degDigits int) (float64, bool) {
	sign := 1.0
	if s[0] == '-' {
		sign = -1
	}
	s = s[1:]
	if !validNumber(s) {
		return 0, false
	}
	whole := strings.IndexByte(s, '.')
	if whole < 0 {
		whole = len(s)
	}
	num := func(t string) float64 {
		v, _ := strconv.ParseFloat(t, 64) // validNumber checked the syntax
		return v
	}
	var v float64
	switch whole {
	case degDigits:
		v = num(s)
	case degDigits + 2:
		m := num(s[degDigits:])
		if m >= 60 {
			return 0, false
		}
		v = num(s[:degDigits]) + m/60
	case degDigits + 4:
		m, sec := num(s[degDigits:degDigits+2]), num(s[degDigits+2:])
		if m >= 60 || sec >= 60 {
			return 0, false
		}
		v = num(s[:degDigits]) + m/60 + sec/3600
	default:
		return 0, false
	}
	return sign * v, true
}

// validNumber reports whether s is digits, optionally a point and more
// digits, with a digit first (no sign, exponent or other characters).
func validNumber(s string) bool {
	if s == "" || s[0] < '0' || s[0] > '9' {
		return false
	}
	point := false
	for _, c := range []byte(s) {
		switch {
		case c >= '0' && c <= '9':
		case c == '.' && !point:
			point = true
		default:
			return false
		}
	}
	return true
}
