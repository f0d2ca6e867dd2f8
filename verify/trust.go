package verify

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/custody-dev/custody/canonicaljson"
	"github.com/custody-dev/custody/witness"
)

// TrustFormat and TrustVersion identify a trust file.
const (
	TrustFormat  = "custody-trust"
	TrustVersion = 1
)

// Trust is a trust file (docs/VERIFY.md "The trust file"): everything a
// court brings from the operator, out of band, in one document, with the
// fingerprints to read back over the phone. `custody keys --out` writes
// it; `custody verify --trust`, `custody report --trust` and the /verify
// page read it.
type Trust struct {
	Format  string `json:"format"`
	Version int    `json:"v"`
	// LogOrigin and LogVerifierKey name and verify the log's checkpoints.
	LogOrigin      string `json:"log_origin"`
	LogVerifierKey string `json:"log_verifier_key"`
	// ReceiptPublicKeyPEM verifies receipts.
	ReceiptPublicKeyPEM string `json:"receipt_public_key_pem"`
	// ClientCAPEM is the operator's client CA chain (root first), for the
	// signers' certificates; empty if the operator gives none.
	ClientCAPEM string `json:"client_ca_pem,omitempty"`
	// WitnessPolicy is the witness policy text (Sigsum format), if the
	// operator uses witnesses.
	WitnessPolicy string `json:"witness_policy,omitempty"`
	// TimestampAuthorities are the RFC 3161 authorities the operator
	// uses, each with its certificate chain.
	TimestampAuthorities []TrustAuthority `json:"timestamp_authorities,omitempty"`
	// Fingerprints are what a court reads back to the operator over
	// another channel; a reader recomputes them and refuses a file whose
	// fingerprints do not match its contents.
	Fingerprints TrustFingerprints `json:"fingerprints"`
}

// TrustAuthority is one timestamp authority of a trust file.
type TrustAuthority struct {
	URL      string `json:"url"`
	ChainPEM string `json:"chain_pem"`
}

// TrustFingerprints are a trust file's fingerprints (see Fingerprint).
type TrustFingerprints struct {
	LogVerifierKey       string   `json:"log_verifier_key"`
	ReceiptPublicKey     string   `json:"receipt_public_key"`
	ClientCA             []string `json:"client_ca,omitempty"`
	WitnessPolicy        string   `json:"witness_policy,omitempty"`
	TimestampAuthorities []string `json:"timestamp_authorities,omitempty"`
}

// Fingerprint is how a trust file writes a SHA-256 digest to be read
// aloud: upper-case hex in 16 groups of four, separated by spaces.
func Fingerprint(data []byte) string {
	sum := sha256.Sum256(data)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	groups := make([]string, 0, 16)
	for i := 0; i < len(h); i += 4 {
		groups = append(groups, h[i:i+4])
	}
	return strings.Join(groups, " ")
}

// NewTrust builds a trust file from the operator's keys, computing its
// fingerprints. clientCAPEM, policy and authorities may be empty.
func NewTrust(logOrigin, logVerifierKey, receiptKeyPEM, clientCAPEM, policy string, authorities []TrustAuthority) (*Trust, error) {
	t := &Trust{Format: TrustFormat, Version: TrustVersion, LogOrigin: logOrigin, LogVerifierKey: logVerifierKey,
		ReceiptPublicKeyPEM: receiptKeyPEM, ClientCAPEM: clientCAPEM, WitnessPolicy: policy, TimestampAuthorities: authorities}
	fp, err := t.fingerprints()
	if err != nil {
		return nil, err
	}
	t.Fingerprints = fp
	return t, nil
}

// fingerprints computes the file's fingerprints from its contents:
//   - log_verifier_key: of the key's text (UTF-8, as written);
//   - receipt_public_key: of the key's DER SubjectPublicKeyInfo (the
//     receipt key id receipts carry, in another spelling);
//   - client_ca, timestamp_authorities: of each certificate's DER, in
//     file order (the usual certificate fingerprint: `openssl x509
//     -noout -fingerprint -sha256`), the authorities' chains one after
//     the other;
//   - witness_policy: of the policy's text (UTF-8, as written).
func (t *Trust) fingerprints() (TrustFingerprints, error) {
	var fp TrustFingerprints
	if t.LogVerifierKey == "" || t.ReceiptPublicKeyPEM == "" {
		return fp, errors.New("trust file: it needs log_verifier_key and receipt_public_key_pem")
	}
	fp.LogVerifierKey = Fingerprint([]byte(t.LogVerifierKey))
	block, _ := pem.Decode([]byte(t.ReceiptPublicKeyPEM))
	if block == nil || block.Type != "PUBLIC KEY" {
		return fp, errors.New("trust file: receipt_public_key_pem is not a PEM PUBLIC KEY")
	}
	if _, err := x509.ParsePKIXPublicKey(block.Bytes); err != nil {
		return fp, fmt.Errorf("trust file: receipt_public_key_pem: %w", err)
	}
	fp.ReceiptPublicKey = Fingerprint(block.Bytes)
	certFingerprints := func(what, text string) ([]string, error) {
		cs, err := pemCertificates(text)
		if err != nil {
			return nil, fmt.Errorf("trust file: %s: %w", what, err)
		}
		if len(cs) == 0 {
			return nil, fmt.Errorf("trust file: %s holds no certificate", what)
		}
		out := make([]string, len(cs))
		for i, c := range cs {
			out[i] = Fingerprint(c.Raw)
		}
		return out, nil
	}
	var err error
	if t.ClientCAPEM != "" {
		if fp.ClientCA, err = certFingerprints("client_ca_pem", t.ClientCAPEM); err != nil {
			return fp, err
		}
	}
	if t.WitnessPolicy != "" {
		if _, err := witness.ParsePolicy([]byte(t.WitnessPolicy)); err != nil {
			return fp, fmt.Errorf("trust file: witness_policy: %w", err)
		}
		fp.WitnessPolicy = Fingerprint([]byte(t.WitnessPolicy))
	}
	for i, a := range t.TimestampAuthorities {
		fps, err := certFingerprints(fmt.Sprintf("timestamp_authorities[%d].chain_pem", i), a.ChainPEM)
		if err != nil {
			return fp, err
		}
		fp.TimestampAuthorities = append(fp.TimestampAuthorities, fps...)
	}
	return fp, nil
}

var trustShape = shape{
	keys: map[string][]string{
		"":                        {"format", "v", "log_origin", "log_verifier_key", "receipt_public_key_pem", "client_ca_pem", "witness_policy", "timestamp_authorities", "fingerprints"},
		"timestamp_authorities[]": {"url", "chain_pem"},
		"fingerprints":            {"log_verifier_key", "receipt_public_key", "client_ca", "witness_policy", "timestamp_authorities"},
	},
	required: map[string][]string{
		"":                        {"format", "v", "log_origin", "log_verifier_key", "receipt_public_key_pem", "fingerprints"},
		"timestamp_authorities[]": {"url", "chain_pem"},
		"fingerprints":            {"log_verifier_key", "receipt_public_key"},
	},
}

// ParseTrust reads a trust file strictly (as bundles are read: no unknown
// or repeated key) and checks that its fingerprints are its contents'.
func ParseTrust(b []byte) (*Trust, error) {
	doc, err := canonicaljson.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("trust file is not valid JSON: %w", err)
	}
	if err := trustShape.check(doc, ""); err != nil {
		return nil, errors.New(strings.ReplaceAll(err.Error(), "bundle", "trust file"))
	}
	var t Trust
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("trust file: %w", err)
	}
	if t.Format != TrustFormat || t.Version != TrustVersion {
		return nil, fmt.Errorf("not a Custody trust file (format %q, v %d)", t.Format, t.Version)
	}
	fp, err := t.fingerprints()
	if err != nil {
		return nil, err
	}
	if fp.LogVerifierKey != t.Fingerprints.LogVerifierKey || fp.ReceiptPublicKey != t.Fingerprints.ReceiptPublicKey ||
		!slices.Equal(fp.ClientCA, t.Fingerprints.ClientCA) || fp.WitnessPolicy != t.Fingerprints.WitnessPolicy ||
		!slices.Equal(fp.TimestampAuthorities, t.Fingerprints.TimestampAuthorities) {
		return nil, errors.New("trust file: its fingerprints do not match its keys (the file was edited or damaged); get it from the operator again")
	}
	return &t, nil
}

// Options returns the verifier options the trust file gives: the log and
// receipt keys, the CA (if any), the witness policy (if any) and the
// timestamp authorities' chains (if any).
func (t *Trust) Options() (Options, error) {
	opts := Options{LogVerifierKey: t.LogVerifierKey, ReceiptKeyPEM: []byte(t.ReceiptPublicKeyPEM)}
	if t.ClientCAPEM != "" {
		cs, err := pemCertificates(t.ClientCAPEM)
		if err != nil {
			return opts, err
		}
		opts.Roots = x509.NewCertPool()
		for _, c := range cs {
			opts.Roots.AddCert(c)
		}
	}
	if t.WitnessPolicy != "" {
		p, err := witness.ParsePolicy([]byte(t.WitnessPolicy))
		if err != nil {
			return opts, err
		}
		opts.Policy = p
	}
	for _, a := range t.TimestampAuthorities {
		chain, err := pemCertificates(a.ChainPEM)
		if err != nil {
			return opts, err
		}
		opts.TSAChains = append(opts.TSAChains, chain)
	}
	return opts, nil
}

// pemCertificates parses the PEM CERTIFICATE blocks of text, in order; a
// block of another type, or one that does not parse, is an error.
func pemCertificates(text string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := []byte(text)
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return out, nil
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("a PEM %s, not a certificate", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
}
