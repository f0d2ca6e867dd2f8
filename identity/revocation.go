package identity

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"strings"
	"sync"
	"time"
)

// Revocations is a revocation list read from a file the operator edits.
// The file is either
//
//   - a deny list: one certificate serial number in hex per line, #
//     comments. A listed serial revokes any certificate with that serial
//     in a caller's verified chain: the client certificate, an
//     intermediate CA (and so everything it issued) or a root;
//   - CRLs: one DER CRL, or PEM with one or more "X509 CRL" blocks and, for
//     a CRL whose issuer is not in the client CA bundle, that issuer's
//     "CERTIFICATE" (which must itself chain to the bundle). Every CRL's
//     signature is checked against its issuer's key
//     (x509.RevocationList.CheckSignatureFrom) when the file is read, and a
//     CRL revokes only certificates that issuer signed: same issuer name
//     and the issuing certificate in the verified chain has that key.
//
// The file is re-read when it changes, checked at most once a second, so a
// revocation takes effect without a restart. A file that cannot be read or
// parsed, or holds a CRL whose signature does not verify, is refused as a
// whole: NewRevocations fails (custodyd does not start), and on a later
// change the last good list stays in force and the reason is logged at
// ERROR once per change of the file.
type Revocations struct {
	path string
	cas  []*x509.Certificate
	pool *x509.CertPool
	log  *slog.Logger
	now  func() time.Time

	mu      sync.Mutex
	checked time.Time
	modTime time.Time
	size    int64
	set     *revocationSet
	err     error
}

// revocationSet is one good reading of the file.
type revocationSet struct {
	serials map[string]bool
	crls    []*verifiedCRL
}

// verifiedCRL is a CRL whose signature verified with issuer's key.
type verifiedCRL struct {
	issuer  *x509.Certificate
	serials map[string]bool
	// signedBy caches, for certificates at the end of a chain (whose
	// issuer is not in the chain), whether issuer's key signed them.
	signedBy sync.Map // [32]byte (SHA-256 of the certificate) -> bool
}

// NewRevocations reads path, which must exist. cas are the client CA
// certificates (the --client-ca bundle): CRLs are verified against them or
// against a CA certificate in the file that chains to them. log receives
// reload failures; nil means slog.Default().
func NewRevocations(path string, cas []*x509.Certificate, log *slog.Logger) (*Revocations, error) {
	if log == nil {
		log = slog.Default()
	}
	pool := x509.NewCertPool()
	for _, c := range cas {
		pool.AddCert(c)
	}
	r := &Revocations{path: path, cas: cas, pool: pool, log: log, now: time.Now}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checked = r.now()
	if err := r.reloadLocked(); err != nil {
		return nil, err
	}
	return r, nil
}

// Check reports the first certificate of chain (a verified chain, leaf
// first, its root last) that is revoked, and whether there is one.
func (r *Revocations) Check(chain []*x509.Certificate) (int, bool) {
	set := r.current()
	for i, c := range chain {
		if set.serials[serialKey(c.SerialNumber)] {
			return i, true
		}
		for _, crl := range set.crls {
			if !crl.serials[serialKey(c.SerialNumber)] || !bytes.Equal(c.RawIssuer, crl.issuer.RawSubject) {
				continue
			}
			if crl.issued(c, chain[i+1:]) {
				return i, true
			}
		}
	}
	return 0, false
}

// issued reports whether crl's issuer signed c; rest is what follows c in
// its verified chain.
func (crl *verifiedCRL) issued(c *x509.Certificate, rest []*x509.Certificate) bool {
	if len(rest) > 0 {
		// The chain is verified: rest[0] signed c.
		return bytes.Equal(rest[0].RawSubjectPublicKeyInfo, crl.issuer.RawSubjectPublicKeyInfo)
	}
	// c is the chain's trust anchor; its issuer is not in the chain.
	key := sha256.Sum256(c.Raw)
	if v, ok := crl.signedBy.Load(key); ok {
		return v.(bool)
	}
	ok := c.CheckSignatureFrom(crl.issuer) == nil
	crl.signedBy.Store(key, ok)
	return ok
}

// current returns the list in force, re-reading the file first if it
// changed and was last checked a second ago or more.
func (r *Revocations) current() *revocationSet {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.checked) >= time.Second {
		r.checked = now
		info, err := os.Stat(r.path)
		switch {
		case err != nil:
			r.report(err)
		case !info.ModTime().Equal(r.modTime) || info.Size() != r.size:
			if err := r.reloadLocked(); err != nil {
				// Do not retry this version of the file every second.
				r.modTime, r.size = info.ModTime(), info.Size()
				r.report(err)
			} else {
				r.err = nil
				r.log.Info("revocation list reloaded", "file", r.path, "serials", len(r.set.serials), "crls", len(r.set.crls))
			}
		}
	}
	return r.set
}

// report logs err at ERROR unless it is the error last reported.
func (r *Revocations) report(err error) {
	if r.err != nil && r.err.Error() == err.Error() {
		return
	}
	r.err = err
	r.log.Error("revocation list refused; the last good list stays in force", "file", r.path, "err", err)
}

func serialKey(n *big.Int) string { return strings.ToLower(n.Text(16)) }

func (r *Revocations) reloadLocked() error {
	info, err := os.Stat(r.path)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(r.path)
	if err != nil {
		return err
	}
	set, err := r.parse(data)
	if err != nil {
		return fmt.Errorf("revocation list %s: %w", r.path, err)
	}
	r.set, r.modTime, r.size = set, info.ModTime(), info.Size()
	return nil
}

// parse reads a deny list or CRLs, verifying every CRL.
func (r *Revocations) parse(data []byte) (*revocationSet, error) {
	set := &revocationSet{serials: map[string]bool{}}
	var crlDER [][]byte
	var issuers []*x509.Certificate
	if bytes.Contains(data, []byte("-----BEGIN X509 CRL-----")) {
		for rest := data; ; {
			var block *pem.Block
			block, rest = pem.Decode(rest)
			if block == nil {
				break
			}
			switch block.Type {
			case "X509 CRL":
				crlDER = append(crlDER, block.Bytes)
			case "CERTIFICATE":
				c, err := x509.ParseCertificate(block.Bytes)
				if err != nil {
					return nil, fmt.Errorf("certificate in the file: %w", err)
				}
				issuers = append(issuers, c)
			default:
				return nil, fmt.Errorf("unexpected PEM block %q (want X509 CRL or CERTIFICATE)", block.Type)
			}
		}
	} else if len(data) > 1 && data[0] == 0x30 && data[1] >= 0x80 {
		// A DER SEQUENCE with a long-form length (a CRL is longer than 127
		// bytes), which no text line starts with: one CRL.
		crlDER = [][]byte{data}
	} else {
		serials, err := parseSerials(data)
		if err != nil {
			return nil, err
		}
		set.serials = serials
		return set, nil
	}
	known, err := r.issuers(issuers)
	if err != nil {
		return nil, err
	}
	for i, der := range crlDER {
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			return nil, fmt.Errorf("CRL %d: %w", i+1, err)
		}
		v, err := verifyCRL(crl, known)
		if err != nil {
			return nil, fmt.Errorf("CRL %d (issuer %q): %w", i+1, crl.Issuer.String(), err)
		}
		if !crl.NextUpdate.IsZero() && r.now().After(crl.NextUpdate) {
			r.log.Warn("CRL is past its next update; it stays in force until replaced", "file", r.path, "issuer", crl.Issuer.String(), "next_update", crl.NextUpdate)
		}
		set.crls = append(set.crls, v)
	}
	return set, nil
}

// issuers returns the certificates that may sign CRLs: the client CAs, and
// CA certificates from the file that chain to them.
func (r *Revocations) issuers(fromFile []*x509.Certificate) ([]*x509.Certificate, error) {
	known := append([]*x509.Certificate(nil), r.cas...)
	inter := x509.NewCertPool()
	for _, c := range fromFile {
		inter.AddCert(c)
	}
	for _, c := range fromFile {
		if !c.BasicConstraintsValid || !c.IsCA {
			return nil, fmt.Errorf("certificate %q in the file is not a CA certificate", c.Subject.String())
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: r.pool, Intermediates: inter, CurrentTime: r.now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			return nil, fmt.Errorf("CA certificate %q in the file does not chain to the client CA bundle: %w", c.Subject.String(), err)
		}
		known = append(known, c)
	}
	return known, nil
}

// verifyCRL finds the CA among known whose name is the CRL's issuer and
// whose key signed it.
func verifyCRL(crl *x509.RevocationList, known []*x509.Certificate) (*verifiedCRL, error) {
	var named bool
	var lastErr error
	for _, ca := range known {
		if !bytes.Equal(ca.RawSubject, crl.RawIssuer) {
			continue
		}
		named = true
		if lastErr = crl.CheckSignatureFrom(ca); lastErr == nil {
			v := &verifiedCRL{issuer: ca, serials: map[string]bool{}}
			for _, e := range crl.RevokedCertificateEntries {
				v.serials[serialKey(e.SerialNumber)] = true
			}
			return v, nil
		}
	}
	if !named {
		return nil, errors.New("no CA of that name in the client CA bundle or in the file; add the issuing CA's certificate (PEM) to the file")
	}
	return nil, fmt.Errorf("its signature does not verify with the issuer's key (forged, or signed by another key): %v", lastErr)
}

func parseSerials(data []byte) (map[string]bool, error) {
	out := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		v, ok := new(big.Int).SetString(strings.TrimPrefix(strings.ReplaceAll(line, ":", ""), "0x"), 16)
		if !ok {
			return nil, fmt.Errorf("line %d: %q is not a hex serial number", n, line)
		}
		out[serialKey(v)] = true
	}
	return out, sc.Err()
}
