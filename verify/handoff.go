package verify

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/custody-dev/custody/canonicaljson"
	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/receipt"
)

// replay feeds one record to the custody rules the service enforces
// (events.State.Next, docs/VERIFY.md step 7) and checks the collector's
// capture signature and both parties' hand-off signatures, each made with
// the key of the party's own certificate.
func (v *run) replay(ce *checkedEvent) {
	if v.b.Evidence.Withheld || v.custodyStuck {
		return
	}
	rec := ce.record
	if rec == nil {
		v.custodyStuck = true
		return
	}
	b, roots := v.b, v.opts.Roots
	next, err := v.state.Next(*rec)
	if err != nil {
		v.custodyErr(fmt.Errorf("event #%d (%s): %w", rec.Sequence, rec.Type, err))
	}
	switch rec.Type {
	case events.Ingest:
		if cs, ok := rec.Details["collector_signature"].(canonicaljson.Object); ok {
			if err := checkCaptureSignature(b, rec, cs, roots); err != nil {
				v.custodyErr(fmt.Errorf("event #0 (collector signature at capture): %w", err))
			}
		}
	case events.Release:
		if err := checkStatement(b, rec, rec.Details, roots, func(at time.Time) ([]byte, error) {
			reason, _ := rec.Details["reason"].(string)
			return events.ReleaseStatement(rec.EvidenceID, b.Evidence.SHA256, rec.Performer, rec.Counterparty, reason, at)
		}); err != nil {
			v.custodyErr(fmt.Errorf("event #%d (release): %w", rec.Sequence, err))
		}
	case events.Accept:
		if err := checkStatement(b, rec, rec.Details, roots, func(at time.Time) ([]byte, error) {
			seq, _ := rec.Details["release_seq"].(int64)
			return events.AcceptStatement(rec.EvidenceID, b.Evidence.SHA256, rec.Counterparty, rec.Performer, uint64(seq), at)
		}); err != nil {
			v.custodyErr(fmt.Errorf("event #%d (accept): %w", rec.Sequence, err))
		}
	}
	v.state = next
}

// checkCaptureSignature checks the collector's signature at capture kept in
// the ingest record: over the capture statement of this item's digest and
// size, for the case the ingest record states, with the capture time the
// metadata states, by the collector's own certificate.
func checkCaptureSignature(b *Bundle, rec *events.Record, cs canonicaljson.Object, roots *x509.CertPool) error {
	return checkStatement(b, rec, cs, roots, func(at time.Time) ([]byte, error) {
		stmt, _ := cs["statement"].(string)
		s, err := events.ParseCanonical([]byte(stmt))
		if err != nil {
			return nil, fmt.Errorf("capture statement: %w", err)
		}
		caseID, _ := rec.Details["case_id"].(string)
		if s["case_id"] != caseID {
			return nil, fmt.Errorf("the collector signed case %v, the ingest record states case %s", s["case_id"], caseID)
		}
		var captured time.Time
		stated, hasStated := capturedAt(b.Evidence.Metadata)
		if signed, ok := s["captured_at"].(string); ok {
			if captured, err = time.Parse(time.RFC3339Nano, signed); err != nil {
				return nil, fmt.Errorf("capture statement: captured_at: %w", err)
			}
			if st, err := time.Parse(time.RFC3339Nano, stated); !hasStated || err != nil || !st.Equal(captured) {
				return nil, fmt.Errorf("the collector signed capture time %s, the metadata states %q", signed, stated)
			}
		} else if hasStated {
			return nil, fmt.Errorf("the metadata states capture time %s, which the collector did not sign", stated)
		}
		return events.CaptureStatement(b.Evidence.SHA256, b.Evidence.Size, caseID, rec.Performer, captured, at)
	})
}

// checkStatement checks a signed statement kept in a record (d holds
// statement, signature and certificate): it must be exactly the statement
// build rebuilds from the record, signed by the performer's certificate.
func checkStatement(b *Bundle, rec *events.Record, d canonicaljson.Object, roots *x509.CertPool, build func(time.Time) ([]byte, error)) error {
	stmt, _ := d["statement"].(string)
	sigB64, _ := d["signature"].(string)
	certB64, _ := d["certificate"].(string)
	sig, err1 := base64.StdEncoding.DecodeString(sigB64)
	der, err2 := base64.StdEncoding.DecodeString(certB64)
	if stmt == "" || err1 != nil || err2 != nil || len(sig) == 0 {
		return errors.New("no signed statement")
	}
	parsed, err := events.ParseCanonical([]byte(stmt))
	if err != nil {
		return fmt.Errorf("statement: %w", err)
	}
	signedAt, _ := parsed["signed_at"].(string)
	at, err := time.Parse(time.RFC3339Nano, signedAt)
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
