// Tests of integrity end to end: receipts checked by an independent tool,
// and stored bytes changed behind the service's back.

package server_test

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/servertest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// TestReceiptVerifiesWithOpenSSL checks the documented recipe: the receipt
// payload, signature and public key verify with openssl alone.
func TestReceiptVerifiesWithOpenSSL(t *testing.T) {
	s := backends()[0].start(t, servertest.Options{})
	c := s.env.Client(t, identity.RoleCollector)
	data := randomBytes(1000)
	resp, err := c.Upload(t.Context(), meta("case-openssl", data), bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := c.PublicKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	payload := write("receipt.json", resp.GetReceipt().GetPayload())
	sig := write("receipt.sig", resp.GetReceipt().GetSignature())
	pub := write("receipt-key.pem", []byte(keys.GetReceiptPublicKeyPem()))
	out, err := exec.Command("openssl", "dgst", "-sha256", "-verify", pub, "-signature", sig, payload).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Verified OK") {
		t.Fatalf("openssl: %v %s", err, out)
	}
	// One flipped byte fails.
	tampered := bytes.Clone(resp.GetReceipt().GetPayload())
	tampered[10] ^= 1
	write("receipt.json", tampered)
	if out, err := exec.Command("openssl", "dgst", "-sha256", "-verify", pub, "-signature", sig, payload).CombinedOutput(); err == nil {
		t.Fatalf("openssl verified a tampered receipt: %s", out)
	}
}

func identityOf(t *testing.T, r identity.Role) identity.Identity {
	id, err := identity.New(r, "dev-"+string(r))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestVerifyEvidenceFindsReplacedBytes changes the stored bytes under the
// service (the file on disk; the object's data on MinIO's drive) and
// expects the server-side check to fail, and to be logged.
func TestVerifyEvidenceFindsReplacedBytes(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			s := be.start(t, servertest.Options{})
			c := s.env.Client(t, identity.RoleCustodian)
			collector := s.env.Client(t, identity.RoleCollector)
			data := randomBytes(2 << 20) // large enough to be a part file in MinIO
			resp, err := collector.Upload(t.Context(), meta("case-verify", data), bytes.NewReader(data), nil)
			if err != nil {
				t.Fatal(err)
			}
			id := resp.GetEvidence().GetEvidenceId()
			v, err := c.VerifyEvidence(t.Context(), id)
			if err != nil || !v.GetOk() {
				t.Fatalf("untouched: %v %v", v, err)
			}
			// Replace bytes behind the service's back.
			root := filepath.Join(s.dataDir, "blobs")
			if s.minio != nil {
				root = filepath.Join(s.minio.DataDir, s.bucket)
			}
			replaced := 0
			filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() || (s.minio != nil && !strings.HasPrefix(d.Name(), "part.")) {
					return err
				}
				os.Chmod(path, 0o600)
				b, _ := os.ReadFile(path)
				b[len(b)/2] ^= 0xff
				replaced++
				return os.WriteFile(path, b, 0o600)
			})
			if replaced == 0 {
				t.Fatal("found no stored bytes to replace")
			}
			v, err = c.VerifyEvidence(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if v.GetOk() || v.GetChecks()[0].GetOk() {
				t.Fatalf("replaced bytes pass verification: %v", v)
			}
			// The background scrub finds it too.
			var flagged []string
			checked, bad, err := s.env.Daemon.Evidence.Scrub(t.Context(), func(id string, err error) {
				if err != nil {
					flagged = append(flagged, id)
				}
			})
			if err != nil || checked != 1 || bad != 1 || len(flagged) != 1 || flagged[0] != id {
				t.Fatalf("scrub: checked %d, bad %d, flagged %v, err %v", checked, bad, flagged, err)
			}
			hist := checkChain(t, c, id, nil)
			last := hist[len(hist)-1]
			if last.GetType() != custodyv1.EventType_EVENT_TYPE_VERIFICATION || last.GetOutcome() != custodyv1.Outcome_OUTCOME_FAILED {
				t.Fatalf("last event %v, want a failed verification", last)
			}
		})
	}
}

// TestChangedBehindTheServiceNeverComesBack: a file edited on disk is
// refused with DATA_LOSS; an object overwritten in S3 adds a version the
// service never reads, and the retained version cannot be deleted.
func TestChangedBehindTheServiceNeverComesBack(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			s := be.start(t, servertest.Options{})
			c := s.env.Client(t, identity.RoleCollector)
			data := randomBytes(600 << 10)
			resp, err := c.Upload(t.Context(), meta("case-tamper", data), bytes.NewReader(data), nil)
			if err != nil {
				t.Fatal(err)
			}
			ev := resp.GetEvidence()
			forged := bytes.Clone(data)
			forged[len(forged)/2] ^= 0xff
			if s.rawS3 == nil {
				path := filepath.Join(s.dataDir, "blobs", filepath.FromSlash(ev.GetStorage().GetKey()))
				os.Chmod(path, 0o600)
				if err := os.WriteFile(path, forged, 0o600); err != nil {
					t.Fatal(err)
				}
				var got bytes.Buffer
				_, err := s.env.Client(t, identity.RoleCourt).Download(t.Context(), &custodyv1.DownloadRequest{EvidenceId: ev.GetEvidenceId(), Purpose: "check"}, &got)
				if status.Code(err) != codes.DataLoss {
					t.Fatalf("download of an edited file: %v, want DataLoss", err)
				}
				if got.Len() >= len(data) {
					t.Fatalf("the client received all %d bytes of a corrupted item", got.Len())
				}
				return
			}
			ctx := t.Context()
			if _, err := s.rawS3.PutObject(ctx, s.bucket, ev.GetStorage().GetKey(), bytes.NewReader(forged), int64(len(forged)), minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(download(t, s.env.Client(t, identity.RoleCourt), ev.GetEvidenceId()), data) {
				t.Fatal("an overwritten object came back as evidence")
			}
			err = s.rawS3.RemoveObject(ctx, s.bucket, ev.GetStorage().GetKey(), minio.RemoveObjectOptions{VersionID: ev.GetStorage().GetVersionId()})
			if err == nil {
				t.Fatal("deleting the retained evidence version succeeded")
			}
		})
	}
}
