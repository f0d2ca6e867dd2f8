package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
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
// continues from there, up to retry.Attempts tries. meta needs Sha256 and
// SizeBytes; UploadId defaults to UploadID(...), so rerunning after a
// client restart resumes too.
func (c *Client) UploadResumable(ctx context.Context, meta *custodyv1.UploadMetadata, src io.ReaderAt, retry Retry, progress func(sent int64)) (*custodyv1.UploadResponse, error) {
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
		var offset int64
		st, err := c.evidence.GetUploadStatus(ctx, &custodyv1.GetUploadStatusRequest{UploadId: meta.GetUploadId()})
		switch {
		case err == nil:
			offset = st.GetReceivedBytes()
		case status.Code(err) == codes.NotFound:
		case Retryable(err):
			lastErr = err
			continue
		default:
			return nil, err
		}
		m := proto.Clone(meta).(*custodyv1.UploadMetadata)
		m.ResumeOffset = offset
		var shifted func(int64)
		if progress != nil {
			shifted = func(sent int64) { progress(offset + sent) }
		}
		resp, err := c.Upload(ctx, m, io.NewSectionReader(src, offset, meta.GetSizeBytes()-offset), shifted)
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
