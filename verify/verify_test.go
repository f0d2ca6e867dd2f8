package verify_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/custody-dev/custody/certs"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/servertest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
	"github.com/custody-dev/custody/verify"
)

// scenario is a real service's bundle for an item with a full history,
// and what a court would hold beside it.
type scenario struct {
	raw        []byte
	file       []byte
	logKey     string
	receiptKey []byte
	oldCP      []byte // a checkpoint saved early on
	roots      *x509Pool
	logSigner  note.Signer
	origin     string
}

type x509Pool = struct{ pem []byte }

func newScenario(t *testing.T) *scenario {
	t.Helper()
	env := servertest.StartT(t)
	ctx := t.Context()
	collector := env.Client(t, identity.RoleCollector)
	custodian := env.Client(t, identity.RoleCustodian)
	court := env.Client(t, identity.RoleCourt)
	file := []byte("video of the strike on the market, 2022-03-16 " + strings.Repeat("frame ", 1000))
	sum := sha256.Sum256(file)
	up, err := collector.Upload(ctx, &custodyv1.UploadMetadata{CaseId: "case-v", Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_VIDEO, Sha256: hex.EncodeToString(sum[:]), SizeBytes: int64(len(file))}, bytes.NewReader(file), nil)
	if err != nil {
		t.Fatal(err)
	}
	id := up.GetEvidence().GetEvidenceId()
	// The court saves a checkpoint early.
	var old *custodyv1.GetCheckpointResponse
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if old, err = court.Checkpoint(ctx); err == nil && old.GetSize() >= 1 {
			break
		}
	}
	if _, err := collector.Release(ctx, id, "urn:custody:custodian:dev-custodian", "to the lab"); err != nil {
		t.Fatal(err)
	}
	if _, err := custodian.Accept(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := custodian.RecordEvent(ctx, &custodyv1.RecordEventRequest{EvidenceId: id, Type: custodyv1.EventType_EVENT_TYPE_ANALYSIS, Note: "frame-by-frame review, no edits found", Instrument: &custodyv1.Instrument{Name: "ffprobe", Version: "6.1"}}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := court.Download(ctx, &custodyv1.DownloadRequest{EvidenceId: id, Purpose: "exhibit check"}, &buf); err != nil {
		t.Fatal(err)
	}
	raw, err := court.Bundle(ctx, id, old.GetSize())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := court.PublicKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	skey, err := os.ReadFile(filepath.Join(env.DataDir, "keys", "log-key"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(env.PKI.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	return &scenario{raw: raw, file: file, logKey: keys.GetLogVerifierKey(), receiptKey: []byte(keys.GetReceiptPublicKeyPem()),
		oldCP: old.GetCheckpoint(), roots: &x509Pool{pem: caPEM}, logSigner: signer, origin: keys.GetLogOrigin()}
}

func (s *scenario) options(t *testing.T) verify.Options {
	pool, err := certs.ParseCertificatesPEM(s.roots.pem)
	if err != nil {
		t.Fatal(err)
	}
	roots := newPool(pool)
	return verify.Options{File: bytes.NewReader(s.file), LogVerifierKey: s.logKey, ReceiptKeyPEM: s.receiptKey, OldCheckpoint: s.oldCP, Roots: roots}
}

func (s *scenario) bundle(t *testing.T) *verify.Bundle {
	b, err := verify.Parse(s.raw)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUntouchedBundleVerifies(t *testing.T) {
	s := newScenario(t)
	if os.Getenv("CUSTODY_UPDATE_TESTDATA") != "" {
		// Refresh the fuzz seed: go test ./verify -run Untouched with the variable set.
		if err := os.WriteFile("testdata/bundle.json", s.raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b := s.bundle(t)
	if len(b.Events) != 5 {
		t.Fatalf("bundle has %d events, want ingest, release, accept, analysis, access", len(b.Events))
	}
	r := verify.Verify(b, s.options(t))
	// The scenario's service has no witnesses and no timestamp authority
	// (the conformance vectors have both): everything else is checked.
	if !r.OK || r.Outcome != verify.OutcomeVerifiedWithLimits || !onlyIndependentChecksMissing(r) {
		t.Fatalf("the untouched bundle: outcome %s, failures %+v, not checked %v", r.Outcome, r.Failures(), r.NotChecked)
	}
	if len(r.TrustedFromBundle) != 0 {
		t.Fatalf("trusted from the bundle despite keys given: %v", r.TrustedFromBundle)
	}
	// The bundle carries the history map's proof: completeness is
	// checked and stated (what the map cannot cover is under CannotProve).
	complete := false
	for _, f := range r.Facts {
		complete = complete || f.Name == "history complete"
	}
	if !complete {
		t.Fatalf("no completeness stated: facts %v, cannot prove %q", r.Facts, r.CannotProve)
	}
	// Without trusted keys every check passes, but the outcome is not a
	// success, and says where trust came from.
	r = verify.Verify(b, verify.Options{})
	if !r.OK || r.Success() || r.Outcome != verify.OutcomeUntrustedKeys || len(r.TrustedFromBundle) != 2 {
		t.Fatalf("without keys: ok=%v outcome=%s trusted-from-bundle=%v failures=%v", r.OK, r.Outcome, r.TrustedFromBundle, r.Failures())
	}
	// Keys but no CA and no file: verified, with those two limits named
	// (beside split view and time).
	o := s.options(t)
	o.Roots, o.File = nil, nil
	if r = verify.Verify(b, o); r.Outcome != verify.OutcomeVerifiedWithLimits || len(r.NotChecked) != 4 {
		t.Fatalf("without CA and file: outcome %s, not checked %v", r.Outcome, r.NotChecked)
	}
}

// TestTamperingIsNamed changes one thing at a time and expects the report
// to fail, naming it.
func TestTamperingIsNamed(t *testing.T) {
	s := newScenario(t)
	otherSigner := func() note.Signer {
		skey, _, _ := note.GenerateKey(rand.Reader, s.origin)
		sg, _ := note.NewSigner(skey)
		return sg
	}()
	resign := func(b *verify.Bundle, signer note.Signer, body string) {
		signed, err := note.Sign(&note.Note{Text: body}, signer)
		if err != nil {
			t.Fatal(err)
		}
		b.Log.Checkpoint = string(signed)
	}
	body := func(b *verify.Bundle) string {
		i := strings.Index(b.Log.Checkpoint, "\n\n")
		return b.Log.Checkpoint[:i+1]
	}
	tests := []struct {
		name   string
		change func(b *verify.Bundle, o *verify.Options)
		check  string // the failing check's name contains this
		detail string // its detail contains this
	}{
		{"a byte of the evidence file", func(b *verify.Bundle, o *verify.Options) {
			f := bytes.Clone(s.file)
			f[100] ^= 1
			o.File = bytes.NewReader(f)
		}, "evidence file", "the file hashes to"},
		{"an event record edited", func(b *verify.Bundle, o *verify.Options) {
			b.Events[3].Record = strings.Replace(b.Events[3].Record, "no edits found", "edits found!!", 1)
		}, "event #3 (log", "the record was changed"},
		{"an event removed", func(b *verify.Bundle, o *verify.Options) {
			b.Events = append(b.Events[:2], b.Events[3:]...)
		}, "custody chain", "missing, duplicated or out of order"},
		{"events reordered", func(b *verify.Bundle, o *verify.Options) {
			b.Events[2], b.Events[3] = b.Events[3], b.Events[2]
		}, "custody chain", "out of order"},
		{"an event duplicated", func(b *verify.Bundle, o *verify.Options) {
			b.Events = append(b.Events[:3], b.Events[2:]...)
		}, "custody chain", "appears twice"},
		{"the checkpoint re-signed by another key", func(b *verify.Bundle, o *verify.Options) {
			resign(b, otherSigner, body(b))
		}, "checkpoint signature", "does not verify under the log key"},
		{"a forged checkpoint root", func(b *verify.Bundle, o *verify.Options) {
			lines := strings.Split(body(b), "\n")
			lines[2] = base64.StdEncoding.EncodeToString(make([]byte, 32))
			b.Log.Checkpoint = strings.Join(lines, "\n") + b.Log.Checkpoint[len(body(b)):]
		}, "checkpoint signature", "does not verify"},
		{"a proof for another tree size", func(b *verify.Bundle, o *verify.Options) {
			b.Events[1].InclusionProof = b.Events[1].InclusionProof[:len(b.Events[1].InclusionProof)-1]
		}, "event #1 (log", "does not lead to the checkpoint's root"},
		{"a receipt forged", func(b *verify.Bundle, o *verify.Options) {
			b.Events[0].Receipt.Payload = strings.Replace(b.Events[0].Receipt.Payload, `"size":`, `"size":1`, 1)
		}, "event #0 (log", "receipt's signature does not verify"},
		{"an old checkpoint from a forked log", func(b *verify.Bundle, o *verify.Options) {
			// The operator's own key signs a different history of the
			// same size as the court's saved checkpoint.
			lines := strings.Split(string(s.oldCP), "\n")
			lines[2] = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
			forked, err := note.Sign(&note.Note{Text: strings.Join(lines[:3], "\n") + "\n"}, s.logSigner)
			if err != nil {
				t.Fatal(err)
			}
			o.OldCheckpoint = forked
		}, "consistency with the earlier checkpoint", "not a prefix"},
		{"the accept missing", func(b *verify.Bundle, o *verify.Options) {
			b.Events = append(b.Events[:2], b.Events[3:]...)
		}, "custody rules", "only the current custodian (urn:custody:collector:dev-collector) records analysis"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := s.bundle(t)
			o := s.options(t)
			tc.change(b, &o)
			r := verify.Verify(b, o)
			if r.OK {
				t.Fatal("the tampered bundle verifies")
			}
			for _, f := range r.Failures() {
				if strings.Contains(f.Name, tc.check) && strings.Contains(f.Detail, tc.detail) {
					return
				}
			}
			t.Fatalf("no failure names %q with %q; failures: %+v", tc.check, tc.detail, r.Failures())
		})
	}
}

func TestParseRefuses(t *testing.T) {
	for name, in := range map[string]string{
		"not JSON":       "{",
		"other format":   `{"format":"x","v":1}`,
		"future version": `{"format":"custody-bundle","v":2}`,
		"no events":      `{"format":"custody-bundle","v":1,"log":{"checkpoint":"x"}}`,
	} {
		if _, err := verify.Parse([]byte(in)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

// FuzzParseAndVerify feeds arbitrary bytes to the bundle parser and the
// verifier: neither may panic, and nothing malformed may verify.
func FuzzParseAndVerify(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.json")
	for _, p := range seeds {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Add([]byte(`{"format":"custody-bundle","v":1,"events":[{"seq":0,"entry":"{}"}],"log":{"checkpoint":"x"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := verify.Parse(data)
		if err != nil {
			return
		}
		r := verify.Verify(b, verify.Options{})
		if r.OK && !json.Valid(data) {
			t.Fatal("invalid JSON verified")
		}
	})
}

func newPool(cs []*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range cs {
		p.AddCert(c)
	}
	return p
}
