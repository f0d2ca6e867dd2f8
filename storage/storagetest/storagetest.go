// Package storagetest is the shared test suite every storage.Store backend
// passes: call Run from the backend's tests with a constructor for a fresh,
// empty store.
package storagetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/custody-dev/custody/storage"
)

// Run runs the suite. newStore returns an empty store for one subtest.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, newStore(t)) })
	t.Run("UnknownSize", func(t *testing.T) { testUnknownSize(t, newStore(t)) })
	t.Run("ReaderErrorKeepsNothing", func(t *testing.T) { testReaderError(t, newStore(t)) })
	t.Run("ShortReaderKeepsNothing", func(t *testing.T) { testShortReader(t, newStore(t)) })
	t.Run("CancelKeepsNothing", func(t *testing.T) { testCancel(t, newStore(t)) })
	t.Run("PendingReadsAndDiscard", func(t *testing.T) { testDiscard(t, newStore(t)) })
	t.Run("SealedCannotBeDiscarded", func(t *testing.T) { testSealedStays(t, newStore(t)) })
	t.Run("OpenMissing", func(t *testing.T) { testOpenMissing(t, newStore(t)) })
	t.Run("InvalidKeys", func(t *testing.T) { testInvalidKeys(t, newStore(t)) })
	t.Run("ConcurrentSameKey", func(t *testing.T) { testConcurrentSameKey(t, newStore(t)) })
	t.Run("StagedRoundTrip", func(t *testing.T) { testStagedRoundTrip(t, newStore(t)) })
	t.Run("StagedOnePart", func(t *testing.T) { testStagedOnePart(t, newStore(t)) })
	t.Run("StagedPartsReplacedAndUnrecorded", func(t *testing.T) { testStagedReplaced(t, newStore(t)) })
	t.Run("StagedDiscard", func(t *testing.T) { testStagedDiscard(t, newStore(t)) })
	t.Run("StagedAbort", func(t *testing.T) { testStagedAbort(t, newStore(t)) })
	t.Run("StagedSmallPartRefused", func(t *testing.T) { testStagedSmallPart(t, newStore(t)) })
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func putSeal(t *testing.T, s storage.Store, key string, data []byte) storage.Object {
	t.Helper()
	ctx := t.Context()
	obj, err := s.Put(ctx, key, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("Put %s: %v", key, err)
	}
	if obj.Size != int64(len(data)) || obj.Key != key {
		t.Fatalf("Put returned %+v for %d bytes at %s", obj, len(data), key)
	}
	sealed, err := s.Seal(ctx, obj, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatalf("Seal %s: %v", key, err)
	}
	if sealed.RetainUntil.IsZero() || sealed.Pending() != "" {
		t.Fatalf("Seal returned %+v", sealed)
	}
	return sealed
}

func readAll(t *testing.T, s storage.Store, obj storage.Object) []byte {
	t.Helper()
	rc, err := s.Open(t.Context(), obj)
	if err != nil {
		t.Fatalf("Open %s: %v", obj.Key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %s: %v", obj.Key, err)
	}
	return b
}

func mustNotExist(t *testing.T, s storage.Store, key string) {
	t.Helper()
	ok, err := s.Exists(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		t.Fatalf("%s is kept, want nothing", key)
	}
}

func testRoundTrip(t *testing.T, s storage.Store) {
	for _, n := range []int{0, 1, 5 << 20} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			data := randomBytes(t, n)
			key := fmt.Sprintf("sha256/rt/%d", n)
			obj := putSeal(t, s, key, data)
			if got := readAll(t, s, obj); !bytes.Equal(got, data) {
				t.Fatalf("read %d bytes back, differ from the %d written", len(got), len(data))
			}
			if ok, err := s.Exists(t.Context(), key); err != nil || !ok {
				t.Fatalf("Exists(%s) = %v, %v after Seal", key, ok, err)
			}
		})
	}
}

func testUnknownSize(t *testing.T, s storage.Store) {
	data := randomBytes(t, 3<<20+17)
	obj, err := s.Put(t.Context(), "enc/unknown", bytes.NewReader(data), -1)
	if err != nil {
		t.Fatal(err)
	}
	if obj.Size != int64(len(data)) {
		t.Fatalf("size %d, want %d", obj.Size, len(data))
	}
	obj, err = s.Seal(t.Context(), obj, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, s, obj), data) {
		t.Fatal("bytes differ")
	}
}

var errBroken = errors.New("stream broke")

// failingReader yields n bytes, then fails.
type failingReader struct {
	r io.Reader
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, errBroken
	}
	return n, err
}

func testReaderError(t *testing.T, s storage.Store) {
	// Small (one request) and large (multipart) objects, known and unknown size.
	for _, tc := range []struct{ total, sent, size int }{{6 << 20, 4 << 20, 6 << 20}, {1 << 20, 100 << 10, 1 << 20}, {1 << 20, 100 << 10, -1}} {
		t.Run(fmt.Sprintf("%d-of-%d-size-%d", tc.sent, tc.total, tc.size), func(t *testing.T) {
			data := randomBytes(t, tc.total)
			_, err := s.Put(t.Context(), "sha256/broken", &failingReader{bytes.NewReader(data[:tc.sent])}, int64(tc.size))
			if !errors.Is(err, errBroken) {
				t.Fatalf("Put with a failing reader: %v, want the reader's error", err)
			}
			mustNotExist(t, s, "sha256/broken")
		})
	}
}

func testShortReader(t *testing.T, s storage.Store) {
	_, err := s.Put(t.Context(), "sha256/short", bytes.NewReader(randomBytes(t, 1000)), 2000)
	if err == nil {
		t.Fatal("Put of 1000 bytes declared as 2000 succeeded")
	}
	mustNotExist(t, s, "sha256/short")
}

// blockingReader yields some bytes, then blocks until ctx ends.
type blockingReader struct {
	ctx  context.Context
	sent bool
}

func (b *blockingReader) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		return copy(p, make([]byte, 1024)), nil
	}
	<-b.ctx.Done()
	return 0, b.ctx.Err()
}

func testCancel(t *testing.T, s storage.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	_, err := s.Put(ctx, "sha256/cancelled", &blockingReader{ctx: ctx}, 1<<20)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Put cancelled: %v, want context.Canceled", err)
	}
	mustNotExist(t, s, "sha256/cancelled")
}

func testDiscard(t *testing.T, s storage.Store) {
	data := randomBytes(t, 1234)
	obj, err := s.Put(t.Context(), "sha256/discarded", bytes.NewReader(data), 1234)
	if err != nil {
		t.Fatal(err)
	}
	// A pending object reads back before it is sealed or discarded (upload
	// sessions keep their pieces so), also through a handle rebuilt from
	// its recorded parts.
	again := storage.Object{Backend: obj.Backend, Bucket: obj.Bucket, Key: obj.Key, VersionID: obj.VersionID, Size: obj.Size}.WithPending(obj.Pending())
	if !bytes.Equal(readAll(t, s, again), data) {
		t.Fatal("a pending object reads back different bytes")
	}
	if err := s.Discard(t.Context(), obj); err != nil {
		t.Fatal(err)
	}
	mustNotExist(t, s, "sha256/discarded")
	if _, err := s.Open(t.Context(), obj); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Open after Discard: %v, want ErrNotFound", err)
	}
}

func testSealedStays(t *testing.T, s storage.Store) {
	data := randomBytes(t, 100)
	pending, err := s.Put(t.Context(), "sha256/sealed", bytes.NewReader(data), 100)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s.Seal(t.Context(), pending, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range []storage.Object{sealed, pending} {
		// Even the stale pending handle must not remove sealed bytes.
		s.Discard(t.Context(), obj)
	}
	if err := s.Discard(t.Context(), sealed); !errors.Is(err, storage.ErrSealed) {
		t.Fatalf("Discard sealed: %v, want ErrSealed", err)
	}
	if !bytes.Equal(readAll(t, s, sealed), data) {
		t.Fatal("sealed object changed after Discard attempts")
	}
}

func testOpenMissing(t *testing.T, s storage.Store) {
	_, err := s.Open(t.Context(), storage.Object{Key: "sha256/never-written", VersionID: "00000000-0000-0000-0000-000000000000"})
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Open missing: %v, want ErrNotFound", err)
	}
}

func testInvalidKeys(t *testing.T, s storage.Store) {
	for _, key := range []string{"", "../escape", "a/../../b", "/abs", "a//b", "UPPER", "a\x00b", "trailing/"} {
		_, err := s.Put(t.Context(), key, bytes.NewReader(nil), 0)
		if !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Put(%q): %v, want ErrInvalidKey", key, err)
		}
	}
}

func testConcurrentSameKey(t *testing.T, s storage.Store) {
	data := randomBytes(t, 256<<10)
	var wg sync.WaitGroup
	objs := make([]storage.Object, 8)
	errs := make([]error, 8)
	for i := range objs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			obj, err := s.Put(t.Context(), "sha256/same", bytes.NewReader(data), int64(len(data)))
			if err == nil {
				obj, err = s.Seal(t.Context(), obj, time.Now().Add(time.Hour))
			}
			objs[i], errs[i] = obj, err
		}()
	}
	wg.Wait()
	for i := range objs {
		if errs[i] != nil {
			t.Fatalf("writer %d: %v", i, errs[i])
		}
		if !bytes.Equal(readAll(t, s, objs[i]), data) {
			t.Fatalf("writer %d reads different bytes", i)
		}
	}
}

// partSize is the size of the staged tests' parts: S3's minimum.
const partSize = 5 << 20

// appendParts appends data to st, after its parts, in parts of size (the
// last shorter), all at once, and returns st with the parts recorded.
func appendParts(t *testing.T, s storage.Store, st storage.Staged, data []byte, size int) storage.Staged {
	t.Helper()
	first, base := len(st.Parts), st.Size()
	n := (len(data) + size - 1) / size
	parts := make([]storage.Part, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			off := i * size
			parts[i], errs[i] = s.Append(t.Context(), st, first+i, base+int64(off), data[off:min(off+size, len(data))])
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Append part %d: %v", i, err)
		}
		if err := s.Sync(t.Context(), st); err != nil {
			t.Fatalf("Sync after part %d: %v", i, err)
		}
		if parts[i].Size != int64(min(size, len(data)-i*size)) {
			t.Fatalf("part %d: size %d", i, parts[i].Size)
		}
	}
	st.Parts = append(st.Parts, parts...)
	return st
}

// viaJSON is st as another process gets it: from the caller's session.
func viaJSON(t *testing.T, st storage.Staged) storage.Staged {
	t.Helper()
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var out storage.Staged
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func testStagedRoundTrip(t *testing.T, s storage.Store) {
	ctx := t.Context()
	data := randomBytes(t, 2*partSize+12345)
	key := "sha256/staged/rt"
	st, err := s.Stage(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if st.Key != key || st.Handle == "" {
		t.Fatalf("Stage returned %+v", st)
	}
	// Parts appended concurrently and out of order, the handle carried
	// through JSON between them as a session does.
	st = appendParts(t, s, st, data[:partSize], partSize)
	st = appendParts(t, s, viaJSON(t, st), data[partSize:], partSize)
	if st.Size() != int64(len(data)) {
		t.Fatalf("staged size %d, want %d", st.Size(), len(data))
	}
	mustNotExist(t, s, key) // a staged object is not an object yet
	obj, err := s.Complete(ctx, viaJSON(t, st))
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if obj.Key != key || obj.Size != int64(len(data)) || obj.Pending() == "" {
		t.Fatalf("Complete returned %+v", obj)
	}
	if ok, err := s.Exists(ctx, key); err != nil || !ok {
		t.Fatalf("Exists(%s) = %v, %v for a completed object", key, ok, err)
	}
	again := storage.Object{Backend: obj.Backend, Bucket: obj.Bucket, Key: obj.Key, VersionID: obj.VersionID, Size: obj.Size}.WithPending(obj.Pending())
	if !bytes.Equal(readAll(t, s, again), data) {
		t.Fatal("the completed pending object reads back different bytes")
	}
	// The handle is spent: no more parts, and aborting it keeps the object.
	if _, err := s.Append(ctx, st, len(st.Parts), st.Size(), []byte("more")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Append after Complete: %v, want ErrNotFound", err)
	}
	if err := s.Sync(ctx, st); err != nil && !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Sync after Complete: %v, want nil or ErrNotFound", err)
	}
	if err := s.Abort(ctx, st); err != nil {
		t.Fatalf("Abort after Complete: %v, want nil", err)
	}
	sealed, err := s.Seal(ctx, obj, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if sealed.RetainUntil.IsZero() || sealed.Pending() != "" {
		t.Fatalf("Seal returned %+v", sealed)
	}
	if !bytes.Equal(readAll(t, s, sealed), data) {
		t.Fatal("the sealed object reads back different bytes")
	}
	if err := s.Discard(ctx, sealed); !errors.Is(err, storage.ErrSealed) {
		t.Fatalf("Discard of a sealed staged object: %v, want ErrSealed", err)
	}
}

func testStagedOnePart(t *testing.T, s storage.Store) {
	ctx := t.Context()
	data := randomBytes(t, 10)
	st, err := s.Stage(ctx, "sha256/staged/one")
	if err != nil {
		t.Fatal(err)
	}
	st = appendParts(t, s, st, data, partSize)
	obj, err := s.Complete(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	obj, err = s.Seal(ctx, obj, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, s, obj), data) {
		t.Fatal("bytes differ")
	}
}

// testStagedReplaced: a process that died after appending a part but
// before recording it leaves the part behind; the next appends it again
// (other bytes, another size) and may never reach a part appended beyond:
// the object is exactly the recorded parts.
func testStagedReplaced(t *testing.T, s storage.Store) {
	ctx := t.Context()
	data := randomBytes(t, partSize+777)
	st, err := s.Stage(ctx, "sha256/staged/replaced")
	if err != nil {
		t.Fatal(err)
	}
	// Lost: part 1 with more bytes than it will have, and part 2.
	if _, err := s.Append(ctx, st, 1, partSize, randomBytes(t, partSize+4096)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, st, 2, 2*partSize+4096, randomBytes(t, 100)); err != nil {
		t.Fatal(err)
	}
	st = appendParts(t, s, st, data[:partSize], partSize)
	p, err := s.Append(ctx, st, 1, partSize, data[partSize:])
	if err != nil {
		t.Fatal(err)
	}
	st.Parts = append(st.Parts, p)
	obj, err := s.Complete(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if obj.Size != int64(len(data)) {
		t.Fatalf("size %d, want %d", obj.Size, len(data))
	}
	if !bytes.Equal(readAll(t, s, obj), data) {
		t.Fatal("the completed object is not exactly its recorded parts")
	}
	if err := s.Discard(ctx, obj); err != nil {
		t.Fatal(err)
	}
}

func testStagedDiscard(t *testing.T, s storage.Store) {
	ctx := t.Context()
	st, err := s.Stage(ctx, "sha256/staged/discarded")
	if err != nil {
		t.Fatal(err)
	}
	st = appendParts(t, s, st, randomBytes(t, 1000), partSize)
	obj, err := s.Complete(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Discard(ctx, obj); err != nil {
		t.Fatal(err)
	}
	mustNotExist(t, s, "sha256/staged/discarded")
	if _, err := s.Open(ctx, obj); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Open after Discard: %v, want ErrNotFound", err)
	}
}

func testStagedAbort(t *testing.T, s storage.Store) {
	ctx := t.Context()
	st, err := s.Stage(ctx, "sha256/staged/aborted")
	if err != nil {
		t.Fatal(err)
	}
	st = appendParts(t, s, st, randomBytes(t, 1000), partSize)
	if err := s.Abort(ctx, viaJSON(t, st)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, st, 1, 1000, []byte("x")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Append after Abort: %v, want ErrNotFound", err)
	}
	if _, err := s.Complete(ctx, st); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Complete after Abort: %v, want ErrNotFound", err)
	}
	if err := s.Abort(ctx, st); err != nil {
		t.Fatalf("Abort twice: %v, want nil", err)
	}
	mustNotExist(t, s, "sha256/staged/aborted")
}

// testStagedSmallPart: a store with a minimum part size refuses to
// complete an object with a smaller part before the last.
func testStagedSmallPart(t *testing.T, s storage.Store) {
	min := s.MinPartSize()
	if min <= 1 {
		t.Skip("no minimum part size")
	}
	ctx := t.Context()
	st, err := s.Stage(ctx, "sha256/staged/small")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Abort(context.WithoutCancel(ctx), st)
	st = appendParts(t, s, st, randomBytes(t, int(min)), int(min-1))
	if _, err := s.Complete(ctx, st); err == nil {
		t.Fatalf("a part of %d bytes before the last, under the minimum of %d, completed", min-1, min)
	}
}
