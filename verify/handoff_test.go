package verify

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/custody-dev/custody/canonicaljson"
	"github.com/custody-dev/custody/certs"
	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/identity"
)

// party is an identity with a certificate and key from a test CA.
type party struct {
	uri  string
	cert *x509.Certificate
	key  crypto.Signer
}

func newParty(t *testing.T, ca *certs.Authority, role identity.Role, name string) party {
	t.Helper()
	id := identity.Identity{Role: role, Name: name}
	issued, err := ca.IssueClient(id, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(issued.CertPEM, issued.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(pair.Certificate[0])
	return party{uri: id.String(), cert: c, key: pair.PrivateKey.(crypto.Signer)}
}

func sign(t *testing.T, key crypto.Signer, msg []byte) []byte {
	sv, err := signature.LoadSignerVerifier(key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := sv.SignMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// TestHandoffSignatures checks the hand-off replay on records built as the
// service builds them, with one party's signature or certificate wrong.
func TestHandoffSignatures(t *testing.T) {
	ca, _ := certs.NewAuthority("test CA", time.Hour)
	otherCA, _ := certs.NewAuthority("other CA", time.Hour)
	collector := newParty(t, ca, identity.RoleCollector, "team-1")
	custodian := newParty(t, ca, identity.RoleCustodian, "lab-1")
	intruder := newParty(t, otherCA, identity.RoleCustodian, "lab-1") // same name, foreign CA
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	b := &Bundle{Evidence: Evidence{EvidenceID: "ev-aaaaaaaaaaaaaaaaaaaaaaaaaa", SHA256: strings.Repeat("ab", 32)}}
	now := time.Now().UTC()

	build := func(acceptSigner crypto.Signer, acceptCert *x509.Certificate) []*events.Record {
		rel, _ := events.ReleaseStatement(b.Evidence.EvidenceID, b.Evidence.SHA256, collector.uri, custodian.uri, "to the lab", now)
		acc, _ := events.AcceptStatement(b.Evidence.EvidenceID, b.Evidence.SHA256, collector.uri, custodian.uri, 1, now)
		details := func(stmt, sig []byte, cert *x509.Certificate) canonicaljson.Object {
			return canonicaljson.Object{"statement": string(stmt), "signature": base64.StdEncoding.EncodeToString(sig), "certificate": base64.StdEncoding.EncodeToString(cert.Raw)}
		}
		rd := details(rel, sign(t, collector.key, rel), collector.cert)
		rd["reason"] = "to the lab"
		rd["expires_at"] = events.FormatTime(now.Add(time.Hour))
		ad := details(acc, sign(t, acceptSigner, acc), acceptCert)
		ad["release_seq"] = int64(1)
		return []*events.Record{
			{EvidenceID: b.Evidence.EvidenceID, Sequence: 0, Type: events.Ingest, Performer: collector.uri, RecordedAt: now},
			{EvidenceID: b.Evidence.EvidenceID, Sequence: 1, Type: events.Release, Performer: collector.uri, Counterparty: custodian.uri, Details: rd, RecordedAt: now},
			{EvidenceID: b.Evidence.EvidenceID, Sequence: 2, Type: events.Accept, Performer: custodian.uri, Counterparty: collector.uri, Details: ad, RecordedAt: now},
		}
	}
	tests := []struct {
		name   string
		recs   []*events.Record
		roots  *x509.CertPool
		detail string
	}{
		{"valid", build(custodian.key, custodian.cert), roots, ""},
		{"accept signed by someone else's key", build(stranger, custodian.cert), roots, "signature does not verify"},
		{"accept signed with another party's certificate", build(collector.key, collector.cert), roots, "not urn:custody:custodian:lab-1's"},
		{"accept signer from a foreign CA", build(intruder.key, intruder.cert), roots, "not issued by the operator's CA"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := &run{b: b, opts: Options{Roots: tc.roots}}
			for _, r := range tc.recs {
				v.replay(&checkedEvent{record: r})
			}
			err := joined(v.custodyErrs, v.custodyMore)
			if tc.detail == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.detail) {
				t.Fatalf("error %v, want %q", err, tc.detail)
			}
		})
	}
}
