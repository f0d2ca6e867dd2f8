// Package certs owns Custody's X.509 material: a certificate authority that
// issues server and client certificates, the local development PKI that
// custodyd creates on first start, and loading of PEM credentials from disk.
//
// All keys are ECDSA P-256 and are written with mode 0600.
package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/custody-dev/custody/identity"
)

// Authority is a CA that can issue certificates.
type Authority struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewAuthority creates a self-signed CA valid for validity from now.
func NewAuthority(commonName string, validity time.Duration) (*Authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"Custody"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Authority{Cert: cert, Key: key}, nil
}

// LoadAuthority reads a CA certificate and its private key from PEM files.
func LoadAuthority(certFile, keyFile string) (*Authority, error) {
	cert, err := ReadCertificate(certFile)
	if err != nil {
		return nil, err
	}
	key, err := ReadPrivateKey(keyFile)
	if err != nil {
		return nil, err
	}
	return &Authority{Cert: cert, Key: key}, nil
}

// Issued is a certificate and its key, PEM encoded.
type Issued struct {
	CertPEM []byte
	KeyPEM  []byte
}

// IssueServer issues a TLS server certificate for the given DNS names and IP
// addresses.
func (a *Authority) IssueServer(hosts []string, validity time.Duration) (Issued, error) {
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "custodyd", Organization: []string{"Custody"}},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return a.issue(tmpl)
}

// IssueClient issues a client certificate carrying id as its identity URI
// SAN, valid from notBefore to notAfter: an end-entity certificate
// (basicConstraints CA:FALSE) for digitalSignature and clientAuth only,
// as identity.Verifier requires.
func (a *Authority) IssueClient(id identity.Identity, notBefore, notAfter time.Time) (Issued, error) {
	uri, err := url.Parse(id.String())
	if err != nil {
		return Issued{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: id.Name, OrganizationalUnit: []string{string(id.Role)}, Organization: []string{"Custody"}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{uri},
		// Present and false: a client certificate can never sign others.
		BasicConstraintsValid: true,
		IsCA:                  false,
	}
	return a.issue(tmpl)
}

func (a *Authority) issue(tmpl *x509.Certificate) (Issued, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Issued{}, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, key.Public(), a.Key)
	if err != nil {
		return Issued{}, fmt.Errorf("issuing certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return Issued{}, err
	}
	return Issued{CertPEM: EncodeCertificate(der), KeyPEM: keyPEM}, nil
}

// CertPEM returns the CA certificate, PEM encoded.
func (a *Authority) CertPEM() []byte { return EncodeCertificate(a.Cert.Raw) }

// KeyPEM returns the CA key, PEM encoded (PKCS #8).
func (a *Authority) KeyPEM() ([]byte, error) { return encodeKey(a.Key) }

// EncodeCertificate PEM-encodes a DER certificate.
func EncodeCertificate(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// EncodeCertificatesPEM encodes certificates as consecutive PEM blocks,
// in order.
func EncodeCertificatesPEM(cs []*x509.Certificate) []byte {
	var out []byte
	for _, c := range cs {
		out = append(out, EncodeCertificate(c.Raw)...)
	}
	return out
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return n
}

// ReadCertificate reads the first certificate of a PEM file.
func ReadCertificate(path string) (*x509.Certificate, error) {
	certs, err := ReadCertificates(path)
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}

// ReadCertificates reads every certificate of a PEM file; there must be at
// least one.
func ReadCertificates(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	certs, err := ParseCertificatesPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return certs, nil
}

// ParseCertificatesPEM parses every CERTIFICATE block of PEM data; there
// must be at least one.
func ParseCertificatesPEM(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return out, nil
}

// ParseCertificatePEM parses the first certificate in PEM data.
func ParseCertificatePEM(data []byte) (*x509.Certificate, error) {
	certs, err := ParseCertificatesPEM(data)
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}

// ReadCertPool reads a PEM bundle of CA certificates into a pool.
func ReadCertPool(path string) (*x509.CertPool, error) {
	certs, err := ReadCertificates(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// ErrKeyPermissions is returned for a private key file that others can read.
var ErrKeyPermissions = errors.New("private key file is readable by group or others")

// CheckKeyFile fails if path is readable by anyone but its owner.
func CheckKeyFile(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s: %w (mode %04o); run chmod 600 %s", path, ErrKeyPermissions, perm, path)
	}
	return nil
}

// ReadPrivateKey reads a PEM private key (PKCS #8, SEC 1 EC or PKCS #1) and
// refuses a file that group or others can read.
func ReadPrivateKey(path string) (crypto.Signer, error) {
	if err := CheckKeyFile(path); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParsePrivateKey(data)
}

// ParsePrivateKey parses a PEM private key.
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM private key found")
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
		return nil, fmt.Errorf("unsupported private key type %T", k)
	}
	if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	return nil, fmt.Errorf("cannot parse PEM block %q as a private key", block.Type)
}
