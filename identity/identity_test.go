package identity_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/custody-dev/custody/certs"
	"github.com/custody-dev/custody/identity"
)

func TestParse(t *testing.T) {
	tests := []struct {
		uri     string
		want    identity.Identity
		wantErr string
	}{
		{uri: "urn:custody:court:judge-1", want: identity.Identity{Role: identity.RoleCourt, Name: "judge-1"}},
		{uri: "urn:custody:collector:team.a@ngo", want: identity.Identity{Role: identity.RoleCollector, Name: "team.a@ngo"}},
		{uri: "urn:custody:king:me", wantErr: "unknown role"},
		{uri: "urn:custody:court:", wantErr: "1 to 128"},
		{uri: "urn:custody:court:a b", wantErr: "allowed are"},
		{uri: "urn:custody:court", wantErr: "not of the form"},
		{uri: "spiffe://x/court/a", wantErr: "does not start with"},
		{uri: "URN:custody:court:x", wantErr: "does not start with"},
		{uri: "urn:CUSTODY:court:x", wantErr: "does not start with"},
		{uri: "urn:custody:Court:x", wantErr: "unknown role"},
		{uri: "urn:custody:court:" + strings.Repeat("a", 129), wantErr: "1 to 128"},
	}
	for _, tc := range tests {
		t.Run(tc.uri, func(t *testing.T) {
			got, err := identity.Parse(tc.uri)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want %q", tc.uri, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want || got.String() != tc.uri {
				t.Fatalf("Parse(%q) = %+v, %v; want %+v", tc.uri, got, err, tc.want)
			}
		})
	}
}

func TestVerifier(t *testing.T) {
	ca, err := certs.NewAuthority("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := certs.NewAuthority("other CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	v := identity.NewVerifier(roots)
	now := time.Now()
	court := identity.Identity{Role: identity.RoleCourt, Name: "judge-1"}
	parse := func(issued certs.Issued) *x509.Certificate {
		c, err := certs.ParseCertificatePEM(issued.CertPEM)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	mustIssue := func(a *certs.Authority, id identity.Identity, nb, na time.Time) *x509.Certificate {
		issued, err := a.IssueClient(id, nb, na)
		if err != nil {
			t.Fatal(err)
		}
		return parse(issued)
	}
	server, err := ca.IssueServer([]string{"localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// The same profile with no URI SAN at all.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "judge-1"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true, DNSNames: []string{"judge-1.example"},
	}, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	noURI, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		chain   []*x509.Certificate
		wantErr string
	}{
		{"valid", []*x509.Certificate{mustIssue(ca, court, now.Add(-time.Minute), now.Add(time.Hour))}, ""},
		{"empty", nil, "no client certificate"},
		{"expired", []*x509.Certificate{mustIssue(ca, court, now.Add(-2*time.Hour), now.Add(-time.Hour))}, "expired at"},
		{"not yet valid", []*x509.Certificate{mustIssue(ca, court, now.Add(time.Hour), now.Add(2*time.Hour))}, "not valid before"},
		{"other CA", []*x509.Certificate{mustIssue(other, court, now.Add(-time.Minute), now.Add(time.Hour))}, "not issued by this service's client CA"},
		{"server certificate", []*x509.Certificate{parse(server)}, "not valid for client authentication"},
		{"no identity URI", []*x509.Certificate{noURI}, "no urn:custody:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, err := v.Verify(tc.chain)
			if tc.wantErr == "" {
				if err != nil || id.Role != court.Role || id.Name != court.Name || id.Certificate == nil {
					t.Fatalf("Verify = %+v, %v; want %v", id, err, court)
				}
				return
			}
			if !errors.Is(err, identity.ErrUnauthenticated) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Verify error = %v, want ErrUnauthenticated mentioning %q", err, tc.wantErr)
			}
		})
	}
}
