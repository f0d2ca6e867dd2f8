package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/custody-dev/custody/canonicaljson"
)

// checkIngest binds the bundle's statements about the item (docs/VERIFY.md
// step 5) to the ingest entry, the ingest receipt and, when present, the
// ingest record, and returns them as facts for the court to read.
func checkIngest(b *Bundle, first checkedEvent) ([]Fact, error) {
	e := b.Evidence
	if first.entry == nil {
		return nil, errors.New("no readable ingest entry")
	}
	var errs []error
	mismatch := func(field string, stated, committed any, by string) {
		errs = append(errs, fmt.Errorf("evidence.%s is %v, but the %s states %v", field, stated, by, committed))
	}
	if got, _ := first.entry["sha256"].(string); got != e.SHA256 {
		mismatch("sha256", e.SHA256, got, "ingest entry")
	}
	rc := first.receipt
	if rc == nil {
		errs = append(errs, errors.New("the ingest receipt did not verify, so the item's size, media type, case, kind and category are not bound"))
	} else {
		for _, f := range []struct {
			name   string
			stated any
		}{
			{"sha256", e.SHA256}, {"size", e.Size}, {"media_type", e.MediaType}, {"case_id", e.CaseID}, {"kind", e.Kind},
		} {
			if v, ok := rc[f.name]; !ok || fmt.Sprint(v) != fmt.Sprint(f.stated) {
				mismatch(f.name, f.stated, v, "ingest receipt")
			}
		}
		special, ok := rc["special"].(bool)
		switch {
		case !ok:
			errs = append(errs, errors.New("the ingest receipt does not state whether the item is special-category"))
		case e.Withheld && !special:
			errs = append(errs, errors.New("the bundle says records are withheld, but the ingest receipt says the item is not special-category: records were stripped"))
		}
	}
	if e.Withheld {
		if len(e.Metadata) > 0 {
			errs = append(errs, errors.New("the bundle says the item's data is withheld, yet carries its metadata"))
		}
	} else if rec := first.record; rec != nil {
		d := rec.Details
		for _, f := range []struct {
			name   string
			stated any
		}{
			{"case_id", e.CaseID}, {"kind", e.Kind}, {"size", e.Size}, {"media_type", e.MediaType},
		} {
			if v, ok := d[f.name]; !ok || fmt.Sprint(v) != fmt.Sprint(f.stated) {
				mismatch(f.name, f.stated, v, "ingest record")
			}
		}
		if rec.ContentSHA256 != e.SHA256 {
			mismatch("sha256", e.SHA256, rec.ContentSHA256, "ingest record")
		}
		if rc != nil {
			if rc["special"] != d["special"] {
				errs = append(errs, fmt.Errorf("the ingest record states special %v, the receipt %v", d["special"], rc["special"]))
			}
			if !sameJSON(rc["storage"], d["storage"]) {
				errs = append(errs, errors.New("the ingest receipt and record name different stored objects"))
			}
		}
		if len(e.Metadata) == 0 {
			errs = append(errs, errors.New("evidence.metadata is missing"))
		} else {
			canon, err := canonicaljson.Canonicalize(e.Metadata)
			sum := sha256.Sum256(canon)
			if err != nil {
				errs = append(errs, fmt.Errorf("evidence.metadata: %w", err))
			} else if want, _ := d["metadata_sha256"].(string); hex.EncodeToString(sum[:]) != want {
				errs = append(errs, fmt.Errorf("evidence.metadata hashes to %x in canonical form; the ingest record commits to %s: the metadata was changed", sum, want))
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	facts := []Fact{
		{"evidence id", e.EvidenceID, "every log entry and receipt"},
		{"sha256", e.SHA256, "the ingest entry and receipt"},
		{"size", strconv.FormatInt(e.Size, 10) + " bytes", "the ingest receipt"},
		{"media type (sniffed by the service)", e.MediaType, "the ingest receipt"},
		{"case", e.CaseID, "the ingest receipt"},
		{"kind", e.Kind, "the ingest receipt"},
		{"special category", strconv.FormatBool(rc["special"] == true), "the ingest receipt"},
		{"ingested at (service clock)", fmt.Sprint(first.entry["time"]), "the ingest entry"},
	}
	if first.record != nil {
		facts = append(facts, Fact{"collector", first.record.Performer, "the ingest record"})
	}
	if len(e.Metadata) > 0 {
		canon, _ := canonicaljson.Canonicalize(e.Metadata)
		facts = append(facts, Fact{"metadata", string(canon), "the ingest record's metadata_sha256"})
	}
	return facts, nil
}

// sameJSON compares two decoded canonical values by their encoding.
func sameJSON(a, b any) bool {
	ea, err1 := canonicaljson.Marshal(a)
	eb, err2 := canonicaljson.Marshal(b)
	return err1 == nil && err2 == nil && string(ea) == string(eb)
}

// capturedAt reads metadata.capture.captured_at, if stated.
func capturedAt(metadata []byte) (string, bool) {
	if len(metadata) == 0 {
		return "", false
	}
	v, err := canonicaljson.Parse(metadata)
	if err != nil {
		return "", false
	}
	md, _ := v.(canonicaljson.Object)
	capture, _ := md["capture"].(canonicaljson.Object)
	at, ok := capture["captured_at"].(string)
	return at, ok
}
