package s3

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/crc32"
	"net/http"

	"github.com/minio/minio-go/v7"

	"github.com/custody-dev/custody/storage"
)

// Staging (storage.Stager) is an S3 multipart upload at the object's key:
// Stage is CreateMultipartUpload, Append is UploadPart (part number i+1,
// payload unsigned as in Put, with a CRC32C checksum S3 checks, so a part
// damaged on the way is refused), Complete is CompleteMultipartUpload
// with the parts the caller recorded — their ETags and checksums come
// from the caller's handle, not from ListParts: a part uploaded but never
// recorded (a crash in between) is uploaded again under the same number,
// which replaces it, or is left out of the completed object. The result
// is a new version without retention, exactly what Put makes: Seal puts
// the retention on that version. An aborted or expired session aborts its
// upload; an upload nobody aborts (a session lost with its database) is
// removed by a bucket lifecycle rule for incomplete multipart uploads, if
// the operator sets one (docs/DEPLOYMENT.md).

// MinPartSize is S3's smallest part but the last.
const MinPartSize = 5 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// MinPartSize implements storage.Stager.
func (s *Store) MinPartSize() int64 { return MinPartSize }

func (s *Store) core() minio.Core { return minio.Core{Client: s.client} }

// Stage implements storage.Stager.
func (s *Store) Stage(ctx context.Context, key string) (storage.Staged, error) {
	if err := storage.CheckKey(key); err != nil {
		return storage.Staged{}, err
	}
	id, err := s.core().NewMultipartUpload(ctx, s.bucket, key, minio.PutObjectOptions{
		ContentType:  "application/octet-stream",
		UserMetadata: map[string]string{"X-Amz-Checksum-Algorithm": "CRC32C"},
	})
	if err != nil {
		return storage.Staged{}, classify(err, "stage %s", key)
	}
	return storage.Staged{Backend: "s3", Key: key, Handle: id}, nil
}

// Append implements storage.Stager.
func (s *Store) Append(ctx context.Context, st storage.Staged, i int, off int64, data []byte) (storage.Part, error) {
	if i < 0 || i >= 10000 {
		return storage.Part{}, fmt.Errorf("append to %s: part %d: S3 numbers parts 1 to 10000", st.Key, i)
	}
	sum := crc32c(data)
	hdr := http.Header{}
	hdr.Set("X-Amz-Checksum-Crc32c", sum)
	part, err := s.core().PutObjectPart(ctx, s.bucket, st.Key, st.Handle, i+1, bytes.NewReader(data), int64(len(data)), minio.PutObjectPartOptions{
		DisableContentSha256: true,
		CustomHeader:         hdr,
	})
	if err != nil {
		return storage.Part{}, classifyUpload(err, "append part %d to %s", i+1, st.Key)
	}
	return storage.Part{Size: int64(len(data)), ETag: part.ETag, CRC32C: sum}, nil
}

// Sync implements storage.Stager: an acknowledged part is durable.
func (s *Store) Sync(ctx context.Context, st storage.Staged) error { return nil }

func crc32c(data []byte) string {
	var b [4]byte
	c := crc32.Checksum(data, castagnoli)
	b[0], b[1], b[2], b[3] = byte(c>>24), byte(c>>16), byte(c>>8), byte(c)
	return base64.StdEncoding.EncodeToString(b[:])
}

// Complete implements storage.Stager.
func (s *Store) Complete(ctx context.Context, st storage.Staged) (storage.Object, error) {
	if len(st.Parts) == 0 {
		return storage.Object{}, fmt.Errorf("complete %s: no parts", st.Key)
	}
	parts := make([]minio.CompletePart, len(st.Parts))
	for i, p := range st.Parts {
		parts[i] = minio.CompletePart{PartNumber: i + 1, ETag: p.ETag, ChecksumCRC32C: p.CRC32C}
	}
	info, err := s.core().CompleteMultipartUpload(ctx, s.bucket, st.Key, st.Handle, parts, minio.PutObjectOptions{})
	if err != nil {
		return storage.Object{}, classifyUpload(err, "complete %s", st.Key)
	}
	if info.VersionID == "" {
		return storage.Object{}, fmt.Errorf("complete %s: bucket %q returned no version id; versioning must be enabled", st.Key, s.bucket)
	}
	obj := storage.Object{Backend: "s3", Bucket: s.bucket, Key: st.Key, VersionID: info.VersionID, Size: st.Size()}
	return obj.WithPending(info.VersionID), nil
}

// Abort implements storage.Stager.
func (s *Store) Abort(ctx context.Context, st storage.Staged) error {
	err := s.core().AbortMultipartUpload(ctx, s.bucket, st.Key, st.Handle)
	if err != nil && errors.Is(classifyUpload(err, ""), storage.ErrNotFound) {
		return nil
	}
	return classifyUpload(err, "abort %s", st.Key)
}

// classifyUpload is classify, with a multipart upload that is gone
// (completed, aborted) as ErrNotFound.
func classifyUpload(err error, format string, args ...any) error {
	if err != nil && minio.ToErrorResponse(err).Code == "NoSuchUpload" {
		return fmt.Errorf("%s: %w: %v", fmt.Sprintf(format, args...), storage.ErrNotFound, err)
	}
	return classify(err, format, args...)
}
