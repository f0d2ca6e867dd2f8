package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// UploadChunkSize is the size of the chunks Upload sends.
const UploadChunkSize = 1 << 20

// chunks are the buffers Upload reads files into, one per stream at a
// time, reused: gRPC copies each message as it sends it.
var chunks = sync.Pool{New: func() any { b := make([]byte, UploadChunkSize); return &b }}

// Upload streams size bytes from r as one evidence item. meta.Sha256 must
// be the digest the caller computed at capture (see HashFile); the server
// refuses the item, keeping nothing, if the bytes do not match it.
// progress, if not nil, is called with the bytes sent so far.
func (c *Client) Upload(ctx context.Context, meta *custodyv1.UploadMetadata, r io.Reader, progress func(sent int64)) (*custodyv1.UploadResponse, error) {
	return c.send(ctx, meta, r, nil, nil, progress)
}

// memory is an item's bytes in hand: send sends them without copying.
type memory []byte

func (m *memory) Read([]byte) (int, error) { return 0, errors.New("client: memory is not read") }

// send streams meta, then the bytes of r in chunks. h, if not nil, hashes
// every byte sent. trailer, if not nil, is called with the number of bytes
// sent once r is exhausted, and what it returns is sent as the stream's
// last message; if it fails the stream is abandoned (a resumable session
// keeps what arrived).
func (c *Client) send(ctx context.Context, meta *custodyv1.UploadMetadata, r io.Reader, h hash.Hash,
	trailer func(sent int64) (*custodyv1.UploadTrailer, error), progress func(sent int64)) (*custodyv1.UploadResponse, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.evidence.Upload(ctx)
	if err != nil {
		return nil, err
	}
	if err := stream.Send(&custodyv1.UploadRequest{Payload: &custodyv1.UploadRequest_Metadata{Metadata: meta}}); err != nil {
		return stream.CloseAndRecv()
	}
	var sent int64
	// sendChunk sends b; false: the server ended the call, and
	// CloseAndRecv says why.
	sendChunk := func(b []byte) bool {
		if h != nil {
			h.Write(b)
		}
		if stream.Send(&custodyv1.UploadRequest{Payload: &custodyv1.UploadRequest_Chunk{Chunk: b}}) != nil {
			return false
		}
		sent += int64(len(b))
		if progress != nil {
			progress(sent)
		}
		return true
	}
	if m, ok := r.(*memory); ok {
		for b := *m; len(b) > 0; {
			n := min(len(b), UploadChunkSize)
			if !sendChunk(b[:n]) {
				return stream.CloseAndRecv()
			}
			b = b[n:]
		}
	} else {
		bp := chunks.Get().(*[]byte)
		defer chunks.Put(bp)
		buf := *bp
		for {
			n, rerr := io.ReadFull(r, buf)
			if n > 0 && !sendChunk(buf[:n]) {
				return stream.CloseAndRecv()
			}
			if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
				break
			}
			if rerr != nil {
				if ctx.Err() != nil {
					return nil, status.FromContextError(ctx.Err()).Err()
				}
				return nil, fmt.Errorf("reading the evidence: %w", rerr)
			}
		}
	}
	if trailer != nil {
		t, err := trailer(sent)
		if err != nil {
			return nil, err
		}
		if err := stream.Send(&custodyv1.UploadRequest{Payload: &custodyv1.UploadRequest_Trailer{Trailer: t}}); err != nil {
			return stream.CloseAndRecv()
		}
	}
	return stream.CloseAndRecv()
}

// HashFile returns the lower-case hex SHA-256 and size of a file.
func HashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// ResumableThreshold is the size from which UploadFile uploads as a
// resumable session. Below it a failed upload simply starts again; above
// it the server stages the bytes so a dropped link costs only what was
// in flight.
const ResumableThreshold = 32 << 20

// InMemoryLimit is the size up to which UploadFile reads a one-shot file
// into memory once, hashes it, signs, and sends it from there. A larger
// one-shot file (special-category data, which is never staged, or a file
// between this and ResumableThreshold) is hashed first and then read again
// to send it. Buffers are reused, so UploadBatch holds at most Parallel of
// them.
const InMemoryLimit = 16 << 20

// ErrFileChanged: the file's size or modification time changed while it
// was read for an upload. Nothing was signed; upload it again.
var ErrFileChanged = errors.New("the file changed while it was read")

// UploadFile uploads a file as one item with meta (SizeBytes and, if
// empty, Filename are filled in), signing the capture statement with the
// caller's key (SignCapture), and reads it once:
//
//   - from ResumableThreshold bytes (and not special-category) it is a
//     resumable session (UploadResumable with DefaultRetry) whose metadata
//     leaves the digest empty: the file is hashed while it is sent, and
//     the digest and capture signature travel in the UploadTrailer. The
//     session's id is FileUploadID, so running again after a client
//     restart resumes it; a resumed session re-reads the bytes the server
//     already holds to rebuild the digest.
//   - up to InMemoryLimit bytes it is read into memory, hashed, signed and
//     sent from there in one stream.
//   - otherwise it is hashed, signed, and read again to send it.
//
// If meta.Sha256 is set (a digest the caller computed at capture) it is
// kept and stated up front, as the server checks the bytes against it; a
// resumable session then has the id UploadID(...) unless meta.UploadId is
// set.
func (c *Client) UploadFile(ctx context.Context, path string, meta *custodyv1.UploadMetadata, progress func(sent int64)) (*custodyv1.UploadResponse, error) {
	resp, _, err := c.uploadFile(ctx, path, meta, progress)
	return resp, err
}

// uploadFile is UploadFile that also returns the digest of what it sent.
func (c *Client) uploadFile(ctx context.Context, path string, meta *custodyv1.UploadMetadata, progress func(sent int64)) (*custodyv1.UploadResponse, string, error) {
	f, err := openFile(path)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, "", err
	}
	if meta.Filename == "" {
		meta.Filename = filepath.Base(path)
	}
	if meta.GetSha256() != "" {
		// A digest the caller computed at capture is kept: the server
		// checks the bytes against it.
		if meta.SizeBytes == 0 {
			meta.SizeBytes = info.Size()
		}
		resp, err := c.uploadStated(ctx, f, meta, progress)
		return resp, meta.GetSha256(), err
	}
	meta.SizeBytes = info.Size()
	switch {
	case info.Size() >= ResumableThreshold && !special(meta):
		if meta.UploadId == "" {
			abs, err := filepath.Abs(path)
			if err != nil {
				return nil, "", err
			}
			me, err := c.identityURI()
			if err != nil {
				return nil, "", err
			}
			meta.UploadId = FileUploadID(me, meta, abs, info)
		}
		return c.uploadResumable(ctx, meta, f, &fileState{f, info}, DefaultRetry, progress)
	case info.Size() <= InMemoryLimit:
		data, release, err := readWhole(f, info)
		if err != nil {
			return nil, "", err
		}
		defer release()
		sum := sha256.Sum256(data)
		meta.Sha256 = hex.EncodeToString(sum[:])
		resp, err := c.uploadMemory(ctx, data, meta, progress)
		return resp, meta.Sha256, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, info.Size())); err != nil {
		return nil, "", err
	}
	if err := unchanged(f, info); err != nil {
		return nil, "", err
	}
	meta.Sha256 = hex.EncodeToString(h.Sum(nil))
	resp, err := c.uploadStated(ctx, f, meta, progress)
	return resp, meta.Sha256, err
}

// file is what an upload reads of a file: an *os.File.
type file interface {
	io.ReaderAt
	Stat() (os.FileInfo, error)
	Name() string
	Close() error
}

// openFile opens the files uploads read (tests count the reads).
var openFile = func(path string) (file, error) { return os.Open(path) }

// special says whether an item is special-category data, which is never
// staged in clear on the server and so goes in one stream.
func special(meta *custodyv1.UploadMetadata) bool {
	return meta.GetSpecialCategory() || meta.GetKind() == custodyv1.EvidenceKind_EVIDENCE_KIND_BIOMETRIC_SEIZURE_RECORD
}

// uploadStated uploads f, whose digest meta states, signing the capture
// unless meta carries a signature: resumably from ResumableThreshold
// bytes.
func (c *Client) uploadStated(ctx context.Context, f file, meta *custodyv1.UploadMetadata, progress func(sent int64)) (*custodyv1.UploadResponse, error) {
	if meta.CollectorSignature == nil {
		if err := c.SignCapture(meta); err != nil {
			return nil, err
		}
	}
	if meta.GetSizeBytes() >= ResumableThreshold && !special(meta) {
		return c.UploadResumable(ctx, meta, f, DefaultRetry, progress)
	}
	return c.oneShot(ctx, meta, func() io.Reader { return io.NewSectionReader(f, 0, meta.GetSizeBytes()) }, progress)
}

// oneShot sends an item in one stream, again while the service refuses
// it as busy (Busy), reading it anew from open().
func (c *Client) oneShot(ctx context.Context, meta *custodyv1.UploadMetadata, open func() io.Reader, progress func(sent int64)) (*custodyv1.UploadResponse, error) {
	// A stream tried again reports progress beyond what was reported.
	var high int64
	once := func(sent int64) {
		if sent > high {
			high = sent
			if progress != nil {
				progress(sent)
			}
		}
	}
	for attempt := 0; ; attempt++ {
		resp, err := c.send(ctx, meta, open(), nil, nil, once)
		if err == nil || !Busy(err) || attempt+1 >= busyRetry.Attempts {
			return resp, err
		}
		if err := busyRetry.wait(ctx, attempt); err != nil {
			return nil, err
		}
	}
}

// uploadMemory signs the capture of data, whose digest meta states, and
// sends it in one stream.
func (c *Client) uploadMemory(ctx context.Context, data []byte, meta *custodyv1.UploadMetadata, progress func(sent int64)) (*custodyv1.UploadResponse, error) {
	if meta.CollectorSignature == nil {
		if err := c.SignCapture(meta); err != nil {
			return nil, err
		}
	}
	m := memory(data)
	return c.oneShot(ctx, meta, func() io.Reader { return &m }, progress)
}

// busyRetry is how a one-shot upload is tried again while the
// service is busy: it refused the stream before reading any of it.
var busyRetry = Retry{Attempts: 40, Backoff: 50 * time.Millisecond, Max: 2 * time.Second}

// Busy reports whether err is the service refusing a call, before doing
// anything, because the caller or everyone has too many calls in progress
// or made too many: a stream over the identity's share (--max-streams-per-
// identity) or the call rate, or the service at capacity. Such a call can
// be made again as it was, also a one-shot upload. The service marks
// these refusals ERROR_REASON_BUSY; their messages are recognised too, for
// services from before the reason.
func Busy(err error) bool {
	if ErrorReason(err) == custodyv1.ErrorReason_ERROR_REASON_BUSY {
		return true
	}
	s, ok := status.FromError(err)
	if !ok {
		return false
	}
	msg := s.Message()
	switch s.Code() {
	case codes.ResourceExhausted:
		return strings.HasPrefix(msg, "too many concurrent streams") || strings.HasPrefix(msg, "rate limit exceeded")
	case codes.Unavailable:
		return strings.HasPrefix(msg, "the service is at capacity")
	}
	return false
}

// wholeFiles are the buffers readWhole reads into, reused.
var wholeFiles sync.Pool

// readWhole reads all of f, whose Stat was info, into a reused buffer, and
// checks the file did not change meanwhile. release gives the buffer back.
func readWhole(f file, info os.FileInfo) (data []byte, release func(), err error) {
	size := int(info.Size())
	var buf []byte
	if bp, ok := wholeFiles.Get().(*[]byte); ok && cap(*bp) >= size {
		buf = (*bp)[:size]
	} else {
		// Round up, so files of about one size share buffers.
		buf = make([]byte, size, (size+(256<<10)-1)&^((256<<10)-1))
	}
	release = func() { wholeFiles.Put(&buf) }
	if _, err := io.ReadFull(io.NewSectionReader(f, 0, int64(size)), buf); err != nil {
		release()
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			err = fmt.Errorf("%s: %w", f.Name(), ErrFileChanged)
		}
		return nil, nil, err
	}
	if err := unchanged(f, info); err != nil {
		release()
		return nil, nil, err
	}
	return buf, release, nil
}

// fileState is an open file and its Stat when the upload began.
type fileState struct {
	f    file
	info os.FileInfo
}

func (s *fileState) unchanged() error { return unchanged(s.f, s.info) }

// unchanged checks that f still has the size and modification time of
// info.
func unchanged(f file, info os.FileInfo) error {
	now, err := f.Stat()
	if err != nil {
		return err
	}
	if now.Size() != info.Size() || !now.ModTime().Equal(info.ModTime()) {
		return fmt.Errorf("%s: %w (%d bytes, modified %s; now %d bytes, modified %s); upload it again",
			f.Name(), ErrFileChanged, info.Size(), info.ModTime().UTC().Format("2006-01-02T15:04:05.000000000Z"), now.Size(), now.ModTime().UTC().Format("2006-01-02T15:04:05.000000000Z"))
	}
	return nil
}
