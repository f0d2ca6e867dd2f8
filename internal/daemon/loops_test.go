package daemon_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/daemon"
	"github.com/custody-dev/custody/internal/testenv/servertest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// The in-process test server runs the background loops custodyd runs:
// an unfinished upload past its time is removed with no call asking for
// it, and a scrub finds stored bytes that were changed.
func TestServeRunsBackgroundLoops(t *testing.T) {
	env := servertest.StartT(t, servertest.Options{Configure: func(cfg *daemon.Config) {
		cfg.Evidence.UploadTTL = 2 * time.Second
		cfg.Loops.ExpiryInterval = 100 * time.Millisecond
		cfg.Loops.ScrubInterval = 100 * time.Millisecond
	}})
	c := env.Client(t, identity.RoleCollector)

	t.Run("expiry removes an unfinished upload", func(t *testing.T) {
		data := bytes.Repeat([]byte("unfinished "), 100_000)
		md := upload(data, "case-expiry")
		md.UploadId = "expiry-loop-1"
		st, err := custodyv1.NewEvidenceServiceClient(c.Conn()).Upload(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		st.Send(&custodyv1.UploadRequest{Payload: &custodyv1.UploadRequest_Metadata{Metadata: md}})
		st.Send(&custodyv1.UploadRequest{Payload: &custodyv1.UploadRequest_Chunk{Chunk: data[:len(data)/2]}})
		// The stream ends early: the service keeps what came as a session
		// before it answers. Nothing calls the service again.
		if _, err := st.CloseAndRecv(); err == nil {
			t.Fatal("half an upload was accepted")
		}
		sessions := filepath.Join(env.DataDir, "upload-sessions")
		if n := countSessions(t, sessions); n != 1 {
			t.Fatalf("%d upload sessions kept after a cut upload, want 1", n)
		}
		waitFor(t, "the expired upload session to be removed", func() bool { return countSessions(t, sessions) == 0 })
		if !strings.Contains(env.Logs.String(), "expired unfinished uploads removed") {
			t.Error("the removal was not logged")
		}
	})

	t.Run("scrub finds changed bytes", func(t *testing.T) {
		data := bytes.Repeat([]byte("scrubbed "), 1000)
		if _, err := c.Upload(t.Context(), upload(data, "case-scrub"), bytes.NewReader(data), nil); err != nil {
			t.Fatal(err)
		}
		blob := findBlob(t, filepath.Join(env.DataDir, "blobs"), data)
		os.Chmod(blob, 0o600)
		changed := bytes.Clone(data)
		changed[0] ^= 1
		if err := os.WriteFile(blob, changed, 0o600); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a scrub to report the mismatch", func() bool {
			return strings.Contains(env.Logs.String(), "mismatches=1")
		})
	})
}

func upload(data []byte, caseID string) *custodyv1.UploadMetadata {
	sum := sha256.Sum256(data)
	return &custodyv1.UploadMetadata{
		CaseId: caseID, Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_DOCUMENT,
		Sha256: hex.EncodeToString(sum[:]), SizeBytes: int64(len(data)), Filename: "statement.bin",
	}
}

// waitFor polls cond until it holds; the deadline only bounds a failure.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func countSessions(t *testing.T, dir string) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	return len(files)
}

// findBlob returns the stored file holding exactly data.
func findBlob(t *testing.T, root string, data []byte) string {
	t.Helper()
	var found string
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found != "" {
			return err
		}
		if b, err := os.ReadFile(path); err == nil && bytes.Equal(b, data) {
			found = path
		}
		return nil
	})
	if found == "" {
		t.Fatalf("no file under %s holds the item", root)
	}
	return found
}
