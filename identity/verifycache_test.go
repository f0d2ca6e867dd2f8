package identity_test

import (
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custody-dev/custody/certs"
	"github.com/custody-dev/custody/identity"
)

// TestRememberedChains: Verify remembers x509's verdict on a chain, but a
// remembered chain is still refused once revoked, and once any
// certificate of it (here the CA, which expires before the leaf) is out
// of its validity.
func TestRememberedChains(t *testing.T) {
	ca, err := certs.NewAuthority("client CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	issued, err := ca.IssueClient(identity.Identity{Role: identity.RoleCourt, Name: "judge-1"}, start.Add(-time.Minute), start.Add(3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := certs.ParseCertificatePEM(issued.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	deny := filepath.Join(t.TempDir(), "revoked")
	if err := os.WriteFile(deny, []byte("# none yet\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	revocations, err := identity.NewRevocations(deny, []*x509.Certificate{ca.Cert}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := identity.NewVerifier(roots).WithRevocations(revocations)
	now := start
	identity.SetNow(v, func() time.Time { return now })
	chain := []*x509.Certificate{leaf}

	for i := range 3 {
		if id, err := v.Verify(chain); err != nil || id.Name != "judge-1" {
			t.Fatalf("call %d: Verify = %+v, %v", i, id, err)
		}
	}

	t.Run("revoked after it was remembered", func(t *testing.T) {
		if err := os.WriteFile(deny, []byte(leaf.SerialNumber.Text(16)+" # lost in the field\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		future := time.Now().Add(time.Minute)
		os.Chtimes(deny, future, future)
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := v.Verify(chain)
			if err != nil {
				if !errors.Is(err, identity.ErrUnauthenticated) || !strings.Contains(err.Error(), "revoked") {
					t.Fatalf("Verify error = %v, want revoked", err)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("a revoked certificate is still accepted: the remembered verdict hides revocation")
			}
			time.Sleep(50 * time.Millisecond)
		}
		os.WriteFile(deny, []byte("# none\n"), 0o644)
		past := time.Now().Add(2 * time.Minute)
		os.Chtimes(deny, past, past)
	})

	t.Run("the CA expired after it was remembered", func(t *testing.T) {
		fresh := identity.NewVerifier(roots)
		identity.SetNow(fresh, func() time.Time { return now })
		if _, err := fresh.Verify(chain); err != nil {
			t.Fatal(err)
		}
		now = start.Add(2 * time.Hour) // the leaf is valid, its CA is not
		_, err := fresh.Verify(chain)
		if !errors.Is(err, identity.ErrUnauthenticated) {
			t.Fatalf("Verify with an expired CA = %v; the remembered verdict outlived the CA's validity", err)
		}
	})
}
