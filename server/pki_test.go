package server_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/servertest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// The certificates of these tests are made by hand, as an operator's own CA
// (or an attacker holding a misissued certificate) would make them, and are
// presented over real TLS to a running server.

// testCA is a certificate that can sign others.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

var serialCounter = big.NewInt(time.Now().UnixNano())

func nextSerial() *big.Int {
	serialCounter = new(big.Int).Add(serialCounter, big.NewInt(1))
	return new(big.Int).Set(serialCounter)
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// caTemplate is a CA as operators make them: CA:TRUE, keyCertSign and
// cRLSign, no path length limit.
func caTemplate(name string) *x509.Certificate {
	now := time.Now()
	return &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Test"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
}

// clientTemplate is a well-formed client certificate for uri.
func clientTemplate(uri string) *x509.Certificate {
	now := time.Now()
	u, err := url.Parse(uri)
	if err != nil {
		panic(err)
	}
	return &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: "test client"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
		URIs:                  []*url.URL{u},
	}
}

func newRootCA(t *testing.T, name string) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := caTemplate(name)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

// sign issues tmpl under ca with a fresh key.
func (ca *testCA) sign(t *testing.T, tmpl *x509.Certificate) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	key := newKey(t)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// sub issues a CA certificate from tmpl.
func (ca *testCA) sub(t *testing.T, tmpl *x509.Certificate) *testCA {
	cert, key := ca.sign(t, tmpl)
	return &testCA{cert: cert, key: key}
}

// crl is a CRL signed by signer, naming issuer as its issuer.
func crl(t *testing.T, issuer *x509.Certificate, signer crypto.Signer, revoked ...*big.Int) []byte {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, s := range revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: time.Now()})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: nextSerial(), ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour),
		RevokedCertificateEntries: entries,
	}, issuer, signer)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

// tlsCert is what a client presents: leaf first, then chain.
func tlsCert(key crypto.Signer, leaf *x509.Certificate, chain ...*x509.Certificate) tls.Certificate {
	c := tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
	for _, x := range chain {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c
}

// whoAmI calls WhoAmI over gRPC and over HTTPS presenting cert, and checks
// both answers agree; it returns the identity or the gRPC error.
func whoAmI(t *testing.T, env *servertest.Env, cert tls.Certificate) (string, error) {
	t.Helper()
	// The revocation list is re-read within a second of a change: a gRPC
	// call and an HTTPS call made across a reload may see two lists, so a
	// disagreement is asked again before it counts.
	var disagreement string
	for attempt := 0; attempt < 4; attempt++ {
		if attempt > 0 {
			time.Sleep(500 * time.Millisecond)
		}
		id, err, why := whoAmIOnce(t, env, cert)
		if why == "" {
			return id, err
		}
		disagreement = why
	}
	t.Fatal(disagreement)
	return "", nil
}

func whoAmIOnce(t *testing.T, env *servertest.Env, cert tls.Certificate) (string, error, string) {
	t.Helper()
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: env.RootCAs(t), ServerName: "127.0.0.1", Certificates: []tls.Certificate{cert}}
	conn, err := grpc.NewClient(env.GRPCAddr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	me, gerr := custodyv1.NewIdentityServiceClient(conn).WhoAmI(t.Context(), &custodyv1.WhoAmIRequest{})

	code, body := get(t, env.HTTPClient(t, cert), env.URL("/v1/whoami"))
	switch {
	case gerr == nil && code != http.StatusOK:
		return "", nil, fmt.Sprintf("gRPC accepts as %s, HTTPS answers %d %s", me.GetIdentity(), code, body)
	case gerr != nil && status.Code(gerr) == codes.Unauthenticated && code != http.StatusUnauthorized:
		return "", nil, fmt.Sprintf("gRPC refuses (%v), HTTPS answers %d %s", gerr, code, body)
	case gerr == nil:
		var got struct{ Identity string }
		if err := json.Unmarshal(body, &got); err != nil || got.Identity != me.GetIdentity() {
			return "", nil, fmt.Sprintf("HTTPS identity %s, gRPC %s", body, me.GetIdentity())
		}
		return me.GetIdentity(), nil, ""
	}
	return "", gerr, ""
}

func wantUnauthenticated(t *testing.T, env *servertest.Env, cert tls.Certificate, message string) {
	t.Helper()
	id, err := whoAmI(t, env, cert)
	if err == nil {
		t.Fatalf("accepted as %s, want UNAUTHENTICATED", id)
	}
	wantCode(t, err, codes.Unauthenticated, message)
}

func wantAccepted(t *testing.T, env *servertest.Env, cert tls.Certificate, identity string) {
	t.Helper()
	id, err := whoAmI(t, env, cert)
	if err != nil || id != identity {
		t.Fatalf("WhoAmI = %q, %v; want %s", id, err, identity)
	}
}

// devCA is the development CA of env as a testCA.
func devCA(t *testing.T, env *servertest.Env) *testCA {
	t.Helper()
	a, err := env.PKI.Authority()
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: a.Cert, key: a.Key}
}

// TestBringYourOwnCA: certificates a client CA must not be able to turn
// into identities (a CA:TRUE client certificate and what it mints, no EKU,
// no basicConstraints, a differently spelled identity URI) are refused with
// UNAUTHENTICATED over gRPC and HTTPS; a proper intermediate CA works.
func TestBringYourOwnCA(t *testing.T) {
	root := newRootCA(t, "operator root CA")
	env := servertest.StartT(t, servertest.Options{ExtraClientCAs: []*x509.Certificate{root.cert}})

	t.Run("an intermediate CA issues a court certificate", func(t *testing.T) {
		inter := root.sub(t, caTemplate("operator issuing CA"))
		leaf, key := inter.sign(t, clientTemplate("urn:custody:court:via-intermediate"))
		wantAccepted(t, env, tlsCert(key, leaf, inter.cert), "urn:custody:court:via-intermediate")
	})

	// A collector certificate misissued with CA:TRUE, as openssl's v3_ca
	// section would make it.
	caLeaf := func(t *testing.T, keyUsage x509.KeyUsage) *testCA {
		tmpl := clientTemplate("urn:custody:collector:team-7")
		tmpl.IsCA, tmpl.KeyUsage = true, keyUsage
		return root.sub(t, tmpl)
	}
	for _, tc := range []struct {
		name   string
		ku     x509.KeyUsage
		minted string // the refusal of what it mints
	}{
		// x509 itself refuses a signer whose key usage lacks keyCertSign.
		{"digitalSignature", x509.KeyUsageDigitalSignature, "not issued by this service's client CA"},
		{"no key usage extension", 0, "keyCertSign"},
		{"keyCertSign", x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, "carries a custody identity"},
	} {
		t.Run("CA:TRUE client certificate ("+tc.name+")", func(t *testing.T) {
			collector := caLeaf(t, tc.ku)
			wantUnauthenticated(t, env, tlsCert(collector.key, collector.cert, nil...), "CA:TRUE")
			minted, key := collector.sign(t, clientTemplate("urn:custody:court:minted"))
			wantUnauthenticated(t, env, tlsCert(key, minted, collector.cert), tc.minted)
		})
	}

	t.Run("an intermediate without a key usage extension", func(t *testing.T) {
		tmpl := caTemplate("CA without key usage")
		tmpl.KeyUsage = 0
		inter := root.sub(t, tmpl)
		leaf, key := inter.sign(t, clientTemplate("urn:custody:court:minted"))
		wantUnauthenticated(t, env, tlsCert(key, leaf, inter.cert), "keyCertSign")
	})

	dev := devCA(t, env)
	t.Run("no extended key usage", func(t *testing.T) {
		tmpl := clientTemplate("urn:custody:court:no-eku")
		tmpl.ExtKeyUsage = nil
		leaf, key := dev.sign(t, tmpl)
		wantUnauthenticated(t, env, tlsCert(key, leaf), "clientAuth")
	})
	t.Run("anyExtendedKeyUsage only", func(t *testing.T) {
		tmpl := clientTemplate("urn:custody:court:any-eku")
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageAny}
		leaf, key := dev.sign(t, tmpl)
		wantUnauthenticated(t, env, tlsCert(key, leaf), "clientAuth")
	})
	t.Run("no basicConstraints", func(t *testing.T) {
		tmpl := clientTemplate("urn:custody:court:no-bc")
		tmpl.BasicConstraintsValid = false
		leaf, key := dev.sign(t, tmpl)
		wantUnauthenticated(t, env, tlsCert(key, leaf), "basicConstraints")
	})
	for _, uri := range []string{"URN:custody:court:x", "urn:CUSTODY:court:x", "Urn:Custody:court:x"} {
		t.Run(uri, func(t *testing.T) {
			tmpl := clientTemplate("urn:custody:court:x")
			scheme, opaque, _ := strings.Cut(uri, ":")
			tmpl.URIs = []*url.URL{{Scheme: scheme, Opaque: opaque}}
			leaf, key := dev.sign(t, tmpl)
			wantUnauthenticated(t, env, tlsCert(key, leaf), "urn:custody:")
		})
	}
	t.Run("exact spelling next to another", func(t *testing.T) {
		tmpl := clientTemplate("urn:custody:court:x")
		tmpl.URIs = append(tmpl.URIs, &url.URL{Scheme: "URN", Opaque: "custody:admin:x"})
		leaf, key := dev.sign(t, tmpl)
		wantUnauthenticated(t, env, tlsCert(key, leaf), "exactly one")
	})
	t.Run("the development credentials still work", func(t *testing.T) {
		for _, r := range identity.Roles {
			wantAccepted(t, env, env.Creds(t, r).Certificate, "urn:custody:"+string(r)+":dev-"+string(r))
		}
	})
}

// writeAtomic replaces a file the way an operator's tooling should, so the
// server never reads half of it.
func writeAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// eventually waits up to 5 s for check to return "" and fails with its last
// answer otherwise.
func eventually(t *testing.T, check func() string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRevokedIntermediate: revoking an intermediate CA, by serial or by its
// issuer's CRL, refuses every certificate it issued; a CRL of the
// intermediate itself (its certificate beside it in the file) revokes its
// own leaves only.
func TestRevokedIntermediate(t *testing.T) {
	root := newRootCA(t, "operator root CA")
	inter := root.sub(t, caTemplate("operator issuing CA"))
	other := root.sub(t, caTemplate("operator second issuing CA"))
	leaf, key := inter.sign(t, clientTemplate("urn:custody:court:judge-1"))
	judge := tlsCert(key, leaf, inter.cert)
	leaf2, key2 := inter.sign(t, clientTemplate("urn:custody:court:judge-2"))
	judge2 := tlsCert(key2, leaf2, inter.cert)
	otherLeaf, otherKey := other.sign(t, clientTemplate("urn:custody:auditor:a-1"))
	auditor := tlsCert(otherKey, otherLeaf, other.cert)

	list := filepath.Join(t.TempDir(), "revoked")
	writeAtomic(t, list, []byte("# nothing revoked\n"))
	env := servertest.StartT(t, servertest.Options{RevokedFile: list, ExtraClientCAs: []*x509.Certificate{root.cert}})
	wantAccepted(t, env, judge, "urn:custody:court:judge-1")

	refused := func(cert tls.Certificate, message string) func() string {
		return func() string {
			id, err := whoAmI(t, env, cert)
			if err == nil {
				return "still accepted as " + id
			}
			if status.Code(err) != codes.Unauthenticated || !strings.Contains(status.Convert(err).Message(), message) {
				return "refused as " + err.Error() + ", want UNAUTHENTICATED with " + message
			}
			return ""
		}
	}

	t.Run("serial of the intermediate on the deny list", func(t *testing.T) {
		writeAtomic(t, list, []byte(inter.cert.SerialNumber.Text(16)+"  # issuing CA compromised\n"))
		eventually(t, refused(judge, "issuing CA"))
		wantUnauthenticated(t, env, judge2, "has been revoked")
		wantAccepted(t, env, auditor, "urn:custody:auditor:a-1")
	})
	t.Run("intermediate on the root's CRL", func(t *testing.T) {
		writeAtomic(t, list, crl(t, root.cert, root.key, other.cert.SerialNumber))
		eventually(t, refused(auditor, "issuing CA"))
		wantAccepted(t, env, judge, "urn:custody:court:judge-1")
	})
	t.Run("leaf on the intermediate's own CRL", func(t *testing.T) {
		data := append(crl(t, inter.cert, inter.key, leaf2.SerialNumber), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: inter.cert.Raw})...)
		writeAtomic(t, list, data)
		eventually(t, refused(judge2, "has been revoked"))
		wantAccepted(t, env, judge, "urn:custody:court:judge-1")
		wantAccepted(t, env, auditor, "urn:custody:auditor:a-1")
	})
}

// TestForgedCRL: a CRL that does not verify against its named issuer's key
// is never applied. At start custodyd refuses it (and does not start); on a
// reload it keeps the last good list and logs why. A genuine CRL of one CA
// does not revoke another CA's certificate that has a listed serial number.
func TestForgedCRL(t *testing.T) {
	// The forger names the development CA as issuer but signs with its own
	// key; CreateRevocationList needs a CA certificate for that key.
	forger := newRootCA(t, "forger")

	t.Run("refused at start", func(t *testing.T) {
		dir := t.TempDir()
		env := servertest.StartT(t) // only for its development CA
		dev := devCA(t, env)
		forged := reissuedAs(t, crl(t, forger.cert, forger.key, env.Creds(t, identity.RoleCourt).Leaf.SerialNumber), dev.cert, forger.key)
		list := filepath.Join(dir, "revoked.crl")
		writeAtomic(t, list, forged)
		// The same data dir, so the same development CA.
		if err := env.Stop(); err != nil {
			t.Fatal(err)
		}
		again, err := servertest.Start(env.DataDir, servertest.Options{RevokedFile: list})
		if err == nil {
			again.Stop()
		}
		if err == nil || !strings.Contains(err.Error(), "signature") {
			t.Fatalf("start with a forged CRL: %v, want a refusal naming the signature", err)
		}
	})

	t.Run("kept the last good list on reload", func(t *testing.T) {
		list := filepath.Join(t.TempDir(), "revoked")
		writeAtomic(t, list, []byte("# empty\n"))
		env := servertest.StartT(t, servertest.Options{RevokedFile: list})
		court := env.Creds(t, identity.RoleCourt)
		auditor := env.Creds(t, identity.RoleAuditor)
		dev := devCA(t, env)
		writeAtomic(t, list, crl(t, dev.cert, dev.key, court.Leaf.SerialNumber))
		eventually(t, func() string {
			if _, err := whoAmI(t, env, court.Certificate); err == nil {
				return "the court is not revoked by a genuine CRL"
			}
			return ""
		})
		// A forged CRL that would revoke the auditor and reinstate the court.
		writeAtomic(t, list, reissuedAs(t, crl(t, forger.cert, forger.key, auditor.Leaf.SerialNumber), dev.cert, forger.key))
		eventually(t, func() string {
			whoAmI(t, env, auditor.Certificate) // the file is re-read on use
			if !strings.Contains(env.Logs.String(), "does not verify") {
				return "no log line about the forged CRL"
			}
			return ""
		})
		wantAccepted(t, env, auditor.Certificate, "urn:custody:auditor:dev-auditor")
		wantUnauthenticated(t, env, court.Certificate, "has been revoked")
	})

	t.Run("a CRL applies only to its issuer's certificates", func(t *testing.T) {
		other := newRootCA(t, "another trusted CA")
		list := filepath.Join(t.TempDir(), "revoked")
		writeAtomic(t, list, []byte("# empty\n"))
		env := servertest.StartT(t, servertest.Options{RevokedFile: list, ExtraClientCAs: []*x509.Certificate{other.cert}})
		court := env.Creds(t, identity.RoleCourt)
		otherLeaf, otherKey := other.sign(t, clientTemplate("urn:custody:court:other"))
		// The other CA's genuine CRL lists the development court's serial
		// and its own leaf's.
		writeAtomic(t, list, crl(t, other.cert, other.key, court.Leaf.SerialNumber, otherLeaf.SerialNumber))
		eventually(t, func() string {
			if _, err := whoAmI(t, env, tlsCert(otherKey, otherLeaf, nil...)); err == nil {
				return "the other CA's CRL is not applied to its own certificate"
			}
			return ""
		})
		wantAccepted(t, env, court.Certificate, "urn:custody:court:dev-court")
	})
}

// reissuedAs rewrites a PEM CRL so that it names issuer as its issuer while
// keeping the signature of signer: the CRL a forger without issuer's key
// can make.
func reissuedAs(t *testing.T, crlPEM []byte, issuer *x509.Certificate, signer crypto.Signer) []byte {
	t.Helper()
	block, _ := pem.Decode(crlPEM)
	parsed, err := x509.ParseRevocationList(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	// A template certificate with issuer's name and signer's public key.
	fake := *issuer
	fake.PublicKey = signer.Public()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: parsed.Number, ThisUpdate: parsed.ThisUpdate, NextUpdate: parsed.NextUpdate,
		RevokedCertificateEntries: parsed.RevokedCertificateEntries,
	}, &fake, signer)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}
