package daemon

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/custody-dev/custody/storage"
)

var storageErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "custody_storage_errors_total",
	Help: "Evidence storage calls that failed, by operation (put, seal, discard, open, read, exists, stage, append, sync, complete, abort) and kind (unavailable, full, not_found, other); callers that went away are not counted.",
}, []string{"op", "kind"})

// meteredStore counts a store's failures for /metrics, so an operator can
// alert on storage going bad before users report it.
type meteredStore struct{ storage.Store }

func countStorageError(op string, err error) {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, io.EOF) {
		return
	}
	kind := "other"
	switch {
	case errors.Is(err, storage.ErrUnavailable):
		kind = "unavailable"
	case errors.Is(err, storage.ErrNoSpace):
		kind = "full"
	case errors.Is(err, storage.ErrNotFound):
		kind = "not_found"
	}
	storageErrors.WithLabelValues(op, kind).Inc()
}

func (m meteredStore) Put(ctx context.Context, key string, r io.Reader, size int64) (storage.Object, error) {
	obj, err := m.Store.Put(ctx, key, r, size)
	countStorageError("put", err)
	return obj, err
}

func (m meteredStore) Seal(ctx context.Context, obj storage.Object, retainUntil time.Time) (storage.Object, error) {
	obj, err := m.Store.Seal(ctx, obj, retainUntil)
	countStorageError("seal", err)
	return obj, err
}

func (m meteredStore) Discard(ctx context.Context, obj storage.Object) error {
	err := m.Store.Discard(ctx, obj)
	countStorageError("discard", err)
	return err
}

func (m meteredStore) Open(ctx context.Context, obj storage.Object) (io.ReadCloser, error) {
	rc, err := m.Store.Open(ctx, obj)
	countStorageError("open", err)
	if err != nil {
		return nil, err
	}
	return meteredReader{rc}, nil
}

func (m meteredStore) Exists(ctx context.Context, key string) (bool, error) {
	ok, err := m.Store.Exists(ctx, key)
	countStorageError("exists", err)
	return ok, err
}

func (m meteredStore) Stage(ctx context.Context, key string) (storage.Staged, error) {
	st, err := m.Store.Stage(ctx, key)
	countStorageError("stage", err)
	return st, err
}

func (m meteredStore) Append(ctx context.Context, st storage.Staged, i int, off int64, data []byte) (storage.Part, error) {
	p, err := m.Store.Append(ctx, st, i, off, data)
	countStorageError("append", err)
	return p, err
}

func (m meteredStore) Sync(ctx context.Context, st storage.Staged) error {
	err := m.Store.Sync(ctx, st)
	countStorageError("sync", err)
	return err
}

func (m meteredStore) Complete(ctx context.Context, st storage.Staged) (storage.Object, error) {
	obj, err := m.Store.Complete(ctx, st)
	countStorageError("complete", err)
	return obj, err
}

func (m meteredStore) Abort(ctx context.Context, st storage.Staged) error {
	err := m.Store.Abort(ctx, st)
	countStorageError("abort", err)
	return err
}

// meteredReader counts a read that fails part-way.
type meteredReader struct{ io.ReadCloser }

func (r meteredReader) Read(b []byte) (int, error) {
	n, err := r.ReadCloser.Read(b)
	countStorageError("read", err)
	return n, err
}
