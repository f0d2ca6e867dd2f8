package evidence

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/failure"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/parts"
	"github.com/custody-dev/custody/journal"
	"github.com/custody-dev/custody/receipt"
	"github.com/custody-dev/custody/storage/mem"
)

// The domain harness: a Service built from in-memory parts (storage/mem,
// journal.Mem) and in-process ones in t.TempDir() (the POSIX custody log,
// the SQLite catalog), with no TLS, gRPC or server. The custody rules are
// tested here, against the service itself; server/ tests the RPC surface
// (codes, authentication, REST mapping).

// newDomainService returns a Service on fresh in-memory parts.
func newDomainService(t *testing.T, cfg Config) *Service {
	t.Helper()
	dir := t.TempDir()
	l := parts.Log(t, dir, "custody.test/domain")
	cat := parts.Catalog(t, dir)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sv, err := signature.LoadSignerVerifier(key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	ageID, _ := age.GenerateX25519Identity()
	if cfg.UploadDir == "" {
		cfg.UploadDir = filepath.Join(dir, "upload-sessions")
	}
	return New(Deps{Store: mem.New(), Catalog: cat, Log: l, Journal: journal.NewMem(),
		Receipts: receipt.NewSigner(func(m []byte) ([]byte, error) { return sv.SignMessage(bytes.NewReader(m)) }, "test-key"), Identity: ageID}, cfg)
}

// party is a caller with a client certificate and its key, as the RPC layer
// would hand the service after mutual TLS.
type party struct {
	identity.Identity
	key crypto.Signer
}

func newParty(t *testing.T, role identity.Role, name string) party {
	t.Helper()
	id, err := identity.New(role, name)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	uri, _ := url.Parse(id.String())
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour), URIs: []*url.URL{uri},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	id.Certificate, _ = x509.ParseCertificate(der)
	return party{Identity: id, key: key}
}

// sign signs a hand-off statement as the client library does.
func (p party) sign(t *testing.T, statement []byte, at time.Time) *Signature {
	t.Helper()
	sv, err := signature.LoadSignerVerifier(p.key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := sv.SignMessage(bytes.NewReader(statement))
	if err != nil {
		t.Fatal(err)
	}
	return &Signature{Signature: sig, Certificate: p.Certificate.Raw, SignedAt: at}
}

func (p party) release(t *testing.T, s *Service, item Item, to party, reason string) (Event, error) {
	t.Helper()
	now := time.Now().UTC()
	st, err := events.ReleaseStatement(item.ID, item.SHA256, p.String(), to.String(), reason, now)
	if err != nil {
		t.Fatal(err)
	}
	return s.Release(t.Context(), p.Identity, item.ID, Handoff{To: to.String(), Reason: reason, Signature: p.sign(t, st, now)})
}

func (p party) accept(t *testing.T, s *Service, id string) (Event, error) {
	t.Helper()
	item, err := s.Get(t.Context(), p.Identity, id)
	if err != nil {
		return Event{}, err
	}
	var seq uint64
	if item.Pending != nil {
		seq = item.Pending.Seq
	}
	now := time.Now().UTC()
	st, err := events.AcceptStatement(id, item.SHA256, item.Custodian, p.String(), seq, now)
	if err != nil {
		t.Fatal(err)
	}
	return s.Accept(t.Context(), p.Identity, id, Handoff{ReleaseSeq: seq, Signature: p.sign(t, st, now)})
}

func (p party) ingest(t *testing.T, s *Service, caseID, body string) Item {
	t.Helper()
	sum := sha256.Sum256([]byte(body))
	item, _, err := s.Ingest(t.Context(), p.Identity, UploadMeta{CaseID: caseID, Kind: KindDocument, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(body))}, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return item
}

// wantErr fails unless err is kind and its message mentions msg.
func wantErr(t *testing.T, err, kind error, msg string) {
	t.Helper()
	if !errors.Is(err, kind) || !strings.Contains(err.Error(), msg) {
		t.Fatalf("error %v, want %v mentioning %q", err, kind, msg)
	}
}

// checkDomainChain asserts an item's history has the given types, gap-free
// sequence numbers and links to each predecessor's log entry.
func checkDomainChain(t *testing.T, s *Service, who identity.Identity, id string, types ...events.Type) []events.Record {
	t.Helper()
	recs, rows, _, err := s.Events(t.Context(), who, id, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, string(r.Type))
	}
	if fmt.Sprint(got) != fmt.Sprint(types) {
		t.Fatalf("history %v, want %v", got, types)
	}
	for i, r := range recs {
		if r.Sequence != uint64(i) {
			t.Errorf("event %d has sequence %d", i, r.Sequence)
		}
		if i == 0 {
			if r.Previous != nil {
				t.Errorf("ingest links to %v", r.Previous)
			}
			continue
		}
		if r.Previous == nil || r.Previous.Index != rows[i-1].LogIndex || r.Previous.LeafHash != rows[i-1].LeafHash {
			t.Errorf("event %d links to %v, predecessor is %d/%x", i, r.Previous, rows[i-1].LogIndex, rows[i-1].LeafHash)
		}
	}
	return recs
}

// TestHandoffRules: only the custodian releases, once at a time; only the
// named recipient accepts, once; only the releaser cancels; the former
// custodian can no longer act as one.
func TestHandoffRules(t *testing.T) {
	s := newDomainService(t, Config{})
	collector := newParty(t, identity.RoleCollector, "dev-collector")
	custodian := newParty(t, identity.RoleCustodian, "dev-custodian")
	court := newParty(t, identity.RoleCourt, "dev-court")
	item := collector.ingest(t, s, "case-handoff", "handoff rules")
	id := item.ID
	if item.Custodian != collector.String() {
		t.Fatalf("custodian after ingest %q", item.Custodian)
	}

	_, err := custodian.release(t, s, item, court, "not mine to give")
	wantErr(t, err, identity.ErrPermissionDenied, "only the current custodian ("+collector.String()+") can release")

	rel, err := collector.release(t, s, item, custodian, "to the lab for analysis")
	if err != nil {
		t.Fatal(err)
	}
	if rel.Record.Sequence != 1 || rel.Record.Type != events.Release {
		t.Fatalf("release event %+v", rel.Record)
	}
	_, err = collector.release(t, s, item, court, "twice")
	wantErr(t, err, ErrFailedPrecondition, "already released to "+custodian.String())

	_, err = court.accept(t, s, id)
	wantErr(t, err, identity.ErrPermissionDenied, "released to "+custodian.String()+", not to you")

	acc, err := custodian.accept(t, s, id)
	if err != nil {
		t.Fatal(err)
	}
	if acc.Record.Counterparty != collector.String() {
		t.Fatalf("accept counterparty %q", acc.Record.Counterparty)
	}
	after, err := s.Get(t.Context(), court.Identity, id)
	if err != nil || after.Custodian != custodian.String() || after.Pending != nil {
		t.Fatalf("after accept: %+v, %v", after, err)
	}
	// A second accept of the same release.
	_, err = custodian.accept(t, s, id)
	wantErr(t, err, ErrFailedPrecondition, "no pending release")

	// The old custodian can no longer act as one, and the error names the
	// rule (the server states it to programs as ERROR_REASON_NOT_CUSTODIAN).
	_, err = collector.release(t, s, item, court, "late")
	wantErr(t, err, identity.ErrPermissionDenied, "only the current custodian")
	var rule *events.RuleError
	if !errors.As(err, &rule) || rule.Rule != events.ErrNotCustodian {
		t.Fatalf("a release by the old custodian: %v does not carry the rule ErrNotCustodian", err)
	}
	if msg := failure.Message(err); msg != "permission denied: only the current custodian ("+custodian.String()+") can release "+id {
		t.Fatalf("the caller reads %q", msg)
	}
	_, err = s.RecordEvent(t.Context(), court.Identity, id, EventInput{Type: events.Analysis, Note: "not mine"})
	wantErr(t, err, identity.ErrPermissionDenied, "only the current custodian")

	// Release and cancel.
	if _, err := custodian.release(t, s, item, court, "for trial"); err != nil {
		t.Fatal(err)
	}
	_, err = s.CancelRelease(t.Context(), collector.Identity, id, Handoff{Reason: "not yours"})
	wantErr(t, err, identity.ErrPermissionDenied, "only the releaser")
	if _, err := s.CancelRelease(t.Context(), custodian.Identity, id, Handoff{Reason: "wrong recipient"}); err != nil {
		t.Fatal(err)
	}
	if _, err := court.accept(t, s, id); err == nil {
		t.Fatal("accepted a cancelled release")
	}
	checkDomainChain(t, s, court.Identity, id, events.Ingest, events.Release, events.Accept, events.Release, events.ReleaseCancelled)
}

// TestExpiredRelease: a release not accepted in time lapses, as an event
// the service performs, and can no longer be accepted.
func TestExpiredRelease(t *testing.T) {
	s := newDomainService(t, Config{ReleaseTTL: 300 * time.Millisecond})
	collector := newParty(t, identity.RoleCollector, "dev-collector")
	custodian := newParty(t, identity.RoleCustodian, "dev-custodian")
	item := collector.ingest(t, s, "case-handoff", "expiring release")
	if _, err := collector.release(t, s, item, custodian, "to the lab"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	_, err := custodian.accept(t, s, item.ID)
	wantErr(t, err, ErrFailedPrecondition, "no pending release")
	recs := checkDomainChain(t, s, custodian.Identity, item.ID, events.Ingest, events.Release, events.ReleaseExpired)
	if recs[2].Performer != "urn:custody:service:custodyd" {
		t.Fatalf("expiry performed by %q", recs[2].Performer)
	}
}

// TestForgedHandoffSignatures: a release is refused, and nothing recorded,
// unless the caller signed this very statement, recently, with the key of
// the certificate it connected with.
func TestForgedHandoffSignatures(t *testing.T) {
	s := newDomainService(t, Config{})
	collector := newParty(t, identity.RoleCollector, "dev-collector")
	custodian := newParty(t, identity.RoleCustodian, "dev-custodian")
	court := newParty(t, identity.RoleCourt, "dev-court")
	stranger := newParty(t, identity.RoleCollector, "stranger")
	item := collector.ingest(t, s, "case-handoff", "forged signatures")
	now := time.Now().UTC()
	statement, err := events.ReleaseStatement(item.ID, item.SHA256, collector.String(), custodian.String(), "to the lab", now)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := events.ReleaseStatement(item.ID, item.SHA256, collector.String(), custodian.String(), "something else", now)
	withCert := func(sig *Signature, cert []byte) *Signature { sig.Certificate = cert; return sig }
	for _, tc := range []struct {
		name    string
		sig     *Signature
		message string
	}{
		{"none", nil, "must be signed"},
		{"someone else's key", withCert(stranger.sign(t, statement, now), collector.Certificate.Raw), "does not verify"},
		{"another statement", collector.sign(t, other, now), "does not verify"},
		{"another party's certificate", court.sign(t, statement, now), "not the one you connected with"},
		{"stale", collector.sign(t, statement, now.Add(-time.Hour)), "from the server's clock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Release(t.Context(), collector.Identity, item.ID, Handoff{To: custodian.String(), Reason: "to the lab", Signature: tc.sig})
			wantErr(t, err, ErrInvalid, tc.message)
		})
	}
	checkDomainChain(t, s, collector.Identity, item.ID, events.Ingest)
}

// TestListPages lists a case in pages of two: every item once, in ingest
// order, the very first item of the log included; a forged page token is
// refused.
func TestListPages(t *testing.T) {
	s := newDomainService(t, Config{})
	collector := newParty(t, identity.RoleCollector, "dev-collector")
	var want []string
	for i := range 5 {
		want = append(want, collector.ingest(t, s, "case-pages", fmt.Sprintf("item %d", i)).ID)
	}
	var got []string
	token := ""
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("more than three pages for five items")
		}
		items, next, err := s.List(t.Context(), collector.Identity, "case-pages", token, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			got = append(got, it.ID)
		}
		if token = next; token == "" {
			break
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("listed %v, want %v", got, want)
	}
	_, _, err := s.List(t.Context(), collector.Identity, "case-pages", "forged", 0)
	wantErr(t, err, ErrInvalid, "page_token")
}
