// Package receipt signs and verifies Custody receipts: statements the
// service signs with its receipt key when it acknowledges an ingest or a
// custody event. A receipt is the canonical JSON payload (package
// canonicaljson) exactly as signed, the signature, and the key id; its
// fields are in docs/RECEIPTS.md. The package needs only the standard
// library, so a court's verifier that imports it stays small; the signing
// key itself (a PEM file or a KMS key through sigstore) is package keys'.
package receipt

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"

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

// SignFunc signs a message with the receipt key: for ECDSA an ASN.1 DER
// signature over SHA-256(message), for Ed25519 over the message.
type SignFunc func(message []byte) ([]byte, error)

// Signer signs receipts.
type Signer struct {
	sign  SignFunc
	keyID string
}

// NewSigner returns a Signer; keyID is the hex SHA-256 of the key's DER SPKI.
func NewSigner(sign SignFunc, keyID string) *Signer {
	return &Signer{sign: sign, keyID: keyID}
}

// Sign encodes fields canonically, adds "v" and signs the bytes.
func (s *Signer) Sign(fields canonicaljson.Object) (Receipt, error) {
	fields["v"] = Version
	payload, err := canonicaljson.Marshal(fields)
	if err != nil {
		return Receipt{}, fmt.Errorf("receipt: %w", err)
	}
	sig, err := s.sign(payload)
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

// VerifySignature checks sig over msg with pub as receipts, capture and
// hand-off statements are signed (sigstore's defaults for each key type):
// ECDSA as ASN.1 DER over SHA-256(msg), Ed25519 over msg, RSA as PKCS #1
// v1.5 over SHA-256(msg). It fails with ErrBadSignature.
func VerifySignature(pub crypto.PublicKey, msg, sig []byte) error {
	ok := false
	digest := sha256.Sum256(msg)
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		ok = ecdsa.VerifyASN1(k, digest[:], sig)
	case ed25519.PublicKey:
		ok = ed25519.Verify(k, msg, sig)
	case *rsa.PublicKey:
		ok = rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig) == nil
	default:
		return fmt.Errorf("unsupported signature key type %T", pub)
	}
	if !ok {
		return ErrBadSignature
	}
	return nil
}
