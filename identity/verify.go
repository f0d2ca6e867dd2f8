package identity

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// Verifier turns a presented certificate chain into an Identity. It checks
// the chain against the client CA pool at the current time, for client
// authentication, and reads the identity URI of the leaf.
type Verifier struct {
	roots   *x509.CertPool
	now     func() time.Time
	revoked *Revocations
}

// WithRevocations makes the verifier refuse certificates on the list.
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
	intermediates := x509.NewCertPool()
	for _, c := range chain[1:] {
		intermediates.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         v.roots,
		Intermediates: intermediates,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
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
	if v.revoked != nil && v.revoked.Revoked(leaf) {
		return Identity{}, fmt.Errorf("%w: the client certificate (serial %s) has been revoked", ErrUnauthenticated, leaf.SerialNumber.Text(16))
	}
	return FromCertificate(leaf)
}
