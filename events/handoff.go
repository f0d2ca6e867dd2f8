package events

import (
	"time"

	"github.com/custody-dev/custody/canonicaljson"
)

// Hand-offs are signed by both parties with the keys behind their own
// client certificates. Each signs a statement: the canonical JSON below,
// built identically by the client library and by the server, which checks
// the signature against the caller's certificate and keeps statement,
// signature and certificate in the event record.

// MaxStatementSkew is how far a statement's signed_at may be from the
// server's clock.
const MaxStatementSkew = 10 * time.Minute

// ReleaseStatement is what the releasing custodian signs.
func ReleaseStatement(evidenceID, contentSHA256, from, to, reason string, signedAt time.Time) ([]byte, error) {
	return canonicaljson.Marshal(canonicaljson.Object{
		"v":           FormatVersion,
		"type":        "custody.release",
		"evidence_id": evidenceID,
		"sha256":      contentSHA256,
		"from":        from,
		"to":          to,
		"reason":      reason,
		"signed_at":   FormatTime(signedAt),
	})
}

// AcceptStatement is what the recipient signs to take over.
func AcceptStatement(evidenceID, contentSHA256, from, to string, releaseSeq uint64, signedAt time.Time) ([]byte, error) {
	return canonicaljson.Marshal(canonicaljson.Object{
		"v":           FormatVersion,
		"type":        "custody.accept",
		"evidence_id": evidenceID,
		"sha256":      contentSHA256,
		"from":        from,
		"to":          to,
		"release_seq": releaseSeq,
		"signed_at":   FormatTime(signedAt),
	})
}

// CaptureStatement is what a collector signs at capture: the item's digest
// and size, the case, when it was captured (if stated) and who collected
// it. It travels with the upload and stays in the ingest record.
func CaptureStatement(contentSHA256 string, size int64, caseID, collector string, capturedAt, signedAt time.Time) ([]byte, error) {
	obj := canonicaljson.Object{
		"v":         FormatVersion,
		"type":      "custody.capture",
		"sha256":    contentSHA256,
		"size":      size,
		"case_id":   caseID,
		"collector": collector,
		"signed_at": FormatTime(signedAt),
	}
	if !capturedAt.IsZero() {
		obj["captured_at"] = FormatTime(capturedAt)
	}
	return canonicaljson.Marshal(obj)
}
