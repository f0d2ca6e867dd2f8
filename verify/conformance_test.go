package verify_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody-dev/custody/canonicaljson"
	"github.com/custody-dev/custody/client"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/servertest"
	"github.com/custody-dev/custody/internal/testenv/tsatest"
	"github.com/custody-dev/custody/internal/testenv/witnesstest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
	"github.com/custody-dev/custody/verify"
	"github.com/custody-dev/custody/verify/vectors"
	"github.com/custody-dev/custody/verify/vectors/goverify"
)

// vectorDir is the published conformance set (testdata/verify-vectors).
const vectorDir = "../testdata/verify-vectors"

// runVector verifies one vector with the Go verifier.
func runVector(t *testing.T, set *vectors.Set, v vectors.Vector) *verify.Report {
	t.Helper()
	r, err := goverify.Verify(vectorDir, set, v)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// eventCount is how many events a bundle document holds.
func eventCount(t *testing.T, raw []byte) int {
	t.Helper()
	b, err := verify.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return len(b.Events)
}

// streamForm renders a bundle document in the stream form; cut drops the
// last n event lines.
func streamForm(t *testing.T, raw []byte, edit func(h *verify.StreamHeader, lines [][]byte) [][]byte) []byte {
	t.Helper()
	b, err := verify.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	h := verify.StreamHeader{Format: verify.StreamFormat, Version: verify.StreamVersion, CreatedAt: b.CreatedAt, Evidence: b.Evidence,
		Log: b.Log, Keys: b.Keys, Consistency: b.Consistency, Completeness: b.Completeness, EventCount: uint64(len(b.Events))}
	var lines [][]byte
	for _, ev := range b.Events {
		l, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	if edit != nil {
		lines = edit(&h, lines)
	}
	head, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	out := append(head, '\n')
	for _, l := range lines {
		out = append(append(out, l...), '\n')
	}
	return out
}

// firstFailedStep is the step of the first failed check, "" if none.
func firstFailedStep(r *verify.Report) string {
	if fs := r.Failures(); len(fs) > 0 {
		return fs[0].Step
	}
	return ""
}

func unauthenticatedNames(r *verify.Report) []string {
	var out []string
	for _, f := range r.Unauthenticated {
		out = append(out, f.Name)
	}
	return out
}

// TestConformanceVectors runs every published vector through the Go
// verifier: the outcome, the step that fails first and the fields shown as
// context only must be the expected ones.
func TestConformanceVectors(t *testing.T) {
	set, err := vectors.Load(vectorDir)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range set.Vectors {
		if !inSample(i, v.Name) {
			continue
		}
		r := runVector(t, set, v)
		if string(r.Outcome) != v.Expect.Outcome || firstFailedStep(r) != v.Expect.Step {
			t.Errorf("%s: outcome %s at step %q, want %s at %q; failures %v", v.Name, r.Outcome, firstFailedStep(r), v.Expect.Outcome, v.Expect.Step, r.Failures())
		}
		if v.Expect.Unauthenticated != nil && !slices.Equal(unauthenticatedNames(r), v.Expect.Unauthenticated) {
			t.Errorf("%s: unauthenticated %v, want %v", v.Name, unauthenticatedNames(r), v.Expect.Unauthenticated)
		}
	}
}

// inSample reports whether the i-th vector (name) runs: all of them in the
// full suite; under -short every base bundle and every tenth vector, the same
// ones on every run.
func inSample(i int, name string) bool {
	return !testing.Short() || i%10 == 0 || strings.HasSuffix(name, ": untouched")
}

// TestMutationsCoverEveryField walks every scalar and key of every base
// bundle again and checks the published set holds each variant with the
// outcome the rule gives: every change fails, except a change to a field
// the spec lists as unauthenticated context, which is reported as such.
// No variant may verify with an altered bound field.
func TestMutationsCoverEveryField(t *testing.T) {
	set, err := vectors.Load(vectorDir)
	if err != nil {
		t.Fatal(err)
	}
	published := map[string]vectors.Vector{}
	bases := map[string]vectors.Vector{}
	for _, v := range set.Vectors {
		published[v.Name] = v
		if strings.HasSuffix(v.Name, ": untouched") {
			bases[v.Bundle] = v
		}
	}
	if len(bases) < 5 {
		t.Fatalf("%d base bundles, want at least 5", len(bases))
	}
	for file, base := range bases {
		raw, err := os.ReadFile(filepath.Join(vectorDir, file))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := canonicaljson.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		muts := vectors.Mutations(doc)
		for i, m := range muts {
			name := strings.TrimSuffix(base.Name, "untouched") + m.Name
			p, ok := published[name]
			if !ok {
				t.Errorf("%s: not in the published vectors (regenerate them)", name)
				continue
			}
			want := vectors.ExpectFor(m, base.Expect.Outcome)
			if p.Expect.Outcome != want.Outcome {
				t.Errorf("%s: published outcome %s, the rule says %s", name, p.Expect.Outcome, want.Outcome)
			}
			if !inSample(i, name) {
				continue
			}
			if r := runVector(t, set, p); string(r.Outcome) != want.Outcome {
				t.Errorf("%s: the verifier says %s, the rule %s: %v", name, r.Outcome, want.Outcome, r.Failures())
			}
		}
	}
}

// TestGenerateVectors rebuilds testdata/verify-vectors from a real
// service: CUSTODY_UPDATE_VECTORS=1 go test ./verify -run TestGenerateVectors
func TestGenerateVectors(t *testing.T) {
	if os.Getenv("CUSTODY_UPDATE_VECTORS") == "" {
		t.Skip("set CUSTODY_UPDATE_VECTORS=1 to regenerate the published vectors")
	}
	// Two real witnesses and a real timestamp authority: the bundles'
	// checkpoints are cosigned and timestamped as a deployment's are.
	const origin = "custody.test/log"
	logSKey, logVKey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	wa := witnesstest.Start(t, "witness.test/a", origin, logVKey)
	wb := witnesstest.Start(t, "witness.test/b", origin, logVKey)
	authority := tsatest.Start(t, "Custody Test TSA")
	policyFile := filepath.Join(t.TempDir(), "policy")
	if err := os.WriteFile(policyFile, []byte(fmt.Sprintf("witness A %s %s\nwitness B %s %s\ngroup both all A B\nquorum both\n", wa.VKey, wa.URL, wb.VKey, wb.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	env := servertest.StartT(t, servertest.Options{ReleaseTTL: 3 * time.Second, LogKey: logSKey, WitnessPolicy: policyFile,
		TSA: []string{authority.URL}, TSAChain: []string{authority.ChainFile}})
	ctx := t.Context()
	collector := env.Client(t, identity.RoleCollector)
	custodian := env.Client(t, identity.RoleCustodian)
	court := env.Client(t, identity.RoleCourt)
	auditor := env.Client(t, identity.RoleAuditor)
	const lab = "urn:custody:custodian:dev-custodian"
	const judge = "urn:custody:court:dev-court"

	// README.md stays; everything generated is made anew.
	for _, d := range []string{"bundles", "files", "trust", "raw"} {
		if err := os.RemoveAll(filepath.Join(vectorDir, d)); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(vectorDir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(vectorDir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	upload := func(name string, data []byte, md *custodyv1.UploadMetadata) string {
		sum := sha256.Sum256(data)
		md.Sha256, md.SizeBytes = hex.EncodeToString(sum[:]), int64(len(data))
		must(nil, collector.SignCapture(md))
		up, err := collector.Upload(ctx, md, bytes.NewReader(data), nil)
		if err != nil {
			t.Fatal(err)
		}
		write("files/"+name+".bin", data)
		return up.GetEvidence().GetEvidenceId()
	}
	alt, acc := 41.5, 4.0
	photo := upload("single-photo", []byte("\xff\xd8\xff\xe0 JPEG of the shelled school, north wall "+strings.Repeat("pixels ", 300)), &custodyv1.UploadMetadata{
		CaseId: "ICC-01/22", Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_PHOTO, Filename: "IMG_0001.JPG", Description: "north wall, \"impact\" <crater> & debris",
		Capture: &custodyv1.Capture{CapturedAt: timestamppb.New(time.Date(2022, 3, 16, 10, 4, 5, 120000000, time.UTC)),
			Location: &custodyv1.Location{Description: "Mariupol, drama theatre square", Point: &custodyv1.GeoPoint{Latitude: 47.0951, Longitude: 37.5494, AltitudeM: &alt, AccuracyM: &acc}},
			Device:   &custodyv1.Device{Make: "Google", Model: "Pixel 7"}},
	})
	// The court saves a checkpoint early: the every-event bundle proves
	// the log grew from it.
	var early *custodyv1.GetCheckpointResponse
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		cp, err := court.Checkpoint(ctx)
		if err == nil && cp.GetSize() >= 1 {
			early = cp
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint")
		}
	}
	write("trust/earlier-checkpoint.txt", early.GetCheckpoint())

	doc := upload("handoff", []byte("%PDF-1.7 witness statement W-17 "+strings.Repeat("text ", 400)), &custodyv1.UploadMetadata{
		CaseId: "ICC-01/22", Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_DOCUMENT, Filename: "statement-W17.pdf"})
	must(collector.Release(ctx, doc, lab, "to the lab for analysis"))
	must(custodian.Accept(ctx, doc))
	must(court.Download(ctx, &custodyv1.DownloadRequest{EvidenceId: doc, Purpose: "exhibit review"}, &bytes.Buffer{}))

	video := upload("every-event", []byte("\x00\x00\x00\x18ftypmp42 video of the convoy "+strings.Repeat("frame ", 2000)), &custodyv1.UploadMetadata{
		CaseId: "ICC-01/22", Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_VIDEO, Filename: "VID_0042.MP4"})
	still := upload("derived-still", []byte("\xff\xd8\xff\xe0 still frame 00:01:12 "+strings.Repeat("px ", 200)), &custodyv1.UploadMetadata{
		CaseId: "ICC-01/22", Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_PHOTO, Filename: "still-0112.jpg"})
	must(collector.Release(ctx, video, judge, "sent to the wrong party"))
	must(collector.CancelRelease(ctx, video, "wrong recipient"))
	must(collector.Release(ctx, video, lab, "to the lab"))
	must(custodian.Accept(ctx, video))
	must(custodian.RecordEvent(ctx, &custodyv1.RecordEventRequest{EvidenceId: video, Type: custodyv1.EventType_EVENT_TYPE_ANALYSIS, Note: "frame-by-frame review: no splices", Instrument: &custodyv1.Instrument{Name: "ffprobe", Version: "6.1"},
		Location: &custodyv1.Location{Description: "lab 2", Point: &custodyv1.GeoPoint{Latitude: 52.0705, Longitude: 4.3007}}}))
	must(custodian.RecordEvent(ctx, &custodyv1.RecordEventRequest{EvidenceId: video, Type: custodyv1.EventType_EVENT_TYPE_DERIVATION, Note: "still frame at 00:01:12", RelatedEvidenceId: still, Instrument: &custodyv1.Instrument{Name: "ffmpeg", Version: "6.1"}}))
	must(court.VerifyEvidence(ctx, video))
	must(custodian.RecordEvent(ctx, &custodyv1.RecordEventRequest{EvidenceId: video, Type: custodyv1.EventType_EVENT_TYPE_SUBMISSION_TO_COURT, Note: "exhibit P-12"}))
	must(court.Download(ctx, &custodyv1.DownloadRequest{EvidenceId: video, Purpose: "trial exhibit P-12"}, &bytes.Buffer{}))
	must(custodian.Release(ctx, video, judge, "for the hearing"))
	time.Sleep(3500 * time.Millisecond) // the release lapses unanswered
	must(court.RecordEvent(ctx, &custodyv1.RecordEventRequest{EvidenceId: video, Type: custodyv1.EventType_EVENT_TYPE_ANNOTATION, Note: "release to the court lapsed; the lab keeps it"}))

	record, err := os.ReadFile("../examples/seizure-record.json")
	if err != nil {
		t.Fatal(err)
	}
	var rec custodyv1.SeizureRecord
	if err := protojson.Unmarshal(record, &rec); err != nil {
		t.Fatal(err)
	}
	// The example's record digest is SHA-256("foo").
	att := upload("seizure-attachment", []byte("foo"), &custodyv1.UploadMetadata{CaseId: "ICC-01/22", Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_OTHER, SpecialCategory: true, Filename: "batch-0001.eft"})
	created, err := collector.CreateSeizureRecord(ctx, &custodyv1.CreateSeizureRecordRequest{CaseId: "ICC-01/22", Record: &rec, AttachmentEvidenceIds: []string{att}})
	if err != nil {
		t.Fatal(err)
	}
	seizure := created.GetEvidence().GetEvidenceId()

	keys, err := court.PublicKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	write("trust/log-key.txt", []byte(keys.GetLogVerifierKey()+"\n"))
	write("trust/receipt-key.pem", []byte(keys.GetReceiptPublicKeyPem()))
	caPEM, err := os.ReadFile(env.PKI.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	write("trust/ca.pem", caPEM)
	// The court's policy names the witnesses by key; where they listen
	// is the operator's business.
	write("trust/witness-policy.txt", []byte(fmt.Sprintf("# the witnesses the court trusts, and the quorum it requires\nwitness A %s\nwitness B %s\ngroup both all A B\nquorum both\n", wa.VKey, wb.VKey)))
	chainPEM, err := os.ReadFile(authority.ChainFile)
	if err != nil {
		t.Fatal(err)
	}
	write("trust/tsa-chain.pem", chainPEM)

	set := &vectors.Set{Trust: vectors.Trust{LogKey: "trust/log-key.txt", ReceiptKey: "trust/receipt-key.pem", CA: "trust/ca.pem", EarlierCheckpoint: "trust/earlier-checkpoint.txt",
		Policy: "trust/witness-policy.txt", TSAChain: "trust/tsa-chain.pem"}}
	bundle := func(c *client.Client, id string, from uint64) []byte {
		b, err := c.Bundle(ctx, id, from)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	type base struct {
		name     string
		raw      []byte
		file     string
		earlier  bool
		expected string
	}
	bases := []base{
		{"single-photo", bundle(court, photo, 0), "files/single-photo.bin", false, "verified"},
		{"handoff", bundle(court, doc, 0), "files/handoff.bin", false, "verified"},
		{"every-event", bundle(court, video, early.GetSize()), "files/every-event.bin", true, "verified"},
		{"seizure-court", bundle(court, seizure, 0), "", false, "verified_with_limits"},
		{"seizure-auditor", bundle(auditor, seizure, 0), "", false, "verified_with_limits"},
	}
	addVector := func(v vectors.Vector) {
		r := runVector(t, set, v)
		v.Expect.Step = firstFailedStep(r)
		if v.Expect.Outcome == "" {
			v.Expect.Outcome = string(r.Outcome)
		}
		if string(r.Outcome) != v.Expect.Outcome {
			t.Errorf("%s: the verifier says %s, want %s: %v", v.Name, r.Outcome, v.Expect.Outcome, r.Failures())
		}
		set.Vectors = append(set.Vectors, v)
	}
	for _, b := range bases {
		file := "bundles/" + b.name + ".json"
		write(file, b.raw)
		full := vectors.Vector{Bundle: file, File: b.file, Keys: true, CA: true, EarlierCheckpoint: b.earlier, Policy: true, TSAChain: true}
		with := func(name string, f func(v *vectors.Vector)) {
			v := full
			v.Name = b.name + ": " + name
			f(&v)
			addVector(v)
		}
		with("untouched", func(v *vectors.Vector) {
			v.Expect = vectors.Expect{Outcome: b.expected, Unauthenticated: []string{"created_at", "log.timestamps[].authority"}}
		})
		with("no witness policy given", func(v *vectors.Vector) { v.Policy = false; v.Expect.Outcome = "verified_with_limits" })
		with("no timestamp authority given", func(v *vectors.Vector) { v.TSAChain = false; v.Expect.Outcome = "verified_with_limits" })
		with("timestamps removed", func(v *vectors.Vector) {
			v.Patch = []vectors.Op{{Op: "remove", Path: "/log/timestamps"}}
			v.Expect.Outcome = "verified_with_limits"
		})
		with("a witness cosignature removed", func(v *vectors.Vector) {
			v.Patch = []vectors.Op{{Op: "replace", Path: "/log/checkpoint", Value: dropLine(t, checkpointOf(t, b.raw), "\u2014 witness.test/b ")}}
			v.Expect.Outcome = "failed"
		})
		// A bundle hiding the item's latest event: its map proof names it.
		if n := eventCount(t, b.raw); n > 1 {
			last := fmt.Sprintf("/events/%d", n-1)
			with("the last event cut off", func(v *vectors.Vector) {
				v.Patch = []vectors.Op{{Op: "remove", Path: last}}
				v.Expect.Outcome = "failed"
			})
			with("the last event cut off and the map proof removed", func(v *vectors.Vector) {
				v.Patch = []vectors.Op{{Op: "remove", Path: last}, {Op: "remove", Path: "/completeness"}}
				v.Expect.Outcome = "verified_with_limits"
			})
		}
		with("no keys given", func(v *vectors.Vector) { v.Keys = false; v.Expect.Outcome = "untrusted_keys" })
		with("no CA given", func(v *vectors.Vector) {
			v.CA = false
			v.Expect.Outcome = "verified_with_limits"
			if b.name == "seizure-auditor" {
				v.Expect.Outcome = b.expected // no signature is checked without records
			}
		})
		if b.file != "" {
			with("no file given", func(v *vectors.Vector) { v.File = ""; v.Expect.Outcome = "verified_with_limits" })
			with("another file", func(v *vectors.Vector) { v.File = "files/derived-still.bin"; v.Expect.Outcome = "failed" })
		}
		// Reformatting the spec calls insignificant: indentation and key order.
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, b.raw, "", "  "); err != nil {
			t.Fatal(err)
		}
		write("raw/"+b.name+"-indented.json", pretty.Bytes())
		with("indented", func(v *vectors.Vector) { v.Raw = "raw/" + b.name + "-indented.json"; v.Expect.Outcome = b.expected })
		write("raw/"+b.name+"-keys-reversed.json", reversedKeys(t, b.raw))
		with("keys in reverse order", func(v *vectors.Vector) {
			v.Raw = "raw/" + b.name + "-keys-reversed.json"
			v.Expect.Outcome = b.expected
		})
		// A key twice: a first-wins reader and a last-wins reader would
		// see different digests.
		dup := bytes.Replace(b.raw, []byte(`"evidence": {`), []byte(`"evidence": {"sha256": "`+strings.Repeat("0", 64)+`",`), 1)
		if bytes.Equal(dup, b.raw) {
			t.Fatalf("%s: the served bundle is not formatted as expected", b.name)
		}
		write("raw/"+b.name+"-duplicate-key.json", dup)
		with("evidence.sha256 twice", func(v *vectors.Vector) { v.Raw = "raw/" + b.name + "-duplicate-key.json"; v.Expect.Outcome = "failed" })

		// The stream form states the same, and is checked the same way.
		for _, sv := range []struct {
			name, outcome string
			edit          func(h *verify.StreamHeader, lines [][]byte) [][]byte
		}{
			{"stream form", b.expected, nil},
			{"stream form, last event cut off", "failed", func(h *verify.StreamHeader, l [][]byte) [][]byte { return l[:len(l)-1] }},
			{"stream form, header counting one event less", "failed", func(h *verify.StreamHeader, l [][]byte) [][]byte { h.EventCount--; return l }},
			{"stream form, first two events swapped", "failed", func(h *verify.StreamHeader, l [][]byte) [][]byte {
				if len(l) < 2 {
					return l[:0]
				}
				l[0], l[1] = l[1], l[0]
				return l
			}},
		} {
			file := "raw/" + b.name + "-" + strings.NewReplacer(" ", "-", ",", "").Replace(sv.name) + ".jsonl"
			write(file, streamForm(t, b.raw, sv.edit))
			with(sv.name, func(v *vectors.Vector) { v.Raw = file; v.Expect.Outcome = sv.outcome })
		}

		doc, err := canonicaljson.Parse(b.raw)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range vectors.Mutations(doc) {
			v := full
			v.Name = b.name + ": " + m.Name
			v.Patch = m.Patch
			v.Expect = vectors.ExpectFor(m, b.expected)
			addVector(v)
		}
	}
	// Withheld forged: an ordinary item's records stripped and withheld set.
	strip := []vectors.Op{{Op: "remove", Path: "/evidence/metadata"}, {Op: "add", Path: "/evidence/withheld", Value: true}}
	var hb struct{ Events []json.RawMessage }
	json.Unmarshal(bases[1].raw, &hb)
	for i := range hb.Events {
		strip = append(strip, vectors.Op{Op: "remove", Path: "/events/" + itoa(i) + "/record"})
	}
	addVector(vectors.Vector{Name: "handoff: records stripped and withheld set", Bundle: "bundles/handoff.json", File: "files/handoff.bin", Keys: true, CA: true, Patch: strip, Expect: vectors.Expect{Outcome: "failed"}})

	out, err := json.MarshalIndent(set, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	write("vectors.json", append(out, '\n'))
	t.Logf("%d vectors", len(set.Vectors))
}

func itoa(i int) string { return strconv.Itoa(i) }

// reversedKeys re-encodes a JSON document with every object's keys in
// reverse order (a reformatting the spec calls insignificant).
func reversedKeys(t *testing.T, raw []byte) []byte {
	doc, err := canonicaljson.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	var enc func(v any)
	enc = func(v any) {
		switch v := v.(type) {
		case canonicaljson.Object:
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			sort.Sort(sort.Reverse(sort.StringSlice(keys)))
			buf.WriteByte('{')
			for i, k := range keys {
				if i > 0 {
					buf.WriteString(", ")
				}
				kb, _ := json.Marshal(k)
				buf.Write(kb)
				buf.WriteString(": ")
				enc(v[k])
			}
			buf.WriteByte('}')
		case []any:
			buf.WriteByte('[')
			for i, e := range v {
				if i > 0 {
					buf.WriteByte(',')
				}
				enc(e)
			}
			buf.WriteByte(']')
		default:
			b, _ := json.Marshal(v)
			buf.Write(b)
		}
	}
	enc(doc)
	return buf.Bytes()
}

// checkpointOf is a bundle's log.checkpoint.
func checkpointOf(t *testing.T, raw []byte) string {
	t.Helper()
	var b struct {
		Log struct {
			Checkpoint string `json:"checkpoint"`
		} `json:"log"`
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatal(err)
	}
	return b.Log.Checkpoint
}

// dropLine removes the line starting with prefix.
func dropLine(t *testing.T, text, prefix string) string {
	t.Helper()
	var out []string
	for _, l := range strings.SplitAfter(text, "\n") {
		if !strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	if got := strings.Join(out, ""); got != text {
		return got
	}
	t.Fatalf("no line starting %q in %q", prefix, text)
	return ""
}
