// Package keys owns the service's own keys, kept under <data-dir>/keys with
// mode 0600 and created on first start:
//
//	receipt-key.pem   ECDSA P-256 (PKCS #8) that signs receipts; or any KMS
//	                  URI sigstore supports, given with --signing-key
//	log-key           the log's C2SP signed-note Ed25519 key
//	age-identity.txt  the X25519 age identity that decrypts special-category
//	                  evidence and seizure records
//
// Private keys never leave this package except as signers and decrypters.
package keys

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/kms"
	"github.com/sigstore/sigstore/pkg/signature/options"
	"golang.org/x/mod/sumdb/note"

	"github.com/custody-dev/custody/certs"
	"github.com/custody-dev/custody/internal/atomicfile"
	"github.com/custody-dev/custody/receipt"
)

// Set is the service's keys.
type Set struct {
	// Receipt signs receipts (sigstore SignerVerifier: SignMessage gives
	// an ASN.1 DER ECDSA signature over SHA-256 of the message).
	Receipt signature.SignerVerifier
	// ReceiptPublicKeyPEM is the receipt key's public half, PEM SPKI.
	ReceiptPublicKeyPEM string
	// ReceiptKeyID is the hex SHA-256 of the receipt key's DER SPKI.
	ReceiptKeyID string
	// LogSigner signs checkpoints; LogVerifier checks them.
	LogSigner   note.Signer
	LogVerifier note.Verifier
	// LogVerifierKey is the signed-note verifier key, name+hash+base64.
	LogVerifierKey string
	// Age decrypts special-category data; AgeRecipient encrypts to it.
	Age          *age.X25519Identity
	AgeRecipient *age.X25519Recipient
}

// Config says where keys come from.
type Config struct {
	// Dir holds the keys, created with mode 0700.
	Dir string
	// SigningKey is a PEM file or a KMS URI (scheme://...); empty means
	// Dir/receipt-key.pem, created if missing.
	SigningKey string
	// LogOrigin names the log in checkpoints and its key; it is fixed when
	// the log key is created.
	LogOrigin string
}

// Load loads or creates every key.
func Load(ctx context.Context, cfg Config) (*Set, error) {
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	s := &Set{}
	var err error
	if s.Receipt, err = loadReceiptKey(ctx, cfg); err != nil {
		return nil, fmt.Errorf("receipt key: %w", err)
	}
	pub, err := s.Receipt.PublicKey(options.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("receipt public key: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	s.ReceiptKeyID = hex.EncodeToString(sum[:])
	s.ReceiptPublicKeyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))

	if err := s.loadLogKey(filepath.Join(cfg.Dir, "log-key"), cfg.LogOrigin); err != nil {
		return nil, fmt.Errorf("log key: %w", err)
	}
	if err := s.loadAgeIdentity(filepath.Join(cfg.Dir, "age-identity.txt")); err != nil {
		return nil, fmt.Errorf("age identity: %w", err)
	}
	return s, nil
}

func loadReceiptKey(ctx context.Context, cfg Config) (signature.SignerVerifier, error) {
	if ref := cfg.SigningKey; strings.Contains(ref, "://") {
		sv, err := kms.Get(ctx, ref, crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("KMS key %q: %w", ref, err)
		}
		return sv, nil
	}
	path := cfg.SigningKey
	if path == "" {
		path = filepath.Join(cfg.Dir, "receipt-key.pem")
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				return nil, err
			}
			der, err := x509.MarshalPKCS8PrivateKey(key)
			if err != nil {
				return nil, err
			}
			if err := atomicfile.Write(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
				return nil, err
			}
		}
	}
	key, err := certs.ReadPrivateKey(path)
	if err != nil {
		return nil, err
	}
	return signature.LoadSignerVerifier(key, crypto.SHA256)
}

func (s *Set) loadLogKey(path, origin string) error {
	data, err := readSecret(path)
	if errors.Is(err, os.ErrNotExist) {
		if origin == "" {
			return errors.New("no log origin given")
		}
		skey, _, err := note.GenerateKey(rand.Reader, origin)
		if err != nil {
			return err
		}
		if err := atomicfile.Write(path, []byte(skey+"\n"), 0o600); err != nil {
			return err
		}
		data = []byte(skey)
	} else if err != nil {
		return err
	}
	skey := strings.TrimSpace(string(data))
	if s.LogSigner, err = note.NewSigner(skey); err != nil {
		return err
	}
	if origin != "" && s.LogSigner.Name() != origin {
		return fmt.Errorf("%s signs for origin %q, not %q: a log's origin cannot change", path, s.LogSigner.Name(), origin)
	}
	s.LogVerifierKey, err = verifierKeyFromSigner(skey)
	if err != nil {
		return err
	}
	s.LogVerifier, err = note.NewVerifier(s.LogVerifierKey)
	return err
}

// verifierKeyFromSigner derives "name+hash+base64(0x01||pub)" from
// "PRIVATE+KEY+name+hash+base64(0x01||priv)".
func verifierKeyFromSigner(skey string) (string, error) {
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return "", errors.New("malformed signed-note private key")
	}
	name, hash, b64 := parts[2], parts[3], parts[4]
	pub, err := ed25519PublicFromNoteKey(b64)
	if err != nil {
		return "", err
	}
	vkey, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		return "", err
	}
	if !strings.Contains(vkey, "+"+hash+"+") {
		return "", errors.New("derived verifier key hash does not match the signer key")
	}
	return vkey, nil
}

func (s *Set) loadAgeIdentity(path string) error {
	data, err := readSecret(path)
	if errors.Is(err, os.ErrNotExist) {
		id, err := age.GenerateX25519Identity()
		if err != nil {
			return err
		}
		content := "# Custody service age identity: decrypts special-category evidence.\n# public key: " +
			id.Recipient().String() + "\n" + id.String() + "\n"
		if err := atomicfile.Write(path, []byte(content), 0o600); err != nil {
			return err
		}
		data = []byte(content)
	} else if err != nil {
		return err
	}
	ids, err := age.ParseIdentities(strings.NewReader(string(data)))
	if err != nil {
		return err
	}
	x, ok := ids[0].(*age.X25519Identity)
	if len(ids) != 1 || !ok {
		return errors.New("want exactly one X25519 identity")
	}
	s.Age, s.AgeRecipient = x, x.Recipient()
	return nil
}

// readSecret reads a private key file, refusing one others can read.
func readSecret(path string) ([]byte, error) {
	if err := certs.CheckKeyFile(path); err != nil {
		return nil, err
	}
	return os.ReadFile(path)
}

// ReceiptSignFunc adapts a sigstore signer to the receipt package, which
// stays free of sigstore so that court verifiers importing it stay small.
func ReceiptSignFunc(s signature.Signer) receipt.SignFunc {
	return func(message []byte) ([]byte, error) {
		return s.SignMessage(bytes.NewReader(message))
	}
}
