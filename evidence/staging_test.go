package evidence

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/parts"
	"github.com/custody-dev/custody/journal"
	"github.com/custody-dev/custody/media/mediatest"
	"github.com/custody-dev/custody/receipt"
	"github.com/custody-dev/custody/storage"
	"github.com/custody-dev/custody/storage/mem"
)

// countingStore counts what is written to a store, and can fail appends.
type countingStore struct {
	*mem.Store
	mu       sync.Mutex
	put      int64 // bytes stored by Put
	appended int64 // bytes stored by Append
	opened   int   // Opens of objects outside storage.KeepPendingPrefix
	pieces   map[string]bool
	// failAppend, if set, may fail an append of part i.
	failAppend func(i int) error
}

func newCountingStore() *countingStore {
	return &countingStore{Store: mem.New(), pieces: map[string]bool{}}
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingStore) Put(ctx context.Context, key string, r io.Reader, size int64) (storage.Object, error) {
	cr := &countReader{r: r}
	obj, err := c.Store.Put(ctx, key, cr, size)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		c.put += cr.n
		if strings.HasPrefix(key, storage.KeepPendingPrefix) {
			c.pieces[obj.Pending()] = true
		}
	}
	return obj, err
}

func (c *countingStore) Discard(ctx context.Context, obj storage.Object) error {
	c.mu.Lock()
	delete(c.pieces, obj.Pending())
	c.mu.Unlock()
	return c.Store.Discard(ctx, obj)
}

func (c *countingStore) Open(ctx context.Context, obj storage.Object) (io.ReadCloser, error) {
	if !strings.HasPrefix(obj.Key, storage.KeepPendingPrefix) {
		c.mu.Lock()
		c.opened++
		c.mu.Unlock()
	}
	return c.Store.Open(ctx, obj)
}

func (c *countingStore) Append(ctx context.Context, st storage.Staged, i int, off int64, data []byte) (storage.Part, error) {
	if c.failAppend != nil {
		if err := c.failAppend(i); err != nil {
			return storage.Part{}, err
		}
	}
	p, err := c.Store.Append(ctx, st, i, off, data)
	if err == nil {
		c.mu.Lock()
		c.appended += int64(len(data))
		c.mu.Unlock()
	}
	return p, err
}

func (c *countingStore) counts() (put, appended int64, pieces int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.put, c.appended, len(c.pieces)
}

// newStagingService is a test service (real log, catalog, journal) on a
// counting in-memory store, staging parts of mem.MinPartSize.
func newStagingService(t *testing.T) (*Service, *countingStore) {
	t.Helper()
	dir := t.TempDir()
	l := parts.Log(t, dir, "custody.test/staging")
	lite := parts.Catalog(t, dir)
	jnl, err := journal.OpenFile(filepath.Join(dir, "journal"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { jnl.Close() })
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sv, err := signature.LoadSignerVerifier(key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	ageID, _ := age.GenerateX25519Identity()
	store := newCountingStore()
	d := Deps{Store: store, Catalog: lite, Log: l, Journal: jnl, Receipts: receipt.NewSigner(func(m []byte) ([]byte, error) { return sv.SignMessage(bytes.NewReader(m)) }, "test-key"), Identity: ageID}
	s := New(d, Config{UploadDir: filepath.Join(dir, "upload-sessions"), UploadPartSize: mem.MinPartSize})
	return s, store
}

func randomItem(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func otherMeta(caseID string, b []byte) UploadMeta {
	m := docMeta(caseID, b)
	m.Kind = KindOther
	return m
}

func readObject(t *testing.T, s *Service, obj storage.Object) []byte {
	t.Helper()
	rc, err := s.store.Open(t.Context(), obj)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A resumable upload in one stream stores every byte once, as staged
// parts, and ingests the completed object where it lies.
func TestResumableWritesOnce(t *testing.T) {
	s, store := newStagingService(t)
	collector := mustIdentity(t, identity.RoleCollector, "c")
	data := randomItem(23<<20 + 321)
	meta := otherMeta("case-once", data)
	item, _, err := s.IngestResumable(t.Context(), collector, "once-0123456789", meta, 0, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	put, appended, pieces := store.counts()
	if put != 0 || appended != int64(len(data)) || pieces != 0 {
		t.Fatalf("stored %d bytes by Put and %d by Append (%d pieces left) for a %d-byte item; want all appended once", put, appended, pieces, len(data))
	}
	if store.StagedCount() != 0 {
		t.Fatal("a staged object is left")
	}
	if item.Object.Key != "sha256/"+meta.SHA256[:2]+"/"+meta.SHA256 || item.Object.Pending() != "" || item.Object.RetainUntil.IsZero() {
		t.Fatalf("object %+v", item.Object)
	}
	if !bytes.Equal(readObject(t, s, item.Object), data) {
		t.Fatal("the item differs")
	}
	if _, err := s.UploadStatusOf(t.Context(), collector, "once-0123456789"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the session outlived its item: %v", err)
	}
}

// A stream that stops early keeps its short tail as a piece; the next
// stream puts it in front of its bytes. Only tails are written twice.
func TestResumableTail(t *testing.T) {
	s, store := newStagingService(t)
	collector := mustIdentity(t, identity.RoleCollector, "c")
	const id = "tail-0123456789"
	data := randomItem(17 << 20)
	meta := otherMeta("case-tail", data)
	cuts := []int{7<<20 + 100, 8<<20 + 100, 8<<20 + 200, len(data)}
	var off int
	for i, cut := range cuts {
		item, _, err := s.IngestResumable(t.Context(), collector, id, meta, int64(off), bytes.NewReader(data[off:cut]))
		off = cut
		if cut < len(data) {
			if !errors.Is(err, ErrIncomplete) {
				t.Fatalf("stream %d: %v, want ErrIncomplete", i, err)
			}
			st, err := s.UploadStatusOf(t.Context(), collector, id)
			if err != nil || st.Received != int64(cut) {
				t.Fatalf("stream %d: status %+v, %v; want %d received", i, st, err, cut)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(readObject(t, s, item.Object), data) {
			t.Fatal("the item differs")
		}
	}
	// Stream 0 staged 5 MiB and kept 2 MiB+100 as a piece; streams 1
	// and 2 kept their own bytes as pieces; stream 3 staged them all.
	put, appended, pieces := store.counts()
	wantPut := int64(2<<20+100) + (1 << 20) + 100
	if put != wantPut || appended != int64(len(data)) || pieces != 0 {
		t.Fatalf("Put %d bytes (want the tails, %d), appended %d (want %d), %d pieces left", put, wantPut, appended, len(data), pieces)
	}
}

// trailed is a body that ends with a trailer.
type trailed struct {
	io.Reader
	t *Trailer
}

func (b trailed) Trailer() *Trailer { return b.t }

// With the digest in the trailer the item is staged under a key of its
// own, not its content address.
func TestResumableTrailerKey(t *testing.T) {
	s, _ := newStagingService(t)
	collector := mustIdentity(t, identity.RoleCollector, "c")
	data := randomItem(11 << 20)
	meta := otherMeta("case-trailer", data)
	sha := meta.SHA256
	meta.SHA256 = ""
	const id = "trailer-0123456789"
	if _, _, err := s.IngestResumable(t.Context(), collector, id, meta, 0, bytes.NewReader(data[:6<<20])); !errors.Is(err, ErrIncomplete) {
		t.Fatal(err)
	}
	item, _, err := s.IngestResumable(t.Context(), collector, id, meta, 6<<20, trailed{bytes.NewReader(data[6<<20:]), &Trailer{SHA256: sha}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(item.Object.Key, "blob/") || item.SHA256 != sha {
		t.Fatalf("item %s, object %+v", item.SHA256, item.Object)
	}
	if !bytes.Equal(readObject(t, s, item.Object), data) {
		t.Fatal("the item differs")
	}
}

// Bytes the service holds already: the staged copy is aborted and the
// item refers to the held object, as a one-shot upload's would.
func TestResumableDedup(t *testing.T) {
	s, store := newStagingService(t)
	collector := mustIdentity(t, identity.RoleCollector, "c")
	data := randomItem(12 << 20)
	first, _, err := s.Ingest(t.Context(), collector, otherMeta("case-a", data), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	item, _, err := s.IngestResumable(t.Context(), collector, "dedup-0123456789", otherMeta("case-b", data), 0, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if item.ID == first.ID || item.Object.Key != first.Object.Key || item.Object.VersionID != first.Object.VersionID {
		t.Fatalf("item %s object %+v, want a new item on %+v", item.ID, item.Object, first.Object)
	}
	if store.StagedCount() != 0 {
		t.Fatal("the staged copy was not aborted")
	}
}

// What a movie's moov box at its end says is found whether the session's
// observer stayed in this process or was lost (the session resumed in
// another): then the completed object is read once, never written again.
func TestResumableMovieObserver(t *testing.T) {
	movie := mediatest.MovieAtEnd(13<<20,
		mediatest.MVHD(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), 600, 600*95),
		mediatest.Meta(
			mediatest.Key{Name: "com.apple.quicktime.location.ISO6709", Value: "+50.4501+030.5234+100.5/"},
			mediatest.Key{Name: "com.apple.quicktime.make", Value: "Apple"},
			mediatest.Key{Name: "com.apple.quicktime.model", Value: "iPhone 15 Pro"},
			mediatest.Key{Name: "com.apple.quicktime.creationdate", Value: "2024-05-01T14:59:30+0300"},
		))
	stated := Capture{
		CapturedAt: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC),
		Location:   &Location{Description: "as the witness says"},
		Device:     &Device{Model: "the witness's phone"},
	}
	for _, lost := range []bool{false, true} {
		t.Run(fmt.Sprintf("lost=%v", lost), func(t *testing.T) {
			s, store := newStagingService(t)
			collector := mustIdentity(t, identity.RoleCollector, "c")
			meta := docMeta("case-movie", movie)
			meta.Kind, meta.Capture = KindVideo, stated
			const id = "movie-0123456789"
			half := 7 << 20
			if _, _, err := s.IngestResumable(t.Context(), collector, id, meta, 0, bytes.NewReader(movie[:half])); !errors.Is(err, ErrIncomplete) {
				t.Fatal(err)
			}
			if lost {
				s.observers = observerCache{}
			}
			item, _, err := s.IngestResumable(t.Context(), collector, id, meta, int64(half), bytes.NewReader(movie[half:]))
			if err != nil {
				t.Fatal(err)
			}
			if item.MediaType != "video/quicktime" {
				t.Fatalf("media type %q", item.MediaType)
			}
			checkPhoneMovie(t, item.Meta, stated)
			_, appended, _ := store.counts()
			if appended != int64(len(movie)) {
				t.Fatalf("appended %d bytes of %d", appended, len(movie))
			}
			if store.opened != map[bool]int{false: 0, true: 1}[lost] {
				t.Fatalf("the completed object was opened %d times", store.opened)
			}
		})
	}
}

// A part that fails to store ends the stream; the session keeps the
// parts before it (none, if the first failed: the session then holds a
// staged object and no byte), and the client's next stream completes the
// item.
func TestResumablePartFailure(t *testing.T) {
	for _, failing := range []int{0, 2} {
		t.Run(fmt.Sprint(failing), func(t *testing.T) {
			s, store := newStagingService(t)
			collector := mustIdentity(t, identity.RoleCollector, "c")
			const id = "fail-0123456789"
			data := randomItem(27 << 20)
			meta := otherMeta("case-fail", data)
			var failed sync.Once
			store.failAppend = func(i int) error {
				var err error
				if i == failing {
					failed.Do(func() { err = fmt.Errorf("part %d: %w", i, storage.ErrUnavailable) })
				}
				return err
			}
			if _, _, err := s.IngestResumable(t.Context(), collector, id, meta, 0, bytes.NewReader(data)); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("a failed part: %v, want ErrUnavailable", err)
			}
			st, err := s.UploadStatusOf(t.Context(), collector, id)
			if err != nil || st.Received != int64(failing)*5<<20 {
				t.Fatalf("status %+v, %v; want the %d parts before the failed one", st, err, failing)
			}
			item, _, err := s.IngestResumable(t.Context(), collector, id, meta, st.Received, bytes.NewReader(data[st.Received:]))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(readObject(t, s, item.Object), data) {
				t.Fatal("the item differs")
			}
		})
	}
}

// A session saved before staging existed (its bytes all pieces, without
// offsets) resumes: its pieces are staged with the rest.
func TestResumableLegacySession(t *testing.T) {
	s, store := newStagingService(t)
	collector := mustIdentity(t, identity.RoleCollector, "c")
	const id = "legacy-0123456789"
	data := randomItem(20 << 20)
	meta := otherMeta("case-legacy", data)
	h := sha256.New()
	type oldPiece struct {
		Object  storage.Object `json:"object"`
		Pending string         `json:"pending"`
	}
	var pieces []oldPiece
	for off := 0; off < 16<<20; off += 8 << 20 {
		obj, err := store.Put(t.Context(), fmt.Sprintf("%sold/%016d", storage.KeepPendingPrefix, off), bytes.NewReader(data[off:off+8<<20]), 8<<20)
		if err != nil {
			t.Fatal(err)
		}
		h.Write(data[off : off+8<<20])
		pieces = append(pieces, oldPiece{obj, obj.Pending()})
	}
	state, _ := h.(encoding.BinaryMarshaler).MarshalBinary()
	metaJSON, _ := json.Marshal(meta)
	old, _ := json.Marshal(map[string]any{"owner": collector.String(), "meta": json.RawMessage(metaJSON), "received": 16 << 20,
		"hash_state": state, "expires_at": time.Now().Add(time.Hour), "pieces": pieces})
	if err := s.sessions.Save(t.Context(), sessionKey(collector, id), old, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	item, _, err := s.IngestResumable(t.Context(), collector, id, meta, 16<<20, bytes.NewReader(data[16<<20:]))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readObject(t, s, item.Object), data) {
		t.Fatal("the item differs")
	}
	if _, _, left := store.counts(); left != 0 || store.StagedCount() != 0 {
		t.Fatalf("%d pieces, %d staged objects left", left, store.StagedCount())
	}
}

// An expired session's staged object is aborted and its pieces discarded.
func TestResumableExpiryAborts(t *testing.T) {
	s, store := newStagingService(t)
	collector := mustIdentity(t, identity.RoleCollector, "c")
	data := randomItem(20 << 20)
	if _, _, err := s.IngestResumable(t.Context(), collector, "expire-0123456789", otherMeta("case-expire", data), 0, bytes.NewReader(data[:12<<20])); !errors.Is(err, ErrIncomplete) {
		t.Fatal(err)
	}
	if _, _, pieces := store.counts(); store.StagedCount() != 1 || pieces != 1 {
		t.Fatalf("%d staged objects, %d pieces; want one of each", store.StagedCount(), pieces)
	}
	s.now = func() time.Time { return time.Now().Add(DefaultUploadTTL + time.Hour) }
	if n := s.ExpireUploads(t.Context()); n != 1 {
		t.Fatalf("expired %d sessions", n)
	}
	if _, _, pieces := store.counts(); store.StagedCount() != 0 || pieces != 0 {
		t.Fatalf("%d staged objects, %d pieces left after expiry", store.StagedCount(), pieces)
	}
}

// Parts the store lost (an incomplete multipart upload it expired) end
// the session: the client is told to start again, and can.
func TestResumablePartsGone(t *testing.T) {
	s, store := newStagingService(t)
	collector := mustIdentity(t, identity.RoleCollector, "c")
	const id = "gone-0123456789"
	data := randomItem(20 << 20)
	meta := otherMeta("case-gone", data)
	if _, _, err := s.IngestResumable(t.Context(), collector, id, meta, 0, bytes.NewReader(data[:12<<20])); !errors.Is(err, ErrIncomplete) {
		t.Fatal(err)
	}
	sess, err := s.loadSession(t.Context(), sessionKey(collector, id))
	if err != nil || sess == nil || sess.Staged == nil {
		t.Fatalf("session %+v, %v", sess, err)
	}
	if err := store.Abort(t.Context(), *sess.Staged); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.IngestResumable(t.Context(), collector, id, meta, sess.Received, bytes.NewReader(data[sess.Received:]))
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "start it again at offset 0") {
		t.Fatalf("resuming onto lost parts: %v", err)
	}
	if _, err := s.UploadStatusOf(t.Context(), collector, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the session outlived its parts: %v", err)
	}
	item, _, err := s.IngestResumable(t.Context(), collector, id, meta, 0, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readObject(t, s, item.Object), data) {
		t.Fatal("the item differs")
	}
	if _, _, pieces := store.counts(); pieces != 0 || store.StagedCount() != 0 {
		t.Fatalf("%d pieces, %d staged left", pieces, store.StagedCount())
	}
}

// An empty item, and a whole item in one short stream, are put as they
// are: no staged object for one part.
func TestResumableSmall(t *testing.T) {
	s, store := newStagingService(t)
	collector := mustIdentity(t, identity.RoleCollector, "c")
	for i, n := range []int{0, 1000, 5<<20 - 1} {
		data := randomItem(n)
		item, _, err := s.IngestResumable(t.Context(), collector, fmt.Sprintf("small-%d-0123456789", i), otherMeta("case-small", data), 0, bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if got := readObject(t, s, item.Object); !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: the item differs", n)
		}
	}
	if put, appended, pieces := store.counts(); put != 5<<20+999 || appended != 0 || pieces != 0 {
		t.Fatalf("put %d, appended %d, %d pieces", put, appended, pieces)
	}
}
