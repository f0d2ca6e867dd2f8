// Package events owns what a custody event is: the full event record kept by
// the service and handed to courts in bundles, and the public log entry that
// commits to it. Both are canonical JSON (package canonicaljson), specified
// byte for byte in docs/LOG_FORMAT.md so that a program in any language can
// rebuild them.
//
// The entry is public, so it carries only opaque ids, digests, the event
// type, the sequence and the time; it commits to the full record with
// SHA-256 over the record's canonical bytes, which include a random salt so
// the commitment cannot be tested against guesses.
package events

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/custody-dev/custody/canonicaljson"
)

// FormatVersion is the "v" of records and entries.
const FormatVersion = 1

// Type is the kind of a custody event.
type Type string

// The event types.
const (
	Ingest            Type = "ingest"
	Release           Type = "release"
	Accept            Type = "accept"
	ReleaseCancelled  Type = "release_cancelled"
	ReleaseExpired    Type = "release_expired"
	Access            Type = "access"
	Analysis          Type = "analysis"
	Derivation        Type = "derivation"
	Verification      Type = "verification"
	SubmissionToCourt Type = "submission_to_court"
	Annotation        Type = "annotation"
)

// Link points at the previous event of the same item in the log.
type Link struct {
	Index    uint64
	LeafHash [32]byte
}

// Record is the full record of one custody event. Zero-valued fields are
// left out of its encoding.
type Record struct {
	EvidenceID string
	Sequence   uint64
	Type       Type
	RecordedAt time.Time
	// Performer is the identity URI of whoever acted.
	Performer string
	// Counterparty is the other party of a hand-off.
	Counterparty string
	Purpose      string
	// Details holds the type-specific fields (authority, instrument,
	// location, outcome, note, related item, signatures...), already in
	// canonical form: strings, integers, booleans and nested objects.
	Details canonicaljson.Object
	// ContentSHA256 is the item's digest, for ingests.
	ContentSHA256 string
	Previous      *Link
	Salt          [32]byte
}

// NewSalt returns a random salt.
func NewSalt() [32]byte {
	var s [32]byte
	rand.Read(s[:])
	return s
}

// Canonical returns the record's canonical JSON: the bytes the log commits to.
func (r Record) Canonical() ([]byte, error) {
	obj := canonicaljson.Object{
		"v":           FormatVersion,
		"evidence_id": r.EvidenceID,
		"seq":         r.Sequence,
		"type":        string(r.Type),
		"recorded_at": FormatTime(r.RecordedAt),
		"performer":   r.Performer,
		"salt":        hex.EncodeToString(r.Salt[:]),
	}
	if r.Counterparty != "" {
		obj["counterparty"] = r.Counterparty
	}
	if r.Purpose != "" {
		obj["purpose"] = r.Purpose
	}
	if len(r.Details) > 0 {
		obj["details"] = r.Details
	}
	if r.ContentSHA256 != "" {
		obj["sha256"] = r.ContentSHA256
	}
	if r.Previous != nil {
		obj["prev_index"] = r.Previous.Index
		obj["prev_leaf_hash"] = hex.EncodeToString(r.Previous.LeafHash[:])
	}
	return canonicaljson.Marshal(obj)
}

// Entry returns the public log entry for the record.
func (r Record) Entry() ([]byte, error) {
	canon, err := r.Canonical()
	if err != nil {
		return nil, err
	}
	return r.EntryOf(canon)
}

// EntryOf is Entry for a caller that has the record's canonical bytes
// (Canonical) already.
func (r Record) EntryOf(canon []byte) ([]byte, error) {
	commitment := sha256.Sum256(canon)
	obj := canonicaljson.Object{
		"v":             FormatVersion,
		"evidence_id":   r.EvidenceID,
		"seq":           r.Sequence,
		"type":          string(r.Type),
		"time":          FormatTime(r.RecordedAt),
		"record_sha256": hex.EncodeToString(commitment[:]),
	}
	if r.Type == Ingest && r.ContentSHA256 != "" {
		obj["sha256"] = r.ContentSHA256
	}
	if r.Previous != nil {
		obj["prev_index"] = r.Previous.Index
		obj["prev_leaf_hash"] = hex.EncodeToString(r.Previous.LeafHash[:])
	}
	return canonicaljson.Marshal(obj)
}

// FormatTime is the one time format of records, entries and receipts:
// RFC 3339 in UTC with nanoseconds, e.g. 2026-11-27T00:13:14.123456789Z.
func FormatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

// Validate checks what every record needs.
func (r Record) Validate() error {
	switch {
	case r.EvidenceID == "":
		return fmt.Errorf("event record without evidence id")
	case r.Type == "":
		return fmt.Errorf("event record without type")
	case r.Performer == "":
		return fmt.Errorf("event record without performer")
	case r.RecordedAt.IsZero():
		return fmt.Errorf("event record without time")
	case (r.Sequence == 0) != (r.Previous == nil):
		return fmt.Errorf("event %d of %s: only the first event has no predecessor", r.Sequence, r.EvidenceID)
	}
	return nil
}
