package identity_test

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custody-dev/custody/certs"
	"github.com/custody-dev/custody/identity"
)

func crlPEM(t *testing.T, ca *certs.Authority, serials ...*big.Int) []byte {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, s := range serials {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: time.Now()})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour), RevokedCertificateEntries: entries,
	}, ca.Cert, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

// TestRevocationFiles: what a revocation file may hold, and what is refused
// when it is read.
func TestRevocationFiles(t *testing.T) {
	ca, err := certs.NewAuthority("client CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := certs.NewAuthority("a CA nobody trusts", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cas := []*x509.Certificate{ca.Cert}
	issued, err := ca.IssueClient(identity.Identity{Role: identity.RoleCourt, Name: "judge-1"}, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := certs.ParseCertificatePEM(issued.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(crlPEM(t, ca, leaf.SerialNumber))

	tests := []struct {
		name    string
		data    []byte
		revoked bool
		wantErr string
	}{
		{"deny list", []byte("# x\n" + leaf.SerialNumber.Text(16) + " # lost\n"), true, ""},
		{"deny list starting with 0", []byte("0a\n" + leaf.SerialNumber.Text(16) + "\n"), true, ""},
		{"deny list, another serial", []byte("0a\n"), false, ""},
		{"not hex", []byte("zz\n"), false, "not a hex serial"},
		{"PEM CRL", crlPEM(t, ca, leaf.SerialNumber), true, ""},
		{"DER CRL", block.Bytes, true, ""},
		{"two CRLs", append(crlPEM(t, ca), crlPEM(t, ca, leaf.SerialNumber)...), true, ""},
		{"CRL of an unknown CA", crlPEM(t, stranger, leaf.SerialNumber), false, "no CA of that name"},
		{"unknown CA's certificate beside its CRL", append(crlPEM(t, stranger, leaf.SerialNumber), stranger.CertPEM()...), false, "does not chain to the client CA bundle"},
		{"stray PEM block", append(crlPEM(t, ca), []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")...), false, "unexpected PEM block"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "revoked")
			if err := os.WriteFile(path, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			r, err := identity.NewRevocations(path, cas, nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("NewRevocations error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, got := r.Check([]*x509.Certificate{leaf, ca.Cert}); got != tc.revoked {
				t.Fatalf("revoked = %v, want %v", got, tc.revoked)
			}
		})
	}
}
