// Package disk is the local-disk evidence store, custodyd's embedded
// default under <data-dir>/blobs. An object is a file at <root>/<key>,
// written to a pending file beside it, fsynced, made read-only and renamed
// into place on Seal, with the folder fsynced after. Disk cannot enforce
// retention against the machine's administrator; the service detects any
// change by re-hashing on every read.
//
// A staged object (storage.Stager) is a file beside its key too,
// <key>.staged-<random>: each part is written at its offset, and Sync
// fsyncs the file; Complete cuts the file to the parts' total (bytes
// of a part written but never recorded, by a process that died, go) and
// makes it the pending object, which Seal renames into place as any other.
// Staged files outlive a restart (pending ones do not): their upload
// sessions abort them.
package disk

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/custody-dev/custody/internal/atomicfile"
	"github.com/custody-dev/custody/storage"
)

// Store is a storage.Store on a local folder.
type Store struct {
	root string
}

// New returns a Store rooted at root, creating it (mode 0700) if needed,
// and removes pending files a crash left behind.
func New(root string) (*Store, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	s := &Store{root: root}
	return s, s.removeStalePending()
}

const (
	pendingInfix = ".pending-"
	// stagedInfix names a staged file, completeInfix one completed into a
	// pending object; both outlive a restart.
	stagedInfix   = ".staged-"
	completeInfix = ".complete-"
)

// pendingOf reports whether handle names a pending file of final.
func pendingOf(handle, final string) bool {
	for _, infix := range []string{pendingInfix, completeInfix} {
		if rest, ok := strings.CutPrefix(handle, final+infix); ok && rest != "" && !strings.ContainsAny(rest, "/\\") {
			return true
		}
	}
	return false
}

func (s *Store) path(key string) (string, error) {
	if err := storage.CheckKey(key); err != nil {
		return "", err
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

// Put implements storage.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) (storage.Object, error) {
	final, err := s.path(key)
	if err != nil {
		return storage.Object{}, err
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
		return storage.Object{}, classify(err)
	}
	var suffix [8]byte
	rand.Read(suffix[:])
	pending := final + pendingInfix + hex.EncodeToString(suffix[:])
	f, err := os.OpenFile(pending, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return storage.Object{}, classify(err)
	}
	n, err := copyContext(ctx, f, r, size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(pending)
		return storage.Object{}, classify(err)
	}
	return storage.Object{Backend: "disk", Key: key, Size: n}.WithPending(pending), nil
}

// copyContext copies r to w, exactly size bytes when size >= 0, stopping
// when ctx ends.
func copyContext(ctx context.Context, w io.Writer, r io.Reader, size int64) (int64, error) {
	cr := &contextReader{ctx: ctx, r: r}
	if size < 0 {
		return io.Copy(w, cr)
	}
	n, err := io.CopyN(w, cr, size)
	if errors.Is(err, io.EOF) {
		return n, fmt.Errorf("%w: got %d bytes, declared %d", storage.ErrSizeMismatch, n, size)
	}
	return n, err
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

// Seal implements storage.Store: the pending file becomes read-only and
// takes the key's place. If a sealed file already holds the key (the same
// content, since keys are content addresses) it is kept and the pending
// copy removed.
func (s *Store) Seal(ctx context.Context, obj storage.Object, retainUntil time.Time) (storage.Object, error) {
	pending := obj.Pending()
	if pending == "" {
		return obj, fmt.Errorf("seal %s: %w", obj.Key, storage.ErrSealed)
	}
	final, err := s.path(obj.Key)
	if err != nil {
		return obj, err
	}
	if err := os.Chmod(pending, 0o400); err != nil {
		return obj, classify(err)
	}
	if _, err := os.Stat(final); err == nil {
		os.Remove(pending)
	} else if err := os.Rename(pending, final); err != nil {
		return obj, classify(err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(final)); err != nil {
		return obj, classify(err)
	}
	obj.RetainUntil = retainUntil
	return obj.WithPending(""), nil
}

// Discard implements storage.Store.
func (s *Store) Discard(ctx context.Context, obj storage.Object) error {
	if obj.Pending() == "" {
		return fmt.Errorf("discard %s: %w", obj.Key, storage.ErrSealed)
	}
	final, err := s.path(obj.Key)
	if err != nil {
		return err
	}
	if p := obj.Pending(); !pendingOf(p, final) {
		return fmt.Errorf("%w: pending handle %q is not of key %q", storage.ErrInvalidKey, p, obj.Key)
	}
	if err := os.Remove(obj.Pending()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return classify(err)
	}
	return nil
}

// MinPartSize implements storage.Stager: parts of any size.
func (s *Store) MinPartSize() int64 { return 0 }

// Stage implements storage.Stager with an empty staged file beside key.
func (s *Store) Stage(ctx context.Context, key string) (storage.Staged, error) {
	final, err := s.path(key)
	if err != nil {
		return storage.Staged{}, err
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
		return storage.Staged{}, classify(err)
	}
	var suffix [8]byte
	rand.Read(suffix[:])
	staged := final + stagedInfix + hex.EncodeToString(suffix[:])
	f, err := os.OpenFile(staged, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return storage.Staged{}, classify(err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// The file's name must outlive a crash as the handle does.
		err = atomicfile.SyncDir(filepath.Dir(final))
	}
	if err != nil {
		os.Remove(staged)
		return storage.Staged{}, classify(err)
	}
	return storage.Staged{Backend: "disk", Key: key, Handle: staged}, nil
}

// stagedPath checks that st's handle is a staged file of its key.
func (s *Store) stagedPath(st storage.Staged) (string, error) {
	final, err := s.path(st.Key)
	if err != nil {
		return "", err
	}
	if rest, ok := strings.CutPrefix(st.Handle, final+stagedInfix); !ok || rest == "" || strings.ContainsAny(rest, "/\\") {
		return "", fmt.Errorf("%w: staged handle %q is not of key %q", storage.ErrInvalidKey, st.Handle, st.Key)
	}
	return st.Handle, nil
}

// Append implements storage.Stager: data written at off (Sync fsyncs).
func (s *Store) Append(ctx context.Context, st storage.Staged, i int, off int64, data []byte) (storage.Part, error) {
	path, err := s.stagedPath(st)
	if err != nil {
		return storage.Part{}, err
	}
	if i < 0 || off < 0 {
		return storage.Part{}, fmt.Errorf("append to %s: part %d at %d", st.Key, i, off)
	}
	if err := ctx.Err(); err != nil {
		return storage.Part{}, err
	}
	// No O_CREATE: a completed or aborted staged file is gone.
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return storage.Part{}, classify(err)
	}
	_, err = f.WriteAt(data, off)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return storage.Part{}, classify(err)
	}
	return storage.Part{Size: int64(len(data))}, nil
}

// Sync implements storage.Stager: an fsync of the staged file.
func (s *Store) Sync(ctx context.Context, st storage.Staged) error {
	path, err := s.stagedPath(st)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return classify(err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return classify(err)
}

// Complete implements storage.Stager: the staged file, cut to its parts,
// is renamed <key>.complete-<random>, the pending object (Seal renames it
// into place).
func (s *Store) Complete(ctx context.Context, st storage.Staged) (storage.Object, error) {
	path, err := s.stagedPath(st)
	if err != nil {
		return storage.Object{}, err
	}
	final, _ := s.path(st.Key)
	if len(st.Parts) == 0 {
		return storage.Object{}, fmt.Errorf("complete %s: no parts", st.Key)
	}
	size := st.Size()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return storage.Object{}, classify(err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return storage.Object{}, classify(err)
	}
	if info.Size() < size {
		return storage.Object{}, fmt.Errorf("complete %s: %w: the staged file holds %d bytes, its parts %d", st.Key, storage.ErrSizeMismatch, info.Size(), size)
	}
	if info.Size() > size {
		if err := f.Truncate(size); err != nil {
			return storage.Object{}, classify(err)
		}
	}
	if err := f.Sync(); err != nil {
		return storage.Object{}, classify(err)
	}
	complete := final + completeInfix + path[len(final+stagedInfix):]
	if err := os.Rename(path, complete); err != nil {
		return storage.Object{}, classify(err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(final)); err != nil {
		return storage.Object{}, classify(err)
	}
	return storage.Object{Backend: "disk", Key: st.Key, Size: size}.WithPending(complete), nil
}

// Abort implements storage.Stager.
func (s *Store) Abort(ctx context.Context, st storage.Staged) error {
	path, err := s.stagedPath(st)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return classify(err)
	}
	return nil
}

// Open implements storage.Store.
func (s *Store) Open(ctx context.Context, obj storage.Object) (io.ReadCloser, error) {
	final, err := s.path(obj.Key)
	if err != nil {
		return nil, err
	}
	path := final
	if p := obj.Pending(); p != "" {
		// A pending object's bytes are beside its final path.
		if !pendingOf(p, final) {
			return nil, fmt.Errorf("%w: pending handle %q is not of key %q", storage.ErrInvalidKey, p, obj.Key)
		}
		path = p
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, classify(err)
	}
	return f, nil
}

// Exists implements storage.Store.
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	final, err := s.path(key)
	if err != nil {
		return false, err
	}
	if _, err := os.Stat(final); err == nil {
		return true, nil
	}
	for _, infix := range []string{pendingInfix, completeInfix} {
		pending, err := filepath.Glob(final + infix + "*")
		if err != nil || len(pending) > 0 {
			return len(pending) > 0, err
		}
	}
	return false, nil
}

// removeStalePending removes pending files a crash left behind, except
// those of upload sessions (storage.KeepPendingPrefix). Staged files are
// not pending files: their sessions complete or abort them.
func (s *Store) removeStalePending() error {
	keep := filepath.Join(s.root, filepath.FromSlash(strings.TrimSuffix(storage.KeepPendingPrefix, "/")))
	return filepath.WalkDir(s.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path == keep {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.Contains(d.Name(), pendingInfix) {
			return os.Remove(path)
		}
		return nil
	})
}

// classify wraps file-system errors in the storage errors callers map.
func classify(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %v", storage.ErrNotFound, err)
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("%w: %v", storage.ErrNoSpace, err)
	}
	return err
}
