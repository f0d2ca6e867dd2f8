package canonicaljson

import (
	"strings"
	"unicode/utf8"
)

// DecodeCanonicalObject decodes b if it is exactly the canonical encoding
// (Marshal) of a JSON object whose numbers are all integers within
// ±2^53-1, and reports whether it was. Objects become Object, arrays
// []any, strings string, integers int64, booleans bool, null nil.
//
// It is a fast path for readers that require canonical input (log
// entries, records, receipts): what it accepts is what a general JSON
// decoder would decode to the same values and Marshal would re-encode to
// the same bytes, so the caller may skip both. It accepts nothing else: no
// whitespace, keys strictly in the order Marshal sorts them, strings
// escaped only as Marshal escapes them, integers without leading zeros,
// "-0", fractions or exponents. false says only that b is not in that
// form; the caller then decodes it the general way, for its error.
func DecodeCanonicalObject(b []byte) (Object, bool) {
	if len(b) == 0 || b[0] != '{' || !utf8.Valid(b) {
		return nil, false
	}
	d := canonicalDecoder{b: b}
	v, ok := d.value(0)
	if !ok || d.i != len(b) {
		return nil, false
	}
	obj, ok := v.(Object)
	return obj, ok
}

// maxCanonicalDepth bounds the nesting the fast path follows; deeper
// documents take the general path.
const maxCanonicalDepth = 64

type canonicalDecoder struct {
	b []byte
	i int
}

type member struct {
	key   string
	value any
}

func (d *canonicalDecoder) value(depth int) (any, bool) {
	if d.i >= len(d.b) || depth > maxCanonicalDepth {
		return nil, false
	}
	switch c := d.b[d.i]; {
	case c == '{':
		d.i++
		if d.i < len(d.b) && d.b[d.i] == '}' {
			d.i++
			return Object{}, true
		}
		// The members wait here until the object's size is known.
		var buf [16]member
		members := buf[:0]
		for {
			k, ok := d.string()
			if !ok || (len(members) > 0 && compareUTF16(members[len(members)-1].key, k) >= 0) {
				return nil, false // out of Marshal's order, or repeated
			}
			if d.i >= len(d.b) || d.b[d.i] != ':' {
				return nil, false
			}
			d.i++
			v, ok := d.value(depth + 1)
			if !ok {
				return nil, false
			}
			members = append(members, member{k, v})
			if d.i >= len(d.b) {
				return nil, false
			}
			switch d.b[d.i] {
			case ',':
				d.i++
			case '}':
				d.i++
				obj := make(Object, len(members))
				for _, m := range members {
					obj[m.key] = m.value
				}
				return obj, true
			default:
				return nil, false
			}
		}
	case c == '[':
		d.i++
		arr := []any{}
		if d.i < len(d.b) && d.b[d.i] == ']' {
			d.i++
			return arr, true
		}
		for {
			v, ok := d.value(depth + 1)
			if !ok {
				return nil, false
			}
			arr = append(arr, v)
			if d.i >= len(d.b) {
				return nil, false
			}
			switch d.b[d.i] {
			case ',':
				d.i++
			case ']':
				d.i++
				return arr, true
			default:
				return nil, false
			}
		}
	case c == '"':
		return d.string()
	case c == '-' || (c >= '0' && c <= '9'):
		return d.integer()
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	}
	return nil, false
}

func (d *canonicalDecoder) literal(word string) bool {
	if len(d.b)-d.i < len(word) || string(d.b[d.i:d.i+len(word)]) != word {
		return false
	}
	d.i += len(word)
	return true
}

// integer reads an integer as strconv.FormatInt writes it, within
// ±2^53-1.
func (d *canonicalDecoder) integer() (any, bool) {
	neg := d.b[d.i] == '-'
	if neg {
		d.i++
	}
	start := d.i
	var n int64
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		if d.i-start >= 16 { // 2^53-1 has 16 digits
			return nil, false
		}
		n = n*10 + int64(d.b[d.i]-'0')
		d.i++
	}
	digits := d.i - start
	switch {
	case digits == 0, digits > 1 && d.b[start] == '0', neg && n == 0, n > maxSafeInt:
		return nil, false
	}
	if d.i < len(d.b) && (d.b[d.i] == '.' || d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		return nil, false
	}
	if neg {
		n = -n
	}
	return n, true
}

// string reads a string escaped exactly as encodeString escapes it: `\"`,
// `\\`, \b, \f, \n, \r, \t, other control characters as \u00xx (lower
// case), everything else as it is (the input is valid UTF-8).
func (d *canonicalDecoder) string() (string, bool) {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return "", false
	}
	d.i++
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		if c == '"' {
			s := string(d.b[start:d.i])
			d.i++
			return s, true
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", false
		}
		d.i++
	}
	// Escapes: the value is at most as long as the text up to the
	// closing quote.
	n := d.i - start
	for j := d.i; j < len(d.b) && d.b[j] != '"'; j++ {
		if d.b[j] == '\\' {
			j++
		}
		n = j - start + 1
	}
	var sb strings.Builder
	sb.Grow(n)
	sb.Write(d.b[start:d.i])
	for d.i < len(d.b) {
		run := d.i
		for d.i < len(d.b) && d.b[d.i] >= 0x20 && d.b[d.i] != '"' && d.b[d.i] != '\\' {
			d.i++
		}
		sb.Write(d.b[run:d.i])
		if d.i >= len(d.b) {
			break
		}
		switch c := d.b[d.i]; {
		case c == '"':
			d.i++
			return sb.String(), true
		case c < 0x20:
			return "", false
		}
		if d.i+1 >= len(d.b) {
			return "", false
		}
		switch d.b[d.i+1] {
		case '"':
			sb.WriteByte('"')
		case '\\':
			sb.WriteByte('\\')
		case 'b':
			sb.WriteByte('\b')
		case 'f':
			sb.WriteByte('\f')
		case 'n':
			sb.WriteByte('\n')
		case 'r':
			sb.WriteByte('\r')
		case 't':
			sb.WriteByte('\t')
		case 'u':
			// Only \u00xx for a control character without a short form.
			if len(d.b)-d.i < 6 || d.b[d.i+2] != '0' || d.b[d.i+3] != '0' {
				return "", false
			}
			hi, lo := d.b[d.i+4], d.b[d.i+5]
			if hi != '0' && hi != '1' {
				return "", false
			}
			var v byte
			switch {
			case lo >= '0' && lo <= '9':
				v = lo - '0'
			case lo >= 'a' && lo <= 'f':
				v = lo - 'a' + 10
			default:
				return "", false
			}
			v += (hi - '0') << 4
			switch v {
			case '\b', '\f', '\n', '\r', '\t':
				return "", false
			}
			sb.WriteByte(v)
			d.i += 6
			continue
		default:
			return "", false
		}
		d.i += 2
	}
	return "", false
}
