package canonicaljson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Parse decodes one JSON value strictly: the input must be valid UTF-8, hold
// exactly one value, and no object may repeat a key (a reader that keeps the
// first of two equal keys and one that keeps the last would see different
// documents). Objects become Object, arrays []any, strings string, booleans
// bool, null nil, and numbers float64 (RFC 8785 reads every number as an
// IEEE 754 double).
func Parse(b []byte) (any, error) {
	if !utf8.Valid(b) {
		return nil, errors.New("not valid UTF-8")
	}
	if err := checkEscapes(b); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := parseValue(dec, "")
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

// Canonicalize re-encodes a JSON document as RFC 8785 canonical JSON
// (after the strict checks of Parse). Numbers follow ECMAScript's
// Number-to-string rule, as RFC 8785 §3.2.2.3 requires.
func Canonicalize(b []byte) ([]byte, error) {
	v, err := Parse(b)
	if err != nil {
		return nil, err
	}
	return Marshal(v)
}

// MaxDepth bounds how deeply Parse lets values nest.
const MaxDepth = 100

// checkEscapes refuses lone UTF-16 surrogates written as \u escapes
// (encoding/json would turn them into U+FFFD, so two readers could see
// different strings) and nesting deeper than MaxDepth.
func checkEscapes(b []byte) error {
	inString, depth := false, 0
	pendingHigh := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !inString {
			switch c {
			case '"':
				inString = true
			case '{', '[':
				if depth++; depth > MaxDepth {
					return fmt.Errorf("values nest deeper than %d levels", MaxDepth)
				}
			case '}', ']':
				depth--
			}
			continue
		}
		isLow := false
		switch c {
		case '"':
			inString = false
		case '\\':
			if i+1 < len(b) && b[i+1] == 'u' && i+5 < len(b) {
				v, err := strconv.ParseUint(string(b[i+2:i+6]), 16, 16)
				if err == nil {
					switch {
					case v >= 0xD800 && v <= 0xDBFF:
						if pendingHigh {
							return errors.New("a string holds a lone UTF-16 surrogate")
						}
						pendingHigh = true
						i += 5
						continue
					case v >= 0xDC00 && v <= 0xDFFF:
						if !pendingHigh {
							return errors.New("a string holds a lone UTF-16 surrogate")
						}
						isLow = true
					}
				}
				i += 5
			} else {
				i++
			}
		}
		if pendingHigh && !isLow {
			return errors.New("a string holds a lone UTF-16 surrogate")
		}
		pendingHigh = false
	}
	return nil
}

func parseValue(dec *json.Decoder, path string) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where(path), err)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			obj := Object{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, fmt.Errorf("%s: %w", where(path), err)
				}
				k := kt.(string)
				if _, dup := obj[k]; dup {
					return nil, fmt.Errorf("%s: key %q appears twice", where(path), k)
				}
				v, err := parseValue(dec, path+"."+k)
				if err != nil {
					return nil, err
				}
				obj[k] = v
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return obj, nil
		case '[':
			arr := []any{}
			for i := 0; dec.More(); i++ {
				v, err := parseValue(dec, path+"["+strconv.Itoa(i)+"]")
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return arr, nil
		}
		return nil, fmt.Errorf("%s: unexpected %v", where(path), t)
	case json.Number:
		f, err := strconv.ParseFloat(string(t), 64)
		if err != nil || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%s: number %s is out of range", where(path), t)
		}
		return f, nil
	default:
		return t, nil
	}
}

func where(path string) string {
	if path == "" {
		return "document"
	}
	return strings.TrimPrefix(path, ".")
}

// formatNumber writes f as ECMAScript's Number.prototype.toString does
// (shortest round-trip digits; exponent form below 1e-6 and from 1e21).
func formatNumber(f float64) (string, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "", errors.New("canonicaljson: NaN and infinities have no JSON form")
	}
	if f == 0 {
		return "0", nil // also -0
	}
	format := byte('f')
	if abs := math.Abs(f); abs < 1e-6 || abs >= 1e21 {
		format = 'e'
	}
	s := strconv.FormatFloat(f, format, -1, 64)
	if format == 'e' {
		// Go writes e-07 and e+21; ECMAScript writes e-7 and e+21.
		if i := strings.IndexByte(s, 'e'); i >= 0 && len(s) > i+3 && s[i+2] == '0' {
			s = s[:i+2] + s[i+3:]
		}
	}
	return s, nil
}
