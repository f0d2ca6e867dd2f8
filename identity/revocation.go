package identity

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"strings"
	"sync"
	"time"
)

// Revocations is a revocation list read from a file the operator edits: a
// deny list (one certificate serial number in hex per line, # comments) or
// a CRL (PEM or DER). The file is re-read when it changes, checked at most
// once a second, so a revocation takes effect without a restart.
type Revocations struct {
	path string

	mu      sync.Mutex
	checked time.Time
	modTime time.Time
	size    int64
	serials map[string]bool
	err     error
}

// NewRevocations reads path, which must exist.
func NewRevocations(path string) (*Revocations, error) {
	r := &Revocations{path: path}
	if err := r.reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Revoked reports whether cert's serial number is on the list. If the file
// becomes unreadable the last good list stays in force and the error is
// returned once per change.
func (r *Revocations) Revoked(cert *x509.Certificate) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) >= time.Second {
		r.checked = time.Now()
		if info, err := os.Stat(r.path); err == nil && (!info.ModTime().Equal(r.modTime) || info.Size() != r.size) {
			r.err = r.reloadLocked()
		}
	}
	return r.serials[serialKey(cert.SerialNumber)]
}

func serialKey(n *big.Int) string { return strings.ToLower(n.Text(16)) }

func (r *Revocations) reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checked = time.Now()
	return r.reloadLocked()
}

func (r *Revocations) reloadLocked() error {
	info, err := os.Stat(r.path)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(r.path)
	if err != nil {
		return err
	}
	serials, err := parseRevocations(data)
	if err != nil {
		return fmt.Errorf("revocation list %s: %w", r.path, err)
	}
	r.serials, r.modTime, r.size = serials, info.ModTime(), info.Size()
	return nil
}

func parseRevocations(data []byte) (map[string]bool, error) {
	out := map[string]bool{}
	der := data
	if block, _ := pem.Decode(data); block != nil && block.Type == "X509 CRL" {
		der = block.Bytes
	}
	if len(der) > 0 && der[0] == 0x30 { // DER SEQUENCE: a CRL
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			return nil, err
		}
		for _, e := range crl.RevokedCertificateEntries {
			out[serialKey(e.SerialNumber)] = true
		}
		return out, nil
	}
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
