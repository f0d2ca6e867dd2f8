package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/custody-dev/custody/internal/testenv"
	"github.com/custody-dev/custody/internal/testenv/binaries"
	"github.com/custody-dev/custody/internal/testenv/freeport"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// TestBatchUploadSurvivesServerKill: `custody upload DIR` with 500 small
// files and two of 200 MiB; custodyd is killed with SIGKILL mid-batch and
// restarted on the same address. The large files resume; whatever failed
// is finished by running the same command again; the manifest then matches
// the server exactly, with nothing stored twice.
func TestBatchUploadSurvivesServerKill(t *testing.T) {
	testenv.RequireFull(t, "custodyd binary")
	dir := t.TempDir()
	photos := filepath.Join(dir, "batch")
	os.MkdirAll(photos, 0o755)
	for i := range 500 {
		os.WriteFile(filepath.Join(photos, fmt.Sprintf("IMG_%04d.jpg", i)), bytes.Repeat([]byte(fmt.Sprintf("%04d", i)), 250+i*10), 0o600)
	}
	for i := range 2 {
		big := make([]byte, 200<<20)
		for j := range big {
			big[j] = byte(j*31 + i*7 + j>>20)
		}
		os.WriteFile(filepath.Join(photos, fmt.Sprintf("VID_%d.mp4", i)), big, 0o600)
	}
	grpcAddr, httpAddr := freeport.Addr(t), freeport.Addr(t)
	d := binaries.StartCustodydAt(t, dir, grpcAddr, httpAddr)
	custody := binaries.Build(t, "custody")
	manifest := filepath.Join(dir, "manifest.json")
	upload := func() *exec.Cmd {
		cmd := exec.Command(custody, "--server", grpcAddr, "--creds", d.CredsDir("collector"), "-o", "json",
			"upload", photos, "--case", "case-batch", "--kind", "photo", "-j", "8", "--manifest", manifest)
		return cmd
	}
	first := upload()
	var out bytes.Buffer
	first.Stdout = &out
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	d.Kill(t)
	time.Sleep(time.Second)
	d2 := binaries.StartCustodydAt(t, dir, grpcAddr, httpAddr)
	firstErr := first.Wait()
	t.Logf("first run, with the kill: %v", firstErr)

	second := upload()
	if b, err := second.CombinedOutput(); err != nil {
		t.Fatalf("the rerun failed: %v\n%s", err, b)
	}
	var m struct {
		Entries []struct {
			File       string `json:"file"`
			SHA256     string `json:"sha256"`
			EvidenceID string `json:"evidence_id"`
			Status     string `json:"status"`
		} `json:"entries"`
	}
	b, _ := os.ReadFile(manifest)
	if err := json.Unmarshal(b, &m); err != nil || len(m.Entries) != 502 {
		t.Fatalf("manifest: %d entries, %v", len(m.Entries), err)
	}
	entries := m.Entries
	court := dialRole(t, d2, "court")
	list := map[string]string{}
	token := ""
	for {
		resp, err := court.ListEvidence(t.Context(), &custodyv1.ListEvidenceRequest{CaseId: "case-batch", PageSize: 1000, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range resp.GetEvidence() {
			if _, dup := list[ev.GetSha256()]; dup {
				t.Fatalf("the server holds %s twice", ev.GetSha256())
			}
			list[ev.GetSha256()] = ev.GetEvidenceId()
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if len(list) != 502 {
		t.Fatalf("the server holds %d items, want 502", len(list))
	}
	for _, e := range entries {
		if e.Status == "failed" || list[e.SHA256] != e.EvidenceID {
			t.Fatalf("manifest entry %+v does not match the server (%s)", e, list[e.SHA256])
		}
	}
}
