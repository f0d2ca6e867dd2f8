package evidence

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"sync"
	"testing"

	"filippo.io/age"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/parts"
	"github.com/custody-dev/custody/journal"
	"github.com/custody-dev/custody/receipt"
	"github.com/custody-dev/custody/storage/disk"
)

// A test service made of real parts (POSIX log, SQLite, file journal, disk
// store) whose catalog or log fails once on purpose; the write protocol's
// own tests of such failures are in package ledger (resolve_test.go).

type (
	flakyCatalog = parts.FlakyCatalog
	flakyLog     = parts.FlakyLog
)

var errInjected = parts.ErrInjected

func newTestService(t *testing.T) (*Service, *flakyCatalog, *flakyLog) {
	t.Helper()
	return newTestServiceIn(t, t.TempDir())
}

// newTestServiceIn is newTestService with its data (catalog.db, log,
// journal, blobs) under dir.
func newTestServiceIn(t *testing.T, dir string) (*Service, *flakyCatalog, *flakyLog) {
	t.Helper()
	l := parts.Log(t, dir, "custody.test/resolve")
	lite := parts.Catalog(t, dir)
	jnl, err := journal.OpenFile(filepath.Join(dir, "journal"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { jnl.Close() })
	store, err := disk.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sv, err := signature.LoadSignerVerifier(key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	ageID, _ := age.GenerateX25519Identity()
	cat := &flakyCatalog{Catalog: lite}
	fl := &flakyLog{Log: l}
	d := Deps{Store: store, Catalog: cat, Log: fl, Journal: jnl, Receipts: receipt.NewSigner(func(m []byte) ([]byte, error) { return sv.SignMessage(bytes.NewReader(m)) }, "test-key"), Identity: ageID}
	s := New(d, Config{UploadDir: filepath.Join(dir, "upload-sessions")})
	testServiceDeps.Store(s, d)
	t.Cleanup(func() { testServiceDeps.Delete(s) })
	return s, cat, fl
}

// testServiceDeps keeps the Deps each test service was made with (the
// service hands its journal and signer to its ledger.Writer).
var testServiceDeps sync.Map

func depsOf(s *Service) Deps {
	d, _ := testServiceDeps.Load(s)
	return d.(Deps)
}

func ingestDoc(t *testing.T, s *Service, who identity.Identity, body string) (Item, error) {
	t.Helper()
	sum := sha256.Sum256([]byte(body))
	item, _, err := s.Ingest(t.Context(), who, UploadMeta{CaseID: "case-resolve", Kind: KindDocument, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(body))}, bytes.NewReader([]byte(body)))
	return item, err
}
