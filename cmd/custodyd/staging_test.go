package main_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"google.golang.org/protobuf/proto"

	"github.com/custody-dev/custody/client"
	"github.com/custody-dev/custody/internal/testenv/binaries"
	"github.com/custody-dev/custody/internal/testenv/miniotest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// TestStagedUploadSurvivesKills: custodyd is killed with SIGKILL twice
// while it stores a resumable upload's parts (an S3 UploadPart or a disk
// write in flight), on MinIO and on disk; after each restart the client
// resumes from what the server recorded, and the item completes
// byte-exact, as one item, written once: nothing staged, pending or
// piece-like is left, and on MinIO the item's version is the multipart
// upload's.
func TestStagedUploadSurvivesKills(t *testing.T) {
	for _, backend := range []string{"s3", "disk"} {
		t.Run(backend, func(t *testing.T) {
			dir := t.TempDir()
			var args []string
			var raw *minio.Client
			if backend == "s3" {
				srv := miniotest.Start(t)
				t.Setenv("CUSTODY_S3_ACCESS_KEY", srv.AccessKey)
				t.Setenv("CUSTODY_S3_SECRET_KEY", srv.SecretKey)
				args = []string{"--s3-endpoint", srv.Endpoint, "--s3-bucket", "evidence", "--s3-insecure"}
				var err error
				if raw, err = minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, "")}); err != nil {
					t.Fatal(err)
				}
			}
			data := make([]byte, 48<<20)
			for i := range data {
				data[i] = byte(i * 11 / 7)
			}
			sum := sha256.Sum256(data)
			md := &custodyv1.UploadMetadata{CaseId: "case-staged-kill", Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_VIDEO,
				Sha256: hex.EncodeToString(sum[:]), SizeBytes: int64(len(data)), UploadId: "staged-kill-1"}
			d := binaries.StartCustodyd(t, dir, args...)
			defer func() {
				if t.Failed() {
					t.Logf("custodyd's log:\n%s", d.Logs.String())
				}
			}()
			var kept int64
			for kill := range 2 {
				c := dialRole(t, d, "collector")
				st, err := custodyv1.NewEvidenceServiceClient(c.Conn()).Upload(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				m := proto.Clone(md).(*custodyv1.UploadMetadata)
				m.ResumeOffset = kept
				st.Send(&custodyv1.UploadRequest{Payload: &custodyv1.UploadRequest_Metadata{Metadata: m}})
				// Twenty MiB more, then the kill while the last parts
				// are being stored.
				for off := kept; off < min(kept+20<<20, int64(len(data))); off += 1 << 20 {
					st.Send(&custodyv1.UploadRequest{Payload: &custodyv1.UploadRequest_Chunk{Chunk: data[off:min(off+1<<20, int64(len(data)))]}})
				}
				time.Sleep(time.Duration(30+670*kill) * time.Millisecond)
				d.Kill(t)
				d = binaries.StartCustodyd(t, dir, args...)
				status, err := dialRole(t, d, "collector").UploadStatus(t.Context(), md.UploadId)
				if err != nil && kill > 0 {
					t.Fatalf("kill %d: the session did not survive: %v", kill, err)
				}
				if status.GetReceivedBytes() < kept {
					t.Fatalf("kill %d: the server holds %d bytes, had %d", kill, status.GetReceivedBytes(), kept)
				}
				kept = status.GetReceivedBytes()
				t.Logf("kill %d: the server kept %d of %d bytes", kill, kept, len(data))
			}
			c := dialRole(t, d, "collector")
			resp, err := c.UploadResumable(t.Context(), md, bytes.NewReader(data), client.DefaultRetry, nil)
			if err != nil {
				t.Fatal(err)
			}
			court := dialRole(t, d, "court")
			h := sha256.New()
			if _, err := court.Download(t.Context(), &custodyv1.DownloadRequest{EvidenceId: resp.GetEvidence().GetEvidenceId(), Purpose: "check"}, h); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(h.Sum(nil), sum[:]) {
				t.Fatal("the resumed item differs")
			}
			list, err := court.ListEvidence(t.Context(), &custodyv1.ListEvidenceRequest{CaseId: "case-staged-kill"})
			if err != nil || len(list.GetEvidence()) != 1 {
				t.Fatalf("%d items (%v), want exactly one", len(list.GetEvidence()), err)
			}
			obj := resp.GetEvidence().GetStorage()
			if backend == "s3" {
				checkS3WrittenOnce(t, raw, obj.GetKey(), obj.GetVersionId())
				return
			}
			filepath.WalkDir(filepath.Join(d.DataDir(), "blobs"), func(path string, e fs.DirEntry, err error) error {
				if err == nil && !e.IsDir() && (strings.Contains(path, "uploads") || strings.Contains(e.Name(), ".staged-") || strings.Contains(e.Name(), ".complete-") || strings.Contains(e.Name(), ".pending-")) {
					t.Errorf("left behind: %s", path)
				}
				return nil
			})
		})
	}
}

// checkS3WrittenOnce: no piece (uploads/) and no multipart upload is left
// in the bucket, and the item's version was made by a multipart upload
// (its ETag ends in -<parts>), not by copying.
func checkS3WrittenOnce(t *testing.T, raw *minio.Client, key, version string) {
	t.Helper()
	for o := range raw.ListObjects(t.Context(), "evidence", minio.ListObjectsOptions{Prefix: "uploads/", Recursive: true, WithVersions: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		t.Errorf("a piece is left: %s version %s", o.Key, o.VersionID)
	}
	for u := range raw.ListIncompleteUploads(t.Context(), "evidence", "", true) {
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		t.Errorf("a multipart upload is left: %s (%s)", u.Key, u.UploadID)
	}
	info, err := raw.StatObject(t.Context(), "evidence", key, minio.StatObjectOptions{VersionID: version})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(info.ETag, "-") {
		t.Errorf("the item's version %s has ETag %q: not a multipart upload's", version, info.ETag)
	}
	n := 0
	for o := range raw.ListObjects(t.Context(), "evidence", minio.ListObjectsOptions{Prefix: key, WithVersions: true}) {
		if o.Err == nil && o.Key == key {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d versions of %s, want the one", n, key)
	}
}
