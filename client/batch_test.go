package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// UploadBatch's unit tests fake only the transport: an EvidenceServiceClient
// that lists and takes uploads in memory. The real server's tests are the
// CLI's (cmd/custody, full suite).

type fakeEvidence struct {
	custodyv1.EvidenceServiceClient
	mu    sync.Mutex
	held  []*custodyv1.Evidence // in ingest order
	sent  []string              // digests of every upload made
	fails map[string]bool       // digests whose upload the server refuses
	// answer, if set, alters the response to an upload the server took.
	answer func(*custodyv1.UploadResponse)
}

func (f *fakeEvidence) hold(sum string) string {
	id := fmt.Sprintf("ev-%026d", len(f.held))
	f.held = append(f.held, &custodyv1.Evidence{EvidenceId: id, Sha256: sum})
	return id
}

func (f *fakeEvidence) ListEvidence(_ context.Context, req *custodyv1.ListEvidenceRequest, _ ...grpc.CallOption) (*custodyv1.ListEvidenceResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Pages of two, so UploadBatch must follow page tokens.
	from := 0
	if req.GetPageToken() != "" {
		fmt.Sscan(req.GetPageToken(), &from)
	}
	end := min(from+2, len(f.held))
	resp := &custodyv1.ListEvidenceResponse{Evidence: slices.Clone(f.held[from:end])}
	if end < len(f.held) {
		resp.NextPageToken = fmt.Sprint(end)
	}
	return resp, nil
}

func (f *fakeEvidence) Upload(context.Context, ...grpc.CallOption) (grpc.ClientStreamingClient[custodyv1.UploadRequest, custodyv1.UploadResponse], error) {
	return &fakeUpload{f: f, h: sha256.New()}, nil
}

type fakeUpload struct {
	grpc.ClientStreamingClient[custodyv1.UploadRequest, custodyv1.UploadResponse]
	f    *fakeEvidence
	meta *custodyv1.UploadMetadata
	h    interface {
		Write([]byte) (int, error)
		Sum([]byte) []byte
	}
}

func (u *fakeUpload) Send(r *custodyv1.UploadRequest) error {
	if m := r.GetMetadata(); m != nil {
		u.meta = m
	}
	u.h.Write(r.GetChunk())
	return nil
}

func (u *fakeUpload) CloseAndRecv() (*custodyv1.UploadResponse, error) {
	sum := hex.EncodeToString(u.h.Sum(nil))
	if sum != u.meta.GetSha256() || u.meta.GetCollectorSignature() == nil {
		return nil, status.Error(codes.InvalidArgument, "bad upload")
	}
	u.f.mu.Lock()
	defer u.f.mu.Unlock()
	if u.f.fails[sum] {
		return nil, status.Error(codes.Unavailable, "storage is down")
	}
	u.f.sent = append(u.f.sent, sum)
	id := u.f.hold(sum)
	resp := &custodyv1.UploadResponse{Evidence: &custodyv1.Evidence{EvidenceId: id, Sha256: sum},
		Receipt: &custodyv1.Receipt{Payload: []byte(`{"evidence_id":"` + id + `"}`), Signature: []byte("sig"), KeyId: "k"}}
	if u.f.answer != nil {
		u.f.answer(resp)
	}
	return resp, nil
}

// fakeClient is a Client whose evidence service is f, with a collector's
// credential (self-signed: nothing here checks the chain).
func fakeClient(t *testing.T, f *fakeEvidence) *Client {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	uri, _ := url.Parse("urn:custody:collector:batch-test")
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour), URIs: []*url.URL{uri}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return &Client{creds: &Credentials{Certificate: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, Leaf: leaf}, evidence: f}
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func writeFiles(t *testing.T, dir string, files map[string]string) []string {
	t.Helper()
	var paths []string
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	slices.Sort(paths)
	return paths
}

func statuses(rs []BatchResult) string {
	var out []string
	for _, r := range rs {
		out = append(out, filepath.Base(r.File)+"="+r.Status)
	}
	return fmt.Sprint(out)
}

func batch(t *testing.T, man *Manifest) Batch {
	return Batch{Metadata: &custodyv1.UploadMetadata{CaseId: "case-b", Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_PHOTO}, Manifest: man, Parallel: 2}
}

// TestUploadBatch: new content is uploaded once (a second file with the
// same bytes is not sent), content the service holds is not sent, and the
// manifest on disk records both with the receipt of the upload made.
func TestUploadBatch(t *testing.T) {
	dir := t.TempDir()
	f := &fakeEvidence{}
	heldID := f.hold(digest("held elsewhere"))
	c := fakeClient(t, f)
	files := writeFiles(t, dir, map[string]string{"a.jpg": "new photo", "b.jpg": "held elsewhere", "c.jpg": "new photo"})
	man, err := LoadManifest(filepath.Join(dir, DefaultManifestName("case-b")))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := c.UploadBatch(t.Context(), files, batch(t, man))
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(rs); got != "[a.jpg=uploaded b.jpg=already-held c.jpg=already-held]" {
		t.Fatalf("statuses %s", got)
	}
	if len(f.sent) != 1 || f.sent[0] != digest("new photo") {
		t.Fatalf("uploads made: %v", f.sent)
	}
	if rs[1].EvidenceID != heldID || rs[2].EvidenceID != rs[0].EvidenceID || rs[0].Receipt["payload"] == nil {
		t.Fatalf("results %+v", rs)
	}
	again, err := LoadManifest(man.Path())
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := again.Lookup("case-b", digest("new photo")); !ok || e.Status != StatusUploaded || e.EvidenceID != rs[0].EvidenceID || e.Receipt == nil {
		t.Fatalf("manifest entry of a.jpg: %+v %v", e, ok)
	}
	if e, ok := again.Lookup("case-b", digest("held elsewhere")); !ok || e.Status != StatusHeld || e.Receipt != nil {
		t.Fatalf("manifest entry of b.jpg: %+v %v", e, ok)
	}
}

// TestUploadBatchResumes: a run whose uploads partly fail reports those
// failed, never uploaded; the next run with the same manifest skips what
// is done and sends only the rest. Content the manifest lists but the
// service no longer holds is not skipped.
func TestUploadBatchResumes(t *testing.T) {
	dir := t.TempDir()
	f := &fakeEvidence{fails: map[string]bool{digest("second"): true}}
	c := fakeClient(t, f)
	files := writeFiles(t, dir, map[string]string{"1.jpg": "first", "2.jpg": "second", "3.jpg": "third"})
	path := filepath.Join(dir, "m.json")
	man, _ := LoadManifest(path)
	rs, err := c.UploadBatch(t.Context(), files, batch(t, man))
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(rs); got != "[1.jpg=uploaded 2.jpg=failed 3.jpg=uploaded]" {
		t.Fatalf("first run: %s", got)
	}
	if rs[1].EvidenceID != "" || rs[1].Receipt != nil || rs[1].Error == "" {
		t.Fatalf("a failed upload reports %+v", rs[1])
	}

	f.fails = nil
	man, _ = LoadManifest(path)
	rs, err = c.UploadBatch(t.Context(), files, batch(t, man))
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(rs); got != "[1.jpg=skipped 2.jpg=uploaded 3.jpg=skipped]" {
		t.Fatalf("second run: %s", got)
	}
	if len(f.sent) != 3 {
		t.Fatalf("%d uploads made, want 3: %v", len(f.sent), f.sent)
	}

	// The service lost "third" (a fresh server): the manifest alone never
	// skips it.
	f.held = slices.DeleteFunc(f.held, func(e *custodyv1.Evidence) bool { return e.GetSha256() == digest("third") })
	man, _ = LoadManifest(path)
	rs, err = c.UploadBatch(t.Context(), files, batch(t, man))
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(rs); got != "[1.jpg=skipped 2.jpg=skipped 3.jpg=uploaded]" {
		t.Fatalf("third run: %s", got)
	}
}

// TestUploadBatchListFails: if the case cannot be listed nothing is sent
// and the results are nil.
func TestUploadBatchListFails(t *testing.T) {
	dir := t.TempDir()
	c := fakeClient(t, nil)
	c.evidence = listFails{}
	man, _ := LoadManifest(filepath.Join(dir, "m.json"))
	rs, err := c.UploadBatch(t.Context(), writeFiles(t, dir, map[string]string{"a": "a"}), batch(t, man))
	if rs != nil || status.Code(err) != codes.PermissionDenied {
		t.Fatalf("UploadBatch = %v, %v", rs, err)
	}
}

type listFails struct {
	custodyv1.EvidenceServiceClient
}

func (listFails) ListEvidence(context.Context, *custodyv1.ListEvidenceRequest, ...grpc.CallOption) (*custodyv1.ListEvidenceResponse, error) {
	return nil, status.Error(codes.PermissionDenied, "no")
}

func TestExpandFiles(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "sub", ".hidden"), 0o755)
	writeFiles(t, dir, map[string]string{"b.jpg": "b", "sub/a.jpg": "a", ".dot": "x", "sub/.hidden/h.jpg": "h", "custody-manifest-x.json": "{}", "mine.json": "{}"})
	got, err := ExpandFiles([]string{dir}, filepath.Join(dir, "mine.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "b.jpg"), filepath.Join(dir, "sub", "a.jpg")}
	if !slices.Equal(got, want) {
		t.Fatalf("ExpandFiles = %v, want %v", got, want)
	}
}

// TestUploadBatchFailedIsNotRecorded: a file whose upload fails is in no
// manifest on disk, so nothing ever takes it for handed over; the file's
// siblings are.
func TestUploadBatchFailedIsNotRecorded(t *testing.T) {
	dir := t.TempDir()
	f := &fakeEvidence{fails: map[string]bool{digest("refused"): true}}
	c := fakeClient(t, f)
	files := writeFiles(t, dir, map[string]string{"ok.jpg": "fine", "no.jpg": "refused"})
	path := filepath.Join(dir, "m.json")
	man, _ := LoadManifest(path)
	rs, err := c.UploadBatch(t.Context(), files, batch(t, man))
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(rs); got != "[no.jpg=failed ok.jpg=uploaded]" {
		t.Fatalf("statuses %s", got)
	}
	onDisk, err := LoadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := onDisk.Lookup("case-b", digest("refused")); ok {
		t.Fatalf("the failed upload is in the manifest: %+v", e)
	}
	if _, ok := onDisk.Lookup("case-b", digest("fine")); !ok {
		t.Fatal("the upload made is not in the manifest")
	}
	if len(onDisk.entries) != 1 {
		t.Fatalf("manifest entries %v, want only ok.jpg's", onDisk.entries)
	}
}

// TestUploadBatchChangedFile: a file edited since the run that uploaded it
// (same name, other bytes) is new content: it is uploaded again, and the
// manifest keeps both versions, each under its own digest.
func TestUploadBatchChangedFile(t *testing.T) {
	dir := t.TempDir()
	f := &fakeEvidence{}
	c := fakeClient(t, f)
	files := writeFiles(t, dir, map[string]string{"scan.pdf": "version one", "other.pdf": "unchanged"})
	path := filepath.Join(dir, "m.json")
	man, _ := LoadManifest(path)
	if _, err := c.UploadBatch(t.Context(), files, batch(t, man)); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{"scan.pdf": "version two"})
	man, _ = LoadManifest(path)
	rs, err := c.UploadBatch(t.Context(), files, batch(t, man))
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(rs); got != "[other.pdf=skipped scan.pdf=uploaded]" {
		t.Fatalf("second run: %s", got)
	}
	if rs[1].SHA256 != digest("version two") || len(f.sent) != 3 || f.sent[2] != digest("version two") {
		t.Fatalf("second run sent %v, result %+v", f.sent, rs[1])
	}
	onDisk, _ := LoadManifest(path)
	one, ok1 := onDisk.Lookup("case-b", digest("version one"))
	two, ok2 := onDisk.Lookup("case-b", digest("version two"))
	if !ok1 || !ok2 || one.File != two.File || one.EvidenceID == two.EvidenceID {
		t.Fatalf("manifest: %+v %v, %+v %v", one, ok1, two, ok2)
	}
}

// TestUploadBatchConcurrentWorkers: with many workers and more files than
// a periodic save covers, every file is uploaded exactly once and recorded
// exactly once, under the evidence id its own upload returned.
func TestUploadBatchConcurrentWorkers(t *testing.T) {
	dir := t.TempDir()
	f := &fakeEvidence{}
	c := fakeClient(t, f)
	bodies := map[string]string{}
	for i := range 130 {
		bodies[fmt.Sprintf("IMG_%03d.jpg", i)] = fmt.Sprintf("photo %d", i)
	}
	files := writeFiles(t, dir, bodies)
	path := filepath.Join(dir, "m.json")
	man, _ := LoadManifest(path)
	b := batch(t, man)
	b.Parallel = 8
	var mu sync.Mutex
	var hashed, uploaded int64
	b.Progress = func(phase string, _ int, _ int64) (func(int64), func()) {
		return func(n int64) {
			mu.Lock()
			defer mu.Unlock()
			if phase == "hashing" {
				hashed += n
			} else {
				uploaded += n
			}
		}, func() {}
	}
	rs, err := c.UploadBatch(t.Context(), files, b)
	if err != nil {
		t.Fatal(err)
	}
	sent := map[string]int{}
	for _, s := range f.sent {
		sent[s]++
	}
	if len(f.sent) != len(files) || len(sent) != len(files) {
		t.Fatalf("%d uploads of %d digests for %d files", len(f.sent), len(sent), len(files))
	}
	onDisk, err := LoadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(onDisk.entries) != len(files) {
		t.Fatalf("%d manifest entries for %d files", len(onDisk.entries), len(files))
	}
	var total int64
	ids := map[string]bool{}
	for i, r := range rs {
		total += r.Size
		if r.File != files[i] || r.Status != StatusUploaded || ids[r.EvidenceID] {
			t.Fatalf("result %d: %+v", i, r)
		}
		ids[r.EvidenceID] = true
		if e, ok := onDisk.Lookup("case-b", r.SHA256); !ok || e.EvidenceID != r.EvidenceID || e.File != r.File {
			t.Fatalf("manifest entry of %s: %+v %v", r.File, e, ok)
		}
	}
	// Small files are read once, into memory: no hashing phase.
	if hashed != 0 || uploaded != total {
		t.Fatalf("progress: hashed %d, uploaded %d, want 0 and %d", hashed, uploaded, total)
	}
}

// TestUploadBatchNeedsReceipt: an answer that is no proof of the upload
// (no signed receipt, no evidence id, another digest) leaves the file
// failed and out of the manifest, though the bytes were sent.
func TestUploadBatchNeedsReceipt(t *testing.T) {
	for name, spoil := range map[string]func(*custodyv1.UploadResponse){
		"no receipt":     func(r *custodyv1.UploadResponse) { r.Receipt = nil },
		"unsigned":       func(r *custodyv1.UploadResponse) { r.Receipt.Signature = nil },
		"no evidence id": func(r *custodyv1.UploadResponse) { r.Evidence.EvidenceId = "" },
		"other digest":   func(r *custodyv1.UploadResponse) { r.Evidence.Sha256 = digest("something else") },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			f := &fakeEvidence{answer: spoil}
			c := fakeClient(t, f)
			path := filepath.Join(dir, "m.json")
			man, _ := LoadManifest(path)
			rs, err := c.UploadBatch(t.Context(), writeFiles(t, dir, map[string]string{"a.jpg": "photo"}), batch(t, man))
			if err != nil {
				t.Fatal(err)
			}
			if rs[0].Status != StatusFailed || rs[0].EvidenceID != "" || rs[0].Receipt != nil || !strings.Contains(rs[0].Error, "the service answered") {
				t.Fatalf("result %+v", rs[0])
			}
			if onDisk, _ := LoadManifest(path); len(onDisk.entries) != 0 {
				t.Fatalf("manifest %v", onDisk.entries)
			}
		})
	}
}
