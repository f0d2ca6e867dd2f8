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

	"github.com/custody-dev/custody/internal/testenv/binaries"
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
	// Now leave no byte at all: a custody event (journal and log
	// appends) is refused the same way and changes nothing.
	first := list.GetEvidence()[0].GetEvidenceId()
	custodian := dialRole(t, d, "court") // the court may annotate any item
	before, err := court.History(t.Context(), first)
	if err != nil {
		t.Fatal(err)
	}
	fill := filepath.Join(mnt, "filler-rest")
	f, err := os.Create(fill)
	if err != nil {
		t.Fatal(err)
	}
	for chunk := make([]byte, 64<<10); ; {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	for chunk := make([]byte, 512); ; {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()
	_, err = custodian.RecordEvent(t.Context(), &custodyv1.RecordEventRequest{EvidenceId: first, Type: custodyv1.EventType_EVENT_TYPE_ANNOTATION, Note: "on a full disk"})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a custody event on a full disk: %v, want ResourceExhausted", err)
	}
	t.Logf("event on a full disk: %v", err)
	if after, err := court.History(t.Context(), first); err != nil || len(after) != len(before) {
		t.Fatalf("the refused event changed the history: %d events before, %d after (%v)", len(before), len(after), err)
	}
	os.Remove(fill)
	os.Remove(filler)
	if _, err := custodian.RecordEvent(t.Context(), &custodyv1.RecordEventRequest{EvidenceId: first, Type: custodyv1.EventType_EVENT_TYPE_ANNOTATION, Note: "space is back"}); err != nil {
		t.Fatalf("a custody event after space returned: %v", err)
	}
	if err := upload(bytes.Repeat([]byte("b"), 8<<20)); err != nil {
		t.Fatalf("after space returned: %v", err)
	}
	// Both acknowledged ingests and the one event are in the log, the
	// refused event is not, and the log audits.
	if rep := auditLog(t, d, 3); len(rep.Chains) != 2 || rep.Chains[first] != 1 {
		t.Fatalf("the log holds %d items, chain of the first ends at %d; want 2 items and sequence 1", len(rep.Chains), rep.Chains[first])
	}
}
