package server_test

import (
	"bytes"
	"encoding/json"
	"image"
	"image/jpeg"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custody-dev/custody/internal/testenv/servertest"
)

// readmeCurl returns the logical lines (continuations joined, comments
// dropped) of README.md's code blocks from "With curl" to the next section.
func readmeCurl(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "With curl")
	if !ok {
		t.Fatal(`README.md has no "With curl" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var out []string
	for {
		var block string
		if _, section, ok = strings.Cut(section, "```sh\n"); !ok {
			break
		}
		block, section, _ = strings.Cut(section, "```")
		var cur string
		for line := range strings.SplitSeq(block, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "#") && cur == "" {
				continue
			}
			if l, cont := strings.CutSuffix(line, "\\"); cont {
				cur += l
				continue
			}
			if cur += line; strings.TrimSpace(cur) != "" {
				out = append(out, cur)
			}
			cur = ""
		}
	}
	if len(out) == 0 {
		t.Fatal("no ```sh block after \"With curl\"")
	}
	return out
}

// TestREADMECurlExamples runs README.md's curl examples (gateway, raw
// routes, /metrics as the admin), as written but for
// the credentials folder, the address and the evidence id, against a
// running server, each with --fail-with-body so an HTTP error fails.
func TestREADMECurlExamples(t *testing.T) {
	for _, tool := range []string{"curl", "bash", "sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	env := servertest.StartT(t)
	dir := t.TempDir()
	var photo bytes.Buffer
	if err := jpeg.Encode(&photo, image.NewGray(image.Rect(0, 0, 8, 8)), nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "photo.jpg"), photo.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	lines := readmeCurl(t)
	prelude := "curl() { command curl --fail-with-body -sS \"$@\"; }\n"
	evidenceID := ""
	ran := 0
	for _, line := range lines {
		line = strings.ReplaceAll(line, "custody-data/certs", env.PKI.Dir)
		line = strings.ReplaceAll(line, "127.0.0.1:8080", env.HTTPAddr)
		if !strings.HasPrefix(line, "curl ") {
			prelude += line + "\n" // C=…, U=…
			continue
		}
		if strings.Contains(line, "ev-…") {
			if evidenceID == "" {
				t.Fatalf("README uses an evidence id before uploading: %s", line)
			}
			line = strings.ReplaceAll(line, "ev-…", evidenceID)
		}
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", prelude+line)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s\n%v\n%s", line, err, out)
		}
		ran++
		if strings.Contains(line, "evidence:upload") {
			var up struct {
				Evidence struct {
					EvidenceID string `json:"evidence_id"`
				} `json:"evidence"`
			}
			if err := json.Unmarshal(out, &up); err != nil || up.Evidence.EvidenceID == "" {
				t.Fatalf("upload answered %s", out)
			}
			evidenceID = up.Evidence.EvidenceID
		}
		if strings.Contains(line, "/v1/whoami") && !strings.Contains(string(out), "urn:custody:court:dev-court") {
			t.Fatalf("whoami answered %s", out)
		}
		if strings.Contains(line, "/metrics") && !strings.Contains(string(out), "# HELP custody_") {
			t.Fatalf("/metrics answered %.300s", out)
		}
	}
	if ran < 9 || evidenceID == "" {
		t.Fatalf("ran %d curl examples (upload id %q); the README block changed shape", ran, evidenceID)
	}
	copied, err := os.ReadFile(filepath.Join(dir, "copy.jpg"))
	if err != nil || !bytes.Equal(copied, photo.Bytes()) {
		t.Fatalf("copy.jpg differs from photo.jpg (%v)", err)
	}
}
