// Package storage defines where evidence bytes live: a small write-once
// object store interface, its contract, and the errors its backends share.
// Backends are one package each (storage/disk, storage/s3, and storage/mem
// for unit tests); every backend passes the shared suite in
// storage/storagetest.
//
// Writing is two-phase. Put streams the bytes into a pending object that no
// read path references; the caller checks what it received (its digest),
// then either Seals the object, which makes it immutable until a retention
// date, or Discards it. A crash between the two leaves at worst an
// unreferenced pending object, never a referenced one that can change.
//
// Staging (Stager) is the other way to make a pending object: from parts
// that arrive over time, each durable when it is appended, possibly in
// different processes, then completed into a pending object without
// copying its bytes (an S3 multipart upload; on disk, one file written at
// offsets). Resumable uploads use it so an item's bytes are written once.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Store keeps evidence objects. Implementations are safe for concurrent use.
type Store interface {
	// Put reads r until EOF (or exactly size bytes when size >= 0) and
	// keeps them as a pending object under key. If r returns an error, or
	// ctx ends, nothing is kept and Put returns the error (wrapping r's).
	// A pending object must be Sealed or Discarded.
	Put(ctx context.Context, key string, r io.Reader, size int64) (Object, error)

	// Seal makes a pending object immutable until retainUntil: nobody,
	// including the operator through this service, can change or delete it
	// before then. It returns the object as stored (with its version).
	Seal(ctx context.Context, obj Object, retainUntil time.Time) (Object, error)

	// Discard removes a pending object. It fails with ErrSealed for a
	// sealed one.
	Discard(ctx context.Context, obj Object) error

	// Open reads exactly the bytes of obj: as Put kept them for a pending
	// object, as it was sealed for a sealed one (the recorded version, not
	// whatever now sits under its key). It fails with ErrNotFound when
	// that version is gone (a pending object after Discard).
	Open(ctx context.Context, obj Object) (io.ReadCloser, error)

	// Exists reports whether any object, pending or sealed, is kept under key.
	Exists(ctx context.Context, key string) (bool, error)

	Stager
}

// Stager builds a pending object from parts appended over time: the
// store's side of a resumable upload. Its contract:
//
//   - Stage starts a staged object that will complete under key and
//     returns its handle. The caller persists the handle (it is plain
//     JSON), appends Parts to it as Append returns them, and passes it
//     back, from any process sharing the store, until it calls Complete or
//     Abort. A staged object is not an object: Exists, Open and Seal do
//     not see it.
//   - Append stores data as part i (0-based) of st, starting at byte off,
//     which is the sum of the sizes of parts 0..i-1 as the caller will
//     complete them. Parts may be appended concurrently. Appending part i
//     again replaces it: a caller that lost track of a part (a crash
//     before it persisted the handle) appends it again from its last
//     persisted state. Every part but the last must be at least
//     MinPartSize bytes; data is not retained after Append returns.
//   - Sync makes every part appended to st before it durable: they
//     survive a crash of this process and of the store's machine. A
//     caller persists a handle naming a part only after a Sync that
//     followed the part's Append. (S3: an acknowledged UploadPart is durable already, and
//     Sync does nothing; disk: one fsync of the staged file for however
//     many parts were written since the last.)
//   - Complete makes exactly st.Parts, in order, a durable pending
//     object under st.Key, without copying their bytes; parts appended but not in
//     st.Parts are dropped. The object is then Sealed or Discarded like
//     one Put returned, and st is gone: Append, Complete and Abort on it
//     fail with ErrNotFound. At least one part is needed.
//   - Abort removes a staged object and its parts. Aborting one that is
//     gone (aborted, completed) returns nil.
//
// Nothing removes a staged object but Complete or Abort: its owner
// (the upload session) must abort it when it gives up or expires.
type Stager interface {
	// MinPartSize is the smallest size of any part but the last.
	MinPartSize() int64
	Stage(ctx context.Context, key string) (Staged, error)
	Append(ctx context.Context, st Staged, i int, off int64, data []byte) (Part, error)
	Sync(ctx context.Context, st Staged) error
	Complete(ctx context.Context, st Staged) (Object, error)
	Abort(ctx context.Context, st Staged) error
}

// Staged is the handle of a staged object: what a caller persists between
// appends. Backends fill Key, Handle and each Part; callers append the
// Parts Append returns, in order.
type Staged struct {
	Backend string `json:"backend"`
	Key     string `json:"key"`
	// Handle is the backend's own: the S3 multipart upload id, or the
	// staged file's path on disk.
	Handle string `json:"handle"`
	Parts  []Part `json:"parts,omitempty"`
}

// Part is one appended part as the backend needs it to complete the
// object.
type Part struct {
	Size int64 `json:"size"`
	// ETag is S3's name for the part's bytes, and CRC32C (base64) the
	// checksum S3 checked them against; empty elsewhere.
	ETag   string `json:"etag,omitempty"`
	CRC32C string `json:"crc32c,omitempty"`
}

// Size is the number of bytes in st's parts.
func (st Staged) Size() int64 {
	var n int64
	for _, p := range st.Parts {
		n += p.Size
	}
	return n
}

// KeepPendingPrefix marks keys whose pending objects outlive a restart:
// resumable upload sessions keep their pieces there and discard them
// themselves. Other pending objects a crash left behind may be removed
// when a store opens.
const KeepPendingPrefix = "uploads/"

// Object names one stored object version.
type Object struct {
	// Backend is "disk" or "s3".
	Backend string
	// Bucket is the S3 bucket; empty on disk.
	Bucket string
	// Key is the object key.
	Key string
	// VersionID is the S3 version written; empty on disk.
	VersionID string
	// Size is the number of bytes stored.
	Size int64
	// RetainUntil is set once the object is sealed.
	RetainUntil time.Time

	// pending is the backend's handle for an unsealed object.
	pending string
}

// WithPending returns obj carrying a backend's pending handle. Only
// backends call it.
func (o Object) WithPending(handle string) Object {
	o.pending = handle
	return o
}

// Pending returns the backend's pending handle, empty once sealed.
func (o Object) Pending() string { return o.pending }

// Errors every backend returns, wrapped with detail.
var (
	ErrNotFound     = errors.New("object not found")
	ErrSealed       = errors.New("object is sealed and cannot be removed")
	ErrUnavailable  = errors.New("storage unavailable")
	ErrInvalidKey   = errors.New("invalid object key")
	ErrSizeMismatch = errors.New("object size differs from the declared size")
	ErrNoSpace      = errors.New("storage is full")
)

// CheckKey validates an object key: 1-512 characters of [a-z0-9._/-], no
// empty, "." or ".." segment, no leading or trailing slash. Keys are made
// by the service, never by callers, but backends check them anyway so no
// key can escape a disk root.
func CheckKey(key string) error {
	if key == "" || len(key) > 512 {
		return fmt.Errorf("%w: length %d", ErrInvalidKey, len(key))
	}
	for _, c := range key {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '/' || c == '-') {
			return fmt.Errorf("%w: %q has %q", ErrInvalidKey, key, c)
		}
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w: %q has an empty, . or .. segment", ErrInvalidKey, key)
		}
	}
	return nil
}
