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
