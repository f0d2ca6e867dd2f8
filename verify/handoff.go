package verify

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/receipt"
)

// checkHandoffs replays custody over the records: the collector holds the
// item after ingest; a release, an analysis, a derivation or a submission
// must come from the custodian of the moment;
// an accept must answer the pending release, by its named recipient; both
// must carry the party's signature over the statement the record names,
// made with the key of the party's own certificate.
func checkHandoffs(b *Bundle, records []*events.Record, roots *x509.CertPool) error {
	var errs []error
	custodian := ""
	var pending *events.Record
	for _, rec := range records {
		if rec == nil {
			return errors.New("a record is missing or unreadable; custody cannot be replayed")
		}
		switch rec.Type {
		case events.Ingest:
			custodian = rec.Performer
			if cs, ok := rec.Details["collector_signature"].(map[string]any); ok {
				if err := checkCaptureSignature(b, rec, cs, roots); err != nil {
					errs = append(errs, fmt.Errorf("event #0 (collector signature at capture): %w", err))
				}
			}
		case events.Release:
			if rec.Performer != custodian {
				errs = append(errs, fmt.Errorf("event #%d: %s released the item, but %s held it", rec.Sequence, rec.Performer, custodian))
			}
			if err := checkStatement(b, rec, roots, func(at time.Time) ([]byte, error) {
				reason, _ := rec.Details["reason"].(string)
				return events.ReleaseStatement(rec.EvidenceID, b.Evidence.SHA256, rec.Performer, rec.Counterparty, reason, at)
			}); err != nil {
				errs = append(errs, fmt.Errorf("event #%d (release): %w", rec.Sequence, err))
			}
			pending = rec
		case events.Accept:
			switch {
			case pending == nil:
				errs = append(errs, fmt.Errorf("event #%d: an accept without a pending release", rec.Sequence))
			case pending.Counterparty != rec.Performer:
				errs = append(errs, fmt.Errorf("event #%d: %s accepted a release made to %s", rec.Sequence, rec.Performer, pending.Counterparty))
			case rec.Counterparty != custodian:
				errs = append(errs, fmt.Errorf("event #%d: the accept names %s as releaser, but %s held the item", rec.Sequence, rec.Counterparty, custodian))
			}
			if seq, _ := rec.Details["release_seq"].(int64); pending != nil && uint64(seq) != pending.Sequence {
				errs = append(errs, fmt.Errorf("event #%d: the accept answers release #%d, the pending release is #%d", rec.Sequence, seq, pending.Sequence))
			}
			if err := checkStatement(b, rec, roots, func(at time.Time) ([]byte, error) {
				seq, _ := rec.Details["release_seq"].(int64)
				return events.AcceptStatement(rec.EvidenceID, b.Evidence.SHA256, rec.Counterparty, rec.Performer, uint64(seq), at)
			}); err != nil {
				errs = append(errs, fmt.Errorf("event #%d (accept): %w", rec.Sequence, err))
			}
			custodian, pending = rec.Performer, nil
		case events.Analysis, events.Derivation, events.SubmissionToCourt:
			if rec.Performer != custodian {
				errs = append(errs, fmt.Errorf("event #%d: %s recorded %s while %s held the item", rec.Sequence, rec.Performer, rec.Type, custodian))
			}
		case events.ReleaseCancelled, events.ReleaseExpired:
			if pending == nil {
				errs = append(errs, fmt.Errorf("event #%d: %s without a pending release", rec.Sequence, rec.Type))
			}
			pending = nil
		}
	}
	if pending != nil && len(errs) == 0 {
		return nil // a release may still be pending at the bundle's time
	}
	return errors.Join(errs...)
}

// checkCaptureSignature checks the collector's signature at capture kept in
// the ingest record: over a capture statement for this item's digest, by
// the collector's own certificate.
func checkCaptureSignature(b *Bundle, rec *events.Record, cs map[string]any, roots *x509.CertPool) error {
	fake := *rec
	fake.Details = cs
	return checkStatement(b, &fake, roots, func(at time.Time) ([]byte, error) {
		stmt, _ := cs["statement"].(string)
		var s struct {
			Size       int64  `json:"size"`
			CaseID     string `json:"case_id"`
			CapturedAt string `json:"captured_at"`
		}
		if err := json.Unmarshal([]byte(stmt), &s); err != nil {
			return nil, err
		}
		var captured time.Time
		if s.CapturedAt != "" {
			captured, _ = time.Parse(time.RFC3339Nano, s.CapturedAt)
		}
		if s.Size != b.Evidence.Size {
			return nil, fmt.Errorf("the signed size %d is not the item's %d", s.Size, b.Evidence.Size)
		}
		return events.CaptureStatement(b.Evidence.SHA256, s.Size, s.CaseID, rec.Performer, captured, at)
	})
}

// checkStatement checks a hand-off record's statement, signature and
// signer certificate.
func checkStatement(b *Bundle, rec *events.Record, roots *x509.CertPool, build func(time.Time) ([]byte, error)) error {
	stmt, _ := rec.Details["statement"].(string)
	sigB64, _ := rec.Details["signature"].(string)
	certB64, _ := rec.Details["certificate"].(string)
	sig, err1 := base64.StdEncoding.DecodeString(sigB64)
	der, err2 := base64.StdEncoding.DecodeString(certB64)
	if stmt == "" || err1 != nil || err2 != nil || len(sig) == 0 {
		return errors.New("no signed statement")
	}
	var signed struct {
		SignedAt string `json:"signed_at"`
	}
	if err := json.Unmarshal([]byte(stmt), &signed); err != nil {
		return err
	}
	at, err := time.Parse(time.RFC3339Nano, signed.SignedAt)
	if err != nil {
		return fmt.Errorf("statement time: %w", err)
	}
	want, err := build(at)
	if err != nil {
		return err
	}
	if !bytes.Equal(want, []byte(stmt)) {
		return errors.New("the signed statement does not describe this hand-off")
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("signer certificate: %w", err)
	}
	if !hasURI(cert, rec.Performer) {
		return fmt.Errorf("the signer's certificate is not %s's", rec.Performer)
	}
	if err := receipt.VerifySignature(cert.PublicKey, []byte(stmt), sig); err != nil {
		return fmt.Errorf("the party's signature does not verify: %w", err)
	}
	if roots != nil {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			return fmt.Errorf("the signer's certificate is not issued by the operator's CA: %w", err)
		}
	}
	return nil
}

func hasURI(cert *x509.Certificate, uri string) bool {
	for _, u := range cert.URIs {
		if u.String() == uri {
			return true
		}
	}
	return false
}
