package main_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custody-dev/custody/internal/testenv/binaries"
	"github.com/custody-dev/custody/media/mediatest"
)

// TestCLIUploadKind: --kind is optional (the service infers each file's
// kind from its bytes, as its receipt states), and a kind a file's bytes
// contradict fails that file, saying why.
func TestCLIUploadKind(t *testing.T) {
	dir := t.TempDir()
	d := binaries.StartCustodyd(t, dir)
	custody := binaries.Build(t, "custody")
	cli := func(args ...string) *exec.Cmd {
		cmd := exec.Command(custody, append([]string{"--server", d.GRPCAddr, "--creds", d.CredsDir("collector")}, args...)...)
		cmd.Dir = dir
		return cmd
	}
	files := map[string][]byte{"IMG_0001.JPG": mediatest.JPEG("Canon", "EOS R5"), "notes.txt": []byte("seen from the roof at dawn\n")}
	want := map[string]string{"IMG_0001.JPG": "photo", "notes.txt": "document"}
	var paths []string
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, name)
	}
	out := runOK(t, cli(append([]string{"-o", "json", "upload"}, append(paths, "--case", "case-kind")...)...))
	var results []struct {
		File    string         `json:"file"`
		Receipt map[string]any `json:"receipt"`
	}
	if err := json.Unmarshal([]byte(out), &results); err != nil || len(results) != 2 {
		t.Fatalf("upload output %s: %v", out, err)
	}
	for _, r := range results {
		payload, _ := r.Receipt["payload"].(string)
		var signed struct{ Kind string }
		if err := json.Unmarshal([]byte(payload), &signed); err != nil || signed.Kind != want[filepath.Base(r.File)] {
			t.Fatalf("%s: receipt states kind %q, want %q (%v)", r.File, signed.Kind, want[filepath.Base(r.File)], err)
		}
	}

	cmd := cli("upload", "IMG_0001.JPG", "--case", "case-kind-2", "--kind", "video")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), "kind video contradicts the file: its bytes are image/jpeg") {
		t.Fatalf("upload of a photo as a video: %v\n%s", err, stderr.String())
	}
}
