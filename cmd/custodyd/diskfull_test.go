package main_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody-dev/custody/internal/binaries"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// TestDiskFull runs custodyd with its data dir on a small tmpfs, fills the
// disk, and expects uploads to fail with RESOURCE_EXHAUSTED keeping
// nothing, and to work again once space returns, without a restart.
func TestDiskFull(t *testing.T) {
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mounting a tmpfs for the full-disk test (needs root, as CI has): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	d := binaries.StartCustodyd(t, mnt)
	c := dialRole(t, d, "collector")
	court := dialRole(t, d, "court")
	upload := func(data []byte) error {
		sum := sha256.Sum256(data)
		_, err := c.Upload(t.Context(), &custodyv1.UploadMetadata{CaseId: "case-full", Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_VIDEO,
			Sha256: hex.EncodeToString(sum[:]), SizeBytes: int64(len(data))}, bytes.NewReader(data), nil)
		return err
	}
	if err := upload(bytes.Repeat([]byte("a"), 1<<20)); err != nil {
		t.Fatal(err)
	}
	// Fill the disk, leaving about 2 MiB.
	filler := filepath.Join(mnt, "filler")
	var st syscall.Statfs_t
	if err := syscall.Statfs(mnt, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	if err := os.WriteFile(filler, make([]byte, free-2<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	err := upload(bytes.Repeat([]byte("b"), 8<<20))
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(status.Convert(err).Message(), "storage is full") {
		t.Fatalf("upload to a full disk: %v, want ResourceExhausted naming the full storage", err)
	}
	list, err := court.ListEvidence(t.Context(), &custodyv1.ListEvidenceRequest{CaseId: "case-full"})
	if err != nil || len(list.GetEvidence()) != 1 {
		t.Fatalf("after the refused upload the case has %d items (%v), want 1", len(list.GetEvidence()), err)
	}
	os.Remove(filler)
	if err := upload(bytes.Repeat([]byte("b"), 8<<20)); err != nil {
		t.Fatalf("after space returned: %v", err)
	}
	// Both acknowledged ingests are in the log, and it audits.
	if rep := auditLog(t, d, 2); len(rep.Chains) != 2 {
		t.Fatalf("the log holds %d items, want the 2 acknowledged", len(rep.Chains))
	}
}
