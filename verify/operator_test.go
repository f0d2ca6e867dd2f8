package verify_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody-dev/custody/canonicaljson"
	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/historymap"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/servertest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
	"github.com/custody-dev/custody/verify"
)

// operator is a dishonest operator: it holds the real log key and receipt
// key and re-issues a bundle over a log of its own making, every entry,
// proof, checkpoint and receipt validly signed. What it cannot forge are
// the parties' own signatures, and the custody rules.
type operator struct {
	logSigner  note.Signer
	receiptKey *ecdsa.PrivateKey
	origin     string
}

func newOperator(t *testing.T, dataDir, origin string) operator {
	t.Helper()
	skey, err := os.ReadFile(filepath.Join(dataDir, "keys", "log-key"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		t.Fatal(err)
	}
	kp, err := os.ReadFile(filepath.Join(dataDir, "keys", "receipt-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(kp)
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return operator{logSigner: signer, receiptKey: k.(*ecdsa.PrivateKey), origin: origin}
}

// reissue lets edit change the records and the bundle's statements, then
// rebuilds a log holding just this chain and re-signs everything.
func (o operator) reissue(t *testing.T, b *verify.Bundle, edit func(recs []events.Record, ingestReceipt canonicaljson.Object)) {
	t.Helper()
	recs := make([]events.Record, len(b.Events))
	receipts := make([]canonicaljson.Object, len(b.Events))
	for i, ev := range b.Events {
		r, err := events.ParseRecord([]byte(ev.Record))
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = r
		if receipts[i], err = events.ParseCanonical([]byte(ev.Receipt.Payload)); err != nil {
			t.Fatal(err)
		}
	}
	edit(recs, receipts[0])
	leaves := make([][]byte, len(recs))
	for i := range recs {
		if i > 0 {
			var prev [32]byte
			copy(prev[:], leaves[i-1])
			recs[i].Previous = &events.Link{Index: uint64(i - 1), LeafHash: prev}
		}
		entry, err := recs[i].Entry()
		if err != nil {
			t.Fatal(err)
		}
		canon, _ := recs[i].Canonical()
		leaves[i] = rfc6962.DefaultHasher.HashLeaf(entry)
		b.Events[i].Entry, b.Events[i].Record, b.Events[i].LogIndex = string(entry), string(canon), uint64(i)
	}
	// The operator's log also commits to its own history map, as the
	// service's does, so the re-issue proves itself complete.
	builder := historymap.NewBuilder()
	for i := range b.Events {
		if err := builder.Add(uint64(i), []byte(b.Events[i].Entry)); err != nil {
			t.Fatal(err)
		}
	}
	m, err := builder.Map(uint64(len(b.Events)))
	if err != nil {
		t.Fatal(err)
	}
	commitment := historymap.EntryFor(m)
	mapLeaf, mapProof, err := m.Proof(b.Evidence.EvidenceID)
	if err != nil {
		t.Fatal(err)
	}
	leaves = append(leaves, rfc6962.DefaultHasher.HashLeaf(commitment))
	b.Completeness = &verify.Completeness{Entry: string(commitment), LogIndex: uint64(len(recs)), InclusionProof: auditPath(len(recs), leaves),
		MapLeaf: string(mapLeaf), MapIndex: mapProof.Index, MapProof: mapProof.Hashes}
	size := uint64(len(leaves))
	for i := range recs {
		b.Events[i].InclusionProof = auditPath(i, leaves)
		p := receipts[i]
		p["log_index"], p["leaf_hash"], p["time"] = int64(i), hex.EncodeToString(leaves[i]), events.FormatTime(recs[i].RecordedAt)
		payload, err := canonicaljson.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		digest := sha256.Sum256(payload)
		sig, err := ecdsa.SignASN1(rand.Reader, o.receiptKey, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		b.Events[i].Receipt.Payload, b.Events[i].Receipt.Signature = string(payload), sig
	}
	body := o.origin + "\n" + itoa(int(size)) + "\n" + base64.StdEncoding.EncodeToString(treeHash(leaves)) + "\n"
	signed, err := note.Sign(&note.Note{Text: body}, o.logSigner)
	if err != nil {
		t.Fatal(err)
	}
	b.Log.Checkpoint, b.Log.TreeSize, b.Consistency = string(signed), size, nil
}

// treeHash and auditPath are RFC 9162 §2.1.1 and §2.1.3.1.
func treeHash(leaves [][]byte) []byte {
	if len(leaves) == 1 {
		return leaves[0]
	}
	k := split(len(leaves))
	return rfc6962.DefaultHasher.HashChildren(treeHash(leaves[:k]), treeHash(leaves[k:]))
}

func auditPath(m int, leaves [][]byte) [][]byte {
	if len(leaves) == 1 {
		return nil
	}
	k := split(len(leaves))
	if m < k {
		return append(auditPath(m, leaves[:k]), treeHash(leaves[k:]))
	}
	return append(auditPath(m-k, leaves[k:]), treeHash(leaves[:k]))
}

func split(n int) int {
	k := 1
	for k*2 < n {
		k *= 2
	}
	return k
}

// TestDishonestOperator: an operator holding every service key re-issues
// an item's history. An honest re-issue verifies (so the forging is
// sound); a changed case (against the collector's own capture signature),
// or an event the custody rules forbid, does not.
func TestDishonestOperator(t *testing.T) {
	env := servertest.StartT(t)
	ctx := t.Context()
	collector := env.Client(t, identity.RoleCollector)
	custodian := env.Client(t, identity.RoleCustodian)
	court := env.Client(t, identity.RoleCourt)
	file := []byte("photo of the filtration point " + strings.Repeat("px ", 500))
	sum := sha256.Sum256(file)
	md := &custodyv1.UploadMetadata{CaseId: "ICC-01/22", Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_PHOTO, Sha256: hex.EncodeToString(sum[:]), SizeBytes: int64(len(file)),
		Capture: &custodyv1.Capture{CapturedAt: timestamppb.New(time.Date(2022, 4, 2, 8, 0, 0, 0, time.UTC))}}
	if err := collector.SignCapture(md); err != nil {
		t.Fatal(err)
	}
	up, err := collector.Upload(ctx, md, bytes.NewReader(file), nil)
	if err != nil {
		t.Fatal(err)
	}
	id := up.GetEvidence().GetEvidenceId()
	if _, err := collector.Release(ctx, id, "urn:custody:custodian:dev-custodian", "to the lab"); err != nil {
		t.Fatal(err)
	}
	if _, err := custodian.Accept(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := custodian.RecordEvent(ctx, &custodyv1.RecordEventRequest{EvidenceId: id, Type: custodyv1.EventType_EVENT_TYPE_ANALYSIS, Note: "ELA"}); err != nil {
		t.Fatal(err)
	}
	raw, err := court.Bundle(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := court.PublicKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	op := newOperator(t, env.DataDir, keys.GetLogOrigin())
	opts := func() verify.Options {
		return verify.Options{File: bytes.NewReader(file), LogVerifierKey: keys.GetLogVerifierKey(), ReceiptKeyPEM: []byte(keys.GetReceiptPublicKeyPem()), Roots: env.RootCAs(t)}
	}
	fresh := func() *verify.Bundle {
		b, err := verify.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name       string
		edit       func(b *verify.Bundle, recs []events.Record, ingest canonicaljson.Object)
		step, want string // "" = verifies
	}{
		{"honest re-issue", func(*verify.Bundle, []events.Record, canonicaljson.Object) {}, "", ""},
		{"case changed everywhere but in the collector's signature", func(b *verify.Bundle, recs []events.Record, ingest canonicaljson.Object) {
			recs[0].Details["case_id"], ingest["case_id"], b.Evidence.CaseID = "ICC-02/05", "ICC-02/05", "ICC-02/05"
		}, "custody", "the collector signed case ICC-01/22, the ingest record states case ICC-02/05"},
		{"the analysis attributed to the court", func(b *verify.Bundle, recs []events.Record, ingest canonicaljson.Object) {
			recs[3].Performer = "urn:custody:court:dev-court"
		}, "custody", "only the current custodian (urn:custody:custodian:dev-custodian) records analysis"},
		{"the release made to someone else", func(b *verify.Bundle, recs []events.Record, ingest canonicaljson.Object) {
			recs[1].Counterparty = "urn:custody:custodian:other-lab"
		}, "custody", "is released to urn:custody:custodian:other-lab, not to you"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := fresh()
			op.reissue(t, b, func(recs []events.Record, ingest canonicaljson.Object) { tc.edit(b, recs, ingest) })
			// Through JSON, as a court receives it.
			out, err := json.Marshal(b)
			if err != nil {
				t.Fatal(err)
			}
			r := verify.VerifyBytes(out, opts())
			if tc.want == "" {
				// This service has no witnesses or timestamp authority:
				// only those two checks are left unmade.
				if r.Outcome != verify.OutcomeVerifiedWithLimits || !onlyIndependentChecksMissing(r) {
					t.Fatalf("outcome %s: %v; not checked %v", r.Outcome, r.Failures(), r.NotChecked)
				}
				return
			}
			fs := r.Failures()
			if r.Outcome != verify.OutcomeFailed || len(fs) == 0 || fs[0].Step != tc.step || !strings.Contains(fs[0].Detail, tc.want) {
				t.Fatalf("outcome %s, failures %v; want step %s with %q", r.Outcome, fs, tc.step, tc.want)
			}
		})
	}
}

// onlyIndependentChecksMissing: what was not checked is exactly the split
// view (no witness policy) and time (no timestamp authority).
func onlyIndependentChecksMissing(r *verify.Report) bool {
	if len(r.NotChecked) != 2 {
		return false
	}
	var split, time bool
	for _, n := range r.NotChecked {
		split = split || strings.HasPrefix(n, "split view:")
		time = time || strings.HasPrefix(n, "time:")
	}
	return split && time
}
