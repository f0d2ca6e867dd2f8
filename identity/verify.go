package identity

import (
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Verifier turns a presented certificate chain into an Identity. It checks
// the chain against the client CA pool at the current time, for client
// authentication, checks the profile of every certificate in it (the leaf
// is an end-entity client certificate, every intermediate a CA allowed to
// sign certificates), checks revocation of every certificate in it, and
// reads the identity URI of the leaf.
type Verifier struct {
	roots   *x509.CertPool
	now     func() time.Time
	revoked *Revocations

	// verified remembers chains x509 verified, by the digest of the
	// presented certificates: a connection presents the same chain on
	// every call, and x509's signature checks were a sixth of custodyd's
	// CPU under event load. Only x509's verdict is remembered, with the
	// time window in which every certificate of its chains is valid;
	// the leaf's validity, its profile and revocation are checked on
	// every call.
	mu       sync.Mutex
	verified map[[32]byte]verifiedChains
}

type verifiedChains struct {
	chains              [][]*x509.Certificate
	notBefore, notAfter time.Time
}

// maxVerifiedChains bounds the cache of x509 verdicts; when full it is
// emptied (a flood of distinct chains costs what no cache would).
const maxVerifiedChains = 4096

// WithRevocations makes the verifier refuse chains holding a certificate
// on the list.
func (v *Verifier) WithRevocations(r *Revocations) *Verifier {
	v.revoked = r
	return v
}

// NewVerifier returns a Verifier that trusts certificates issued by roots.
func NewVerifier(roots *x509.CertPool) *Verifier {
	return &Verifier{roots: roots, now: time.Now}
}

// Verify checks chain (leaf first, then any intermediates) and returns the
// leaf's identity. Every error wraps ErrUnauthenticated and says plainly
// what was wrong, in words fit to show the caller.
//
// The leaf must verify to a client CA with the clientAuth extended key
// usage (x509 also accepts a certificate with no EKU or with
// anyExtendedKeyUsage; Verify does not), carry basicConstraints CA:FALSE,
// and, if it has a key usage extension, digitalSignature. Every
// intermediate must be a CA (x509 checks) with a key usage extension that
// includes keyCertSign, and must not itself carry a custody identity URI: a
// client certificate misissued as a CA cannot mint identities. When x509
// finds several chains, the first that passes every check, revocation
// included, is used; if none does, the first one's failure is reported.
func (v *Verifier) Verify(chain []*x509.Certificate) (Identity, error) {
	if len(chain) == 0 {
		return Identity{}, fmt.Errorf("%w: no client certificate; this API requires mutual TLS with a certificate issued by the service's client CA", ErrUnauthenticated)
	}
	leaf := chain[0]
	now := v.now()
	// x509 reports expiry and unknown authority alike as opaque errors in
	// some orders; check validity first so the caller learns the real cause.
	if now.After(leaf.NotAfter) {
		return Identity{}, fmt.Errorf("%w: the client certificate expired at %s", ErrUnauthenticated, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		return Identity{}, fmt.Errorf("%w: the client certificate is not valid before %s", ErrUnauthenticated, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	chains, err := v.x509Verify(chain, now)
	if err != nil {
		var unknown x509.UnknownAuthorityError
		var invalid x509.CertificateInvalidError
		switch {
		case errors.As(err, &unknown):
			return Identity{}, fmt.Errorf("%w: the client certificate is not issued by this service's client CA", ErrUnauthenticated)
		case errors.As(err, &invalid) && invalid.Reason == x509.IncompatibleUsage:
			return Identity{}, fmt.Errorf("%w: the client certificate is not valid for client authentication", ErrUnauthenticated)
		default:
			return Identity{}, fmt.Errorf("%w: the client certificate does not verify: %v", ErrUnauthenticated, err)
		}
	}
	if err := checkLeaf(leaf); err != nil {
		return Identity{}, err
	}
	id, err := FromCertificate(leaf)
	if err != nil {
		return Identity{}, err
	}
	var first error
	for _, c := range chains {
		err := v.checkChain(c)
		if err == nil {
			return id, nil
		}
		if first == nil {
			first = err
		}
	}
	return Identity{}, first
}

// x509Verify is leaf.Verify against the client CA pool at now, for client
// authentication, remembered (successes only) while now stays inside the
// window where every certificate of the verified chains is valid.
func (v *Verifier) x509Verify(chain []*x509.Certificate, now time.Time) ([][]*x509.Certificate, error) {
	h := sha256.New()
	for _, c := range chain {
		var n [8]byte
		for i, l := 0, len(c.Raw); i < 8; i++ {
			n[i] = byte(l >> (8 * i))
		}
		h.Write(n[:])
		h.Write(c.Raw)
	}
	var key [32]byte
	h.Sum(key[:0])
	v.mu.Lock()
	hit, ok := v.verified[key]
	v.mu.Unlock()
	if ok && !now.Before(hit.notBefore) && !now.After(hit.notAfter) {
		return hit.chains, nil
	}
	intermediates := x509.NewCertPool()
	for _, c := range chain[1:] {
		intermediates.AddCert(c)
	}
	chains, err := chain[0].Verify(x509.VerifyOptions{
		Roots:         v.roots,
		Intermediates: intermediates,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, err
	}
	entry := verifiedChains{chains: chains}
	for i, c := range slices.Concat(chains...) {
		if i == 0 || c.NotBefore.After(entry.notBefore) {
			entry.notBefore = c.NotBefore
		}
		if i == 0 || c.NotAfter.Before(entry.notAfter) {
			entry.notAfter = c.NotAfter
		}
	}
	v.mu.Lock()
	if v.verified == nil || len(v.verified) >= maxVerifiedChains {
		v.verified = make(map[[32]byte]verifiedChains)
	}
	v.verified[key] = entry
	v.mu.Unlock()
	return chains, nil
}

// checkLeaf checks the end-entity profile of a client certificate.
func checkLeaf(leaf *x509.Certificate) error {
	switch {
	case !leaf.BasicConstraintsValid:
		return fmt.Errorf("%w: the client certificate has no basicConstraints extension; a client certificate must state CA:FALSE", ErrUnauthenticated)
	case leaf.IsCA:
		return fmt.Errorf("%w: the client certificate is a CA certificate (basicConstraints CA:TRUE); a client certificate must be CA:FALSE", ErrUnauthenticated)
	case !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth):
		return fmt.Errorf("%w: the client certificate is not valid for client authentication: its extended key usage must list clientAuth", ErrUnauthenticated)
	case leaf.KeyUsage != 0 && leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0:
		return fmt.Errorf("%w: the client certificate's key usage lacks digitalSignature, which TLS client authentication needs", ErrUnauthenticated)
	}
	return nil
}

// checkChain checks the intermediates of a verified chain and the
// revocation of every certificate in it.
func (v *Verifier) checkChain(chain []*x509.Certificate) error {
	for _, c := range chain[1 : len(chain)-1] {
		if c.KeyUsage&x509.KeyUsageCertSign == 0 {
			return fmt.Errorf("%w: the issuing CA %q may not issue client certificates: its key usage must include keyCertSign", ErrUnauthenticated, c.Subject.String())
		}
		if HasIdentityURI(c) {
			return fmt.Errorf("%w: the issuing CA %q may not issue client certificates: it carries a custody identity, so it is a client certificate misissued as a CA", ErrUnauthenticated, c.Subject.String())
		}
	}
	if v.revoked == nil {
		return nil
	}
	i, revoked := v.revoked.Check(chain)
	switch {
	case !revoked:
		return nil
	case i == 0:
		return fmt.Errorf("%w: the client certificate (serial %s) has been revoked", ErrUnauthenticated, chain[0].SerialNumber.Text(16))
	default:
		return fmt.Errorf("%w: the client certificate's issuing CA %q (serial %s) has been revoked", ErrUnauthenticated, chain[i].Subject.String(), chain[i].SerialNumber.Text(16))
	}
}
