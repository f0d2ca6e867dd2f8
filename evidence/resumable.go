package evidence

import (
	"bytes"
	"cmp"
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
	"sync"
	"time"

	"github.com/custody-dev/custody/failure"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/media"
	"github.com/custody-dev/custody/receipt"
	"github.com/custody-dev/custody/storage"
)

// Resumable uploads write an item's bytes once. A session stages the item
// at its final key (storage.Stager: on S3 a multipart upload, on disk one
// file written at offsets) in parts of Config.UploadPartSize, each durable
// before the session records it with the SHA-256 state after it. A stream
// that stops early keeps its short tail (under S3's 5 MiB minimum part)
// as a pending object under storage.KeepPendingPrefix, a "piece", read
// back and put in front of the next stream's bytes when the session
// resumes: only such a tail is ever written twice. The session (owner,
// metadata, staged handle, pieces, hash state) is in UploadSessions; both
// are shared by replicas, so a session survives a dropped connection, a
// client restart, a server restart, and continues on whichever replica
// the next chunk reaches. When the last byte arrives the digest is checked
// as always (stated up front, or in the stream's trailer), and the staged
// object is completed into a pending object and ingested from where it
// lies (ingestStored): sealed, not copied. If the service already holds
// the same bytes the staged object is aborted and the item refers to the
// held object, as a one-shot upload's would. Sessions expire after
// Config.UploadTTL; their staged object is aborted and their pieces
// discarded.
//
// The key: with the digest stated up front, the content address
// (sha256/<2>/<digest>) a one-shot upload uses; with the digest left to
// the trailer it is not known while the bytes are stored, so the session
// picks blob/<2>/<32 random hex> when it starts and keeps it. Nothing
// reads meaning into a key: reads, scrub, repair and verification follow
// the object the record names (docs/STORAGE.md).
//
// What the bytes say (media type and EXIF from the head, a movie's moov
// box wherever it sits) is read as the parts are stored, by an observer
// kept in memory with the session. A session resumed in another process
// (or after this one evicted its observer) has lost it; then the completed
// object is read once, before it is sealed, to find the same things and
// to check its digest again: a read, never a write.

// ErrIncomplete: a resumable upload stream ended before the last byte; the
// caller resumes from the offset the message names.
var ErrIncomplete error = failure.New(failure.Incomplete, "upload incomplete")

// DefaultUploadTTL is how long an unfinished upload session is kept.
const DefaultUploadTTL = 24 * time.Hour

// DefaultUploadPartSize is the size of a resumable upload's staged parts;
// DefaultUploadBuffers is how many part buffers beyond one per stream the
// service lends its resumable streams, so parts are stored while the next
// arrives (UploadPartsInFlight of them at most per stream).
const (
	DefaultUploadPartSize = 8 << 20
	DefaultUploadBuffers  = 4
	UploadPartsInFlight   = 4
)

// partBufsKept is how many part buffers beyond the lent ones are kept for
// reuse when streams end.
const partBufsKept = 4

// minStagedPart is the smallest run that is staged as a part when it does
// not end the item: S3's minimum part, on every backend, so a session's
// shape does not depend on its store. A shorter run is kept as a piece.
const minStagedPart = 5 << 20

// sessionSaveEvery bounds how often a stream saves its session while parts
// complete (it always saves when it ends): parts stored but not yet
// recorded are stored again if the process dies.
const sessionSaveEvery = 250 * time.Millisecond

type session struct {
	Owner     string          `json:"owner"`
	Meta      json.RawMessage `json:"meta"`
	Received  int64           `json:"received"`
	HashState []byte          `json:"hash_state"`
	ExpiresAt time.Time       `json:"expires_at"`
	// Pieces are short runs kept as pending objects, in order and
	// contiguous, ending at Received; the first may start before the
	// staged object's end (its start is then already staged).
	Pieces []piece `json:"pieces"`
	// Key is where the item is staged; Staged the staged object, from its
	// first part until it is completed.
	Key    string          `json:"key,omitempty"`
	Staged *storage.Staged `json:"staged,omitempty"`
	// Nonce tells this session's observer from another's.
	Nonce string `json:"nonce,omitempty"`
	// Completed is the whole item as a pending object, its digest
	// checked, not yet sealed; Sealed is it sealed, not yet recorded.
	Completed *piece          `json:"completed,omitempty"`
	Sealed    *storage.Object `json:"sealed,omitempty"`
}

// piece is a stored run of bytes: a pending object starting at Offset
// in the item.
type piece struct {
	Object  storage.Object `json:"object"`
	Pending string         `json:"pending"`
	Offset  int64          `json:"offset"`
}

func (p piece) object() storage.Object { return p.Object.WithPending(p.Pending) }

func pieceOf(obj storage.Object, offset int64) *piece {
	return &piece{Object: obj, Pending: obj.Pending(), Offset: offset}
}

// stagedSize is how many of the item's bytes are staged.
func (sess *session) stagedSize() int64 {
	if sess.Staged == nil {
		return 0
	}
	return sess.Staged.Size()
}

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
	if sess.Staged == nil && sess.Completed == nil && sess.Sealed == nil {
		// Pieces before anything is staged start at 0 one after another
		// (sessions saved before staging existed have no offsets).
		var off int64
		for i := range sess.Pieces {
			sess.Pieces[i].Offset = off
			off += sess.Pieces[i].Object.Size
		}
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

// dropSession aborts a session's staged object, discards its pieces and
// its completed object if not sealed, and deletes the session (id is its
// key, sessionKey). A sealed object stays: retention forbids removing it.
func (s *Service) dropSession(ctx context.Context, id string, sess *session) {
	ctx = context.WithoutCancel(ctx)
	if sess.Staged != nil {
		if err := s.store.Abort(ctx, *sess.Staged); err != nil {
			s.logger.WarnContext(ctx, "aborting the staged object of an upload session", "upload_id", id, "key", sess.Staged.Key, "err", err)
		}
	}
	discard := sess.Pieces
	if sess.Completed != nil {
		discard = append(discard, *sess.Completed)
	}
	for _, p := range discard {
		if err := s.store.Discard(ctx, p.object()); err != nil && !errors.Is(err, storage.ErrNotFound) {
			s.logger.WarnContext(ctx, "discarding a pending object of an upload session", "upload_id", id, "key", p.Object.Key, "err", err)
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
		// Staged bytes are plaintext; data that must only ever be stored
		// encrypted is not staged.
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
		// A session saved when it staged its first part has no bytes yet,
		// and no hash state.
		if len(sess.HashState) > 0 || sess.Received > 0 {
			if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(sess.HashState); err != nil {
				return Item{}, receipt.Receipt{}, err
			}
		}
	}
	if sess.Key == "" {
		// A new session, or one saved before staging existed.
		sess.Key = stagingKey(cmp.Or(sessionDigest(sess.Meta), meta.SHA256))
		sess.Nonce = rand.Text()
	}
	// What the bytes say, as seen so far by this process; nil if lost.
	obs := s.observers.take(sess.Nonce)
	if obs != nil && obs.n != sess.storedSize(meta.Size) {
		obs = nil
	}
	if obs == nil && sess.storedSize(meta.Size) == 0 {
		obs = newObserver(meta.Size)
	}
	dropped := false
	drop := func() { s.dropSession(ctx, key, sess); dropped = true }
	defer func() {
		if !dropped && obs != nil && obs.n == sess.storedSize(meta.Size) {
			s.observers.put(sess.Nonce, obs)
		}
	}()

	// Bytes are due, or, with every byte here (an empty item, a session
	// saved before staging existed) but none stored as the item yet, the
	// item is to be stored from the pieces.
	if sess.Received < meta.Size || sess.Staged == nil && sess.Completed == nil && sess.Sealed == nil {
		r := &receiver{s: s, ctx: context.WithoutCancel(ctx), sess: sess, key: key, id: id, size: meta.Size, h: h, obs: obs}
		if err := r.run(body); err != nil {
			if r.obsLost {
				obs = nil
			}
			if errors.Is(err, storage.ErrNotFound) {
				drop()
				return Item{}, receipt.Receipt{}, partsGone(id, err)
			}
			if ctx.Err() != nil {
				return Item{}, receipt.Receipt{}, fmt.Errorf("%w: upload %s paused at %d of %d bytes; resume from offset %d", ErrIncomplete, id, sess.Received, meta.Size, sess.Received)
			}
			return Item{}, receipt.Receipt{}, classifyStorage(err)
		}
		if r.obsLost {
			obs = nil
		}
	} else if err := checkEnd(body, id, meta.Size); err != nil {
		// Every byte arrived before: this stream brings none (and, if
		// the digest is left to it, the trailer).
		return Item{}, receipt.Receipt{}, classifyStorage(err)
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
			drop()
			return Item{}, receipt.Receipt{}, fmt.Errorf("%w: declared %s, the bytes of upload %s hash to %s; the session is discarded", ErrDigestMismatch, want, id, got)
		}
	}
	item, rcpt, err := s.finishResumable(ctx, who, key, id, meta, sess, obs)
	if errors.Is(err, storage.ErrNotFound) {
		drop()
		return Item{}, receipt.Receipt{}, partsGone(id, err)
	}
	if err == nil || errors.Is(err, ErrInvalid) {
		drop()
	}
	return item, rcpt, err
}

// partsGone is the answer when what a session stored is no longer in the
// store (an incomplete multipart upload the store expired, a file
// removed): the session is discarded and the upload starts again.
func partsGone(id string, cause error) error {
	return wrapCause(ErrNotFound, cause, "the bytes stored for upload %s are gone from storage (an incomplete upload expired there?); the session is discarded: start it again at offset 0", id)
}

// storedSize is how many of the item's size bytes are in its staged,
// completed or sealed object.
func (sess *session) storedSize(size int64) int64 {
	if sess.Completed != nil || sess.Sealed != nil {
		return size
	}
	return sess.stagedSize()
}

// stagingKey is where a session stages its item: the content address if
// the digest is known, else a new random key (see the top of this file).
func stagingKey(sha string) string {
	if sha != "" {
		return "sha256/" + sha[:2] + "/" + sha
	}
	var b [16]byte
	rand.Read(b[:])
	r := hex.EncodeToString(b[:])
	return "blob/" + r[:2] + "/" + r
}

// finishResumable ingests a session's item once all its bytes arrived and
// matched the digest: from the object the service already holds with the
// same bytes, or from the session's staged object, completed (not
// copied) into a pending object, then sealed. The caller drops the
// session on success and on ErrInvalid; any other error keeps it, and
// with it how far this got, for the client's retry.
func (s *Service) finishResumable(ctx context.Context, who identity.Identity, key, id string, meta UploadMeta, sess *session, obs *observer) (Item, receipt.Receipt, error) {
	storeCtx := context.WithoutCancel(ctx)
	captureSig, err := s.checkStatements(ctx, who, meta)
	if err != nil {
		return Item{}, receipt.Receipt{}, err
	}
	if sess.Sealed == nil {
		existing, found, err := s.dedupObject(ctx, meta.SHA256)
		if err != nil {
			return Item{}, receipt.Receipt{}, classifyStorage(err)
		}
		if found {
			// Held already: refer to those bytes; dropping the session
			// aborts the staged copy.
			c, err := s.contentOf(ctx, obs, existing, meta)
			if err != nil {
				return Item{}, receipt.Receipt{}, err
			}
			return s.ingestStored(ctx, who, meta, captureSig, c, existing, true, nil)
		}
	}
	if sess.Completed == nil && sess.Sealed == nil {
		if sess.Staged == nil {
			return Item{}, receipt.Receipt{}, fmt.Errorf("upload %s: all %d bytes arrived but none is stored as the item", id, meta.Size)
		}
		obj, err := s.store.Complete(storeCtx, *sess.Staged)
		if errors.Is(err, storage.ErrNotFound) {
			return Item{}, receipt.Receipt{}, err
		}
		if err != nil {
			return Item{}, receipt.Receipt{}, s.uploadError(ctx, err)
		}
		sess.Completed, sess.Staged = pieceOf(obj, 0), nil
		if err := s.saveSession(storeCtx, key, sess); err != nil {
			// No session names the object: remove it now, or nothing will.
			s.discard(ctx, obj)
			return Item{}, receipt.Receipt{}, classifyStorage(err)
		}
	}
	obj := sess.completedObject()
	c, err := s.contentOf(ctx, obs, obj, meta)
	if err != nil {
		return Item{}, receipt.Receipt{}, err
	}
	return s.ingestStored(ctx, who, meta, captureSig, c, obj, false, func(sealed storage.Object) error {
		sess.Sealed, sess.Completed = &sealed, nil
		if err := s.saveSession(storeCtx, key, sess); err != nil {
			// The record comes next; a retry after it fails would seal
			// again, which the log below explains if it cannot.
			s.logger.WarnContext(ctx, "saving an upload session after its object was sealed", "upload_id", id, "key", sealed.Key, "err", err)
		}
		return nil
	})
}

// completedObject is a finished session's object: pending or sealed.
func (sess *session) completedObject() storage.Object {
	if sess.Sealed != nil {
		return *sess.Sealed
	}
	return sess.Completed.object()
}

// contentOf is what an item's bytes say: from the observer that saw them
// stored, or, when it was lost (the session moved between processes), by
// reading obj once, whose digest is checked again on the way.
func (s *Service) contentOf(ctx context.Context, obs *observer, obj storage.Object, meta UploadMeta) (content, error) {
	if obs != nil && obs.n == meta.Size {
		return obs.content(), nil
	}
	rc, err := s.store.Open(ctx, obj)
	if err != nil {
		return content{}, classifyStorage(err)
	}
	defer rc.Close()
	o := newObserver(meta.Size)
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(o, h), rc)
	if err != nil {
		return content{}, classifyStorage(err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != meta.Size || got != meta.SHA256 {
		return content{}, fmt.Errorf("%w: the stored bytes of %s hash to %s (%d bytes), want %s (%d bytes)", ErrCorrupt, obj.Key, got, n, meta.SHA256, meta.Size)
	}
	s.logger.InfoContext(ctx, "read a completed upload again for its media metadata (what saw it stored was lost: the session moved between processes, or a part failed)", "key", obj.Key, "size", n)
	return o.content(), nil
}

// checkEnd reads body to its end, which must come before any byte: the
// item's size bytes are all here.
func checkEnd(body io.Reader, id string, size int64) error {
	var b [1]byte
	for {
		n, err := body.Read(b[:])
		if n > 0 {
			return fmt.Errorf("%w: upload %s carries more than the %d bytes declared", ErrTooLarge, id, size)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// observer sees an item's bytes in order as they are stored and keeps
// what prepareIngest reads: the head, and the movie box's metadata
// (media.MP4Scanner, bounded).
type observer struct {
	n     int64
	head  []byte
	movie *media.MP4Scanner
}

func newObserver(size int64) *observer { return &observer{movie: media.NewMP4Scanner(size)} }

func (o *observer) Write(p []byte) (int, error) {
	o.movie.Write(p)
	if len(o.head) < headSize {
		o.head = append(o.head, p[:min(len(p), headSize-len(o.head))]...)
	}
	o.n += int64(len(p))
	return len(p), nil
}

func (o *observer) content() content { return content{head: o.head, movie: o.movie.Capture()} }

// observerCache keeps the observers of paused sessions, by session nonce,
// for when they resume in this process: at most observersKept (the
// oldest goes first). Each holds at most headSize and the scanner's
// bounded boxes.
type observerCache struct {
	mu sync.Mutex
	m  map[string]cachedObserver
}

type cachedObserver struct {
	o  *observer
	at time.Time
}

const observersKept = 16

func (c *observerCache) take(nonce string) *observer {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[nonce]
	if !ok {
		return nil
	}
	delete(c.m, nonce)
	return e.o
}

func (c *observerCache) put(nonce string, o *observer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]cachedObserver{}
	}
	if len(c.m) >= observersKept {
		var oldest string
		for k, e := range c.m {
			if oldest == "" || e.at.Before(c.m[oldest].at) {
				oldest = k
			}
		}
		delete(c.m, oldest)
	}
	c.m[nonce] = cachedObserver{o: o, at: time.Now()}
}

// receiver takes one stream's bytes into a session: it fills part
// buffers (the session's pieces first, then the stream's bytes, which it
// hashes), stages each full part in the background while the next fills
// (up to UploadPartsInFlight, with buffers beyond the stream's own lent by
// the service), records parts in order as they become durable, and keeps
// a short tail as a piece when the stream stops early.
type receiver struct {
	s    *Service
	ctx  context.Context // not cancelled with the caller: what arrived is kept
	key  string          // the session's
	id   string          // the caller's upload id
	size int64
	h    hash.Hash // the stream's goroutine's
	obs  *observer // the stream's goroutine's

	pos    int64 // bytes taken: staged, in flight and in the buffer filling
	preEnd int64 // bytes before this are the session's (hashed, durable)
	next   int   // next part's number
	off    int64 // next part's offset
	freed  chan struct{}

	// mu guards the session and the rest: parts finish in their own
	// goroutines, which record them.
	mu       sync.Mutex
	sess     *session
	obsLost  bool // a part the observer saw was not stored
	ownBusy  bool // the stream's own buffer is in use
	inflight int
	done     map[int]partDone
	failed   error
	saved    time.Time
	dirty    bool
}

type partDone struct {
	i     int
	end   int64
	state []byte // hash state after the part; nil if it holds no new byte
	buf   []byte
	own   bool
	part  storage.Part
	err   error
}

func (s *Service) partSize() int {
	n := cmp.Or(s.cfg.UploadPartSize, DefaultUploadPartSize)
	return max(n, int(s.store.MinPartSize()))
}

func (r *receiver) run(body io.Reader) error {
	r.freed = make(chan struct{}, 1)
	r.done = map[int]partDone{}
	r.saved = time.Now()
	base := r.sess.stagedSize()
	r.pos, r.preEnd = base, r.sess.Received
	if r.sess.Staged != nil {
		r.next, r.off = len(r.sess.Staged.Parts), base
	}
	pre := &pieceReader{s: r.s, ctx: r.ctx, list: r.sess.Pieces, skip: base}
	defer pre.Close()
	src := &streamSource{pre: pre, preLeft: r.preEnd - base, body: body, h: r.h}
	partSize := int64(r.s.partSize())
	for {
		buf, own, err := r.buffer()
		if err != nil {
			return r.stop(err)
		}
		want := min(partSize, r.size-r.pos)
		n, rerr := fill(src, buf[:want])
		r.pos += int64(n)
		if int64(n) < want {
			return r.ended(buf[:n], own, rerr)
		}
		final := r.pos == r.size
		if err := r.dispatch(buf[:n], own, final); err != nil {
			return r.stop(err)
		}
		if final {
			// The item is here: the stream may only end (after the trailer).
			if err := checkEnd(src, r.id, r.size); err != nil {
				return r.stop(err)
			}
			return r.stop(nil)
		}
		if rerr != nil {
			return r.ended(nil, false, rerr)
		}
	}
}

// fill reads into buf until it is full or src fails or ends.
func fill(src io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		k, err := src.Read(buf[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// buffer returns a part buffer: the stream's own, or one the service
// lends while parts are in flight, or waits for a part to finish.
func (r *receiver) buffer() ([]byte, bool, error) {
	for {
		r.mu.Lock()
		switch {
		case r.failed != nil:
			err := r.failed
			r.mu.Unlock()
			return nil, false, err
		case !r.ownBusy:
			r.ownBusy = true
			r.mu.Unlock()
			return r.s.getPartBuf(), true, nil
		case r.inflight < UploadPartsInFlight:
			select {
			case r.s.lent <- struct{}{}:
				r.mu.Unlock()
				return r.s.getPartBuf(), false, nil
			default:
			}
		}
		r.mu.Unlock()
		<-r.freed
	}
}

// release returns a part buffer; r.mu is held.
func (r *receiver) release(buf []byte, own bool) {
	if buf == nil {
		return
	}
	r.s.putPartBuf(buf)
	if own {
		r.ownBusy = false
	} else {
		<-r.s.lent
	}
}

func (r *receiver) releaseLocked(buf []byte, own bool) {
	r.mu.Lock()
	r.release(buf, own)
	r.mu.Unlock()
}

// dispatch stages buf as the next part (in the background), or, when it
// is the whole item, puts it as the completed object at once.
func (r *receiver) dispatch(buf []byte, own, final bool) error {
	var state []byte
	if r.pos > r.preEnd {
		var err error
		if state, err = r.h.(encoding.BinaryMarshaler).MarshalBinary(); err != nil {
			r.releaseLocked(buf, own)
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	sess := r.sess
	if sess.Staged == nil && final {
		// One part in all: an ordinary put of the whole item.
		obj, err := r.s.store.Put(r.ctx, sess.Key, bytes.NewReader(buf), int64(len(buf)))
		if err == nil && r.obs != nil {
			r.obs.Write(buf)
		}
		r.release(buf, own)
		if err != nil {
			return err
		}
		sess.Completed = pieceOf(obj, 0)
		sess.Received, sess.HashState = r.pos, state
		freed := sess.Pieces
		sess.Pieces = nil
		if err := r.save(true); err != nil {
			r.s.discard(r.ctx, obj)
			sess.Completed, sess.Pieces = nil, freed
			return err
		}
		for _, p := range freed {
			r.s.discard(r.ctx, p.object())
		}
		return nil
	}
	if sess.Staged == nil {
		st, err := r.s.store.Stage(r.ctx, sess.Key)
		if err != nil {
			r.release(buf, own)
			return err
		}
		sess.Staged = &st
		if err := r.save(true); err != nil {
			r.s.store.Abort(r.ctx, st)
			sess.Staged = nil
			r.release(buf, own)
			return err
		}
		r.next, r.off = 0, 0
	}
	if r.obs != nil {
		r.obs.Write(buf)
	}
	d := partDone{i: r.next, end: r.off + int64(len(buf)), state: state, buf: buf, own: own}
	st := storage.Staged{Backend: sess.Staged.Backend, Key: sess.Staged.Key, Handle: sess.Staged.Handle}
	off := r.off
	r.next++
	r.off += int64(len(buf))
	r.inflight++
	go func() {
		d.part, d.err = r.s.store.Append(r.ctx, st, d.i, off, d.buf)
		r.commit(d)
	}()
	return nil
}

// commit takes a finished part and records every part now durable, in
// order, saving the session when nothing else is in flight, every
// sessionSaveEvery otherwise, and always when it frees pieces.
func (r *receiver) commit(d partDone) {
	defer func() {
		select {
		case r.freed <- struct{}{}:
		default:
		}
	}()
	r.mu.Lock()
	r.inflight--
	r.release(d.buf, d.own)
	d.buf = nil
	if d.err != nil {
		r.obsLost = true
		if r.failed == nil {
			r.failed = d.err
		}
		r.mu.Unlock()
		return
	}
	r.done[d.i] = d
	sess := r.sess
	for {
		d, ok := r.done[len(sess.Staged.Parts)]
		if !ok {
			break
		}
		delete(r.done, d.i)
		sess.Staged.Parts = append(sess.Staged.Parts, d.part)
		if d.end > sess.Received {
			sess.Received, sess.HashState = d.end, d.state
		}
		r.dirty = true
	}
	// Pieces now wholly staged are freed once the session no longer
	// names them.
	staged := sess.stagedSize()
	var freed []piece
	for len(sess.Pieces) > 0 && sess.Pieces[0].Offset+sess.Pieces[0].Object.Size <= staged {
		freed = append(freed, sess.Pieces[0])
		sess.Pieces = sess.Pieces[1:]
	}
	if r.dirty && (len(freed) > 0 || r.inflight == 0 || time.Since(r.saved) >= sessionSaveEvery) {
		if err := r.save(false); err != nil {
			if r.failed == nil {
				r.failed = err
			}
			sess.Pieces = append(freed, sess.Pieces...)
			freed = nil
		}
	}
	r.mu.Unlock()
	for _, p := range freed {
		r.s.discard(r.ctx, p.object())
	}
}

// save saves the session if it changed, or always, after making the
// parts it records durable (storage.Stager.Sync); r.mu is held.
func (r *receiver) save(always bool) error {
	if !always && !r.dirty {
		return nil
	}
	if st := r.sess.Staged; st != nil && len(st.Parts) > 0 {
		if err := r.s.store.Sync(r.ctx, *st); err != nil {
			return err
		}
	}
	if err := r.s.saveSession(r.ctx, r.key, r.sess); err != nil {
		return err
	}
	r.dirty, r.saved = false, time.Now()
	return nil
}

// wait lets every part in flight finish, recording the durable ones, and
// returns the first failure.
func (r *receiver) wait() error {
	for {
		r.mu.Lock()
		n, err := r.inflight, r.failed
		r.mu.Unlock()
		if n == 0 {
			return err
		}
		<-r.freed
	}
}

// stop waits for the parts in flight, saves the session as far as parts
// are durable and returns err (or the first failure).
func (r *receiver) stop(err error) error {
	werr := r.wait()
	r.mu.Lock()
	serr := r.save(false)
	r.mu.Unlock()
	if werr == nil {
		werr = serr
	}
	if err == nil {
		err = werr
	}
	return err
}

// ended handles a stream that stopped before the item's end (rerr says
// how: io.EOF, the caller gone, or a refused message) with rest, the
// bytes taken since the last part: staged as a part if S3 would take
// one that size, else the stream's own bytes among them kept as a piece.
func (r *receiver) ended(rest []byte, own bool, rerr error) error {
	if err := r.wait(); err != nil {
		r.releaseLocked(rest, own)
		return r.stop(err)
	}
	if int64(len(rest)) >= max(minStagedPart, r.s.store.MinPartSize()) {
		if err := r.dispatch(rest, own, false); err != nil {
			return r.stop(err)
		}
		if err := r.wait(); err != nil {
			return r.stop(err)
		}
	} else {
		fresh := min(int64(len(rest)), r.pos-r.preEnd)
		var err error
		if fresh > 0 {
			err = r.keepPiece(rest[int64(len(rest))-fresh:])
		}
		r.releaseLocked(rest, own)
		if err != nil {
			return r.stop(err)
		}
	}
	if err := r.stop(nil); err != nil {
		return err
	}
	if errors.Is(rerr, io.EOF) {
		return nil
	}
	return rerr
}

// keepPiece stores b, the stream's last bytes, as a piece ending at pos.
// Nothing is in flight.
func (r *receiver) keepPiece(b []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	sess := r.sess
	var nonce [6]byte
	rand.Read(nonce[:])
	offset := r.pos - int64(len(b))
	objKey := fmt.Sprintf("%s%x/%016d-%x", storage.KeepPendingPrefix, sha256.Sum256([]byte(sess.Owner+"\x00"+r.id)), offset, nonce)
	obj, err := r.s.store.Put(r.ctx, objKey, bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return err
	}
	state, err := r.h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		r.s.discard(r.ctx, obj)
		return err
	}
	received, prevState := sess.Received, sess.HashState
	sess.Pieces = append(sess.Pieces, *pieceOf(obj, offset))
	sess.Received, sess.HashState = r.pos, state
	if err := r.save(true); err != nil {
		// No session names the piece: remove it now, or nothing will.
		r.s.discard(r.ctx, obj)
		sess.Pieces = sess.Pieces[:len(sess.Pieces)-1]
		sess.Received, sess.HashState = received, prevState
		return err
	}
	return nil
}

// streamSource reads the session's pieces (preLeft bytes, durable and
// hashed already), then the stream's bytes, hashing those.
type streamSource struct {
	pre     io.Reader
	preLeft int64
	body    io.Reader
	h       hash.Hash
}

func (s *streamSource) Read(p []byte) (int, error) {
	if s.preLeft > 0 {
		if int64(len(p)) > s.preLeft {
			p = p[:s.preLeft]
		}
		n, err := s.pre.Read(p)
		s.preLeft -= int64(n)
		if errors.Is(err, io.EOF) {
			if s.preLeft > 0 {
				return n, fmt.Errorf("%w: a stored piece of the upload is shorter than recorded", ErrCorrupt)
			}
			err = nil
		}
		return n, err
	}
	n, err := s.body.Read(p)
	s.h.Write(p[:n])
	return n, err
}

// pieceReader reads pieces back in order from item offset skip, opening
// each when reached; Close closes whichever is open.
type pieceReader struct {
	s    *Service
	ctx  context.Context
	list []piece
	skip int64
	rc   io.ReadCloser
}

func (p *pieceReader) Read(b []byte) (int, error) {
	for {
		if p.rc == nil {
			for len(p.list) > 0 && p.list[0].Offset+p.list[0].Object.Size <= p.skip {
				p.list = p.list[1:]
			}
			if len(p.list) == 0 {
				return 0, io.EOF
			}
			rc, err := p.s.store.Open(p.ctx, p.list[0].object())
			if err != nil {
				return 0, err
			}
			if skip := p.skip - p.list[0].Offset; skip > 0 {
				if _, err := io.CopyN(io.Discard, rc, skip); err != nil {
					rc.Close()
					return 0, err
				}
			}
			p.rc, p.list = rc, p.list[1:]
		}
		n, err := p.rc.Read(b)
		if err == io.EOF {
			p.rc.Close()
			p.rc, err = nil, nil
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
}

func (p *pieceReader) Close() error {
	if p.rc != nil {
		return p.rc.Close()
	}
	return nil
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

// getPartBuf and putPartBuf keep up to partBufsKept part buffers for
// reuse: a free list, not a sync.Pool, so a busy service reuses the same
// buffers instead of making new ones after each garbage collection (which
// raised its peak memory).
func (s *Service) getPartBuf() []byte {
	n := s.partSize()
	select {
	case b := <-s.partBufs:
		if cap(b) >= n {
			return b[:n]
		}
	default:
	}
	return make([]byte, n)
}

func (s *Service) putPartBuf(b []byte) {
	if cap(b) < s.partSize() {
		return
	}
	select {
	case s.partBufs <- b[:cap(b)]:
	default:
	}
}
