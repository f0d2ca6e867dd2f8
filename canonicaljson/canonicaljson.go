// Package canonicaljson encodes values as RFC 8785 (JCS) canonical JSON for
// the types Custody signs and logs: objects with string keys, arrays,
// strings, numbers, booleans and null. Keys are sorted by UTF-16 code units,
// there is no whitespace, strings escape only what JSON requires, and
// numbers are written as ECMAScript writes them, so the same value always
// gives the same bytes and an implementation in any language can rebuild
// them. Entries, records, statements and receipts carry only integers;
// floating-point numbers occur only in descriptive metadata (coordinates),
// whose digest is taken over its canonical form (Canonicalize).
package canonicaljson

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Object is a JSON object.
type Object = map[string]any

// Marshal encodes v canonically. v may be Object, []any, string, bool,
// nil, or any Go integer type; other types are an error. Integers must lie
// within ±2^53 so that every JSON reader gets them exactly.
func Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := encode(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

const maxSafeInt = 1<<53 - 1

func encode(b *bytes.Buffer, v any) error {
	switch v := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case string:
		return encodeString(b, v)
	case int:
		return encodeInt(b, int64(v))
	case int32:
		return encodeInt(b, int64(v))
	case int64:
		return encodeInt(b, v)
	case uint32:
		return encodeInt(b, int64(v))
	case float64:
		n, err := formatNumber(v)
		if err != nil {
			return err
		}
		b.WriteString(n)
	case uint64:
		if v > maxSafeInt {
			return fmt.Errorf("canonicaljson: integer %d exceeds 2^53-1", v)
		}
		return encodeInt(b, int64(v))
	case Object:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		// RFC 8785 §3.2.3 sorts by UTF-16 code units.
		slices.SortFunc(keys, compareUTF16)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			encodeString(b, k)
			b.WriteByte(':')
			if err := encode(b, v[k]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := encode(b, e); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case []string:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := encodeString(b, e); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	default:
		return fmt.Errorf("canonicaljson: unsupported type %T", v)
	}
	return nil
}

// compareUTF16 orders strings by their UTF-16 code units, as
// slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b))) does,
// without converting them. Equal runes have equal code units, so the
// first rune that differs decides, by its first code unit (a rune from
// U+10000 on starts with a high surrogate, 0xD800–0xDBFF), or, if both
// start with the same surrogate, by its second.
func compareUTF16(a, b string) int {
	for len(a) > 0 && len(b) > 0 {
		if a[0] < utf8.RuneSelf && b[0] < utf8.RuneSelf {
			if a[0] != b[0] {
				return int(a[0]) - int(b[0])
			}
			a, b = a[1:], b[1:]
			continue
		}
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if ra != rb {
			ha, la := utf16Units(ra)
			hb, lb := utf16Units(rb)
			if ha != hb {
				return int(ha) - int(hb)
			}
			return int(la) - int(lb)
		}
		a, b = a[na:], b[nb:]
	}
	return len(a) - len(b)
}

// utf16Units returns r's UTF-16 code units (the second 0 if r has one),
// U+FFFD for what utf16.Encode replaces.
func utf16Units(r rune) (uint16, uint16) {
	if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError || r2 != utf8.RuneError {
		return uint16(r1), uint16(r2)
	}
	if r > utf8.MaxRune || (r >= 0xD800 && r < 0xE000) || r < 0 {
		return utf8.RuneError, 0
	}
	return uint16(r), 0
}

func encodeInt(b *bytes.Buffer, v int64) error {
	if v > maxSafeInt || v < -maxSafeInt {
		return fmt.Errorf("canonicaljson: integer %d outside ±2^53-1", v)
	}
	var buf [24]byte
	b.Write(strconv.AppendInt(buf[:0], v, 10))
	return nil
}

func encodeString(b *bytes.Buffer, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("canonicaljson: string is not valid UTF-8")
	}
	b.WriteByte('"')
	for len(s) > 0 {
		// Copy the run of bytes written as they are (s is valid UTF-8,
		// so bytes from 0x80 on are whole runes, written unchanged).
		n := 0
		for n < len(s) && s[n] >= 0x20 && s[n] != '"' && s[n] != '\\' {
			n++
		}
		b.WriteString(s[:n])
		if s = s[n:]; len(s) == 0 {
			break
		}
		switch r := s[0]; {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		default: // r < 0x20
			fmt.Fprintf(b, `\u%04x`, r)
		}
		s = s[1:]
	}
	b.WriteByte('"')
	return nil
}
