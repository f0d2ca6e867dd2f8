package keys_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/custody-dev/custody/certs"
	"github.com/custody-dev/custody/keys"
)

func TestLoadCreatesPrivateKeysAndRefusesOpenOnes(t *testing.T) {
	dir := t.TempDir()
	cfg := keys.Config{Dir: dir, LogOrigin: "custody.test/log"}
	ks, err := keys.Load(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if ks.LogSigner.Name() != "custody.test/log" || ks.ReceiptKeyID == "" || ks.AgeRecipient == nil {
		t.Fatalf("keys %+v", ks)
	}
	for _, name := range []string{"receipt-key.pem", "log-key", "age-identity.txt"} {
		p := filepath.Join(dir, name)
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %04o", name, info.Mode().Perm())
		}
	}
	// The same keys come back.
	again, err := keys.Load(t.Context(), cfg)
	if err != nil || again.LogVerifierKey != ks.LogVerifierKey || again.ReceiptKeyID != ks.ReceiptKeyID {
		t.Fatalf("reload gave other keys: %v", err)
	}
	// A log origin cannot change under an existing key.
	if _, err := keys.Load(t.Context(), keys.Config{Dir: dir, LogOrigin: "other"}); err == nil {
		t.Error("a different origin was accepted")
	}
	for _, name := range []string{"receipt-key.pem", "log-key", "age-identity.txt"} {
		p := filepath.Join(dir, name)
		os.Chmod(p, 0o644)
		if _, err := keys.Load(t.Context(), cfg); !errors.Is(err, certs.ErrKeyPermissions) {
			t.Errorf("%s readable by others: Load error %v, want ErrKeyPermissions", name, err)
		}
		os.Chmod(p, 0o600)
	}
}
