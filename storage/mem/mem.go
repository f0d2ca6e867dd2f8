// Package mem is an in-memory evidence store for unit tests and examples:
// it keeps the storage.Store contract (it passes storage/storagetest, the
// suite the disk and S3 stores pass) with nothing on disk and no server.
// Nothing survives the process; do not keep evidence in it.
package mem

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/custody-dev/custody/storage"
)

// Store is a storage.Store in memory. The zero value is not usable; call New.
type Store struct {
	mu      sync.Mutex
	sealed  map[string][]byte         // key -> sealed bytes
	pending map[string][]byte         // pending handle -> bytes
	staged  map[string]map[int][]byte // staged handle -> part -> bytes
}

var _ storage.Store = (*Store)(nil)

// New returns an empty Store.
func New() *Store {
	return &Store{sealed: map[string][]byte{}, pending: map[string][]byte{}, staged: map[string]map[int][]byte{}}
}

// MinPartSize is S3's, so code staged on mem would complete on S3.
const MinPartSize = 5 << 20

// MinPartSize implements storage.Stager.
func (s *Store) MinPartSize() int64 { return MinPartSize }

// Stage implements storage.Stager.
func (s *Store) Stage(ctx context.Context, key string) (storage.Staged, error) {
	if err := storage.CheckKey(key); err != nil {
		return storage.Staged{}, err
	}
	var suffix [8]byte
	rand.Read(suffix[:])
	handle := key + ".staged-" + hex.EncodeToString(suffix[:])
	s.mu.Lock()
	s.staged[handle] = map[int][]byte{}
	s.mu.Unlock()
	return storage.Staged{Backend: "mem", Key: key, Handle: handle}, nil
}

// Append implements storage.Stager.
func (s *Store) Append(ctx context.Context, st storage.Staged, i int, off int64, data []byte) (storage.Part, error) {
	if err := ctx.Err(); err != nil {
		return storage.Part{}, err
	}
	if i < 0 || off < 0 {
		return storage.Part{}, fmt.Errorf("append to %s: part %d at %d", st.Key, i, off)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	parts, ok := s.staged[st.Handle]
	if !ok {
		return storage.Part{}, fmt.Errorf("append to %s: %w: no staged object %s", st.Key, storage.ErrNotFound, st.Handle)
	}
	parts[i] = bytes.Clone(data)
	return storage.Part{Size: int64(len(data))}, nil
}

// Sync implements storage.Stager.
func (s *Store) Sync(ctx context.Context, st storage.Staged) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.staged[st.Handle]; !ok {
		return fmt.Errorf("sync %s: %w: no staged object %s", st.Key, storage.ErrNotFound, st.Handle)
	}
	return nil
}

// Complete implements storage.Stager.
func (s *Store) Complete(ctx context.Context, st storage.Staged) (storage.Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	parts, ok := s.staged[st.Handle]
	if !ok {
		return storage.Object{}, fmt.Errorf("complete %s: %w: no staged object %s", st.Key, storage.ErrNotFound, st.Handle)
	}
	if len(st.Parts) == 0 {
		return storage.Object{}, fmt.Errorf("complete %s: no parts", st.Key)
	}
	var buf bytes.Buffer
	for i, p := range st.Parts {
		data, ok := parts[i]
		if !ok || int64(len(data)) != p.Size {
			return storage.Object{}, fmt.Errorf("complete %s: part %d: %w: %d bytes stored, %d stated", st.Key, i, storage.ErrSizeMismatch, len(data), p.Size)
		}
		if i < len(st.Parts)-1 && p.Size < MinPartSize {
			return storage.Object{}, fmt.Errorf("complete %s: part %d has %d bytes, under the minimum of %d", st.Key, i, p.Size, MinPartSize)
		}
		buf.Write(data)
	}
	delete(s.staged, st.Handle)
	handle := st.Key + ".pending-" + st.Handle[len(st.Key)+len(".staged-"):]
	s.pending[handle] = buf.Bytes()
	return storage.Object{Backend: "mem", Key: st.Key, Size: int64(buf.Len())}.WithPending(handle), nil
}

// Abort implements storage.Stager.
func (s *Store) Abort(ctx context.Context, st storage.Staged) error {
	s.mu.Lock()
	delete(s.staged, st.Handle)
	s.mu.Unlock()
	return nil
}

// StagedCount is how many staged objects are neither completed nor
// aborted, for tests.
func (s *Store) StagedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.staged)
}

// Put implements storage.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) (storage.Object, error) {
	if err := storage.CheckKey(key); err != nil {
		return storage.Object{}, err
	}
	var buf bytes.Buffer
	cr := &contextReader{ctx: ctx, r: r}
	var err error
	if size < 0 {
		_, err = io.Copy(&buf, cr)
	} else {
		var n int64
		n, err = io.CopyN(&buf, cr, size)
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("%w: got %d bytes, declared %d", storage.ErrSizeMismatch, n, size)
		}
	}
	if err != nil {
		return storage.Object{}, err
	}
	var suffix [8]byte
	rand.Read(suffix[:])
	handle := key + ".pending-" + hex.EncodeToString(suffix[:])
	s.mu.Lock()
	s.pending[handle] = buf.Bytes()
	s.mu.Unlock()
	return storage.Object{Backend: "mem", Key: key, Size: int64(buf.Len())}.WithPending(handle), nil
}

// Seal implements storage.Store. If the key is already sealed (the same
// content, since keys are content addresses) the sealed bytes are kept.
func (s *Store) Seal(ctx context.Context, obj storage.Object, retainUntil time.Time) (storage.Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, ok := s.pending[obj.Pending()]
	if obj.Pending() == "" || !ok {
		return obj, fmt.Errorf("seal %s: %w", obj.Key, storage.ErrSealed)
	}
	delete(s.pending, obj.Pending())
	if _, ok := s.sealed[obj.Key]; !ok {
		s.sealed[obj.Key] = data
	}
	obj.RetainUntil = retainUntil
	return obj.WithPending(""), nil
}

// Discard implements storage.Store.
func (s *Store) Discard(ctx context.Context, obj storage.Object) error {
	if obj.Pending() == "" {
		return fmt.Errorf("discard %s: %w", obj.Key, storage.ErrSealed)
	}
	s.mu.Lock()
	delete(s.pending, obj.Pending())
	s.mu.Unlock()
	return nil
}

// Open implements storage.Store.
func (s *Store) Open(ctx context.Context, obj storage.Object) (io.ReadCloser, error) {
	if err := storage.CheckKey(obj.Key); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var data []byte
	var ok bool
	if p := obj.Pending(); p != "" {
		data, ok = s.pending[p]
	} else {
		data, ok = s.sealed[obj.Key]
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", storage.ErrNotFound, obj.Key)
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// Exists implements storage.Store.
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	if err := storage.CheckKey(key); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sealed[key]; ok {
		return true, nil
	}
	prefix := key + ".pending-"
	for h := range s.pending {
		if len(h) > len(prefix) && h[:len(prefix)] == prefix {
			return true, nil
		}
	}
	return false, nil
}

type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
