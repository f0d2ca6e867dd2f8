package certs

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/atomicfile"
)

// DevPKI is the local PKI custodyd creates under <data-dir>/certs when the
// operator brings none:
//
//	ca/ca.pem, ca/key.pem           the local CA (server and client)
//	server/cert.pem, server/key.pem  the server's certificate
//	<role>/ca.pem, cert.pem, key.pem one client credential per role
type DevPKI struct {
	Dir string
}

// Paths inside a DevPKI.
func (p DevPKI) CAFile() string         { return filepath.Join(p.Dir, "ca", "ca.pem") }
func (p DevPKI) caKeyFile() string      { return filepath.Join(p.Dir, "ca", "key.pem") }
func (p DevPKI) ServerCertFile() string { return filepath.Join(p.Dir, "server", "cert.pem") }
func (p DevPKI) ServerKeyFile() string  { return filepath.Join(p.Dir, "server", "key.pem") }

// RoleDir is the credential folder of a role, for `custody --creds`.
func (p DevPKI) RoleDir(r identity.Role) string { return filepath.Join(p.Dir, string(r)) }

// DevIdentity is the identity of the development credential for a role.
func DevIdentity(r identity.Role) identity.Identity {
	return identity.Identity{Role: r, Name: "dev-" + string(r)}
}

// DevServerHosts are the names the development server certificate is valid for.
var DevServerHosts = []string{"localhost", "127.0.0.1", "::1"}

const (
	devCAValidity     = 10 * 365 * 24 * time.Hour
	devServerValidity = 825 * 24 * time.Hour
	devClientValidity = 365 * 24 * time.Hour
	renewBefore       = 7 * 24 * time.Hour
)

// EnsureDevPKI creates whatever part of the development PKI under dir is
// missing and returns it. It is idempotent: an existing CA is reused, and
// an existing certificate is replaced only when it is about to expire.
func EnsureDevPKI(dir string) (DevPKI, error) {
	p := DevPKI{Dir: dir}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return p, err
	}
	ca, err := p.ensureCA()
	if err != nil {
		return p, fmt.Errorf("dev CA: %w", err)
	}
	if !fresh(p.ServerCertFile()) {
		issued, err := ca.IssueServer(DevServerHosts, devServerValidity)
		if err != nil {
			return p, err
		}
		if err := WriteCredential(filepath.Dir(p.ServerCertFile()), nil, issued); err != nil {
			return p, err
		}
	}
	for _, r := range identity.Roles {
		dir := p.RoleDir(r)
		if fresh(filepath.Join(dir, "cert.pem")) && endEntity(filepath.Join(dir, "cert.pem")) {
			continue
		}
		now := time.Now()
		issued, err := ca.IssueClient(DevIdentity(r), now.Add(-time.Minute), now.Add(devClientValidity))
		if err != nil {
			return p, err
		}
		if err := WriteCredential(dir, ca.CertPEM(), issued); err != nil {
			return p, err
		}
	}
	return p, nil
}

// Authority loads the development CA, e.g. to issue more client credentials.
func (p DevPKI) Authority() (*Authority, error) {
	return LoadAuthority(p.CAFile(), p.caKeyFile())
}

func (p DevPKI) ensureCA() (*Authority, error) {
	if _, err := os.Stat(p.CAFile()); err == nil {
		return p.Authority()
	}
	ca, err := NewAuthority("Custody local development CA", devCAValidity)
	if err != nil {
		return nil, err
	}
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(p.CAFile()), 0o700); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(p.caKeyFile(), keyPEM, 0o600); err != nil {
		return nil, err
	}
	return ca, atomicfile.Write(p.CAFile(), ca.CertPEM(), 0o644)
}

// fresh reports whether the certificate at path exists and stays valid for
// longer than renewBefore.
func fresh(path string) bool {
	c, err := ReadCertificate(path)
	return err == nil && time.Until(c.NotAfter) > renewBefore
}

// endEntity reports whether the client certificate at path states
// basicConstraints CA:FALSE; those issued before the verifier required it
// do not, and are replaced.
func endEntity(path string) bool {
	c, err := ReadCertificate(path)
	return err == nil && c.BasicConstraintsValid && !c.IsCA
}

// WriteCredential writes a credential folder as `custody --creds` reads it:
// ca.pem (when caPEM is not nil), cert.pem and key.pem (mode 0600).
func WriteCredential(dir string, caPEM []byte, issued Issued) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(dir, "key.pem"), issued.KeyPEM, 0o600); err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(dir, "cert.pem"), issued.CertPEM, 0o644); err != nil {
		return err
	}
	if caPEM != nil {
		return atomicfile.Write(filepath.Join(dir, "ca.pem"), caPEM, 0o644)
	}
	return nil
}
