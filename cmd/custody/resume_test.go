package main_test

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custody-dev/custody/client"
	"github.com/custody-dev/custody/internal/testenv"
	"github.com/custody-dev/custody/internal/testenv/binaries"
	"github.com/custody-dev/custody/internal/testenv/faultproxy"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// TestCLIUploadResumesAfterClientKill: `custody upload FILE` of a 200 MiB
// file is killed (SIGKILL) mid-file; running the same command again
// resumes the session the first run left (the same upload id, from the
// file) and ends in one item with the file's digest. Then the same with a
// file whose first bytes change between the runs while its size and
// modification time stay: the resumed session ends in a digest mismatch,
// the server drops it, the client uploads the file as it is now, and no
// item ever has a digest the file did not have.
func TestCLIUploadResumesAfterClientKill(t *testing.T) {
	testenv.RequireFull(t, "custodyd binary")
	dir := t.TempDir()
	d := binaries.StartCustodyd(t, dir)
	custody := binaries.Build(t, "custody")
	c := dialRole(t, d, "collector")
	creds, err := client.LoadCredentials(d.CredsDir("collector"))
	if err != nil {
		t.Fatal(err)
	}
	me := creds.Leaf.URIs[0].String()
	const size = 200 << 20

	for _, change := range []bool{false, true} {
		caseID := "case-kill"
		if change {
			caseID = "case-kill-changed"
		}
		path := filepath.Join(dir, caseID+".mp4")
		data := make([]byte, size)
		rand.NewChaCha8([32]byte{byte(len(caseID))}).Read(data)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		info, _ := os.Stat(path)
		id := client.FileUploadID(me, &custodyv1.UploadMetadata{CaseId: caseID, Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_VIDEO,
			Filename: filepath.Base(path), SizeBytes: size}, path, info)
		upload := func(server string) *exec.Cmd {
			return exec.Command(custody, "--server", server, "--creds", d.CredsDir("collector"),
				"upload", path, "--case", caseID, "--kind", "video", "--manifest", filepath.Join(dir, caseID+".json"))
		}
		// The first run goes through a slow link (about 30 MB/s), and is
		// killed after two seconds.
		proxy, err := faultproxy.Start(d.GRPCAddr)
		if err != nil {
			t.Fatal(err)
		}
		proxy.Set(faultproxy.Faults{Delay: time.Millisecond})
		first := upload(proxy.Addr)
		var firstOut strings.Builder
		first.Stdout, first.Stderr = &firstOut, &firstOut
		if err := first.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		first.Process.Kill()
		first.Wait()
		proxy.Close()
		// The server answers once it has noticed the stream ended.
		st, err := c.UploadStatus(t.Context(), id)
		if err != nil || st.GetReceivedBytes() == 0 || st.GetReceivedBytes() >= size {
			t.Fatalf("after the kill: %v, %v; the first run says:\n%s", st, err, firstOut.String())
		}
		t.Logf("killed with %d of %d bytes held", st.GetReceivedBytes(), size)
		if change {
			copy(data, "the first bytes changed after the kill")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			os.Chtimes(path, info.ModTime(), info.ModTime())
		}
		out, err := upload(d.GRPCAddr).CombinedOutput()
		if err != nil {
			t.Fatalf("second run: %v\n%s", err, out)
		}
		want := sha256Hex(data)
		if !strings.Contains(string(out), "uploaded") || !strings.Contains(string(out), "sha256:  "+want) {
			t.Fatalf("second run says:\n%s", out)
		}
		if got := caseDigests(t, d, caseID); len(got) != 1 || got[0] != want {
			t.Fatalf("case %s holds %v, want one item %s", caseID, got, want)
		}
		if _, err := c.UploadStatus(t.Context(), id); err == nil {
			t.Fatal("the session is still there")
		}
	}
}
