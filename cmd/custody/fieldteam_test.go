package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/custody-dev/custody/internal/testenv/binaries"
)

// TestCLIFieldTeam drives the commands a field team adds to upload and
// history, through the real binaries: capture statements on upload, list
// and show, withdrawing a release, a release by someone who no longer
// holds the item, tools in history, whoami's role, download's refusal to
// overwrite, and reading a seizure record.
func TestCLIFieldTeam(t *testing.T) {
	dir := t.TempDir()
	d := binaries.StartCustodyd(t, dir)
	custody := binaries.Build(t, "custody")
	run := func(role string, args ...string) (int, string, string) {
		t.Helper()
		cmd := exec.Command(custody, append([]string{"--server", d.GRPCAddr, "--creds", d.CredsDir(role)}, args...)...)
		cmd.Dir = dir // where upload manifests go
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, stdout.String(), stderr.String()
	}
	ok := func(role string, args ...string) string {
		t.Helper()
		code, stdout, stderr := run(role, args...)
		if code != 0 {
			t.Fatalf("custody %v as %s: exit %d\nstdout: %s\nstderr: %s", args, role, code, stdout, stderr)
		}
		return stdout
	}
	jsonOf := func(out string, v any) {
		t.Helper()
		dec := json.NewDecoder(strings.NewReader(out))
		if err := dec.Decode(v); err != nil || dec.More() {
			t.Fatalf("not one JSON document (%v):\n%s", err, out)
		}
	}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const (
		collectorID = "urn:custody:collector:dev-collector"
		custodianID = "urn:custody:custodian:dev-custodian"
	)

	t.Run("whoami spells the role alike in text and JSON", func(t *testing.T) {
		for _, role := range []string{"collector", "custodian", "court", "auditor", "admin"} {
			var me struct{ Role, Identity string }
			jsonOf(ok(role, "-o", "json", "whoami"), &me)
			text := ok(role, "whoami")
			if me.Role != role || !strings.Contains(text, "\nrole:     "+role+"\n") || !strings.Contains(text, me.Identity) {
				t.Fatalf("%s: JSON role %q, text:\n%s", role, me.Role, text)
			}
		}
	})

	// Upload with what the collector states: capture time, place, parent.
	var up []struct {
		EvidenceID string `json:"evidence_id"`
	}
	jsonOf(ok("collector", "-o", "json", "upload", write("scene.jpg", "photo of the scene"), "--case", "case-ft", "--kind", "photo",
		"--captured-at", "2026-01-31T14:05:00+01:00", "--location", "geo:52.0907,5.1214"), &up)
	photo := up[0].EvidenceID
	jsonOf(ok("collector", "-o", "json", "upload", write("scene-redacted.jpg", "redacted photo of the scene"), "--case", "case-ft", "--kind", "photo",
		"--derived-from", photo, "--location", "Evidence room 3"), &up)
	redacted := up[0].EvidenceID

	type item struct {
		EvidenceID  string `json:"evidence_id"`
		Kind        string `json:"kind"`
		Filename    string `json:"filename"`
		SizeBytes   string `json:"size_bytes"`
		Custodian   string `json:"custodian"`
		DerivedFrom string `json:"derived_from"`
		Capture     struct {
			CapturedAt string `json:"captured_at"`
			Location   struct {
				Description string `json:"description"`
				Point       struct{ Latitude, Longitude float64 }
			} `json:"location"`
		} `json:"capture"`
		PendingRelease *struct {
			To string `json:"to"`
		} `json:"pending_release"`
		LastEvent struct {
			Type      string `json:"type"`
			Performer string `json:"performer"`
		} `json:"last_event"`
	}
	show := func(role, id string) item {
		t.Helper()
		var it item
		jsonOf(ok(role, "-o", "json", "show", id), &it)
		return it
	}
	t.Run("show: the capture statements and the parent", func(t *testing.T) {
		p := show("auditor", photo)
		if p.EvidenceID != photo || p.Kind != "photo" || p.Filename != "scene.jpg" || p.SizeBytes != "18" || p.Custodian != collectorID ||
			p.Capture.CapturedAt != "2026-01-31T13:05:00Z" || p.Capture.Location.Point.Latitude != 52.0907 || p.Capture.Location.Point.Longitude != 5.1214 ||
			p.LastEvent.Type != "ingest" || p.LastEvent.Performer != collectorID {
			t.Fatalf("show %s: %+v", photo, p)
		}
		r := show("auditor", redacted)
		if r.DerivedFrom != photo || r.Capture.Location.Description != "Evidence room 3" || r.Capture.CapturedAt != "" {
			t.Fatalf("show %s: %+v", redacted, r)
		}
		text := ok("auditor", "show", photo)
		if !strings.HasPrefix(text, photo+"\n") {
			t.Fatalf("show text does not start with the id:\n%s", text)
		}
		for _, want := range [][2]string{{"case", "case-ft"}, {"kind", "photo"}, {"file", "scene.jpg"}, {"size", "18 bytes (18 B)"},
			{"captured at", "2026-01-31T13:05:00Z (as the collector states)"}, {"location", "52.090700,5.121400"},
			{"custodian", collectorID}, {"last event", "#0 ingest "}} {
			if line := fmt.Sprintf("\n  %-14s %s", want[0]+":", want[1]); !strings.Contains(text, line) {
				t.Fatalf("show text lacks %q:\n%s", line, text)
			}
		}
	})

	t.Run("cancel withdraws one's own pending release", func(t *testing.T) {
		ok("collector", "release", photo, "--to", custodianID, "--reason", "to the lab")
		if p := show("court", photo); p.PendingRelease == nil || p.PendingRelease.To != custodianID || p.LastEvent.Type != "release" {
			t.Fatalf("after the release: %+v", p)
		}
		list := ok("auditor", "list", "--case", "case-ft")
		if !regexp.MustCompile(regexp.QuoteMeta(photo) + ` +photo +scene\.jpg +18 B +` + regexp.QuoteMeta(collectorID+" → "+custodianID+" (pending)") + ` +release `).MatchString(list) {
			t.Fatalf("list during the release:\n%s", list)
		}
		// Only the releaser withdraws it.
		if code, _, stderr := run("custodian", "cancel", photo); code != 1 || !strings.Contains(stderr, "only the releaser ("+collectorID+") can cancel") {
			t.Fatalf("a cancel by the recipient: exit %d: %s", code, stderr)
		}
		var ev struct {
			Event struct {
				Type string `json:"type"`
				Note string `json:"note"`
			} `json:"event"`
		}
		jsonOf(ok("collector", "-o", "json", "cancel", photo, "--reason", "wrong lab"), &ev)
		if ev.Event.Type != "EVENT_TYPE_RELEASE_CANCELLED" || ev.Event.Note != "wrong lab" {
			t.Fatalf("cancel: %+v", ev)
		}
		if p := show("court", photo); p.PendingRelease != nil || p.LastEvent.Type != "release_cancelled" {
			t.Fatalf("after the cancel: %+v", p)
		}
		if hist := ok("auditor", "history", photo); !strings.Contains(hist, "release_cancelled") || !strings.Contains(hist, "note: wrong lab") {
			t.Fatalf("history:\n%s", hist)
		}
		if code, _, stderr := run("collector", "cancel", photo); code != 1 || !strings.Contains(stderr, "no pending release to cancel") {
			t.Fatalf("a second cancel: exit %d: %s", code, stderr)
		}
	})

	t.Run("a collector releasing an item it no longer holds is told so", func(t *testing.T) {
		ok("collector", "release", photo, "--to", custodianID, "--reason", "to the lab")
		ok("custodian", "accept", photo)
		code, _, stderr := run("collector", "release", photo, "--to", "urn:custody:court:dev-court", "--reason", "for trial")
		if code != 1 || !strings.Contains(stderr, "only the current custodian ("+custodianID+") can release "+photo+" (permission denied)") ||
			!strings.Contains(stderr, "you do not hold this item now") || strings.Contains(stderr, "role") {
			t.Fatalf("exit %d:\n%s", code, stderr)
		}
		// A role that may not release at all is told it is the role.
		code, _, stderr = run("auditor", "release", photo, "--to", "urn:custody:court:dev-court", "--reason", "for trial")
		if code != 1 || !strings.Contains(stderr, "the auditor role may not call ReleaseCustody") || !strings.Contains(stderr, "your role cannot do this") {
			t.Fatalf("auditor: exit %d:\n%s", code, stderr)
		}
	})

	t.Run("history shows the tool and its version", func(t *testing.T) {
		ok("custodian", "event", photo, "--type", "analysis", "--note", "ELA: no splicing", "--tool", "forensically", "--tool-version", "1.2")
		hist := ok("auditor", "history", photo)
		if !regexp.MustCompile(`(?m)^#\d+ .* analysis +` + regexp.QuoteMeta(custodianID) + `  tool: forensically 1\.2  note: ELA: no splicing  \[log \d+\]$`).MatchString(hist) {
			t.Fatalf("history:\n%s", hist)
		}
		if p := show("auditor", photo); p.LastEvent.Type != "analysis" || p.Custodian != custodianID {
			t.Fatalf("show after the analysis: %+v", p)
		}
	})

	t.Run("download keeps an existing file unless --force", func(t *testing.T) {
		out := write("exhibit.jpg", "do not lose me")
		code, _, stderr := run("court", "download", photo, "--out", out, "--purpose", "trial")
		if b, _ := os.ReadFile(out); code != 2 || string(b) != "do not lose me" || !strings.Contains(stderr, "--force") {
			t.Fatalf("exit %d, file %q: %s", code, b, stderr)
		}
		ok("court", "download", photo, "--out", out, "--purpose", "trial", "--force")
		if b, _ := os.ReadFile(out); string(b) != "photo of the scene" {
			t.Fatalf("--force wrote %q", b)
		}
		fresh := filepath.Join(dir, "fresh.jpg")
		ok("court", "download", photo, "--out", fresh, "--purpose", "trial")
		if b, _ := os.ReadFile(fresh); string(b) != "photo of the scene" {
			t.Fatalf("a new file holds %q", b)
		}
	})

	t.Run("seizure get", func(t *testing.T) {
		record := filepath.Join(binaries.RepoRoot(t), "examples", "seizure-record.json")
		var seized struct {
			EvidenceID            string   `json:"evidence_id"`
			AttachmentEvidenceIDs []string `json:"attachment_evidence_ids"`
		}
		// The example record lists the digest of a file holding "foo".
		jsonOf(ok("collector", "-o", "json", "seizure", "create", "--record", record, "--attach", write("batch-0001.eft", "foo")), &seized)
		var got struct {
			Evidence struct {
				EvidenceID string `json:"evidence_id"`
				Kind       string `json:"kind"`
			} `json:"evidence"`
			Record                json.RawMessage `json:"record"`
			AttachmentEvidenceIDs []string        `json:"attachment_evidence_ids"`
		}
		jsonOf(ok("court", "-o", "json", "seizure", "get", seized.EvidenceID, "--purpose", "pre-trial review"), &got)
		var rec struct {
			CaseID     string `json:"case_id"`
			Modalities []struct {
				Modality string `json:"modality"`
			} `json:"modalities"`
			SubjectRefs []string `json:"subject_refs"`
		}
		json.Unmarshal(got.Record, &rec)
		if got.Evidence.EvidenceID != seized.EvidenceID || got.Evidence.Kind != "biometric_seizure_record" || rec.CaseID != "ICC-01/22-filtration" ||
			len(rec.Modalities) != 3 || rec.Modalities[0].Modality != "MODALITY_FINGERPRINT" || len(rec.SubjectRefs) != 3 ||
			len(got.AttachmentEvidenceIDs) != 1 || got.AttachmentEvidenceIDs[0] != seized.AttachmentEvidenceIDs[0] {
			t.Fatalf("seizure get: %+v\nrecord %s", got, got.Record)
		}
		// The record as printed is one seizure create --record reads.
		again := write("record-again.json", string(got.Record))
		if code, _, stderr := run("collector", "seizure", "create", "--record", again, "--attach", filepath.Join(dir, "nonexistent.eft")); code != 2 || strings.Contains(stderr, "is not a seizure record") {
			t.Fatalf("the printed record does not read back: exit %d: %s", code, stderr)
		}
		text := ok("court", "seizure", "get", seized.EvidenceID, "--purpose", "pre-trial review")
		if !strings.Contains(text, "seizure record "+seized.EvidenceID) || !strings.Contains(text, `"legal_basis": "Documentation of forcible transfer`) {
			t.Fatalf("text:\n%s", text)
		}
		// Every read is logged as an access with its purpose.
		if hist := ok("court", "history", seized.EvidenceID); strings.Count(hist, "purpose: pre-trial review") != 2 {
			t.Fatalf("history of the record:\n%s", hist)
		}
		// Those not allowed are told it is their role.
		code, _, stderr := run("auditor", "seizure", "get", seized.EvidenceID, "--purpose", "curious")
		if code != 1 || !strings.Contains(stderr, "may not call GetSeizureRecord") || !strings.Contains(stderr, "your role cannot do this") {
			t.Fatalf("auditor: exit %d: %s", code, stderr)
		}
		// The listing shows special-category items without their names.
		if list := ok("court", "list", "--case", "ICC-01/22-filtration"); strings.Count(list, "(special category)") != 2 {
			t.Fatalf("list of the seizure case:\n%s", list)
		}
	})
}
