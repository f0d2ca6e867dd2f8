package evidence

import (
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/custody-dev/custody/certs"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/receipt"
)

// Resumable uploads are staged under Config.UploadDir: <id>.part holds the
// bytes received so far and <id>.json the session (owner, metadata, bytes
// durably received, SHA-256 state at that point). A session survives a
// dropped connection, a client restart and a server restart; when the last
// byte arrives the whole digest is checked as always and the staged file is
// ingested like any upload. Sessions expire after Config.UploadTTL and their
// bytes are removed.

// ErrIncomplete: a resumable upload stream ended before the last byte; the
// caller resumes from the offset the message names.
var ErrIncomplete = errors.New("upload incomplete")

// DefaultUploadTTL is how long an unfinished upload session is kept.
const DefaultUploadTTL = 24 * time.Hour

// stageSync is how often received bytes are made durable.
const stageSync = 8 << 20

type session struct {
	Owner     string          `json:"owner"`
	Meta      json.RawMessage `json:"meta"`
	Received  int64           `json:"received"`
	HashState []byte          `json:"hash_state"`
	ExpiresAt time.Time       `json:"expires_at"`
}

// UploadStatus is how far a resumable upload got.
type UploadStatus struct {
	ID        string
	Received  int64
	Size      int64
	ExpiresAt time.Time
}

func checkUploadID(id string) error {
	if len(id) < 8 || len(id) > 64 {
		return fmt.Errorf("%w: upload_id must be 8 to 64 characters", ErrInvalid)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%w: upload_id %q has %q; use letters, digits, - and _", ErrInvalid, id, c)
		}
	}
	return nil
}

func (s *Service) sessionPaths(id string) (string, string) {
	return filepath.Join(s.cfg.UploadDir, id+".json"), filepath.Join(s.cfg.UploadDir, id+".part")
}

func (s *Service) loadSession(id string) (*session, error) {
	meta, _ := s.sessionPaths(id)
	b, err := os.ReadFile(meta)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var sess session
	if err := json.Unmarshal(b, &sess); err != nil {
		return nil, fmt.Errorf("upload session %s: %w", id, err)
	}
	if s.now().After(sess.ExpiresAt) {
		s.dropSession(id)
		return nil, nil
	}
	return &sess, nil
}

func (s *Service) saveSession(id string, sess *session) error {
	meta, _ := s.sessionPaths(id)
	b, err := json.Marshal(sess)
	if err != nil {
		return err
	}
	return certs.WriteFileAtomic(meta, b, 0o600)
}

func (s *Service) dropSession(id string) {
	meta, part := s.sessionPaths(id)
	os.Remove(part)
	os.Remove(meta)
}

// sameItem compares two sessions' metadata, signatures aside.
func sameItem(a, b []byte) bool {
	var ma, mb UploadMeta
	if json.Unmarshal(a, &ma) != nil || json.Unmarshal(b, &mb) != nil {
		return false
	}
	ma.CollectorSignature, mb.CollectorSignature = nil, nil
	ja, _ := json.Marshal(ma)
	jb, _ := json.Marshal(mb)
	return string(ja) == string(jb)
}

// UploadStatusOf reports a session's progress to its owner.
func (s *Service) UploadStatusOf(ctx context.Context, who identity.Identity, id string) (UploadStatus, error) {
	if err := checkUploadID(id); err != nil {
		return UploadStatus{}, err
	}
	unlock, err := s.lockItem(ctx, "upload:"+id)
	if err != nil {
		return UploadStatus{}, err
	}
	defer unlock()
	sess, err := s.loadSession(id)
	if err != nil {
		return UploadStatus{}, err
	}
	if sess == nil {
		return UploadStatus{}, fmt.Errorf("%w: no upload session %s (never started, finished or expired)", ErrNotFound, id)
	}
	if sess.Owner != who.String() {
		return UploadStatus{}, fmt.Errorf("%w: upload %s belongs to another identity", identity.ErrPermissionDenied, id)
	}
	var meta UploadMeta
	json.Unmarshal(sess.Meta, &meta)
	return UploadStatus{ID: id, Received: sess.Received, Size: meta.Size, ExpiresAt: sess.ExpiresAt}, nil
}

// IngestResumable adds the bytes in body, starting at offset, to upload
// session id (creating it at offset 0), and ingests the item once the last
// byte arrived. A stream that ends early keeps what arrived and returns
// ErrIncomplete naming the offset to resume from.
func (s *Service) IngestResumable(ctx context.Context, who identity.Identity, id string, meta UploadMeta, offset int64, body io.Reader) (Item, receipt.Receipt, error) {
	if err := checkUploadID(id); err != nil {
		return Item{}, receipt.Receipt{}, err
	}
	if err := meta.Validate(s.cfg.MaxUploadBytes); err != nil {
		return Item{}, receipt.Receipt{}, err
	}
	if meta.Special || meta.Kind == KindBiometricSeizureRecord || s.cfg.EncryptAll {
		// Staged bytes are plaintext on local disk; data that must only
		// ever be stored encrypted is not staged.
		return Item{}, receipt.Receipt{}, fmt.Errorf("%w: special-category (and, on this service, all encrypted) items are uploaded in one stream, not as resumable sessions: leave upload_id empty", ErrInvalid)
	}
	unlock, err := s.lockItem(ctx, "upload:"+id)
	if err != nil {
		return Item{}, receipt.Receipt{}, err
	}
	defer unlock()
	sess, err := s.loadSession(id)
	if err != nil {
		return Item{}, receipt.Receipt{}, err
	}
	// The session is about the item; a collector signature is made again
	// by each attempt and checked when the upload completes.
	sessionMeta := meta
	sessionMeta.CollectorSignature = nil
	metaJSON, _ := json.Marshal(sessionMeta)
	h := sha256.New()
	if sess == nil {
		if offset != 0 {
			return Item{}, receipt.Receipt{}, fmt.Errorf("%w: no upload session %s to resume; start it at offset 0", ErrNotFound, id)
		}
		if err := os.MkdirAll(s.cfg.UploadDir, 0o700); err != nil {
			return Item{}, receipt.Receipt{}, err
		}
		sess = &session{Owner: who.String(), Meta: metaJSON, ExpiresAt: s.now().Add(s.uploadTTL())}
	} else {
		switch {
		case sess.Owner != who.String():
			return Item{}, receipt.Receipt{}, fmt.Errorf("%w: upload %s belongs to another identity", identity.ErrPermissionDenied, id)
		case !sameItem(sess.Meta, metaJSON):
			return Item{}, receipt.Receipt{}, fmt.Errorf("%w: the metadata differs from the one upload %s started with", ErrInvalid, id)
		case offset != sess.Received:
			return Item{}, receipt.Receipt{}, fmt.Errorf("%w: the server holds %d bytes of upload %s; resume from offset %d", ErrFailedPrecondition, sess.Received, id, sess.Received)
		}
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(sess.HashState); err != nil {
			return Item{}, receipt.Receipt{}, err
		}
	}
	_, partPath := s.sessionPaths(id)
	part, err := os.OpenFile(partPath, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return Item{}, receipt.Receipt{}, err
	}
	// Bytes past the last durable point (a crash mid-write) are dropped.
	if err := part.Truncate(sess.Received); err == nil {
		_, err = part.Seek(sess.Received, io.SeekStart)
	}
	if err != nil {
		part.Close()
		return Item{}, receipt.Receipt{}, err
	}
	streamErr := s.receiveInto(part, h, sess, id, meta.Size, body)
	if cerr := part.Close(); streamErr == nil {
		streamErr = cerr
	}
	if streamErr != nil {
		if ctx.Err() != nil {
			return Item{}, receipt.Receipt{}, fmt.Errorf("%w: upload %s paused at %d of %d bytes; resume from offset %d", ErrIncomplete, id, sess.Received, meta.Size, sess.Received)
		}
		return Item{}, receipt.Receipt{}, streamErr
	}
	if sess.Received < meta.Size {
		return Item{}, receipt.Receipt{}, fmt.Errorf("%w: upload %s has %d of %d bytes; resume from offset %d", ErrIncomplete, id, sess.Received, meta.Size, sess.Received)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != meta.SHA256 {
		s.dropSession(id)
		return Item{}, receipt.Receipt{}, fmt.Errorf("%w: declared %s, the bytes of upload %s hash to %s; the session is discarded", ErrDigestMismatch, meta.SHA256, id, got)
	}
	staged, err := os.Open(partPath)
	if err != nil {
		return Item{}, receipt.Receipt{}, err
	}
	defer staged.Close()
	item, rcpt, err := s.Ingest(ctx, who, meta, staged)
	if err == nil || errors.Is(err, ErrInvalid) {
		s.dropSession(id)
	}
	return item, rcpt, err
}

// receiveInto appends body to part, hashing, making it durable and
// recording the session every stageSync bytes and at the end.
func (s *Service) receiveInto(part *os.File, h hash.Hash, sess *session, id string, size int64, body io.Reader) error {
	buf := make([]byte, 256<<10)
	var unsynced int64
	persist := func() error {
		if err := part.Sync(); err != nil {
			return err
		}
		state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			return err
		}
		sess.HashState = state
		unsynced = 0
		return s.saveSession(id, sess)
	}
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if sess.Received+int64(n) > size {
				persist()
				return fmt.Errorf("%w: upload %s carries more than the %d bytes declared", ErrTooLarge, id, size)
			}
			if _, err := part.Write(buf[:n]); err != nil {
				return err
			}
			h.Write(buf[:n])
			sess.Received += int64(n)
			unsynced += int64(n)
			if unsynced >= stageSync {
				if err := persist(); err != nil {
					return err
				}
			}
		}
		if rerr != nil {
			if perr := persist(); perr != nil {
				return perr
			}
			if errors.Is(rerr, io.EOF) {
				return nil
			}
			return rerr
		}
	}
}

func (s *Service) uploadTTL() time.Duration {
	if s.cfg.UploadTTL > 0 {
		return s.cfg.UploadTTL
	}
	return DefaultUploadTTL
}

// ExpireUploads removes sessions past their time and returns how many.
func (s *Service) ExpireUploads() int {
	files, _ := filepath.Glob(filepath.Join(s.cfg.UploadDir, "*.json"))
	n := 0
	for _, f := range files {
		id := strings.TrimSuffix(filepath.Base(f), ".json")
		unlock, err := s.lockItem(context.Background(), "upload:"+id)
		if err != nil {
			continue
		}
		// loadSession drops an expired session and reports none.
		if sess, err := s.loadSession(id); err == nil && sess == nil {
			n++
		}
		unlock()
	}
	return n
}
