package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"google.golang.org/grpc/status"

	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// UploadChunkSize is the size of the chunks Upload sends.
const UploadChunkSize = 1 << 20

// Upload streams size bytes from r as one evidence item. meta.Sha256 must
// be the digest the caller computed at capture (see HashFile); the server
// refuses the item, keeping nothing, if the bytes do not match it.
// progress, if not nil, is called with the bytes sent so far.
func (c *Client) Upload(ctx context.Context, meta *custodyv1.UploadMetadata, r io.Reader, progress func(sent int64)) (*custodyv1.UploadResponse, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.evidence.Upload(ctx)
	if err != nil {
		return nil, err
	}
	if err := stream.Send(&custodyv1.UploadRequest{Payload: &custodyv1.UploadRequest_Metadata{Metadata: meta}}); err != nil {
		return stream.CloseAndRecv()
	}
	buf := make([]byte, UploadChunkSize)
	var sent int64
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			if err := stream.Send(&custodyv1.UploadRequest{Payload: &custodyv1.UploadRequest_Chunk{Chunk: buf[:n]}}); err != nil {
				// The server ended the call; CloseAndRecv says why.
				return stream.CloseAndRecv()
			}
			sent += int64(n)
			if progress != nil {
				progress(sent)
			}
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

// UploadFile hashes a file, signs the capture statement with the caller's
// key (SignCapture), then uploads it with meta (Sha256, SizeBytes and, if
// empty, Filename are filled in), resumably with DefaultRetry from
// ResumableThreshold bytes.
func (c *Client) UploadFile(ctx context.Context, path string, meta *custodyv1.UploadMetadata, progress func(sent int64)) (*custodyv1.UploadResponse, error) {
	// A digest the caller computed at capture is kept: the server checks
	// the bytes against it.
	sum, size := meta.GetSha256(), meta.GetSizeBytes()
	if sum == "" {
		var err error
		if sum, size, err = HashFile(path); err != nil {
			return nil, err
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	meta.Sha256, meta.SizeBytes = sum, size
	if meta.Filename == "" {
		meta.Filename = filepath.Base(path)
	}
	if meta.CollectorSignature == nil {
		if err := c.SignCapture(meta); err != nil {
			return nil, err
		}
	}
	// Special-category data is never staged in clear on the server, so it
	// goes in one stream.
	special := meta.GetSpecialCategory() || meta.GetKind() == custodyv1.EvidenceKind_EVIDENCE_KIND_BIOMETRIC_SEIZURE_RECORD
	if size >= ResumableThreshold && !special {
		return c.UploadResumable(ctx, meta, f, DefaultRetry, progress)
	}
	return c.Upload(ctx, meta, f, progress)
}

// ErrDigestMismatch means downloaded bytes do not match the item's digest.
var ErrDigestMismatch = errors.New("downloaded bytes do not match the recorded SHA-256")

// Download writes an item's exact bytes to w, stating purpose (logged by
// the server as an access). It checks the SHA-256 and size while
// streaming: on a mismatch it returns ErrDigestMismatch, and what was
// written to w must be discarded.
func (c *Client) Download(ctx context.Context, req *custodyv1.DownloadRequest, w io.Writer) (*custodyv1.Evidence, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.evidence.Download(ctx, req)
	if err != nil {
		return nil, err
	}
	first, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	ev := first.GetEvidence()
	if ev == nil {
		return nil, errors.New("download: the server sent no record first")
	}
	h := sha256.New()
	var n int64
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return ev, err
		}
		chunk := msg.GetChunk()
		h.Write(chunk)
		n += int64(len(chunk))
		if _, err := w.Write(chunk); err != nil {
			return ev, err
		}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != ev.GetSha256() || n != ev.GetSizeBytes() {
		return ev, fmt.Errorf("%w: recorded %s (%d bytes), received %s (%d bytes)", ErrDigestMismatch, ev.GetSha256(), ev.GetSizeBytes(), got, n)
	}
	return ev, nil
}

// DownloadFile downloads an item into path: it writes a temporary file
// beside it and renames it into place only when the digest verified.
func (c *Client) DownloadFile(ctx context.Context, req *custodyv1.DownloadRequest, path string) (*custodyv1.Evidence, error) {
	return c.downloadVia(ctx, req, path, os.Rename)
}

// DownloadNewFile is DownloadFile for a file that must not exist yet: it
// never replaces one. If path exists when the verified bytes are ready, it
// is kept, nothing is written, and the error wraps fs.ErrExist.
func (c *Client) DownloadNewFile(ctx context.Context, req *custodyv1.DownloadRequest, path string) (*custodyv1.Evidence, error) {
	if _, err := os.Lstat(path); err == nil {
		return nil, &os.PathError{Op: "download", Path: path, Err: fs.ErrExist}
	}
	return c.downloadVia(ctx, req, path, placeNew)
}

// downloadVia downloads into a temporary file beside path, synced, and
// hands it to place once the digest verified.
func (c *Client) downloadVia(ctx context.Context, req *custodyv1.DownloadRequest, path string, place func(tmp, path string) error) (*custodyv1.Evidence, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".partial-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	ev, err := c.Download(ctx, req, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return ev, err
	}
	return ev, place(tmp.Name(), path)
}

// placeNew gives the file tmp the name path if no file has it, and fails
// with fs.ErrExist, leaving both as they are, if one does. A hard link
// takes the name only if it is free, at once (the caller removes tmp).
func placeNew(tmp, path string) error {
	err := os.Link(tmp, path)
	if err == nil {
		return nil
	}
	if errors.Is(err, fs.ErrExist) {
		return &os.PathError{Op: "download", Path: path, Err: fs.ErrExist}
	}
	// No hard links on this file system: check, then rename.
	if _, serr := os.Lstat(path); serr == nil {
		return &os.PathError{Op: "download", Path: path, Err: fs.ErrExist}
	}
	return os.Rename(tmp, path)
}

// GetEvidence returns an item's record.
func (c *Client) GetEvidence(ctx context.Context, id string) (*custodyv1.Evidence, error) {
	resp, err := c.evidence.GetEvidence(ctx, &custodyv1.GetEvidenceRequest{EvidenceId: id})
	return resp.GetEvidence(), err
}

// ListEvidence returns one page of a case's items.
func (c *Client) ListEvidence(ctx context.Context, req *custodyv1.ListEvidenceRequest) (*custodyv1.ListEvidenceResponse, error) {
	return c.evidence.ListEvidence(ctx, req)
}

// CreateSeizureRecord stores a biometric-data seizure record.
func (c *Client) CreateSeizureRecord(ctx context.Context, req *custodyv1.CreateSeizureRecordRequest) (*custodyv1.CreateSeizureRecordResponse, error) {
	return c.evidence.CreateSeizureRecord(ctx, req)
}

// GetSeizureRecord reads a seizure record (logged as an access).
func (c *Client) GetSeizureRecord(ctx context.Context, req *custodyv1.GetSeizureRecordRequest) (*custodyv1.GetSeizureRecordResponse, error) {
	return c.evidence.GetSeizureRecord(ctx, req)
}
