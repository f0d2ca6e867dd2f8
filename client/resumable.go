package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// UploadID derives a stable id for a resumable upload from who uploads what
// to which case, so that the same upload resumes even after the client
// restarts.
func UploadID(identityURI, caseID, sha256Hex string) string {
	sum := sha256.Sum256([]byte(identityURI + "\n" + caseID + "\n" + sha256Hex))
	return "u-" + hex.EncodeToString(sum[:16])
}

// Retry is how the client retries calls that failed for a reason that may
// pass (UNAVAILABLE, ABORTED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED).
type Retry struct {
	Attempts int           // total tries, at least 1
	Backoff  time.Duration // first wait; doubles up to MaxBackoff
	Max      time.Duration
}

// DefaultRetry suits field links: about two minutes of retries.
var DefaultRetry = Retry{Attempts: 12, Backoff: 250 * time.Millisecond, Max: 15 * time.Second}

// Retryable reports whether err may pass on a later try.
func Retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.Aborted, codes.DeadlineExceeded, codes.ResourceExhausted:
		return true
	}
	return false
}

// wait sleeps for the attempt's backoff or until ctx ends.
func (r Retry) wait(ctx context.Context, attempt int) error {
	d := r.Backoff << attempt
	if d > r.Max || d <= 0 {
		d = r.Max
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// UploadResumable uploads size bytes of src as one item, as a resumable
// session: when the connection drops, the server restarts or the call
// fails for a passing reason, it asks the server how far it got and
// continues from there, up to retry.Attempts tries. meta needs SizeBytes.
//
// If meta states Sha256 (and, signed over it, CollectorSignature), src is
// sent as it is and UploadId defaults to UploadID(...), so rerunning after
// a client restart resumes too.
//
// If meta leaves Sha256 empty, src is read once: it is hashed while it is
// sent, and after the last byte the capture statement is signed
// (SignCapture) and the digest and signature are sent in the
// UploadTrailer. meta must then name UploadId (FileUploadID for a file)
// and carry no CollectorSignature. A session resumed at offset k re-reads
// [0, k) of src to rebuild the digest; if those bytes are no longer what
// the server holds, the server refuses the digest and drops the session,
// and UploadResumable starts again from the first byte, once.
func (c *Client) UploadResumable(ctx context.Context, meta *custodyv1.UploadMetadata, src io.ReaderAt, retry Retry, progress func(sent int64)) (*custodyv1.UploadResponse, error) {
	if meta.GetSha256() == "" {
		if meta.GetUploadId() == "" {
			return nil, errors.New("client: a resumable upload that leaves sha256 to its trailer needs an upload_id (FileUploadID)")
		}
		resp, _, err := c.uploadResumable(ctx, meta, src, nil, retry, progress)
		return resp, err
	}
	meta = proto.Clone(meta).(*custodyv1.UploadMetadata)
	if meta.GetUploadId() == "" {
		me, err := c.identityURI()
		if err != nil {
			return nil, err
		}
		meta.UploadId = UploadID(me, meta.GetCaseId(), meta.GetSha256())
	}
	if retry.Attempts < 1 {
		retry.Attempts = 1
	}
	var lastErr error
	for attempt := 0; attempt < retry.Attempts; attempt++ {
		if attempt > 0 {
			if err := retry.wait(ctx, attempt-1); err != nil {
				return nil, err
			}
		}
		offset, err := c.resumeOffset(ctx, meta.GetUploadId())
		if err != nil {
			if Retryable(err) {
				lastErr = err
				continue
			}
			return nil, err
		}
		m := proto.Clone(meta).(*custodyv1.UploadMetadata)
		m.ResumeOffset = offset
		resp, err := c.Upload(ctx, m, io.NewSectionReader(src, offset, meta.GetSizeBytes()-offset), shift(progress, offset))
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil || !Retryable(err) {
			return nil, err
		}
		lastErr = err
	}
	return nil, lastErr
}

// resumeOffset asks how many bytes of a session the server holds: 0 if it
// has none.
func (c *Client) resumeOffset(ctx context.Context, uploadID string) (int64, error) {
	st, err := c.evidence.GetUploadStatus(ctx, &custodyv1.GetUploadStatusRequest{UploadId: uploadID})
	switch {
	case err == nil:
		return st.GetReceivedBytes(), nil
	case status.Code(err) == codes.NotFound:
		return 0, nil
	}
	return 0, err
}

// shift is progress counted from offset.
func shift(progress func(int64), offset int64) func(int64) {
	if progress == nil {
		return nil
	}
	return func(sent int64) { progress(offset + sent) }
}

// FileUploadID is the id of the resumable session that uploads a file
// whose digest is not known yet (UploadFile): it derives from who uploads
// (identityURI), the item's metadata (case, kind, file name, description,
// capture, size...: everything but the digest, signature, upload id and
// resume offset), and the file as the file system names it: its absolute
// path, size and modification time (to the nanosecond). Running the same
// upload again, also after a client restart, gives the same id and
// resumes; a file that was written to since has another modification time
// and starts a new session. Were the bytes to change while the time stays
// (a clock set back, a tool that restores times), the digest the client
// computes over the file as it is now does not match the bytes the server
// holds: the server refuses it and drops the session, and the client
// starts again from the first byte. Sessions left behind expire on the
// server (after a day by default).
func FileUploadID(identityURI string, meta *custodyv1.UploadMetadata, absPath string, info fs.FileInfo) string {
	m := proto.Clone(meta).(*custodyv1.UploadMetadata)
	m.Sha256, m.CollectorSignature, m.UploadId, m.ResumeOffset = "", nil, "", 0
	m.SizeBytes = info.Size()
	item, _ := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	h := sha256.New()
	fmt.Fprintf(h, "custody-file-upload/1\n%s\n%s\n%d\n%d\n", identityURI, absPath, info.Size(), info.ModTime().UnixNano())
	h.Write(item)
	return "f-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// uploadResumable uploads src as a resumable session whose metadata leaves
// the digest empty (UploadResumable): it hashes while sending, signs the
// capture once the digest is known, and ends with the trailer. f, if not
// nil, is the file src reads, whose Stat was info: it is checked not to
// have changed before anything is signed. It returns the digest sent.
func (c *Client) uploadResumable(ctx context.Context, meta *custodyv1.UploadMetadata, src io.ReaderAt, file *fileState, retry Retry, progress func(sent int64)) (*custodyv1.UploadResponse, string, error) {
	meta = proto.Clone(meta).(*custodyv1.UploadMetadata)
	if meta.CollectorSignature != nil {
		return nil, "", errors.New("client: the collector signature names the digest: with sha256 left to the trailer, it goes in the trailer")
	}
	size := meta.GetSizeBytes()
	if retry.Attempts < 1 {
		retry.Attempts = 1
	}
	var lastErr error
	restarted := false
	for attempt := 0; attempt < retry.Attempts; attempt++ {
		if attempt > 0 && lastErr != nil {
			if err := retry.wait(ctx, attempt-1); err != nil {
				return nil, "", err
			}
		}
		offset, err := c.resumeOffset(ctx, meta.GetUploadId())
		if err != nil {
			if Retryable(err) {
				lastErr = err
				continue
			}
			return nil, "", err
		}
		h := sha256.New()
		if offset > 0 {
			// The server holds [0, offset): hash it again, from the
			// file as it is now.
			if _, err := io.Copy(h, io.NewSectionReader(src, 0, offset)); err != nil {
				return nil, "", fmt.Errorf("reading the evidence: %w", err)
			}
		}
		m := proto.Clone(meta).(*custodyv1.UploadMetadata)
		m.ResumeOffset = offset
		sum := ""
		resp, err := c.send(ctx, m, io.NewSectionReader(src, offset, size-offset), h, func(sent int64) (*custodyv1.UploadTrailer, error) {
			if offset+sent != size {
				return nil, fmt.Errorf("%w: %d bytes read, %d expected", ErrFileChanged, offset+sent, size)
			}
			if file != nil {
				if err := file.unchanged(); err != nil {
					return nil, err
				}
			}
			sum = hex.EncodeToString(h.Sum(nil))
			sig, err := c.signCapture(meta, sum)
			if err != nil {
				return nil, err
			}
			return &custodyv1.UploadTrailer{Sha256: sum, CollectorSignature: sig}, nil
		}, shift(progress, offset))
		if err == nil {
			return resp, sum, nil
		}
		if ctx.Err() != nil || errors.Is(err, ErrFileChanged) {
			return nil, "", err
		}
		if offset > 0 && sum != "" && status.Code(err) == codes.InvalidArgument && !restarted {
			// Refused after the trailer of a resumed session: if the
			// server dropped the session, the bytes it held were not
			// the file's now (a digest mismatch). Start again from the
			// first byte, at once.
			if _, serr := c.evidence.GetUploadStatus(ctx, &custodyv1.GetUploadStatusRequest{UploadId: meta.GetUploadId()}); status.Code(serr) == codes.NotFound {
				restarted, lastErr = true, nil
				attempt--
				continue
			}
		}
		if !Retryable(err) {
			return nil, "", err
		}
		lastErr = err
	}
	return nil, "", lastErr
}
