package canonicaljson

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

// The encoder's fast forms against the plain ones they replace.

func compareUTF16Plain(a, b string) int {
	return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
}

func encodeStringPlain(b *bytes.Buffer, s string) error {
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

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

var stringSeeds = []string{"", "a", "ab", "b", "\u20ac", "\r", "\ufb33", "1", "\U0001F600", "\u0080", "\u00f6", "\uffff", "\ue000",
	"\U00010000", "\U0010FFFF", "\xff", "\xed\xa0\x80", "a\"b\\c\n\u0001<>&é\u2028", "\x7f\x1f\t\b\f", "\U0001F600x", "\U0001F601"}

func FuzzCompareUTF16(f *testing.F) {
	for _, a := range stringSeeds {
		for _, b := range stringSeeds {
			f.Add(a, b)
		}
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if got, want := sign(compareUTF16(a, b)), sign(compareUTF16Plain(a, b)); got != want {
			t.Fatalf("compareUTF16(%q, %q) = %d, want %d", a, b, got, want)
		}
	})
}

func FuzzEncodeString(f *testing.F) {
	for _, s := range stringSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var got, want bytes.Buffer
		err1 := encodeString(&got, s)
		err2 := encodeStringPlain(&want, s)
		if (err1 == nil) != (err2 == nil) || got.String() != want.String() {
			t.Fatalf("encodeString(%q) = %q, %v; want %q, %v", s, got.String(), err1, want.String(), err2)
		}
	})
}
