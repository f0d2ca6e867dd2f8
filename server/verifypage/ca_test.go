package verifypage_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/custody-dev/custody/certs"
	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/internal/testenv"
	"github.com/custody-dev/custody/verify"
)

// kit is a certificate and its key, made for a test.
type kit struct {
	cert *x509.Certificate
	key  crypto.Signer
}

var serials int64 = 1000

// mint makes a certificate from tmpl for key, signed by parent (or
// self-signed when parent is nil).
func mint(t *testing.T, tmpl *x509.Certificate, key crypto.Signer, parent *kit) kit {
	t.Helper()
	serials++
	tmpl.SerialNumber = big.NewInt(serials)
	signer, issuer := key, tmpl
	if parent != nil {
		signer, issuer = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return kit{c, key}
}

func p256(t *testing.T) crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// caTemplate is a CA certificate valid around now; mod changes it.
func caTemplate(name string, mod func(*x509.Certificate)) *x509.Certificate {
	c := &x509.Certificate{Subject: pkix.Name{CommonName: name, Organization: []string{"Custody tests"}},
		NotBefore: time.Now().Add(-24 * time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	if mod != nil {
		mod(c)
	}
	return c
}

// leafTemplate is a client certificate of identity uri, as certs issues
// them; mod changes it.
func leafTemplate(uri string, mod func(*x509.Certificate)) *x509.Certificate {
	u, _ := url.Parse(uri)
	c := &x509.Certificate{Subject: pkix.Name{CommonName: uri}, URIs: []*url.URL{u},
		NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(2 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if mod != nil {
		mod(c)
	}
	return c
}

// TestVerifyPageCAChains holds the page's path validation of the signers'
// certificates (docs/VERIFY.md step 7, with the operator's CA) to the Go
// verifier's, which is crypto/x509's: forged bundles whose release is
// signed by certificates that chain, or fail to chain, in each way the
// check tells apart (another authority, an authority of the same name with
// another key, validity at signed_at of the leaf and of the CA, extended
// key usages down the chain, basic constraints and key usage of the
// issuer, unhandled critical extensions, the algorithms: ECDSA P-256 and
// P-384, RSA with SHA-256 and SHA-384, Ed25519), are verified in the page
// and by Go given the same CA, and the reports must be the same. Where the
// chain uses what the page does not check (name constraints, RSA-PSS),
// the page must say it did not check the CA rather than pass or fail it.
func TestVerifyPageCAChains(t *testing.T) {
	testenv.RequireFull(t, "headless Chromium")
	f := newForge(t)
	const m, h = time.Minute, time.Hour
	signedAt := f.at(m) // the release's signed_at
	ca := mint(t, caTemplate("case CA", nil), p256(t), nil)
	sameName := mint(t, caTemplate("case CA", nil), p256(t), nil)
	other := mint(t, caTemplate("another CA", nil), p256(t), nil)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaCA := mint(t, caTemplate("RSA CA", nil), rsaKey, nil)
	rsa384 := mint(t, caTemplate("RSA CA, SHA-384", func(c *x509.Certificate) { c.SignatureAlgorithm = x509.SHA384WithRSA }), rsaKey, nil)
	pss := mint(t, caTemplate("RSA-PSS CA", func(c *x509.Certificate) { c.SignatureAlgorithm = x509.SHA256WithRSAPSS }), rsaKey, nil)
	k384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384CA := mint(t, caTemplate("P-384 CA", nil), k384, nil)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edCA := mint(t, caTemplate("Ed25519 CA", nil), edKey, nil)
	root := mint(t, caTemplate("root CA", nil), p256(t), nil)
	inter := mint(t, caTemplate("intermediate CA", nil), p256(t), &root)
	critical := pkix.Extension{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Critical: true, Value: []byte{5, 0}}

	type tc struct {
		name   string
		signer kit   // the collector's certificate, which signs the release
		cas    []kit // the CA given (labCA is added: it issued the lab's certificate, which signs the accept)
		goOK   bool  // the Go verifier passes the release
		goErr  string
		// declined: the page must say it did not check the CA.
		declined bool
	}
	leaf := func(parent kit, key crypto.Signer, mod func(*x509.Certificate)) kit {
		return mint(t, leafTemplate(collectorURI, mod), key, &parent)
	}
	withCA := func(name string, mod func(*x509.Certificate)) kit {
		return mint(t, caTemplate(name, mod), p256(t), nil)
	}
	notCA := withCA("not a CA", func(c *x509.Certificate) { c.IsCA = false })
	noBC := withCA("no basic constraints", func(c *x509.Certificate) { c.IsCA, c.BasicConstraintsValid = false, false })
	noCertSign := withCA("no keyCertSign", func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageDigitalSignature })
	expiredCA := withCA("expired CA", func(c *x509.Certificate) { c.NotAfter = f.at(0) })
	serverCA := withCA("server-auth CA", func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} })
	anyCA := withCA("any-usage CA", func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageAny} })
	criticalCA := withCA("critical CA", func(c *x509.Certificate) { c.ExtraExtensions = []pkix.Extension{critical} })
	constrained := withCA("constrained CA", func(c *x509.Certificate) { c.PermittedURIDomains = []string{"example.org"} })
	unknown := "x509: certificate signed by unknown authority"
	selfSigned := mint(t, leafTemplate(collectorURI, nil), p256(t), nil)
	labCA := mint(t, caTemplate("lab CA", nil), p256(t), nil)
	lab := mint(t, leafTemplate(labURI, nil), p256(t), &labCA)
	cases := []tc{
		{name: "issued by the CA", signer: leaf(ca, p256(t), nil), cas: []kit{ca}, goOK: true},
		{name: "issued by another CA", signer: leaf(other, p256(t), nil), cas: []kit{ca}, goErr: unknown},
		{name: "issued by a CA of the same name with another key", signer: leaf(sameName, p256(t), nil), cas: []kit{ca}, goErr: "possibly because of"},
		{name: "the right CA after one of the same name", signer: leaf(ca, p256(t), nil), cas: []kit{sameName, ca}, goOK: true},
		{name: "expired at signed_at", signer: leaf(ca, p256(t), func(c *x509.Certificate) { c.NotAfter = f.at(0) }), cas: []kit{ca}, goErr: "is after"},
		{name: "not yet valid at signed_at", signer: leaf(ca, p256(t), func(c *x509.Certificate) { c.NotBefore = f.at(30 * m) }), cas: []kit{ca}, goErr: "is before"},
		{name: "valid from signed_at exactly", signer: leaf(ca, p256(t), func(c *x509.Certificate) { c.NotBefore = signedAt.Truncate(time.Second) }), cas: []kit{ca}, goOK: true},
		{name: "server authentication only", signer: leaf(ca, p256(t), func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} }), cas: []kit{ca}, goErr: "incompatible key usage"},
		{name: "no extended key usage", signer: leaf(ca, p256(t), func(c *x509.Certificate) { c.ExtKeyUsage = nil }), cas: []kit{ca}, goOK: true},
		{name: "any extended key usage", signer: leaf(ca, p256(t), func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageAny} }), cas: []kit{ca}, goOK: true},
		{name: "an unknown extended key usage", signer: leaf(ca, p256(t), func(c *x509.Certificate) {
			c.ExtKeyUsage, c.UnknownExtKeyUsage = nil, []asn1.ObjectIdentifier{{1, 2, 3, 5}}
		}), cas: []kit{ca}, goErr: "incompatible key usage"},
		{name: "an unknown critical extension", signer: leaf(ca, p256(t), func(c *x509.Certificate) { c.ExtraExtensions = []pkix.Extension{critical} }), cas: []kit{ca}, goErr: "unhandled critical extension"},
		{name: "issuer not a CA", signer: leaf(notCA, p256(t), nil), cas: []kit{notCA}, goErr: "cannot sign this kind"},
		{name: "issuer without basic constraints", signer: leaf(noBC, p256(t), nil), cas: []kit{noBC}, goErr: "cannot sign this kind"},
		{name: "issuer without keyCertSign", signer: leaf(noCertSign, p256(t), nil), cas: []kit{noCertSign}, goErr: "cannot sign this kind"},
		{name: "issuer expired at signed_at", signer: leaf(expiredCA, p256(t), nil), cas: []kit{expiredCA}, goErr: "is after"},
		{name: "an expired issuer before one of another key", signer: leaf(ca, p256(t), nil), cas: []kit{withCA("case CA", func(c *x509.Certificate) { c.NotAfter = f.at(0) }), sameName}, goErr: "possibly because of"},
		{name: "an issuer of another key before an expired one", signer: leaf(ca, p256(t), nil), cas: []kit{sameName, withCA("case CA", func(c *x509.Certificate) { c.NotAfter = f.at(0) })}, goErr: unknown},
		{name: "issuer for server authentication only", signer: leaf(serverCA, p256(t), nil), cas: []kit{serverCA}, goErr: "incompatible key usage"},
		{name: "issuer for any usage", signer: leaf(anyCA, p256(t), nil), cas: []kit{anyCA}, goOK: true},
		{name: "issuer with an unknown critical extension", signer: leaf(criticalCA, p256(t), nil), cas: []kit{criticalCA}, goErr: "unhandled critical extension"},
		{name: "RSA CA, SHA-256", signer: leaf(rsaCA, p256(t), nil), cas: []kit{rsaCA}, goOK: true},
		{name: "RSA CA, SHA-384", signer: leaf(rsa384, p256(t), func(c *x509.Certificate) { c.SignatureAlgorithm = x509.SHA384WithRSA }), cas: []kit{rsa384}, goOK: true},
		{name: "P-384 CA", signer: leaf(p384CA, p256(t), nil), cas: []kit{p384CA}, goOK: true},
		{name: "Ed25519 CA and signer", signer: leaf(edCA, func() crypto.Signer { _, k, _ := ed25519.GenerateKey(rand.Reader); return k }(), nil), cas: []kit{edCA}, goOK: true},
		{name: "RSA signer", signer: leaf(ca, rsaKey, nil), cas: []kit{ca}, goOK: true},
		{name: "intermediate given with the root", signer: leaf(inter, p256(t), nil), cas: []kit{root, inter}, goOK: true},
		{name: "intermediate not given", signer: leaf(inter, p256(t), nil), cas: []kit{root}, goErr: unknown},
		{name: "the signer's own certificate as the CA", signer: selfSigned, cas: []kit{selfSigned}, goOK: true},
		{name: "issuer with name constraints", signer: leaf(constrained, p256(t), nil), cas: []kit{constrained}, declined: true},
		{name: "RSA-PSS CA", signer: leaf(pss, p256(t), func(c *x509.Certificate) { c.SignatureAlgorithm = x509.SHA256WithRSAPSS }), cas: []kit{pss}, declined: true},
	}
	files := vectorFiles{}
	var pcases []pageCase
	var opts []verify.Options
	for _, c := range cases {
		ff := *f
		ff.parties = map[string]party{}
		for k, v := range f.parties {
			ff.parties[k] = v
		}
		ff.parties[collectorURI] = party{uri: collectorURI, cert: c.signer.cert, key: c.signer.key}
		ff.parties[labURI] = party{uri: labURI, cert: lab.cert, key: lab.key}
		bundle := ff.bundle([]events.Record{ff.ingest(0), ff.release(1, collectorURI, labURI, m, h), ff.accept(2, labURI, collectorURI, 1, 2*m)})
		pool := x509.NewCertPool()
		var caPEM []byte
		for _, k := range append(c.cas, labCA) {
			pool.AddCert(k.cert)
			caPEM = append(caPEM, certs.EncodeCertificate(k.cert.Raw)...)
		}
		path, caPath := "ca/"+c.name+".json", "ca/"+c.name+".pem"
		files[path] = base64.StdEncoding.EncodeToString(bundle)
		files[caPath] = base64.StdEncoding.EncodeToString(caPEM)
		lk, rk := f.logKey, f.receiptPEM
		pcases = append(pcases, pageCase{Name: c.name, Raw: path, LogKeyText: &lk, ReceiptKeyText: &rk, CA: caPath, bundle: bundle})
		opts = append(opts, verify.Options{LogVerifierKey: lk, ReceiptKeyPEM: []byte(rk), Roots: pool})
	}
	page := runPage(t, files, pcases)
	for i, c := range cases {
		g, p := goVerify(pcases[i].bundle, opts[i]), page[i]
		if c.declined {
			if p.Outcome != string(verify.OutcomeVerifiedWithLimits) || !strings.Contains(strings.Join(p.NotChecked, "\n"), "which this page does not check") {
				t.Errorf("%s: the page says %s, not checked %q; want verified_with_limits, the CA listed as not checked", c.name, p.Outcome, p.NotChecked)
			}
			continue
		}
		var custody *verify.Check
		for j := range g.Checks {
			if g.Checks[j].Name == "custody rules" {
				custody = &g.Checks[j]
			}
		}
		switch {
		case custody == nil:
			t.Errorf("%s: Go made no custody check: %v", c.name, g.Failures())
		case c.goOK && (!g.OK || !custody.OK):
			t.Errorf("%s: Go fails, want it to pass: %v", c.name, g.Failures())
		case !c.goOK && (custody.OK || !strings.Contains(custody.Detail, c.goErr) || !strings.Contains(custody.Detail, "not issued by the operator's CA")):
			t.Errorf("%s: Go's custody check %+v, want it to fail with %q", c.name, custody, c.goErr)
		}
		if diffs := sameAsGo(g, p); len(diffs) > 0 {
			t.Errorf("%s: the page differs from the Go verifier:\n\t%s", c.name, strings.Join(diffs, "\n\t"))
		} else {
			t.Logf("%s: %s; %s", c.name, p.Outcome, func() string {
				if custody != nil && !custody.OK {
					return custody.Detail
				}
				return "the chain verifies"
			}())
		}
	}
}
