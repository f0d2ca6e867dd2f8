// Package mem is an in-memory storage.Store for unit tests of the domain
// (as sumdb keeps mem.go beside its storage interface): it keeps the same
// contract as the disk and S3 backends — it passes storage/storagetest —
// but nothing survives the process. Never used by custodyd.
package mem

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/custody-dev/custody/storage"
)

// Store is an in-memory store. The zero value is not usable; call New.
type Store struct {
	mu      sync.Mutex
	sealed  map[string][]byte // key -> bytes
	pending map[string][]byte // handle -> bytes
}

// New returns an empty store.
func New() *Store {
	return &Store{sealed: map[string][]byte{}, pending: map[string][]byte{}}
}

var _ storage.Store = (*Store)(nil)

// Put implements storage.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) (storage.Object, error) {
	if err := storage.CheckKey(key); err != nil {
		return storage.Object{}, err
	}
	var buf bytes.Buffer
	src := r
	if size >= 0 {
		src = io.LimitReader(r, size+1)
	}
	if _, err := io.Copy(&buf, ctxReader{ctx, src}); err != nil {
		return storage.Object{}, err
	}
	if size >= 0 && int64(buf.Len()) != size {
		return storage.Object{}, fmt.Errorf("%w: %d bytes, declared %d", storage.ErrSizeMismatch, buf.Len(), size)
	}
	var suffix [8]byte
	rand.Read(suffix[:])
	handle := key + ".pending-" + hex.EncodeToString(suffix[:])
	s.mu.Lock()
	s.pending[handle] = buf.Bytes()
	s.mu.Unlock()
	return storage.Object{Backend: "mem", Key: key, Size: int64(buf.Len())}.WithPending(handle), nil
}

// Seal implements storage.Store. Keys are content addresses: if the key is
// sealed already, the stored bytes stay and the pending ones are dropped.
func (s *Store) Seal(ctx context.Context, obj storage.Object, retainUntil time.Time) (storage.Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.pending[obj.Pending()]
	if !ok {
		return storage.Object{}, fmt.Errorf("%w: no pending object %q", storage.ErrNotFound, obj.Key)
	}
	delete(s.pending, obj.Pending())
	if _, exists := s.sealed[obj.Key]; !exists {
		s.sealed[obj.Key] = b
	}
	obj.RetainUntil = retainUntil
	return obj.WithPending(""), nil
}

// Discard implements storage.Store.
func (s *Store) Discard(ctx context.Context, obj storage.Object) error {
	if obj.Pending() == "" {
		return fmt.Errorf("%w: %s", storage.ErrSealed, obj.Key)
	}
	s.mu.Lock()
	delete(s.pending, obj.Pending())
	s.mu.Unlock()
	return nil
}

// Open implements storage.Store.
func (s *Store) Open(ctx context.Context, obj storage.Object) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.sealed[obj.Key]
	if p := obj.Pending(); p != "" {
		b, ok = s.pending[p]
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", storage.ErrNotFound, obj.Key)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// Exists implements storage.Store.
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sealed[key]; ok {
		return true, nil
	}
	for h := range s.pending {
		if strings.HasPrefix(h, key+".pending-") {
			return true, nil
		}
	}
	return false, nil
}

// Corrupt replaces a sealed object's bytes, as a damaged disk or an
// attacker with storage access would: for tests of re-verification.
func (s *Store) Corrupt(key string, b []byte) {
	s.mu.Lock()
	s.sealed[key] = b
	s.mu.Unlock()
}

// ctxReader fails a read once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
