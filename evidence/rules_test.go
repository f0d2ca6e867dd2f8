package evidence

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"math/big"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/sigstore/sigstore/pkg/signature"
	"golang.org/x/mod/sumdb/note"

	"github.com/custody-dev/custody/catalog/sqlite"
	"github.com/custody-dev/custody/custodylog"
	"github.com/custody-dev/custody/custodylog/posixlog"
	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/journal"
	"github.com/custody-dev/custody/local"
	"github.com/custody-dev/custody/receipt"
	"github.com/custody-dev/custody/storage/mem"
)

// newMemService builds the service for domain tests from in-memory parts
// where they exist (storage/mem, journal.Mem) and the real SQLite catalog
// and POSIX log in t.TempDir(): no server, no TLS, no network.
func newMemService(t *testing.T) *Service {
	t.Helper()
	dir := t.TempDir()
	skey, vkey, _ := note.GenerateKey(rand.Reader, "custody.test/rules")
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	backend, err := posixlog.New(t.Context(), filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := custodylog.Open(t.Context(), custodylog.Config{Backend: backend, Signer: signer, Verifier: verifier, CheckpointInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(context.Background()) })
	cat, err := sqlite.Open(t.Context(), filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sv, err := signature.LoadSignerVerifier(key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	ageID, _ := age.GenerateX25519Identity()
	return New(Deps{
		Store: mem.New(), Catalog: cat, Log: l, Journal: journal.NewMem(), Locks: local.NewLocks(),
		Receipts: receipt.NewSigner(func(m []byte) ([]byte, error) { return sv.SignMessage(bytes.NewReader(m)) }, "test-key"),
		Identity: ageID,
	}, Config{UploadDir: filepath.Join(dir, "upload-sessions")})
}

// party is a caller with the certificate and key it signs statements with.
type party struct {
	id  identity.Identity
	key *ecdsa.PrivateKey
}

func newParty(t *testing.T, role identity.Role, name string) party {
	t.Helper()
	id, err := identity.New(role, name)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	uri, _ := url.Parse(id.String())
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), URIs: []*url.URL{uri},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	id.Certificate, _ = x509.ParseCertificate(der)
	return party{id, key}
}

func (p party) sign(t *testing.T, statement func(at time.Time) ([]byte, error)) *Signature {
	t.Helper()
	at := time.Now().UTC()
	msg, err := statement(at)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(msg)
	sig, err := ecdsa.SignASN1(rand.Reader, p.key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return &Signature{Signature: sig, Certificate: p.id.Certificate.Raw, SignedAt: at}
}

// TestCustodyRules walks one item through the hand-off rules at the
// domain, as the RPC tests do through TLS and gRPC: who may release,
// accept, cancel and record, with the error kind and message each refusal
// gives, and the custodian after each step.
func TestCustodyRules(t *testing.T) {
	s := newMemService(t)
	ctx := t.Context()
	collector := newParty(t, identity.RoleCollector, "field-team")
	custodian := newParty(t, identity.RoleCustodian, "lab")
	court := newParty(t, identity.RoleCourt, "chamber")
	body := "photo of the filtration point " + strings.Repeat("px ", 300)
	sum := sha256.Sum256([]byte(body))
	item, _, err := s.Ingest(ctx, collector.id, UploadMeta{CaseID: "case-rules", Kind: KindPhoto, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(body))}, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	id := item.ID
	release := func(by party, to party, reason string) error {
		_, err := s.Release(ctx, by.id, id, Handoff{To: to.id.String(), Reason: reason, Signature: by.sign(t, func(at time.Time) ([]byte, error) {
			return events.ReleaseStatement(id, item.SHA256, by.id.String(), to.id.String(), reason, at)
		})})
		return err
	}
	accept := func(by, from party, seq uint64) error {
		_, err := s.Accept(ctx, by.id, id, Handoff{Signature: by.sign(t, func(at time.Time) ([]byte, error) {
			return events.AcceptStatement(id, item.SHA256, from.id.String(), by.id.String(), seq, at)
		})})
		return err
	}
	custodianIs := func(want party) {
		t.Helper()
		got, err := s.loadItem(ctx, id)
		if err != nil || got.Custodian != want.id.String() {
			t.Fatalf("custodian %q (%v), want %s", got.Custodian, err, want.id)
		}
	}
	refused := func(err error, kind error, message string) {
		t.Helper()
		if !errors.Is(err, kind) || !strings.Contains(err.Error(), message) {
			t.Fatalf("got %v, want %v with %q", err, kind, message)
		}
	}
	custodianIs(collector)
	refused(release(custodian, court, "not mine to give"), identity.ErrPermissionDenied, "only the current custodian")
	if err := release(collector, custodian, "to the lab"); err != nil {
		t.Fatal(err)
	}
	refused(release(collector, court, "twice"), ErrFailedPrecondition, "already released to "+custodian.id.String())
	refused(accept(court, collector, 1), identity.ErrPermissionDenied, "not to you")
	custodianIs(collector) // until the recipient accepts
	if err := accept(custodian, collector, 1); err != nil {
		t.Fatal(err)
	}
	custodianIs(custodian)
	refused(accept(custodian, collector, 1), ErrFailedPrecondition, "no pending release")
	refused(release(collector, court, "late"), identity.ErrPermissionDenied, "only the current custodian")
	// A release signed by a key other than the caller's certificate.
	forged := custodian.sign(t, func(at time.Time) ([]byte, error) {
		return events.ReleaseStatement(id, item.SHA256, custodian.id.String(), court.id.String(), "forged", at)
	})
	forged.Signature[len(forged.Signature)-1] ^= 1
	_, err = s.Release(ctx, custodian.id, id, Handoff{To: court.id.String(), Reason: "forged", Signature: forged})
	refused(err, ErrInvalid, "does not verify")
	// Release, a cancel by someone else, the releaser's cancel.
	if err := release(custodian, court, "for trial"); err != nil {
		t.Fatal(err)
	}
	_, err = s.CancelRelease(ctx, collector.id, id, Handoff{Reason: "not yours"})
	refused(err, identity.ErrPermissionDenied, "only the releaser")
	if _, err := s.CancelRelease(ctx, custodian.id, id, Handoff{Reason: "wrong recipient"}); err != nil {
		t.Fatal(err)
	}
	if err := accept(court, custodian, 5); err == nil {
		t.Fatal("accepted a cancelled release")
	}
	custodianIs(custodian)
	// The chain the domain logged: ingest, release, accept, release, cancel.
	recs, _, _, err := s.Events(ctx, court.id, id, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, r := range recs {
		types = append(types, string(r.Type))
	}
	if got := strings.Join(types, ","); got != "ingest,release,accept,release,release_cancelled" {
		t.Fatalf("logged chain %s", got)
	}
}
