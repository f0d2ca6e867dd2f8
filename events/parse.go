package events

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/custody-dev/custody/canonicaljson"
)

// ParseRecord decodes a record's canonical bytes. It fails unless the
// bytes are exactly the canonical encoding of what they decode to, so a
// parsed record always re-encodes to the same commitment.
func ParseRecord(b []byte) (Record, error) {
	return parseRecord(b, true)
}

// parseRecord is ParseRecord; fast lets a record already known canonical
// skip its re-encoding when reencodes shows it would give the same bytes.
func parseRecord(b []byte, fast bool) (Record, error) {
	obj, canonical, err := decodeObject(b)
	if err != nil {
		return Record{}, fmt.Errorf("event record: %w", err)
	}
	var r Record
	var errs []error
	str := func(k string, required bool) string {
		v, ok := obj[k].(string)
		if !ok && (required || obj[k] != nil) {
			errs = append(errs, fmt.Errorf("%q missing or not a string", k))
		}
		return v
	}
	num := func(k string) (uint64, bool) {
		switch v := obj[k].(type) {
		case int64:
			if v >= 0 {
				return uint64(v), true
			}
		case nil:
			return 0, false
		}
		errs = append(errs, fmt.Errorf("%q is not a non-negative integer", k))
		return 0, false
	}
	if v, _ := num("v"); v != FormatVersion {
		return Record{}, fmt.Errorf("event record: format version %v, this verifier reads %d", obj["v"], FormatVersion)
	}
	r.EvidenceID = str("evidence_id", true)
	r.Sequence, _ = num("seq")
	r.Type = Type(str("type", true))
	at, err := time.Parse(time.RFC3339Nano, str("recorded_at", true))
	if err != nil {
		errs = append(errs, fmt.Errorf("recorded_at: %v", err))
	}
	r.RecordedAt = at
	r.Performer = str("performer", true)
	r.Counterparty = str("counterparty", false)
	r.Purpose = str("purpose", false)
	r.ContentSHA256 = str("sha256", false)
	if d, ok := obj["details"].(canonicaljson.Object); ok {
		r.Details = d
	} else if obj["details"] != nil {
		errs = append(errs, errors.New(`"details" is not an object`))
	}
	salt, err := hex.DecodeString(str("salt", true))
	if err != nil || len(salt) != 32 {
		errs = append(errs, errors.New(`"salt" is not 32 bytes of hex`))
	}
	copy(r.Salt[:], salt)
	if idx, ok := num("prev_index"); ok {
		leaf, err := hex.DecodeString(str("prev_leaf_hash", true))
		if err != nil || len(leaf) != 32 {
			errs = append(errs, errors.New(`"prev_leaf_hash" is not 32 bytes of hex`))
		}
		r.Previous = &Link{Index: idx}
		copy(r.Previous.LeafHash[:], leaf)
	}
	if len(errs) > 0 {
		return Record{}, fmt.Errorf("event record: %w", errors.Join(errs...))
	}
	if fast && canonical && reencodes(obj, r) {
		return r, nil
	}
	again, err := r.Canonical()
	if err != nil {
		return Record{}, fmt.Errorf("event record: %w", err)
	}
	if !bytes.Equal(again, b) {
		return Record{}, errors.New("event record: not in canonical form (unknown fields, order or spacing)")
	}
	return r, nil
}

// reencodes reports whether r.Canonical() gives back the bytes obj was
// decoded from, when those are canonical (decodeObject) and ParseRecord
// built r from obj without error. Canonical then writes the same value for
// every key both hold (ParseRecord took each from obj, its type checked),
// so the bytes are the same if the keys are, and if the three values
// Canonical re-spells (the time, the salt and the link's hash) are
// spelled in obj as it spells them.
func reencodes(obj canonicaljson.Object, r Record) bool {
	keys := 6 // v, evidence_id, type, recorded_at, performer, salt: required
	has := func(k string, want bool) bool {
		_, ok := obj[k]
		if want {
			keys++
		}
		return ok == want
	}
	if !has("seq", true) || !has("counterparty", r.Counterparty != "") || !has("purpose", r.Purpose != "") ||
		!has("details", len(r.Details) > 0) || !has("sha256", r.ContentSHA256 != "") ||
		!has("prev_index", r.Previous != nil) || !has("prev_leaf_hash", r.Previous != nil) || len(obj) != keys {
		return false
	}
	var buf [64]byte
	if at, _ := obj["recorded_at"].(string); at != string(r.RecordedAt.UTC().AppendFormat(buf[:0], time.RFC3339Nano)) {
		return false
	}
	hex.Encode(buf[:], r.Salt[:])
	if salt, _ := obj["salt"].(string); salt != string(buf[:]) {
		return false
	}
	if r.Previous != nil {
		hex.Encode(buf[:], r.Previous.LeafHash[:])
		if leaf, _ := obj["prev_leaf_hash"].(string); leaf != string(buf[:]) {
			return false
		}
	}
	return true
}

// decodeObject decodes JSON into canonicaljson types: objects, arrays,
// strings, int64, bool, nil. Non-integer numbers are refused. canonical
// reports that b is already known to be the canonical encoding of obj
// (canonicaljson.DecodeCanonicalObject, the fast path for what this
// package reads); otherwise the caller compares as before.
func decodeObject(b []byte) (obj canonicaljson.Object, canonical bool, err error) {
	if obj, ok := canonicaljson.DecodeCanonicalObject(b); ok {
		return obj, true, nil
	}
	obj, err = decodeObjectJSON(b)
	return obj, false, err
}

// decodeObjectJSON is decodeObject for any JSON text.
func decodeObjectJSON(b []byte) (canonicaljson.Object, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data")
	}
	conv, err := convert(v)
	if err != nil {
		return nil, err
	}
	obj, ok := conv.(canonicaljson.Object)
	if !ok {
		return nil, errors.New("not a JSON object")
	}
	return obj, nil
}

func convert(v any) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		out := canonicaljson.Object{}
		for k, e := range v {
			c, err := convert(e)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			c, err := convert(e)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case json.Number:
		n, err := v.Int64()
		if err != nil {
			return nil, fmt.Errorf("number %s is not an integer", v)
		}
		return n, nil
	default:
		return v, nil
	}
}

// ParseCanonical decodes a JSON object that must be in canonical form
// (docs/LOG_FORMAT.md): receipts' payloads, statements.
func ParseCanonical(b []byte) (canonicaljson.Object, error) {
	obj, canonical, err := decodeObject(b)
	if err != nil {
		return nil, err
	}
	if !canonical {
		again, err := canonicaljson.Marshal(obj)
		if err != nil || !bytes.Equal(again, b) {
			return nil, errors.New("not in canonical form")
		}
	}
	return obj, nil
}

// ParseEntry decodes a public log entry into its fields, checking it is
// canonical.
func ParseEntry(b []byte) (canonicaljson.Object, error) {
	obj, canonical, err := decodeObject(b)
	if err != nil {
		return nil, fmt.Errorf("log entry: %w", err)
	}
	if !canonical {
		again, err := canonicaljson.Marshal(obj)
		if err != nil || !bytes.Equal(again, b) {
			return nil, errors.New("log entry: not in canonical form")
		}
	}
	if v, _ := obj["v"].(int64); v != FormatVersion {
		return nil, fmt.Errorf("log entry: format version %v, this reader knows %d", obj["v"], FormatVersion)
	}
	return obj, nil
}
