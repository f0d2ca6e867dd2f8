package evidence

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"time"

	"github.com/custody-dev/custody/failure"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/receipt"
	"github.com/custody-dev/custody/storage"
)

// Resumable uploads keep what arrived as pieces: pending (never sealed)
// objects in the evidence store, written every stagePiece bytes and when a
// stream ends. The session (owner, metadata, pieces, SHA-256 state after
// the last piece) is in UploadSessions. Both are shared by replicas, so a
// session survives a dropped connection, a client restart, a server
// restart, and continues on whichever replica the next chunk reaches. When
// the last byte arrives the whole digest is checked as always and the
// pieces, read back in order, are ingested like any upload; then they are
// discarded. Sessions expire after Config.UploadTTL and their pieces are
// discarded.

// ErrIncomplete: a resumable upload stream ended before the last byte; the
// caller resumes from the offset the message names.
var ErrIncomplete error = failure.New(failure.Incomplete, "upload incomplete")

// DefaultUploadTTL is how long an unfinished upload session is kept.
const DefaultUploadTTL = 24 * time.Hour

// stagePiece is how many received bytes make one durable piece.
const stagePiece = 8 << 20

type session struct {
	Owner     string          `json:"owner"`
	Meta      json.RawMessage `json:"meta"`
	Received  int64           `json:"received"`
	HashState []byte          `json:"hash_state"`
	ExpiresAt time.Time       `json:"expires_at"`
	Pieces    []piece         `json:"pieces"`
}

// piece is one stored run of bytes: a pending object.
type piece struct {
	Object  storage.Object `json:"object"`
	Pending string         `json:"pending"`
}

func (p piece) object() storage.Object { return p.Object.WithPending(p.Pending) }

// Trailer ends a resumable upload stream whose metadata left SHA256 empty:
// the digest a client computed while sending, and the collector signature
// over the capture statement, which names the digest and so can only be
// made once it is known.
type Trailer struct {
	SHA256             string
	CollectorSignature *Signature
}

// TrailerBody is a body that may end with a Trailer. Trailer reports it
// once Read has returned io.EOF, nil if the stream ended without one. A
// body that is not a TrailerBody never carries one.
type TrailerBody interface {
	io.Reader
	Trailer() *Trailer
}

// UploadStatus is how far a resumable upload got.
type UploadStatus struct {
	ID        string
	Received  int64
	Size      int64
	ExpiresAt time.Time
}

// sessionKey is where an identity's upload id keeps its session (and the
// name of its lock): upload ids are chosen by clients, often
// deterministically (client.UploadID), so each identity has its own
// namespace of them. Another identity's session under the same id is
// unrelated, unreachable, and indistinguishable from none.
func sessionKey(who identity.Identity, uploadID string) string {
	sum := sha256.Sum256([]byte(who.String() + "\x00" + uploadID))
	return "s-" + hex.EncodeToString(sum[:])
}

// errNoSession is the one answer for an upload id the caller has no
// session under, whether or not another identity has one.
func errNoSession(uploadID string) error {
	return fmt.Errorf("%w: you have no upload session %s (never started, finished or expired); start it at offset 0", ErrNotFound, uploadID)
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

func (s *Service) loadSession(ctx context.Context, id string) (*session, error) {
	b, err := s.sessions.Load(ctx, id)
	if err != nil || b == nil {
		return nil, err
	}
	var sess session
	if err := json.Unmarshal(b, &sess); err != nil {
		return nil, fmt.Errorf("upload session %s: %w", id, err)
	}
	if s.now().After(sess.ExpiresAt) {
		s.dropSession(ctx, id, &sess)
		return nil, nil
	}
	return &sess, nil
}

func (s *Service) saveSession(ctx context.Context, id string, sess *session) error {
	b, err := json.Marshal(sess)
	if err != nil {
		return err
	}
	return s.sessions.Save(ctx, id, b, sess.ExpiresAt)
}

// dropSession discards a session's pieces and the session (id is its
// key, sessionKey).
func (s *Service) dropSession(ctx context.Context, id string, sess *session) {
	ctx = context.WithoutCancel(ctx)
	for _, p := range sess.Pieces {
		if err := s.store.Discard(ctx, p.object()); err != nil && !errors.Is(err, storage.ErrNotFound) {
			s.logger.WarnContext(ctx, "discarding a piece of an upload session", "upload_id", id, "err", err)
		}
	}
	if err := s.sessions.Delete(ctx, id); err != nil {
		s.logger.WarnContext(ctx, "deleting an upload session", "upload_id", id, "err", err)
	}
}

// sameItem compares two sessions' metadata, signatures aside.
func sameItem(a, b []byte) bool {
	var ma, mb UploadMeta
	if json.Unmarshal(a, &ma) != nil || json.Unmarshal(b, &mb) != nil {
		return false
	}
	ma.CollectorSignature, mb.CollectorSignature = nil, nil
	// A digest stated by one stream and left to the trailer by another
	// is the same item; both are checked against the bytes.
	if ma.SHA256 == "" || mb.SHA256 == "" {
		ma.SHA256, mb.SHA256 = "", ""
	}
	ja, _ := json.Marshal(ma)
	jb, _ := json.Marshal(mb)
	return string(ja) == string(jb)
}

// UploadStatusOf reports a session's progress to its owner.
func (s *Service) UploadStatusOf(ctx context.Context, who identity.Identity, id string) (UploadStatus, error) {
	if err := checkUploadID(id); err != nil {
		return UploadStatus{}, err
	}
	key := sessionKey(who, id)
	unlock, err := s.lockItem(ctx, "upload:"+key)
	if err != nil {
		return UploadStatus{}, err
	}
	defer unlock()
	sess, err := s.loadSession(ctx, key)
	if err != nil {
		return UploadStatus{}, classifyStorage(err)
	}
	if sess == nil || sess.Owner != who.String() {
		return UploadStatus{}, errNoSession(id)
	}
	var meta UploadMeta
	json.Unmarshal(sess.Meta, &meta)
	return UploadStatus{ID: id, Received: sess.Received, Size: meta.Size, ExpiresAt: sess.ExpiresAt}, nil
}

// IngestResumable adds the bytes in body, starting at offset, to upload
// session id (creating it at offset 0), and ingests the item once the last
// byte arrived. A stream that ends early keeps what arrived and returns
// ErrIncomplete naming the offset to resume from.
//
// meta.SHA256 may be empty: then the stream that brings the last byte ends
// with a Trailer (body is a TrailerBody) carrying the digest, and the
// collector signature if any. A stream whose meta states the digest sends
// no trailer, and neither does one that stops early. Each of these
// mistakes, and a malformed trailer digest, is ErrInvalid naming it; the
// bytes that arrived stay in the session.
func (s *Service) IngestResumable(ctx context.Context, who identity.Identity, id string, meta UploadMeta, offset int64, body io.Reader) (Item, receipt.Receipt, error) {
	if err := checkUploadID(id); err != nil {
		return Item{}, receipt.Receipt{}, err
	}
	if err := meta.validate(s.cfg.MaxUploadBytes, false); err != nil {
		return Item{}, receipt.Receipt{}, err
	}
	if meta.Special || meta.Kind == KindBiometricSeizureRecord || s.cfg.EncryptAll {
		// Staged pieces are plaintext pending objects; data that must only
		// ever be stored encrypted is not staged.
		return Item{}, receipt.Receipt{}, fmt.Errorf("%w: special-category (and, on this service, all encrypted) items are uploaded in one stream, not as resumable sessions: leave upload_id empty", ErrInvalid)
	}
	key := sessionKey(who, id)
	unlock, err := s.lockItem(ctx, "upload:"+key)
	if err != nil {
		return Item{}, receipt.Receipt{}, err
	}
	defer unlock()
	sess, err := s.loadSession(ctx, key)
	if err != nil {
		return Item{}, receipt.Receipt{}, classifyStorage(err)
	}
	if sess != nil && sess.Owner != who.String() {
		// Only a hash collision could get here: treat it as no session.
		return Item{}, receipt.Receipt{}, errNoSession(id)
	}
	// The session is about the item; a collector signature is made again
	// by each attempt and checked when the upload completes.
	sessionMeta := meta
	sessionMeta.CollectorSignature = nil
	metaJSON, _ := json.Marshal(sessionMeta)
	h := sha256.New()
	if sess == nil {
		if offset != 0 {
			return Item{}, receipt.Receipt{}, errNoSession(id)
		}
		sess = &session{Owner: who.String(), Meta: metaJSON, ExpiresAt: s.now().Add(s.uploadTTL())}
	} else {
		switch {
		case !sameItem(sess.Meta, metaJSON):
			return Item{}, receipt.Receipt{}, fmt.Errorf("%w: the metadata differs from the one upload %s started with", ErrInvalid, id)
		case offset != sess.Received:
			return Item{}, receipt.Receipt{}, fmt.Errorf("%w: the server holds %d bytes of upload %s; resume from offset %d", ErrFailedPrecondition, sess.Received, id, sess.Received)
		}
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(sess.HashState); err != nil {
			return Item{}, receipt.Receipt{}, err
		}
	}
	streamErr := s.receivePieces(ctx, h, sess, key, id, meta.Size, body)
	if streamErr != nil {
		if ctx.Err() != nil {
			return Item{}, receipt.Receipt{}, fmt.Errorf("%w: upload %s paused at %d of %d bytes; resume from offset %d", ErrIncomplete, id, sess.Received, meta.Size, sess.Received)
		}
		return Item{}, receipt.Receipt{}, classifyStorage(streamErr)
	}
	var trailer *Trailer
	if tb, ok := body.(TrailerBody); ok {
		trailer = tb.Trailer()
	}
	if trailer != nil && meta.SHA256 != "" {
		return Item{}, receipt.Receipt{}, fmt.Errorf("%w: upload %s states sha256 in its metadata and must not send a trailer (the server holds %d of %d bytes)", ErrInvalid, id, sess.Received, meta.Size)
	}
	if sess.Received < meta.Size {
		if trailer != nil {
			return Item{}, receipt.Receipt{}, fmt.Errorf("%w: upload %s sent its trailer after %d of %d bytes; a trailer follows the last byte only; resume from offset %d", ErrInvalid, id, sess.Received, meta.Size, sess.Received)
		}
		return Item{}, receipt.Receipt{}, fmt.Errorf("%w: upload %s has %d of %d bytes; resume from offset %d", ErrIncomplete, id, sess.Received, meta.Size, sess.Received)
	}
	if meta.SHA256 == "" {
		if err := applyTrailer(&meta, trailer, id, sess.Received); err != nil {
			return Item{}, receipt.Receipt{}, err
		}
	}
	got := hex.EncodeToString(h.Sum(nil))
	for _, want := range []string{meta.SHA256, sessionDigest(sess.Meta)} {
		if want != "" && got != want {
			s.dropSession(ctx, key, sess)
			return Item{}, receipt.Receipt{}, fmt.Errorf("%w: declared %s, the bytes of upload %s hash to %s; the session is discarded", ErrDigestMismatch, want, id, got)
		}
	}
	pieces := s.pieceReader(ctx, sess)
	item, rcpt, err := s.Ingest(ctx, who, meta, pieces)
	pieces.Close()
	if err == nil || errors.Is(err, ErrInvalid) {
		s.dropSession(ctx, key, sess)
	}
	return item, rcpt, err
}

// applyTrailer takes the digest and collector signature of a resumable
// upload whose metadata left the digest empty from its trailer.
func applyTrailer(meta *UploadMeta, t *Trailer, id string, received int64) error {
	if t == nil {
		return fmt.Errorf("%w: upload %s: all %d bytes arrived but no trailer followed with their sha256 (the metadata left it empty); send it in an UploadTrailer after the last chunk, or resume from offset %d with one", ErrInvalid, id, received, received)
	}
	sha := strings.ToLower(t.SHA256)
	if CheckSHA256(sha) != nil {
		return fmt.Errorf("%w: upload %s: the trailer's sha256 must be 64 hex characters, got %q", ErrInvalid, id, truncate(t.SHA256, 70))
	}
	if t.CollectorSignature != nil && meta.CollectorSignature != nil {
		return fmt.Errorf("%w: upload %s carries a collector signature in its metadata and in its trailer; send it in the trailer only", ErrInvalid, id)
	}
	meta.SHA256 = sha
	if t.CollectorSignature != nil {
		meta.CollectorSignature = t.CollectorSignature
	}
	return nil
}

// sessionDigest is the digest a session's metadata stated, if any.
func sessionDigest(metaJSON []byte) string {
	var m UploadMeta
	json.Unmarshal(metaJSON, &m)
	return m.SHA256
}

// pieceReader reads a session's pieces back in order, opening each when
// reached; Close closes whichever is open (a reader may stop early).
func (s *Service) pieceReader(ctx context.Context, sess *session) *pieces {
	return &pieces{open: func(i int) (io.ReadCloser, error) { return s.store.Open(ctx, sess.Pieces[i].object()) }, n: len(sess.Pieces)}
}

type pieces struct {
	open func(i int) (io.ReadCloser, error)
	n, i int
	rc   io.ReadCloser
}

func (p *pieces) Read(b []byte) (int, error) {
	for p.i < p.n {
		if p.rc == nil {
			rc, err := p.open(p.i)
			if err != nil {
				return 0, err
			}
			p.rc = rc
		}
		n, err := p.rc.Read(b)
		if err == io.EOF {
			p.rc.Close()
			p.rc, err = nil, nil
			p.i++
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
	return 0, io.EOF
}

func (p *pieces) Close() error {
	if p.rc != nil {
		return p.rc.Close()
	}
	return nil
}

// receivePieces reads body into pieces of up to stagePiece bytes, storing
// each with the session (the bytes, then the hash state after them, under
// key) before reading on; a stream that breaks keeps every byte before the
// break. id is the caller's upload id.
func (s *Service) receivePieces(ctx context.Context, h hash.Hash, sess *session, key, id string, size int64, body io.Reader) error {
	buf := make([]byte, 0, min(stagePiece, max(size-sess.Received, 1)))
	// The last piece is stored even if the caller has gone: it arrived.
	storeCtx := context.WithoutCancel(ctx)
	persist := func() error {
		if len(buf) == 0 {
			return nil
		}
		var nonce [6]byte
		rand.Read(nonce[:])
		objKey := fmt.Sprintf("%s%x/%016d-%x", storage.KeepPendingPrefix, sha256.Sum256([]byte(sess.Owner+"\x00"+id)), sess.Received, nonce)
		obj, err := s.store.Put(storeCtx, objKey, bytes.NewReader(buf), int64(len(buf)))
		if err != nil {
			return err
		}
		h.Write(buf)
		state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			return err
		}
		sess.Pieces = append(sess.Pieces, piece{Object: obj, Pending: obj.Pending()})
		sess.Received += int64(len(buf))
		sess.HashState = state
		buf = buf[:0]
		if err := s.saveSession(storeCtx, key, sess); err != nil {
			// No session names the piece: remove it now, or nothing will.
			s.store.Discard(storeCtx, obj)
			return err
		}
		return nil
	}
	for {
		if len(buf) == cap(buf) {
			if err := persist(); err != nil {
				return err
			}
		}
		n, rerr := body.Read(buf[len(buf):cap(buf)])
		if sess.Received+int64(len(buf)+n) > size {
			persist()
			return fmt.Errorf("%w: upload %s carries more than the %d bytes declared", ErrTooLarge, id, size)
		}
		buf = buf[:len(buf)+n]
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

// ExpireUploads removes sessions past their time, with their pieces, and
// returns how many.
func (s *Service) ExpireUploads(ctx context.Context) int {
	ids, err := s.sessions.Expired(ctx, s.now())
	if err != nil {
		s.logger.WarnContext(ctx, "listing expired upload sessions", "err", err)
		return 0
	}
	n := 0
	for _, id := range ids {
		unlock, err := s.lockItem(ctx, "upload:"+id)
		if err != nil {
			continue
		}
		// loadSession drops an expired session and reports none.
		if sess, err := s.loadSession(ctx, id); err == nil && sess == nil {
			n++
		}
		unlock()
	}
	return n
}
