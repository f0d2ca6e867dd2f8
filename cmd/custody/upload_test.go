// End-to-end tests of custody upload and its manifest: the real binaries
// against a real server, as a field team runs them.

package main_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/custody-dev/custody/client"
	"github.com/custody-dev/custody/internal/testenv/binaries"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// uploadLine is a file's line in custody upload's text output.
type uploadLine struct{ id, status string }

// parseUploadText reads custody upload's text output: one line per file
// (path, evidence id, status) and the summary line.
func parseUploadText(t *testing.T, out string) (map[string]uploadLine, string) {
	t.Helper()
	lines := map[string]uploadLine{}
	summary := ""
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		switch {
		case strings.Contains(l, "; manifest: "):
			summary = l
		case len(f) >= 3 && (f[1] == "-" || strings.HasPrefix(f[1], "ev-")):
			lines[f[0]] = uploadLine{f[1], f[2]}
		case strings.HasPrefix(l, "  "): // a single upload's sha256 and receipt
		default:
			t.Fatalf("unexpected upload output line %q in\n%s", l, out)
		}
	}
	return lines, summary
}

// manifestFile is the manifest as written since it is keyed by case and
// content.
type manifestFile struct {
	Format  string `json:"format"`
	Entries []struct {
		CaseID     string         `json:"case_id"`
		SHA256     string         `json:"sha256"`
		File       string         `json:"file"`
		Size       int64          `json:"size"`
		ModTime    string         `json:"mtime"`
		EvidenceID string         `json:"evidence_id"`
		Status     string         `json:"status"`
		Receipt    map[string]any `json:"receipt"`
	} `json:"entries"`
	Legacy []json.RawMessage `json:"legacy_entries"`
}

func readManifestFile(t *testing.T, path string) manifestFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m manifestFile
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("manifest %s: %v\n%s", path, err, b)
	}
	return m
}

// caseDigests lists the digests the service holds for a case.
func caseDigests(t *testing.T, d *binaries.Daemon, caseID string) []string {
	t.Helper()
	creds, err := client.LoadCredentials(d.CredsDir("court"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(t.Context(), d.GRPCAddr, creds)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	list, err := c.ListEvidence(t.Context(), &custodyv1.ListEvidenceRequest{CaseId: caseID, PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range list.GetEvidence() {
		out = append(out, ev.GetSha256())
	}
	slices.Sort(out)
	return out
}

// TestCLIUploadManifest: the manifest skips only content it records for the
// same case; a changed file at a known path, the same files into another
// case, and files listed by an old path-keyed manifest are uploaded; a
// rerun with nothing changed says skipped, never uploaded; and every count
// is of what the run did.
func TestCLIUploadManifest(t *testing.T) {
	dir := t.TempDir()
	d := binaries.StartCustodyd(t, dir)
	custody := binaries.Build(t, "custody")
	field := filepath.Join(dir, "field")
	os.MkdirAll(filepath.Join(field, "DCIM"), 0o755)
	cli := func(args ...string) *exec.Cmd {
		cmd := exec.Command(custody, append([]string{"--server", d.GRPCAddr, "--creds", d.CredsDir("collector")}, args...)...)
		cmd.Dir = field // where the default manifests go
		return cmd
	}
	img1, img2 := filepath.Join("DCIM", "IMG_0001.JPG"), filepath.Join("DCIM", "IMG_0002.JPG")
	card1 := []byte("card 1, picture 1: " + strings.Repeat("a", 5000))
	card2 := []byte("card 2, picture 1: " + strings.Repeat("b", 5000)) // same size
	other := []byte("card 1, picture 2")
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(field, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(img1, card1)
	write(img2, other)
	summary := func(up, held, skipped, failed int, manifest string) string {
		return fmt.Sprintf("%d uploaded, %d already held by the service, %d skipped (in the manifest), %d failed; manifest: %s", up, held, skipped, failed, manifest)
	}

	// First run: both uploaded, one line each with its evidence id, into
	// the case's own manifest.
	lines, sum := parseUploadText(t, runOK(t, cli("upload", "DCIM", "--case", "ICC-01/22", "--kind", "photo")))
	const manA = "custody-manifest-ICC-01_22.json"
	if sum != summary(2, 0, 0, 0, manA) || len(lines) != 2 || lines[img1].status != "uploaded" || lines[img2].status != "uploaded" {
		t.Fatalf("first run: %v\n%s", lines, sum)
	}
	firstID := lines[img1].id
	m := readManifestFile(t, filepath.Join(field, manA))
	if m.Format != "custody-manifest/2" || len(m.Entries) != 2 {
		t.Fatalf("manifest after the first run: %+v", m)
	}
	for _, e := range m.Entries {
		if e.CaseID != "ICC-01/22" || e.Status != "uploaded" || e.EvidenceID != lines[e.File].id || e.ModTime == "" || e.Receipt["payload"] == nil {
			t.Fatalf("manifest entry %+v", e)
		}
	}

	// Nothing changed: skipped, not uploaded.
	lines, sum = parseUploadText(t, runOK(t, cli("upload", "DCIM", "--case", "ICC-01/22", "--kind", "photo")))
	if sum != summary(0, 0, 2, 0, manA) || lines[img1] != (uploadLine{firstID, "skipped"}) || lines[img2].status != "skipped" {
		t.Fatalf("rerun with nothing changed: %v\n%s", lines, sum)
	}

	// The second camera card: another picture at the same path, with the
	// same size and modification time. It is uploaded, under a new id.
	info, _ := os.Stat(filepath.Join(field, img1))
	write(img1, card2)
	os.Chtimes(filepath.Join(field, img1), info.ModTime(), info.ModTime())
	var results []struct {
		File       string         `json:"file"`
		CaseID     string         `json:"case_id"`
		SHA256     string         `json:"sha256"`
		EvidenceID string         `json:"evidence_id"`
		Status     string         `json:"status"`
		Receipt    map[string]any `json:"receipt"`
	}
	out := runOK(t, cli("-o", "json", "upload", "DCIM", "--case", "ICC-01/22", "--kind", "photo"))
	if err := json.Unmarshal([]byte(out), &results); err != nil || len(results) != 2 {
		t.Fatalf("json output %s: %v", out, err)
	}
	changed, same := results[0], results[1]
	if changed.File != img1 || changed.Status != "uploaded" || changed.SHA256 != sha256Hex(card2) || changed.EvidenceID == "" || changed.EvidenceID == firstID || changed.Receipt["payload"] == nil {
		t.Fatalf("the changed file: %+v", changed)
	}
	if same.File != img2 || same.Status != "skipped" || same.SHA256 != sha256Hex(other) || same.Receipt != nil {
		t.Fatalf("the unchanged file: %+v", same)
	}
	m = readManifestFile(t, filepath.Join(field, manA))
	byDigest := map[string]string{}
	for _, e := range m.Entries {
		byDigest[e.SHA256] = e.EvidenceID
	}
	if len(m.Entries) != 3 || byDigest[sha256Hex(card2)] != changed.EvidenceID || byDigest[sha256Hex(card1)] != firstID {
		t.Fatalf("manifest after the changed file: %+v", m.Entries)
	}
	want := []string{sha256Hex(card1), sha256Hex(card2), sha256Hex(other)}
	slices.Sort(want)
	if got := caseDigests(t, d, "ICC-01/22"); !slices.Equal(got, want) {
		t.Fatalf("the service holds %v for the case, want %v", got, want)
	}

	// The same files into another case: uploaded, into that case's
	// manifest; also when it is given the first case's manifest.
	lines, sum = parseUploadText(t, runOK(t, cli("upload", "DCIM", "--case", "case-b", "--kind", "photo")))
	if sum != summary(2, 0, 0, 0, "custody-manifest-case-b.json") || lines[img1].status != "uploaded" || lines[img1].id == changed.EvidenceID {
		t.Fatalf("into another case: %v\n%s", lines, sum)
	}
	lines, sum = parseUploadText(t, runOK(t, cli("upload", "DCIM", "--case", "case-c", "--kind", "photo", "--manifest", manA)))
	if sum != summary(2, 0, 0, 0, manA) {
		t.Fatalf("into a third case with the first case's manifest: %v\n%s", lines, sum)
	}
	if m = readManifestFile(t, filepath.Join(field, manA)); len(m.Entries) != 5 {
		t.Fatalf("the shared manifest lost or lacks entries: %+v", m.Entries)
	}

	// The same bytes at a new path, with a manifest that does not know
	// them: already held, not uploaded again. With the case's manifest:
	// skipped, and the output says under which path it is recorded.
	write("copy.jpg", card2)
	lines, sum = parseUploadText(t, runOK(t, cli("upload", "copy.jpg", "--case", "ICC-01/22", "--kind", "photo", "--manifest", "elsewhere.json")))
	if sum != summary(0, 1, 0, 0, "elsewhere.json") || lines["copy.jpg"] != (uploadLine{changed.EvidenceID, "already-held"}) {
		t.Fatalf("known bytes, unknown to the manifest: %v\n%s", lines, sum)
	}
	out = runOK(t, cli("upload", "copy.jpg", "--case", "ICC-01/22", "--kind", "photo"))
	if lines, sum = parseUploadText(t, out); sum != summary(0, 0, 1, 0, manA) || !strings.Contains(out, "(in the manifest as "+img1+")") {
		t.Fatalf("known bytes, known to the manifest:\n%s", out)
	}

	// The same bytes twice in one run: sent once.
	lines, sum = parseUploadText(t, runOK(t, cli("upload", "DCIM", "copy.jpg", "--case", "case-f", "--kind", "photo")))
	if sum != summary(2, 1, 0, 0, "custody-manifest-case-f.json") || lines["copy.jpg"] != (uploadLine{lines[img1].id, "already-held"}) {
		t.Fatalf("the same bytes twice in a run: %v\n%s", lines, sum)
	}
	if m = readManifestFile(t, filepath.Join(field, "custody-manifest-case-f.json")); len(m.Entries) != 2 || len(caseDigests(t, d, "case-f")) != 2 {
		t.Fatalf("the same bytes twice in a run: manifest %+v", m.Entries)
	}
	for _, e := range m.Entries {
		if e.SHA256 == sha256Hex(card2) && (e.File != img1 || e.Receipt["payload"] == nil) {
			t.Fatalf("the first upload's entry was replaced: %+v", e)
		}
	}

	// An old manifest (a JSON array keyed by path, no case) names both
	// files as uploaded: it skips nothing, and its entries are kept.
	legacy := fmt.Sprintf(`[{"file": %q, "sha256": %q, "size": 5019, "evidence_id": %q, "status": "uploaded"},
		{"file": %q, "sha256": %q, "size": 17, "evidence_id": "ev-aaaaaaaaaaaaaaaaaaaaaaaaaa", "status": "uploaded"}]`,
		img1, sha256Hex(card1), firstID, img2, sha256Hex(other))
	write("custody-manifest.json", []byte(legacy))
	lines, sum = parseUploadText(t, runOK(t, cli("upload", "DCIM", "--case", "case-d", "--kind", "photo", "--manifest", "custody-manifest.json")))
	if sum != summary(2, 0, 0, 0, "custody-manifest.json") {
		t.Fatalf("with an old manifest: %v\n%s", lines, sum)
	}
	if m = readManifestFile(t, filepath.Join(field, "custody-manifest.json")); len(m.Entries) != 2 || len(m.Legacy) != 2 {
		t.Fatalf("the old manifest after a run: %+v", m)
	}

	// A file that is not a manifest is not overwritten.
	write("notes.json", []byte(`{"my": "notes"}`))
	cmd := cli("upload", "DCIM", "--case", "case-e", "--kind", "photo", "--manifest", "notes.json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), "notes.json is not a custody manifest") {
		t.Fatalf("upload with a foreign --manifest: %v %s", err, stderr.String())
	}
	if b, _ := os.ReadFile(filepath.Join(field, "notes.json")); string(b) != `{"my": "notes"}` {
		t.Fatalf("notes.json was overwritten: %s", b)
	}
	if got := caseDigests(t, d, "case-e"); len(got) != 0 {
		t.Fatalf("a refused run uploaded %v", got)
	}
}

var evidenceIDRe = regexp.MustCompile(`^ev-[a-z0-9]+$`)

// TestCLIUploadFolder uploads a folder with a manifest; the server refuses
// part of it (a size limit), and after the operator lifts the limit the
// same command finishes the rest without uploading anything twice, and
// says which files it uploaded and which it skipped.
func TestCLIUploadFolder(t *testing.T) {
	dir := t.TempDir()
	d := binaries.StartCustodyd(t, dir, "--max-upload-bytes", "2000")
	custody := binaries.Build(t, "custody")
	photos := filepath.Join(dir, "day-1")
	os.MkdirAll(filepath.Join(photos, "sub"), 0o755)
	os.MkdirAll(filepath.Join(photos, ".thumbnails"), 0o755)
	want := map[string]bool{}
	for i := range 30 {
		p := filepath.Join(photos, fmt.Sprintf("IMG_%04d.jpg", i))
		if i%3 == 0 {
			p = filepath.Join(photos, "sub", fmt.Sprintf("IMG_%04d.jpg", i))
		}
		os.WriteFile(p, []byte(fmt.Sprintf("photo %02d %s", i, strings.Repeat("x", i*100))), 0o600)
		want[p] = true
	}
	os.WriteFile(filepath.Join(photos, ".thumbnails", "t.jpg"), []byte("thumb"), 0o600)
	manifest := filepath.Join(dir, "manifest.json")
	run := func(d *binaries.Daemon) (int, []map[string]any) {
		cmd := exec.Command(custody, "--server", d.GRPCAddr, "--creds", d.CredsDir("collector"), "-o", "json",
			"upload", photos, "--case", "case-folder", "--kind", "photo", "--manifest", manifest, "-j", "8")
		var out bytes.Buffer
		cmd.Stdout = &out
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		var entries []map[string]any
		json.Unmarshal(out.Bytes(), &entries)
		return code, entries
	}
	code, entries := run(d)
	statuses := map[string]int{}
	firstIDs := map[string]string{}
	for _, e := range entries {
		statuses[e["status"].(string)]++
		if e["status"] == "uploaded" {
			firstIDs[e["file"].(string)] = e["evidence_id"].(string)
		}
	}
	if code != 1 || len(entries) != 30 || statuses["failed"] != 10 || statuses["uploaded"] != 20 {
		t.Fatalf("first run: exit %d, %d entries, %v; want 1, 30, 10 failed and 20 uploaded", code, len(entries), statuses)
	}
	if err := d.Signal(t, syscall.SIGTERM, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	d2 := binaries.StartCustodyd(t, dir)
	code, entries = run(d2)
	if code != 0 || len(entries) != 30 {
		t.Fatalf("rerun: exit %d, %d entries", code, len(entries))
	}
	ids := map[string]bool{}
	for _, e := range entries {
		file, id := e["file"].(string), e["evidence_id"].(string)
		wantStatus := "uploaded"
		if firstIDs[file] != "" {
			wantStatus = "skipped"
			if id != firstIDs[file] {
				t.Fatalf("skipped %s reports %s, uploaded as %s", file, id, firstIDs[file])
			}
		}
		if !want[file] || e["status"] != wantStatus || !evidenceIDRe.MatchString(id) || ids[id] {
			t.Fatalf("rerun entry %v, want status %s", e, wantStatus)
		}
		ids[id] = true
	}
	if m := readManifestFile(t, manifest); len(m.Entries) != 30 {
		t.Fatalf("manifest has %d entries, want 30", len(m.Entries))
	}
	// The server holds exactly 30 items for the case: nothing twice.
	if got := caseDigests(t, d2, "case-folder"); len(got) != 30 {
		t.Fatalf("server holds %d items, want 30", len(got))
	}
}
