// Package s3 is the S3-compatible evidence store (MinIO, AWS S3 and
// others), through minio-go. The bucket has versioning and Object Lock; an
// object is written as a new version, and sealing puts a compliance-mode
// retention on exactly that version, so nobody can delete or overwrite it
// before the retention date. Reads name the recorded version: a later PUT to
// the same key adds a version and never changes what is read.
package s3

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/custody-dev/custody/storage"
)

// Config says how to reach the bucket. Credentials are never logged.
type Config struct {
	// Endpoint is host:port of the S3 API.
	Endpoint string
	Bucket   string
	Region   string
	// AccessKey and SecretKey are static credentials; when both are empty
	// the AWS environment and instance credential chain is used.
	AccessKey string
	SecretKey string
	// Insecure uses plain HTTP (local test servers only).
	Insecure bool
	// StartupWait bounds how long New waits for a server that is not
	// answering yet (default DefaultStartupWait); OnRetry hears of each
	// failed attempt.
	StartupWait time.Duration
	OnRetry     func(error)
	// IdleTimeout fails a connection on which no byte moved for this long
	// (default DefaultIdleTimeout).
	IdleTimeout time.Duration
	// PartSize is the multipart part size (default 8 MiB).
	PartSize uint64
	// PartsInFlight is how many parts of one upload are sent at once
	// (default 3). An upload buffers at most PartSize × PartsInFlight.
	PartsInFlight uint
}

// DefaultPartSize and DefaultPartsInFlight bound an upload's buffers to
// 24 MiB while keeping the link to storage busy.
const (
	DefaultPartSize      = 8 << 20
	DefaultPartsInFlight = 3
)

// Store is a storage.Store on an S3 bucket.
type Store struct {
	client   *minio.Client
	bucket   string
	partSize uint64
	threads  uint
}

// New connects to the bucket, creating it with Object Lock (and so
// versioning) when it does not exist, and refuses a bucket without Object
// Lock.
func New(ctx context.Context, cfg Config) (*Store, error) {
	var creds *credentials.Credentials
	if cfg.AccessKey != "" || cfg.SecretKey != "" {
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")
	} else {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{}, &credentials.EnvMinio{}, &credentials.IAM{},
		})
	}
	rt, err := transport(cfg.Insecure, cmp.Or(cfg.IdleTimeout, DefaultIdleTimeout))
	if err != nil {
		return nil, err
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{Creds: creds, Secure: !cfg.Insecure, Region: cfg.Region, Transport: rt})
	if err != nil {
		return nil, fmt.Errorf("s3 endpoint %q: %w", cfg.Endpoint, err)
	}
	s := &Store{client: client, bucket: cfg.Bucket, partSize: cfg.PartSize, threads: cfg.PartsInFlight}
	if s.partSize == 0 {
		s.partSize = DefaultPartSize
	}
	if s.threads == 0 {
		s.threads = DefaultPartsInFlight
	}
	// A server still starting (MinIO initialising its drives, a
	// load balancer with no backend yet) is waited for, up to
	// StartupWait; any other error is final.
	deadline := time.Now().Add(cmp.Or(cfg.StartupWait, DefaultStartupWait))
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		err := s.ensureBucket(ctx, cfg.Region)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, storage.ErrUnavailable) || time.Now().Add(wait).After(deadline) {
			return nil, err
		}
		if cfg.OnRetry != nil {
			cfg.OnRetry(err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// DefaultStartupWait is how long New waits for an unavailable server.
const DefaultStartupWait = 2 * time.Minute

// Client returns the minio-go client, for tests and benchmarks that need
// the raw API.
func (s *Store) Client() *minio.Client { return s.client }

func (s *Store) ensureBucket(ctx context.Context, region string) error {
	exists, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return classify(err, "bucket %q", s.bucket)
	}
	if !exists {
		err := s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: region, ObjectLocking: true})
		if err != nil && minio.ToErrorResponse(err).Code != "BucketAlreadyOwnedByYou" {
			return classify(err, "creating bucket %q with Object Lock", s.bucket)
		}
	}
	enabled, _, _, _, err := s.client.GetObjectLockConfig(ctx, s.bucket)
	if err != nil || enabled != "Enabled" {
		return fmt.Errorf("bucket %q has no Object Lock (%v); evidence needs write-once retention: use a bucket created with Object Lock, or let custodyd create it", s.bucket, err)
	}
	return nil
}

// Put implements storage.Store. The object is written as a new version
// without retention; Seal adds it.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) (storage.Object, error) {
	if err := storage.CheckKey(key); err != nil {
		return storage.Object{}, err
	}
	rec := &errRecorder{r: r}
	opts := minio.PutObjectOptions{
		ContentType: "application/octet-stream",
		PartSize:    s.partSize,
		// The service hashes every byte with SHA-256 itself and checks it
		// against the client's digest; signing the payload again would
		// hash it twice more.
		DisableContentSha256: true,
	}
	if size < 0 || uint64(size) > s.partSize {
		// Fill parts from the stream one after another and send up to
		// threads of them at once, instead of waiting for each.
		opts.ConcurrentStreamParts, opts.NumThreads = true, s.threads
	}
	info, err := s.client.PutObject(ctx, s.bucket, key, rec, size, opts)
	if err != nil {
		if rec.err != nil {
			// The HTTP client may hide the reader's error; return it.
			return storage.Object{}, fmt.Errorf("put %s: %w", key, rec.err)
		}
		return storage.Object{}, classify(err, "put %s", key)
	}
	if info.VersionID == "" {
		return storage.Object{}, fmt.Errorf("put %s: bucket %q returned no version id; versioning must be enabled", key, s.bucket)
	}
	if size >= 0 && info.Size != size {
		s.client.RemoveObject(context.WithoutCancel(ctx), s.bucket, key, minio.RemoveObjectOptions{VersionID: info.VersionID})
		return storage.Object{}, fmt.Errorf("put %s: %w: stored %d, declared %d", key, storage.ErrSizeMismatch, info.Size, size)
	}
	obj := storage.Object{Backend: "s3", Bucket: s.bucket, Key: key, VersionID: info.VersionID, Size: info.Size}
	return obj.WithPending(info.VersionID), nil
}

// errRecorder remembers the first error, other than EOF, its reader gave.
type errRecorder struct {
	r   io.Reader
	err error
}

func (e *errRecorder) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// Seal implements storage.Store with a compliance-mode retention on the
// object's version.
func (s *Store) Seal(ctx context.Context, obj storage.Object, retainUntil time.Time) (storage.Object, error) {
	if obj.Pending() == "" {
		return obj, fmt.Errorf("seal %s: %w", obj.Key, storage.ErrSealed)
	}
	mode := minio.Compliance
	retainUntil = retainUntil.UTC().Truncate(time.Second)
	err := s.client.PutObjectRetention(ctx, s.bucket, obj.Key, minio.PutObjectRetentionOptions{
		Mode:            &mode,
		RetainUntilDate: &retainUntil,
		VersionID:       obj.VersionID,
	})
	if err != nil {
		return obj, classify(err, "retention on %s version %s", obj.Key, obj.VersionID)
	}
	obj.RetainUntil = retainUntil
	return obj.WithPending(""), nil
}

// Discard implements storage.Store.
func (s *Store) Discard(ctx context.Context, obj storage.Object) error {
	if obj.Pending() == "" {
		return fmt.Errorf("discard %s: %w", obj.Key, storage.ErrSealed)
	}
	err := s.client.RemoveObject(ctx, s.bucket, obj.Key, minio.RemoveObjectOptions{VersionID: obj.VersionID})
	return classify(err, "discard %s version %s", obj.Key, obj.VersionID)
}

// Open implements storage.Store, reading the recorded version.
func (s *Store) Open(ctx context.Context, obj storage.Object) (io.ReadCloser, error) {
	o, err := s.client.GetObject(ctx, s.bucket, obj.Key, minio.GetObjectOptions{VersionID: obj.VersionID})
	if err != nil {
		return nil, classify(err, "open %s version %s", obj.Key, obj.VersionID)
	}
	if _, err := o.Stat(); err != nil {
		o.Close()
		return nil, classify(err, "open %s version %s", obj.Key, obj.VersionID)
	}
	return &objectReader{o: o, key: obj.Key}, nil
}

// objectReader classifies errors in the middle of a read (a reset or
// stalled connection is ErrUnavailable, as at its start).
type objectReader struct {
	o   *minio.Object
	key string
}

func (r *objectReader) Read(b []byte) (int, error) {
	n, err := r.o.Read(b)
	switch {
	case err == nil || err == io.EOF:
	case errors.Is(err, io.ErrUnexpectedEOF):
		// The body ended before its length: the link broke, the object did
		// not shrink. Not io.ErrUnexpectedEOF itself, which readers take
		// for the end of the bytes (and then a digest mismatch).
		err = fmt.Errorf("read %s: %w: the connection ended mid-object (%v)", r.key, storage.ErrUnavailable, err.Error())
	default:
		err = classify(err, "read %s", r.key)
	}
	return n, err
}

func (r *objectReader) Close() error { return r.o.Close() }

// Exists implements storage.Store: any version of key.
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	for info := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: key, WithVersions: true}) {
		if info.Err != nil {
			return false, classify(info.Err, "list %s", key)
		}
		if info.Key == key {
			return true, nil
		}
	}
	return false, nil
}

// classify wraps a minio-go error in the storage error callers map, with
// what was being done.
func classify(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	what := fmt.Sprintf(format, args...)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == "NoSuchKey" || resp.Code == "NoSuchVersion" || resp.Code == "NoSuchBucket",
		resp.StatusCode == 404,
		resp.Code == "InvalidRequest" && strings.Contains(resp.Message, "version does not exist"):
		return fmt.Errorf("%s: %w: %v", what, storage.ErrNotFound, err)
	case strings.Contains(resp.Message, "WORM"):
		// MinIO: "Object is WORM protected and cannot be overwritten".
		return fmt.Errorf("%s: %w: %v", what, storage.ErrSealed, err)
	case resp.Code == "SlowDown" || resp.Code == "ServiceUnavailable" || resp.Code == "InternalError" ||
		resp.Code == "XMinioServerNotInitialized" || resp.StatusCode >= 500:
		// Any 5xx: the server's trouble, not the request's.
		return fmt.Errorf("%s: %w: %v", what, storage.ErrUnavailable, err)
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) {
		// The connection failed or ended mid-answer (a server stopping).
		return fmt.Errorf("%s: %w: %v", what, storage.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
