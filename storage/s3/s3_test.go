package s3_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/custody-dev/custody/internal/testenv/miniotest"
	"github.com/custody-dev/custody/storage"
	"github.com/custody-dev/custody/storage/s3"
	"github.com/custody-dev/custody/storage/storagetest"
)

var bucketSeq atomic.Int64

func newStore(t *testing.T, srv *miniotest.Server) *s3.Store {
	t.Helper()
	s, err := s3.New(t.Context(), s3.Config{
		Endpoint:  srv.Endpoint,
		Bucket:    fmt.Sprintf("evidence-%d", bucketSeq.Add(1)),
		AccessKey: srv.AccessKey,
		SecretKey: srv.SecretKey,
		Insecure:  true,
		PartSize:  5 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSuite(t *testing.T) {
	srv := miniotest.Start(t)
	storagetest.Run(t, func(t *testing.T) storage.Store { return newStore(t, srv) })
}

// TestRetentionAndVersions checks what makes S3 storage write-once: a sealed
// version cannot be deleted, and a PUT behind the service's back adds a
// version that reads of the recorded one never see.
func TestRetentionAndVersions(t *testing.T) {
	srv := miniotest.Start(t)
	s := newStore(t, srv)
	ctx := t.Context()
	data := []byte("original evidence bytes")
	obj, err := s.Put(ctx, "sha256/worm", bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	obj, err = s.Seal(ctx, obj, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	raw := s.Client()

	err = raw.RemoveObject(ctx, obj.Bucket, obj.Key, minio.RemoveObjectOptions{VersionID: obj.VersionID})
	if err == nil {
		t.Fatal("deleting a retained version succeeded")
	}
	err = raw.RemoveObject(ctx, obj.Bucket, obj.Key, minio.RemoveObjectOptions{VersionID: obj.VersionID, GovernanceBypass: true})
	if err == nil {
		t.Fatal("deleting a compliance-retained version with governance bypass succeeded")
	}
	if _, err := raw.PutObject(ctx, obj.Bucket, obj.Key, bytes.NewReader([]byte("forged")), 6, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	rc, err := s.Open(ctx, obj)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, data) {
		t.Fatalf("read %q after an overwrite, want the recorded version %q", got, data)
	}
	if err := s.Discard(ctx, obj.WithPending(obj.VersionID)); !errors.Is(err, storage.ErrSealed) {
		t.Fatalf("Discard of a retained version: %v, want ErrSealed", err)
	}
}

func TestRefusesBucketWithoutObjectLock(t *testing.T) {
	srv := miniotest.Start(t)
	s := newStore(t, srv)
	if err := s.Client().MakeBucket(t.Context(), "plain", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := s3.New(t.Context(), s3.Config{Endpoint: srv.Endpoint, Bucket: "plain", AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Insecure: true})
	if err == nil {
		t.Fatal("a bucket without Object Lock was accepted")
	}
}
