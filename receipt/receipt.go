// Package receipt signs and verifies Custody receipts: statements the
// service signs with its receipt key when it acknowledges an ingest or a
// custody event. A receipt is the canonical JSON payload (package
// canonicaljson) exactly as signed, the signature, and the key id; its
// fields are in docs/RECEIPTS.md. Verification needs only the public key and
// the standard library (or openssl).
package receipt

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/custody-dev/custody/canonicaljson"
)

// Version is the receipt format version, the payload's "v".
const Version = 1

// Receipt is a signed statement.
type Receipt struct {
	Payload   []byte
	Signature []byte
	KeyID     string
}

// Signer signs receipts with a sigstore SignerVerifier.
type Signer struct {
	sv    signature.SignerVerifier
	keyID string
}

// NewSigner returns a Signer; keyID is the hex SHA-256 of the key's DER SPKI.
func NewSigner(sv signature.SignerVerifier, keyID string) *Signer {
	return &Signer{sv: sv, keyID: keyID}
}

// Sign encodes fields canonically, adds "v" and signs the bytes.
func (s *Signer) Sign(fields canonicaljson.Object) (Receipt, error) {
	fields["v"] = Version
	payload, err := canonicaljson.Marshal(fields)
	if err != nil {
		return Receipt{}, fmt.Errorf("receipt: %w", err)
	}
	sig, err := s.sv.SignMessage(bytes.NewReader(payload))
	if err != nil {
		return Receipt{}, fmt.Errorf("signing receipt: %w", err)
	}
	return Receipt{Payload: payload, Signature: sig, KeyID: s.keyID}, nil
}

// ErrBadSignature means the receipt does not verify under the key.
var ErrBadSignature = errors.New("signature does not verify")

// Verify checks r against a PEM public key (ECDSA: ASN.1 DER signature over
// SHA-256 of the payload; Ed25519: over the payload) and returns the decoded
// payload.
func Verify(publicKeyPEM []byte, r Receipt) (map[string]any, error) {
	block, _ := pem.Decode(publicKeyPEM)
	if block == nil {
		return nil, errors.New("receipt key: no PEM block")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("receipt key: %w", err)
	}
	if r.KeyID != "" {
		sum := sha256.Sum256(block.Bytes)
		if hex.EncodeToString(sum[:]) != r.KeyID {
			return nil, fmt.Errorf("%w: signed by key %s, not by the given key %x", ErrBadSignature, r.KeyID, sum)
		}
	}
	if err := VerifySignature(pub, r.Payload, r.Signature); err != nil {
		return nil, err
	}
	var fields map[string]any
	dec := json.NewDecoder(bytes.NewReader(r.Payload))
	dec.UseNumber()
	if err := dec.Decode(&fields); err != nil {
		return nil, fmt.Errorf("receipt payload: %w", err)
	}
	return fields, nil
}

// VerifySignature checks sig over msg with pub as receipts (and hand-off
// statements) are signed: ECDSA over SHA-256 (ASN.1), Ed25519 over the
// message, anything else as sigstore verifies it with SHA-256. It fails
// with ErrBadSignature.
func VerifySignature(pub crypto.PublicKey, msg, sig []byte) error {
	ok := false
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		digest := sha256.Sum256(msg)
		ok = ecdsa.VerifyASN1(k, digest[:], sig)
	case ed25519.PublicKey:
		ok = ed25519.Verify(k, msg, sig)
	default:
		v, err := signature.LoadVerifier(pub, crypto.SHA256)
		if err != nil {
			return err
		}
		ok = v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(msg)) == nil
	}
	if !ok {
		return ErrBadSignature
	}
	return nil
}
