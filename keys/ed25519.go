package keys

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
)

// ed25519PublicFromNoteKey reads the Ed25519 seed of a signed-note private
// key (base64 of 0x01||seed) and returns its public key.
func ed25519PublicFromNoteKey(b64 string) (ed25519.PublicKey, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, err
	}
	if len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return nil, errors.New("signed-note private key is not an Ed25519 key")
	}
	return ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey), nil
}
