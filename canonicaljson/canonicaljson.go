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
		slices.SortFunc(keys, func(a, b string) int {
			return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
		})
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

func encodeInt(b *bytes.Buffer, v int64) error {
	if v > maxSafeInt || v < -maxSafeInt {
		return fmt.Errorf("canonicaljson: integer %d outside ±2^53-1", v)
	}
	b.WriteString(strconv.FormatInt(v, 10))
	return nil
}

func encodeString(b *bytes.Buffer, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("canonicaljson: string is not valid UTF-8")
	}
	b.WriteByte('"')
	for _, r := range s {
		switch {
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
		case r < 0x20:
			fmt.Fprintf(b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return nil
}
