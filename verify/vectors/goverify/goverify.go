// Package goverify runs a conformance vector (package vectors) through the
// Go verifier, with the trust inputs the vector names: the reference
// outcome every other verifier's tests compare with.
package goverify

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"

	"github.com/custody-dev/custody/certs"
	"github.com/custody-dev/custody/verify"
	"github.com/custody-dev/custody/verify/vectors"
	"github.com/custody-dev/custody/witness"
)

// Verify runs vector v of set (in dir) through the Go verifier, giving it
// the trust inputs the vector names, as README.md says a verifier should.
func Verify(dir string, set *vectors.Set, v vectors.Vector) (*verify.Report, error) {
	raw, err := vectors.BundleText(dir, v)
	if err != nil {
		return nil, err
	}
	read := func(name string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, name)) }
	var o verify.Options
	if v.Keys {
		key, err := read(set.Trust.LogKey)
		if err != nil {
			return nil, err
		}
		o.LogVerifierKey = strings.TrimSpace(string(key))
		if o.ReceiptKeyPEM, err = read(set.Trust.ReceiptKey); err != nil {
			return nil, err
		}
	}
	readCerts := func(name string) ([]*x509.Certificate, error) {
		b, err := read(name)
		if err != nil {
			return nil, err
		}
		return certs.ParseCertificatesPEM(b)
	}
	if v.CA {
		cs, err := readCerts(set.Trust.CA)
		if err != nil {
			return nil, err
		}
		o.Roots = x509.NewCertPool()
		for _, c := range cs {
			o.Roots.AddCert(c)
		}
	}
	if v.EarlierCheckpoint {
		if o.OldCheckpoint, err = read(set.Trust.EarlierCheckpoint); err != nil {
			return nil, err
		}
	}
	if v.Policy {
		text, err := read(set.Trust.Policy)
		if err != nil {
			return nil, err
		}
		if o.Policy, err = witness.ParsePolicy(text); err != nil {
			return nil, err
		}
	}
	if v.TSAChain {
		chain, err := readCerts(set.Trust.TSAChain)
		if err != nil {
			return nil, err
		}
		o.TSAChains = [][]*x509.Certificate{chain}
	}
	if v.File != "" {
		file, err := read(v.File)
		if err != nil {
			return nil, err
		}
		o.File = bytes.NewReader(file)
	}
	if verify.IsStream(raw) {
		return verify.VerifyStream(bytes.NewReader(raw), o), nil
	}
	return verify.VerifyBytes(raw, o), nil
}
