// Package identity owns who a caller is: the identity and role carried in a
// client certificate, how a certificate chain is verified into an Identity,
// and how the verified Identity travels in a context.
//
// An identity is a URI SAN of the form
//
//	urn:custody:<role>:<name>
//
// where role is one of collector, custodian, court, auditor, admin and name
// is 1-128 characters of [A-Za-z0-9._@-], compared exactly (the scheme and
// namespace in lower case, as written here). The whole URI is the stable
// identity that custody events record; see certs/README.md for how an
// operator's own CA issues such certificates.
package identity

import (
	"context"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"

	"github.com/custody-dev/custody/failure"
)

// Role is what a caller may do.
type Role string

// The roles. Their meaning and permissions are in docs/AUTHORIZATION.md.
const (
	RoleCollector Role = "collector"
	RoleCustodian Role = "custodian"
	RoleCourt     Role = "court"
	RoleAuditor   Role = "auditor"
	RoleAdmin     Role = "admin"
)

// Roles lists every role, in a stable order.
var Roles = []Role{RoleCollector, RoleCustodian, RoleCourt, RoleAuditor, RoleAdmin}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool {
	for _, known := range Roles {
		if r == known {
			return true
		}
	}
	return false
}

const uriPrefix = "urn:custody:"

// Identity is a verified caller.
type Identity struct {
	Role Role
	Name string
	// Certificate is the leaf certificate the identity was read from; nil
	// for an Identity built with New.
	Certificate *x509.Certificate
}

// New returns the identity for role and name, or an error naming what is
// wrong with them.
func New(role Role, name string) (Identity, error) {
	if !role.Valid() {
		return Identity{}, fmt.Errorf("unknown role %q (want one of collector, custodian, court, auditor, admin)", role)
	}
	if err := checkName(name); err != nil {
		return Identity{}, err
	}
	return Identity{Role: role, Name: name}, nil
}

// Parse reads an identity URI, urn:custody:<role>:<name>.
func Parse(uri string) (Identity, error) {
	rest, ok := strings.CutPrefix(uri, uriPrefix)
	if !ok {
		return Identity{}, fmt.Errorf("identity %q does not start with %q", uri, uriPrefix)
	}
	role, name, ok := strings.Cut(rest, ":")
	if !ok {
		return Identity{}, fmt.Errorf("identity %q is not of the form urn:custody:<role>:<name>", uri)
	}
	return New(Role(role), name)
}

// String returns the identity URI.
func (id Identity) String() string {
	return uriPrefix + string(id.Role) + ":" + id.Name
}

func checkName(name string) error {
	if name == "" || len(name) > 128 {
		return fmt.Errorf("identity name must be 1 to 128 characters, got %d", len(name))
	}
	for _, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.' || c == '_' || c == '@' || c == '-':
		default:
			return fmt.Errorf("identity name %q has %q; allowed are letters, digits and . _ @ -", name, c)
		}
	}
	return nil
}

// FromCertificate reads the identity URI SAN of a certificate. Exactly one
// URI that looks like a custody identity may be present, and it must be
// spelled exactly urn:custody:<role>:<name>, in lower case as documented.
//
// The URIs are read from the certificate's own bytes: crypto/x509 parses
// them with net/url, which lower-cases the scheme, so that "URN:custody:…"
// and "urn:custody:…" would look alike in cert.URIs.
func FromCertificate(cert *x509.Certificate) (Identity, error) {
	uris, err := rawURIs(cert)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: the client certificate's subject alternative names cannot be read: %v", ErrUnauthenticated, err)
	}
	var found []string
	for _, s := range uris {
		// Any spelling of the scheme and namespace counts, so that a
		// near-miss is refused by name rather than silently ignored.
		if len(s) >= len(uriPrefix) && strings.EqualFold(s[:len(uriPrefix)], uriPrefix) {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return Identity{}, fmt.Errorf("%w: the client certificate carries no %s<role>:<name> URI SAN", ErrUnauthenticated, uriPrefix)
	case 1:
	default:
		return Identity{}, fmt.Errorf("%w: the client certificate carries %d custody identity URIs; exactly one is allowed", ErrUnauthenticated, len(found))
	}
	id, err := Parse(found[0])
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrUnauthenticated, err)
	}
	id.Certificate = cert
	return id, nil
}

// HasIdentityURI reports whether cert carries a URI that, in any letter
// case, starts like a custody identity.
func HasIdentityURI(cert *x509.Certificate) bool {
	uris, err := rawURIs(cert)
	if err != nil {
		return true // unreadable: assume the worst
	}
	for _, s := range uris {
		if len(s) >= len(uriPrefix) && strings.EqualFold(s[:len(uriPrefix)], uriPrefix) {
			return true
		}
	}
	return false
}

var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// rawURIs returns the uniformResourceIdentifier entries of cert's subject
// alternative name extension exactly as encoded.
func rawURIs(cert *x509.Certificate) ([]string, error) {
	var out []string
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		var seq asn1.RawValue
		rest, err := asn1.Unmarshal(ext.Value, &seq)
		if err != nil {
			return nil, err
		}
		if len(rest) != 0 || !seq.IsCompound || seq.Tag != asn1.TagSequence || seq.Class != asn1.ClassUniversal {
			return nil, errors.New("malformed subjectAltName")
		}
		names := seq.Bytes
		for len(names) > 0 {
			var v asn1.RawValue
			if names, err = asn1.Unmarshal(names, &v); err != nil {
				return nil, err
			}
			if v.Class == asn1.ClassContextSpecific && v.Tag == 6 { // uniformResourceIdentifier [6] IA5String
				out = append(out, string(v.Bytes))
			}
		}
	}
	return out, nil
}

// ErrUnauthenticated is wrapped by every error that means "we do not know
// who you are": no certificate, an untrusted, expired or revoked one, or one
// without an identity.
var ErrUnauthenticated error = failure.New(failure.Unauthenticated, "unauthenticated")

// ErrPermissionDenied is wrapped by errors that mean "we know who you are,
// and you may not do this".
var ErrPermissionDenied error = failure.New(failure.PermissionDenied, "permission denied")

type contextKey struct{}

// NewContext returns ctx carrying id.
func NewContext(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, contextKey{}, id)
}

// FromContext returns the identity in ctx, if any.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(contextKey{}).(Identity)
	return id, ok
}
