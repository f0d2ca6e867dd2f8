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

	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

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
