package server_test

import (
	"bytes"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/custody-dev/custody/client"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/servertest"
)

// TestResumableStagedOnce: a resumable upload cut once (its short tail
// kept as a piece) completes into the item's object where its parts were
// stored: on MinIO no piece and no multipart upload is left and the item's
// version is the multipart upload's, the only version; on disk no staged,
// completed, pending or piece file is left.
func TestResumableStagedOnce(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			s := be.start(t, servertest.Options{})
			c := s.env.Client(t, identity.RoleCollector)
			data := randomBytes(21<<20 + 5)
			md := meta("case-staged", data)
			md.UploadId = "staged-once-1"
			sendPart(t, c, md, data[:3<<20])
			waitReceived(t, c, md.UploadId, 3<<20)
			resp, err := c.UploadResumable(t.Context(), md, bytes.NewReader(data), client.DefaultRetry, nil)
			if err != nil {
				t.Fatal(err)
			}
			court := s.env.Client(t, identity.RoleCourt)
			if !bytes.Equal(download(t, court, resp.GetEvidence().GetEvidenceId()), data) {
				t.Fatal("the item differs")
			}
			obj := resp.GetEvidence().GetStorage()
			if s.rawS3 == nil {
				filepath.WalkDir(s.dataDir, func(path string, e fs.DirEntry, err error) error {
					if err == nil && !e.IsDir() && (strings.Contains(path, "/blobs/uploads/") || strings.Contains(e.Name(), ".staged-") || strings.Contains(e.Name(), ".complete-") || strings.Contains(e.Name(), ".pending-")) {
						t.Errorf("left behind: %s", path)
					}
					return nil
				})
				return
			}
			for o := range s.rawS3.ListObjects(t.Context(), s.bucket, minio.ListObjectsOptions{Prefix: "uploads/", Recursive: true, WithVersions: true}) {
				t.Errorf("a piece is left: %s %v", o.Key, o.Err)
			}
			for u := range s.rawS3.ListIncompleteUploads(t.Context(), s.bucket, "", true) {
				t.Errorf("a multipart upload is left: %s %v", u.Key, u.Err)
			}
			info, err := s.rawS3.StatObject(t.Context(), s.bucket, obj.GetKey(), minio.StatObjectOptions{VersionID: obj.GetVersionId()})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(info.ETag, "-3") {
				t.Errorf("the item's version has ETag %q, want a 3-part multipart upload's", info.ETag)
			}
			n := 0
			for o := range s.rawS3.ListObjects(t.Context(), s.bucket, minio.ListObjectsOptions{Prefix: obj.GetKey(), WithVersions: true}) {
				if o.Key == obj.GetKey() {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%d versions of the item's key, want 1", n)
			}
			if got := s.storedObjects(t); got != 1 {
				t.Errorf("%d objects in the bucket, want the item's", got)
			}
		})
	}
}
