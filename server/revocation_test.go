package server_test

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/servertest"
)

// TestRevocationWithoutRestart revokes a running caller's certificate by
// editing the deny list, then by a CRL, and expects the next call to be
// refused, with no restart.
func TestRevocationWithoutRestart(t *testing.T) {
	list := filepath.Join(t.TempDir(), "revoked.txt")
	if err := os.WriteFile(list, []byte("# revoked client certificates\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := servertest.StartT(t, servertest.Options{RevokedFile: list})
	court := env.Client(t, identity.RoleCourt)
	auditor := env.Client(t, identity.RoleAuditor)
	if _, err := court.WhoAmI(t.Context()); err != nil {
		t.Fatal(err)
	}
	serial := env.Creds(t, identity.RoleCourt).Leaf.SerialNumber.Text(16)
	if err := os.WriteFile(list, []byte("# revoked client certificates\n"+serial+"  # stolen laptop\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := court.WhoAmI(t.Context())
		if err != nil {
			wantCode(t, err, codes.Unauthenticated, "has been revoked")
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a revoked certificate is still accepted after 5s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := auditor.WhoAmI(t.Context()); err != nil {
		t.Fatalf("another caller is refused too: %v", err)
	}

	// The same file as a CRL signed by the CA revokes the auditor instead.
	ca, err := env.PKI.Authority()
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(2), ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: env.Creds(t, identity.RoleAuditor).Leaf.SerialNumber, RevocationTime: time.Now()}},
	}, ca.Cert, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(list, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl}), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		_, err := auditor.WhoAmI(t.Context())
		if err != nil {
			wantCode(t, err, codes.Unauthenticated, "has been revoked")
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a certificate on the CRL is still accepted after 5s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := court.WhoAmI(t.Context()); err != nil {
		t.Fatalf("the court, no longer on the list, is refused: %v", err)
	}
}
