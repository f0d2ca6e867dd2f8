package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// sessionService fakes the server's resumable sessions as the real one
// keeps them (evidence/resumable.go): every chunk is durable as it
// arrives, a stream resumes at the offset held, a stream whose metadata
// leaves sha256 empty must end with a trailer after the last byte, and a
// digest that does not match the bytes held drops the session.
type sessionService struct {
	*fakeEvidence
	sessions map[string]*fakeSession
	// dropped counts sessions dropped on a digest mismatch.
	dropped int
	// refuse, while not empty, is the answer to the next streams, one each.
	refuse []error
}

type fakeSession struct {
	meta *custodyv1.UploadMetadata
	data []byte
}

func newSessionService() *sessionService {
	return &sessionService{fakeEvidence: &fakeEvidence{}, sessions: map[string]*fakeSession{}}
}

func (s *sessionService) GetUploadStatus(_ context.Context, req *custodyv1.GetUploadStatusRequest, _ ...grpc.CallOption) (*custodyv1.GetUploadStatusResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[req.GetUploadId()]
	if !ok {
		return nil, status.Error(codes.NotFound, "no session")
	}
	return &custodyv1.GetUploadStatusResponse{UploadId: req.GetUploadId(), ReceivedBytes: int64(len(sess.data)), SizeBytes: sess.meta.GetSizeBytes()}, nil
}

func (s *sessionService) Upload(ctx context.Context, _ ...grpc.CallOption) (grpc.ClientStreamingClient[custodyv1.UploadRequest, custodyv1.UploadResponse], error) {
	return &sessionUpload{s: s, ctx: ctx, h: sha256.New()}, nil
}

type sessionUpload struct {
	grpc.ClientStreamingClient[custodyv1.UploadRequest, custodyv1.UploadResponse]
	s       *sessionService
	ctx     context.Context
	meta    *custodyv1.UploadMetadata
	sess    *fakeSession
	trailer *custodyv1.UploadTrailer
	h       io.Writer
	err     error
}

func (u *sessionUpload) Send(r *custodyv1.UploadRequest) error {
	if u.ctx.Err() != nil {
		return io.EOF
	}
	if u.err != nil {
		return io.EOF
	}
	s := u.s
	s.mu.Lock()
	defer s.mu.Unlock()
	switch p := r.GetPayload().(type) {
	case *custodyv1.UploadRequest_Metadata:
		u.meta = p.Metadata
		id := u.meta.GetUploadId()
		if id == "" {
			return nil
		}
		sess, ok := s.sessions[id]
		switch {
		case !ok && u.meta.GetResumeOffset() != 0:
			u.err = status.Error(codes.NotFound, "no session")
		case !ok:
			sess = &fakeSession{meta: u.meta}
			s.sessions[id] = sess
		case int64(len(sess.data)) != u.meta.GetResumeOffset():
			u.err = status.Error(codes.FailedPrecondition, "wrong offset")
		}
		u.sess = sess
	case *custodyv1.UploadRequest_Chunk:
		if u.trailer != nil {
			u.err = status.Error(codes.InvalidArgument, "chunk after the trailer")
		}
		if u.sess != nil {
			u.sess.data = append(u.sess.data, p.Chunk...)
		} else {
			u.h.Write(p.Chunk)
		}
	case *custodyv1.UploadRequest_Trailer:
		if u.meta.GetSha256() != "" || u.meta.GetUploadId() == "" {
			u.err = status.Error(codes.InvalidArgument, "no trailer here")
		}
		u.trailer = p.Trailer
	}
	return nil
}

func (u *sessionUpload) CloseAndRecv() (*custodyv1.UploadResponse, error) {
	if err := u.ctx.Err(); err != nil {
		return nil, status.FromContextError(err).Err()
	}
	if u.err != nil {
		return nil, u.err
	}
	s := u.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.refuse) > 0 {
		err := s.refuse[0]
		s.refuse = s.refuse[1:]
		return nil, err
	}
	var sum string
	var sig *custodyv1.PartySignature
	if u.sess == nil {
		sum, sig = hex.EncodeToString(u.h.(interface{ Sum([]byte) []byte }).Sum(nil)), u.meta.GetCollectorSignature()
		if sum != u.meta.GetSha256() {
			return nil, status.Error(codes.InvalidArgument, "SHA-256 mismatch")
		}
	} else {
		if int64(len(u.sess.data)) < u.meta.GetSizeBytes() {
			if u.trailer != nil {
				return nil, status.Error(codes.InvalidArgument, "trailer before the last byte")
			}
			return nil, status.Error(codes.Aborted, "incomplete")
		}
		want, sig0 := u.meta.GetSha256(), u.meta.GetCollectorSignature()
		if want == "" {
			if u.trailer == nil {
				return nil, status.Error(codes.InvalidArgument, "no trailer")
			}
			want, sig0 = u.trailer.GetSha256(), u.trailer.GetCollectorSignature()
		}
		got := sha256.Sum256(u.sess.data)
		sum, sig = hex.EncodeToString(got[:]), sig0
		if sum != want {
			delete(s.sessions, u.meta.GetUploadId())
			s.dropped++
			return nil, status.Error(codes.InvalidArgument, "SHA-256 mismatch; the session is discarded")
		}
		delete(s.sessions, u.meta.GetUploadId())
	}
	if sig == nil {
		return nil, status.Error(codes.InvalidArgument, "no collector signature")
	}
	s.sent = append(s.sent, sum)
	id := s.hold(sum)
	s.held[len(s.held)-1].SizeBytes = u.meta.GetSizeBytes()
	return &custodyv1.UploadResponse{Evidence: &custodyv1.Evidence{EvidenceId: id, Sha256: sum, SizeBytes: u.meta.GetSizeBytes()},
		Receipt: &custodyv1.Receipt{Payload: []byte(`{"evidence_id":"` + id + `"}`), Signature: []byte("sig"), KeyId: "k"}}, nil
}

// countingFiles makes uploads open files through a wrapper that counts the
// bytes read, and returns the count.
func countingFiles(t *testing.T) *atomic.Int64 {
	var n atomic.Int64
	old := openFile
	openFile = func(path string) (file, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		return &countingFile{File: f, n: &n}, nil
	}
	t.Cleanup(func() { openFile = old })
	return &n
}

type countingFile struct {
	*os.File
	n *atomic.Int64
}

func (f *countingFile) ReadAt(b []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(b, off)
	f.n.Add(int64(n))
	return n, err
}

func (f *countingFile) Read(b []byte) (int, error) {
	n, err := f.File.Read(b)
	f.n.Add(int64(n))
	return n, err
}

func randomFile(t *testing.T, path string, size int, seed byte) []byte {
	t.Helper()
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{seed}).Read(data)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return data
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

const bigFile = ResumableThreshold + 5<<20 + 123

// TestUploadFileReadsOnce: a fresh resumable upload reads every byte of
// the file exactly once, leaves sha256 out of its metadata and sends it,
// with the capture signature, in the trailer; a small file is read once
// into memory.
func TestUploadFileReadsOnce(t *testing.T) {
	read := countingFiles(t)
	s := newSessionService()
	c := fakeClient(t, s.fakeEvidence)
	c.evidence = s
	dir := t.TempDir()
	for _, size := range []int{bigFile, 3 << 20, 0} {
		read.Store(0)
		data := randomFile(t, filepath.Join(dir, "f"), size, 1)
		var last int64
		resp, err := c.UploadFile(t.Context(), filepath.Join(dir, "f"), &custodyv1.UploadMetadata{CaseId: "case-1"}, func(n int64) { last = n })
		if err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		if got := resp.GetEvidence().GetSha256(); got != hexSum(data) {
			t.Fatalf("%d bytes: item %s, want %s", size, got, hexSum(data))
		}
		if read.Load() != int64(size) || last != int64(size) {
			t.Fatalf("%d bytes: read %d, progress %d", size, read.Load(), last)
		}
	}
	if len(s.sessions) != 0 {
		t.Fatalf("sessions left: %d", len(s.sessions))
	}
}

// TestUploadFileResumesAfterKill: an upload stopped mid-file (the client
// killed: its context ends) leaves a session; running it again resumes
// at the server's offset with the same upload id, re-reading only the
// bytes the server holds to rebuild the digest, and ends in one item with
// the file's digest.
func TestUploadFileResumesAfterKill(t *testing.T) {
	read := countingFiles(t)
	s := newSessionService()
	c := fakeClient(t, s.fakeEvidence)
	c.evidence = s
	path := filepath.Join(t.TempDir(), "video.mp4")
	data := randomFile(t, path, bigFile, 2)
	ctx, kill := context.WithCancel(t.Context())
	_, err := c.UploadFile(ctx, path, &custodyv1.UploadMetadata{CaseId: "case-1"}, func(n int64) {
		if n >= 20<<20 {
			kill()
		}
	})
	if status.Code(err) != codes.Canceled {
		t.Fatalf("killed upload: %v", err)
	}
	if len(s.sessions) != 1 || len(s.sent) != 0 {
		t.Fatalf("after the kill: %d sessions, %d items", len(s.sessions), len(s.sent))
	}
	var held int64
	for _, sess := range s.sessions {
		held = int64(len(sess.data))
	}
	if held < 20<<20 || held >= bigFile {
		t.Fatalf("the server holds %d bytes", held)
	}
	read.Store(0)
	var first int64 = -1
	resp, err := c.UploadFile(t.Context(), path, &custodyv1.UploadMetadata{CaseId: "case-1"}, func(n int64) {
		if first < 0 {
			first = n
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetEvidence().GetSha256() != hexSum(data) || len(s.sent) != 1 || len(s.sessions) != 0 {
		t.Fatalf("item %v; %d items, %d sessions", resp.GetEvidence(), len(s.sent), len(s.sessions))
	}
	// [0, held) once for the digest, [held, size) once to send.
	if read.Load() != bigFile {
		t.Fatalf("the resumed upload read %d bytes, want %d", read.Load(), bigFile)
	}
	if first <= held-UploadChunkSize || first > held+UploadChunkSize {
		t.Fatalf("progress resumed at %d, the server held %d", first, held)
	}
}

// TestUploadFileChangedBetweenAttempts: a file whose bytes changed between
// attempts while its size and modification time stayed never becomes an
// item with a wrong digest: the resumed session ends in a digest mismatch,
// the server drops it, and the client uploads the file as it is now from
// the first byte.
func TestUploadFileChangedBetweenAttempts(t *testing.T) {
	s := newSessionService()
	c := fakeClient(t, s.fakeEvidence)
	c.evidence = s
	path := filepath.Join(t.TempDir(), "video.mp4")
	randomFile(t, path, bigFile, 3)
	info, _ := os.Stat(path)
	ctx, kill := context.WithCancel(t.Context())
	c.UploadFile(ctx, path, &custodyv1.UploadMetadata{CaseId: "case-1"}, func(n int64) {
		if n >= 10<<20 {
			kill()
		}
	})
	if len(s.sessions) != 1 {
		t.Fatalf("%d sessions", len(s.sessions))
	}
	// Change the first bytes, which the server holds, and put the time
	// back.
	now := randomFile(t, path, bigFile, 4)
	os.Chtimes(path, info.ModTime(), info.ModTime())
	resp, err := c.UploadFile(t.Context(), path, &custodyv1.UploadMetadata{CaseId: "case-1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetEvidence().GetSha256() != hexSum(now) || s.dropped != 1 || len(s.sent) != 1 || s.sent[0] != hexSum(now) {
		t.Fatalf("item %v, %d sessions dropped, items %v", resp.GetEvidence(), s.dropped, s.sent)
	}
}

// TestUploadFileChangedWhileRead: a file written to while it is sent is
// not signed: the upload fails with ErrFileChanged, no item is made, and
// running again starts a new session (the modification time is part of
// the upload id).
func TestUploadFileChangedWhileRead(t *testing.T) {
	s := newSessionService()
	c := fakeClient(t, s.fakeEvidence)
	c.evidence = s
	path := filepath.Join(t.TempDir(), "video.mp4")
	randomFile(t, path, bigFile, 5)
	once := sync.Once{}
	_, err := c.UploadFile(t.Context(), path, &custodyv1.UploadMetadata{CaseId: "case-1"}, func(n int64) {
		once.Do(func() {
			f, _ := os.OpenFile(path, os.O_WRONLY, 0)
			f.WriteAt([]byte("edited"), 30<<20)
			f.Close()
			later := time.Now().Add(time.Second)
			os.Chtimes(path, later, later)
		})
	})
	if !errors.Is(err, ErrFileChanged) || len(s.sent) != 0 {
		t.Fatalf("UploadFile = %v; items %v", err, s.sent)
	}
	data, _ := os.ReadFile(path)
	resp, err := c.UploadFile(t.Context(), path, &custodyv1.UploadMetadata{CaseId: "case-1"}, nil)
	if err != nil || resp.GetEvidence().GetSha256() != hexSum(data) {
		t.Fatalf("again: %v, %v", resp.GetEvidence(), err)
	}
	if len(s.sessions) != 1 {
		t.Fatalf("%d sessions, want the abandoned one only", len(s.sessions))
	}
}

// TestFileUploadID: the id is stable for the same file and item, and
// differs with the file's path, size, time, the case or the identity; it
// is a valid upload id.
func TestFileUploadID(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a")
	os.WriteFile(path, []byte("abc"), 0o600)
	info, _ := os.Stat(path)
	md := &custodyv1.UploadMetadata{CaseId: "c", Filename: "a", SizeBytes: 3}
	id := FileUploadID("urn:custody:collector:x", md, path, info)
	if len(id) < 8 || len(id) > 64 || id != FileUploadID("urn:custody:collector:x", md, path, info) {
		t.Fatalf("id %q", id)
	}
	signed := &custodyv1.UploadMetadata{CaseId: "c", Filename: "a", SizeBytes: 3, Sha256: "ab", UploadId: "x", ResumeOffset: 7,
		CollectorSignature: &custodyv1.PartySignature{Signature: []byte("s")}}
	if FileUploadID("urn:custody:collector:x", signed, path, info) != id {
		t.Fatal("the digest, signature, upload id or offset changed the id")
	}
	other := []string{
		FileUploadID("urn:custody:collector:y", md, path, info),
		FileUploadID("urn:custody:collector:x", &custodyv1.UploadMetadata{CaseId: "d", Filename: "a", SizeBytes: 3}, path, info),
		FileUploadID("urn:custody:collector:x", md, path+"b", info),
	}
	os.Chtimes(path, info.ModTime().Add(time.Nanosecond), info.ModTime().Add(time.Nanosecond))
	info2, _ := os.Stat(path)
	other = append(other, FileUploadID("urn:custody:collector:x", md, path, info2))
	for i, o := range other {
		if o == id {
			t.Fatalf("variant %d has the same id", i)
		}
	}
}

// TestUploadBatchReadsOnce: a folder of new files, small and resumable, is
// read once: each byte of each file; files of one size with an item of the
// case are hashed first, so the held one is not sent.
func TestUploadBatchReadsOnce(t *testing.T) {
	read := countingFiles(t)
	s := newSessionService()
	c := fakeClient(t, s.fakeEvidence)
	c.evidence = s
	dir := t.TempDir()
	big := randomFile(t, filepath.Join(dir, "a.mp4"), bigFile, 6)
	randomFile(t, filepath.Join(dir, "b.jpg"), 3<<20, 7)
	randomFile(t, filepath.Join(dir, "c.jpg"), 3<<20, 8)
	files := []string{filepath.Join(dir, "a.mp4"), filepath.Join(dir, "b.jpg"), filepath.Join(dir, "c.jpg")}
	man, _ := LoadManifest(filepath.Join(dir, "m.json"))
	rs, err := c.UploadBatch(t.Context(), files, batch(t, man))
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(rs); got != "[a.mp4=uploaded b.jpg=uploaded c.jpg=uploaded]" {
		t.Fatalf("statuses %s", got)
	}
	if want := int64(bigFile + 6<<20); read.Load() != want {
		t.Fatalf("read %d bytes, want %d", read.Load(), want)
	}
	if e, ok := man.Lookup("case-b", hexSum(big)); !ok || e.EvidenceID != rs[0].EvidenceID || e.Receipt == nil {
		t.Fatalf("manifest entry of the big file: %+v %v", e, ok)
	}

	// Again: the manifest and the case hold all three; the big file's
	// size is held, so it is hashed (read once) and skipped.
	read.Store(0)
	man, _ = LoadManifest(filepath.Join(dir, "m.json"))
	rs, err = c.UploadBatch(t.Context(), files, batch(t, man))
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(rs); got != "[a.mp4=skipped b.jpg=skipped c.jpg=skipped]" {
		t.Fatalf("second run: %s", got)
	}
	if len(s.sent) != 3 {
		t.Fatalf("items %d", len(s.sent))
	}

	// A copy of the big file elsewhere (same size) is found held, not sent.
	os.WriteFile(filepath.Join(dir, "copy.mp4"), big, 0o600)
	rs, err = c.UploadBatch(t.Context(), []string{filepath.Join(dir, "copy.mp4")}, batch(t, man))
	if err != nil || rs[0].Status != StatusSkipped && rs[0].Status != StatusHeld || len(s.sent) != 3 {
		t.Fatalf("copy: %+v %v; items %d", rs, err, len(s.sent))
	}
}

// TestUploadBatchResumesBigFile: a batch interrupted in a big file's
// upload finishes it on the next run, resuming the session.
func TestUploadBatchResumesBigFile(t *testing.T) {
	s := newSessionService()
	c := fakeClient(t, s.fakeEvidence)
	c.evidence = s
	dir := t.TempDir()
	big := randomFile(t, filepath.Join(dir, "a.mp4"), bigFile, 9)
	files := []string{filepath.Join(dir, "a.mp4")}
	path := filepath.Join(dir, "m.json")
	man, _ := LoadManifest(path)
	ctx, kill := context.WithCancel(t.Context())
	b := batch(t, man)
	var done int64
	b.Progress = func(string, int, int64) (func(int64), func()) {
		return func(n int64) {
			if done += n; done > 12<<20 {
				kill()
			}
		}, func() {}
	}
	rs, _ := c.UploadBatch(ctx, files, b)
	if rs[0].Status != StatusFailed || len(s.sessions) != 1 {
		t.Fatalf("interrupted run: %+v, %d sessions", rs[0], len(s.sessions))
	}
	man, _ = LoadManifest(path)
	rs, err := c.UploadBatch(t.Context(), files, batch(t, man))
	if err != nil || rs[0].Status != StatusUploaded || rs[0].SHA256 != hexSum(big) || len(s.sent) != 1 || len(s.sessions) != 0 {
		t.Fatalf("second run: %+v %v; items %d, sessions %d", rs[0], err, len(s.sent), len(s.sessions))
	}
	onDisk, _ := LoadManifest(path)
	if e, ok := onDisk.Lookup("case-b", hexSum(big)); !ok || e.EvidenceID != rs[0].EvidenceID {
		t.Fatalf("manifest: %+v %v", e, ok)
	}
}

// TestUploadFileBusy: a one-shot upload the service refused for being busy
// (over the identity's share of streams, at capacity) is sent again from
// memory; any other refusal is returned at once.
func TestUploadFileBusy(t *testing.T) {
	s := newSessionService()
	c := fakeClient(t, s.fakeEvidence)
	c.evidence = s
	path := filepath.Join(t.TempDir(), "IMG.jpg")
	data := randomFile(t, path, 3<<20, 10)
	s.refuse = []error{
		status.Error(codes.ResourceExhausted, "too many concurrent streams: urn:custody:collector:x may have 4 at once; wait for one to finish"),
		status.Error(codes.Unavailable, "the service is at capacity (16 stream calls in progress); retry with backoff"),
	}
	var reported []int64
	resp, err := c.UploadFile(t.Context(), path, &custodyv1.UploadMetadata{CaseId: "case-1"}, func(n int64) { reported = append(reported, n) })
	if err != nil || resp.GetEvidence().GetSha256() != hexSum(data) || len(s.sent) != 1 {
		t.Fatalf("UploadFile = %v, %v; items %d", resp.GetEvidence(), err, len(s.sent))
	}
	for i := 1; i < len(reported); i++ {
		if reported[i] <= reported[i-1] {
			t.Fatalf("progress went back: %v", reported)
		}
	}
	s.refuse = []error{status.Error(codes.ResourceExhausted, "the item is larger than the service takes (2000 bytes)")}
	if _, err := c.UploadFile(t.Context(), path, &custodyv1.UploadMetadata{CaseId: "case-1"}, nil); status.Code(err) != codes.ResourceExhausted || len(s.sent) != 1 {
		t.Fatalf("too large: %v; items %d", err, len(s.sent))
	}
}
