package certs_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/custody-dev/custody/certs"
	"github.com/custody-dev/custody/identity"
)

func TestEnsureDevPKI(t *testing.T) {
	dir := t.TempDir()
	pki, err := certs.EnsureDevPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	caBefore, err := os.ReadFile(pki.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "key.pem" {
			keys = append(keys, path)
		}
		return err
	})
	// CA, server and five roles.
	if len(keys) != 2+len(identity.Roles) {
		t.Fatalf("found keys %v, want %d", keys, 2+len(identity.Roles))
	}
	for _, k := range keys {
		info, err := os.Stat(k)
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", k, perm)
		}
	}
	roots, err := certs.ReadCertPool(pki.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	v := identity.NewVerifier(roots)
	for _, r := range identity.Roles {
		chain, err := certs.ReadCertificates(filepath.Join(pki.RoleDir(r), "cert.pem"))
		if err != nil {
			t.Fatal(err)
		}
		id, err := v.Verify(chain)
		if err != nil || id.Role != r {
			t.Errorf("role %s credential verifies as %+v, %v", r, id, err)
		}
		ca, err := os.ReadFile(filepath.Join(pki.RoleDir(r), "ca.pem"))
		if err != nil || !bytes.Equal(ca, caBefore) {
			t.Errorf("role %s ca.pem differs from the CA", r)
		}
	}

	// A second start reuses the CA and the credentials.
	certBefore, _ := os.ReadFile(filepath.Join(pki.RoleDir(identity.RoleCourt), "cert.pem"))
	if _, err := certs.EnsureDevPKI(dir); err != nil {
		t.Fatal(err)
	}
	caAfter, _ := os.ReadFile(pki.CAFile())
	certAfter, _ := os.ReadFile(filepath.Join(pki.RoleDir(identity.RoleCourt), "cert.pem"))
	if !bytes.Equal(caBefore, caAfter) || !bytes.Equal(certBefore, certAfter) {
		t.Error("second EnsureDevPKI replaced the CA or a credential")
	}
}

func TestReadPrivateKeyRefusesOpenPermissions(t *testing.T) {
	pki, err := certs.EnsureDevPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key := pki.ServerKeyFile()
	if _, err := certs.ReadPrivateKey(key); err != nil {
		t.Fatalf("0600 key refused: %v", err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644} {
		if err := os.Chmod(key, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := certs.ReadPrivateKey(key); !errors.Is(err, certs.ErrKeyPermissions) {
			t.Errorf("mode %04o: err = %v, want ErrKeyPermissions", mode, err)
		}
	}
}

// TestDevPKIRenewsOldClientCertificates: a client credential issued before
// client certificates had to state basicConstraints CA:FALSE is replaced on
// the next start, so existing development setups keep working.
func TestDevPKIRenewsOldClientCertificates(t *testing.T) {
	dir := t.TempDir()
	pki, err := certs.EnsureDevPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.Authority()
	if err != nil {
		t.Fatal(err)
	}
	// What IssueClient made before: no basicConstraints extension.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	uri, _ := url.Parse("urn:custody:court:dev-court")
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: "dev-court"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs: []*url.URL{uri},
	}, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(pki.RoleDir(identity.RoleCourt), "cert.pem")
	if err := os.WriteFile(old, certs.EncodeCertificate(der), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := certs.EnsureDevPKI(dir); err != nil {
		t.Fatal(err)
	}
	c, err := certs.ReadCertificate(old)
	if err != nil {
		t.Fatal(err)
	}
	if !c.BasicConstraintsValid || c.IsCA || c.SerialNumber.Cmp(big.NewInt(42)) == 0 {
		t.Fatalf("the old court certificate was kept: serial %s, basicConstraints %v", c.SerialNumber.Text(16), c.BasicConstraintsValid)
	}
	roots, _ := certs.ReadCertPool(pki.CAFile())
	if id, err := identity.NewVerifier(roots).Verify([]*x509.Certificate{c}); err != nil || id.Role != identity.RoleCourt {
		t.Fatalf("renewed court certificate: %+v, %v", id, err)
	}
}
