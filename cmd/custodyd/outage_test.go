package main_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/custody-dev/custody/client"
	"github.com/custody-dev/custody/internal/testenv/binaries"
	"github.com/custody-dev/custody/internal/testenv/loadtest"
	"github.com/custody-dev/custody/internal/testenv/miniotest"
	"github.com/custody-dev/custody/logaudit"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// slowReader paces reads as a field link would (~5 MiB/s).
type slowReader struct{ r io.ReaderAt }

func (s slowReader) ReadAt(b []byte, off int64) (int, error) {
	time.Sleep(time.Duration(len(b)) * time.Second / (5 << 20))
	return s.r.ReadAt(b, off)
}

// auditLog runs the independent log audit against d's public /log/,
// waiting until a checkpoint covers at least min entries.
func auditLog(t *testing.T, d *binaries.Daemon, min int) logaudit.Report {
	t.Helper()
	c := dialRole(t, d, "auditor")
	keys, err := c.PublicKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := note.NewVerifier(keys.GetLogVerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		rep, err := logaudit.Audit(t.Context(), httpsFetch(d.HTTPAddr), keys.GetLogOrigin(), verifier, nil)
		if err != nil {
			t.Fatalf("log audit: %v", err)
		}
		if rep.Entries >= min || time.Now().After(deadline) {
			if rep.Entries < min {
				t.Fatalf("the log holds %d entries, want at least %d", rep.Entries, min)
			}
			return rep
		}
	}
}

// checkAcknowledged checks that every upload and hand-off the load client
// got acknowledged is in the catalog.
func checkAcknowledged(t *testing.T, auditor *client.Client, rep *loadtest.Report) {
	t.Helper()
	for _, id := range rep.Kinds["upload"].Uploaded {
		if _, err := auditor.GetEvidence(t.Context(), id); err != nil {
			t.Fatalf("acknowledged upload %s: %v", id, err)
		}
	}
	if rep.Kinds["handoff"] == nil {
		return
	}
	for _, id := range rep.Kinds["handoff"].Uploaded {
		h, err := auditor.History(t.Context(), id)
		if err != nil || len(h) < 3 || h[1].GetType() != custodyv1.EventType_EVENT_TYPE_RELEASE || h[2].GetType() != custodyv1.EventType_EVENT_TYPE_ACCEPT {
			t.Fatalf("acknowledged hand-off of %s: history %v (%v)", id, h, err)
		}
	}
}

// TestStorageOutageUnderLoad stops MinIO for a few seconds under the real
// custodyd while uploads, hand-offs, bundle exports and log reads run.
// Every call must end OK or UNAVAILABLE (or be shed), the service must
// recover when MinIO returns without being restarted, every acknowledged
// upload must be there, and the log audit must pass afterwards.
func TestStorageOutageUnderLoad(t *testing.T) {
	minio := miniotest.Start(t)
	t.Setenv("CUSTODY_S3_ACCESS_KEY", minio.AccessKey)
	t.Setenv("CUSTODY_S3_SECRET_KEY", minio.SecretKey)
	d := binaries.StartCustodyd(t, t.TempDir(), "--s3-endpoint", minio.Endpoint, "--s3-bucket", "evidence", "--s3-insecure",
		"--log-level", "warn", "--rate-limit", "1e6", "--rate-burst", "1000000", "--max-streams-per-identity", "1000")
	cfg := loadtest.Config{
		HTTPAddr: d.HTTPAddr, GRPCAddr: d.GRPCAddr, CredsDir: d.CredsDir,
		Uploaders: 8, HandOffs: 6, Bundles: 4, LogReaders: 2,
		UploadSize: 128 << 10, Duration: 12 * time.Second, Custodian: custodianID,
	}
	var wg sync.WaitGroup
	var restarted time.Time
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(3 * time.Second)
		minio.Stop(t)
		time.Sleep(4 * time.Second)
		minio.Restart(t)
		restarted = time.Now()
	}()
	// A resumable upload, paced by its field link, starts before the
	// outage and must finish after it, by itself.
	big := make([]byte, 24<<20)
	for i := range big {
		big[i] = byte(i * 31 / 7)
	}
	sum := sha256.Sum256(big)
	resumable := make(chan error, 1)
	var resumedAt time.Time
	var resumedID string
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(2 * time.Second)
		c := dialRole(t, d, "collector")
		md := &custodyv1.UploadMetadata{CaseId: "case-outage-resume", Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_VIDEO,
			Sha256: hex.EncodeToString(sum[:]), SizeBytes: int64(len(big)), UploadId: "outage-resume-1"}
		resp, err := c.UploadResumable(context.Background(), md, slowReader{bytes.NewReader(big)}, client.DefaultRetry, nil)
		resumedAt = time.Now()
		if err == nil {
			resumedID = resp.GetEvidence().GetEvidenceId()
		}
		resumable <- err
	}()
	rep, err := loadtest.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	t.Logf("with MinIO stopped for 4 of 12 s:\n%s", rep)
	for kind, k := range rep.Kinds {
		for out, n := range k.ByOutcome {
			if out != "OK" && out != "Unavailable" && out != "ResourceExhausted" {
				t.Errorf("%s: %d calls ended %s; a storage outage must give UNAVAILABLE", kind, n, out)
			}
		}
	}
	if len(rep.Failures) > 0 {
		t.Errorf("unexpected failures: %q\ncustodyd's log:\n%s", rep.Failures, d.Logs)
	}
	if rep.Kinds["upload"].ByOutcome["Unavailable"] == 0 {
		t.Error("no upload was refused while MinIO was down: the outage was not exercised")
	}
	if err := <-resumable; err != nil {
		t.Fatalf("the resumable upload across the outage: %v", err)
	}
	if !resumedAt.After(restarted) {
		t.Fatal("the resumable upload finished before MinIO returned: it did not cross the outage")
	}
	h := sha256.New()
	if _, err := dialRole(t, d, "court").Download(t.Context(), &custodyv1.DownloadRequest{EvidenceId: resumedID, Purpose: "after the outage"}, h); err != nil || !bytes.Equal(h.Sum(nil), sum[:]) {
		t.Fatalf("the upload resumed across the outage reads back wrong (%v)", err)
	}
	if list, err := dialRole(t, d, "auditor").ListEvidence(t.Context(), &custodyv1.ListEvidenceRequest{CaseId: "case-outage-resume"}); err != nil || len(list.GetEvidence()) != 1 {
		t.Fatalf("the resumed upload made %d items (%v), want one", len(list.GetEvidence()), err)
	}
	// Recovered without a restart: a new upload works.
	if _, err := upload(t.Context(), dialRole(t, d, "collector"), "case-outage", []byte("after the outage")); err != nil {
		t.Fatalf("after MinIO returned: %v", err)
	}
	auditor := dialRole(t, d, "auditor")
	checkAcknowledged(t, auditor, rep)
	audit := auditLog(t, d, len(rep.Kinds["upload"].Uploaded))
	t.Logf("recovered without restart; %d acknowledged uploads present; log audit %d entries, %d chains", len(rep.Kinds["upload"].Uploaded), audit.Entries, audit.Items)
}
