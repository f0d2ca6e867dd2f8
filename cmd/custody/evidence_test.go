package main_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custody-dev/custody/internal/testenv/binaries"
)

// TestCLIEvidence drives upload, download and seizure create through the
// real binaries, as a field team would.
func TestCLIEvidence(t *testing.T) {
	dir := t.TempDir()
	d := binaries.StartCustodyd(t, dir, "--checkpoint-interval", "200ms")
	custody := binaries.Build(t, "custody")
	cli := func(role string, args ...string) *exec.Cmd {
		cmd := exec.Command(custody, append([]string{"--server", d.GRPCAddr, "--creds", d.CredsDir(role)}, args...)...)
		cmd.Dir = dir // where the upload manifest goes
		return cmd
	}
	files := map[string][]byte{"a.jpg": bytes.Repeat([]byte("photo a "), 100000), "b.mp4": bytes.Repeat([]byte("video b "), 300000)}
	var paths []string
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	out := runOK(t, cli("collector", append([]string{"-o", "json", "upload"}, append(paths, "--case", "case-7", "--kind", "photo")...)...))
	var results []struct {
		File       string         `json:"file"`
		EvidenceID string         `json:"evidence_id"`
		SHA256     string         `json:"sha256"`
		Receipt    map[string]any `json:"receipt"`
	}
	if err := json.Unmarshal([]byte(out), &results); err != nil || len(results) != 2 {
		t.Fatalf("upload output %s: %v", out, err)
	}
	for _, r := range results {
		sum := sha256.Sum256(files[filepath.Base(r.File)])
		if r.SHA256 != hex.EncodeToString(sum[:]) || r.EvidenceID == "" || r.Receipt["payload"] == nil {
			t.Fatalf("upload result %+v", r)
		}
		target := filepath.Join(dir, "copy-"+filepath.Base(r.File))
		runOK(t, cli("court", "download", r.EvidenceID, "--out", target, "--purpose", "trial exhibit check"))
		got, err := os.ReadFile(target)
		if err != nil || !bytes.Equal(got, files[filepath.Base(r.File)]) {
			t.Fatalf("downloaded %s differs: %v", target, err)
		}
	}
	// Missing purpose is a usage error, and writes nothing.
	err := cli("court", "download", results[0].EvidenceID, "--out", filepath.Join(dir, "nope")).Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("download without --purpose: %v, want exit 2", err)
	}
	// An unknown id fails with exit 1 and says so.
	cmd := cli("court", "download", "ev-aaaaaaaaaaaaaaaaaaaaaaaaaa", "--out", filepath.Join(dir, "nope"), "--purpose", "x")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), "no evidence ev-aaaaaaaaaaaaaaaaaaaaaaaaaa") {
		t.Fatalf("download of an unknown id: %v %s", err, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "nope")); err == nil {
		t.Fatal("a failed download left a file")
	}

	// Hand-off, analysis and history through the CLI, as the README shows.
	hand := results[1].EvidenceID
	runOK(t, cli("collector", "release", hand, "--to", "urn:custody:custodian:dev-custodian", "--reason", "to the lab"))
	runOK(t, cli("custodian", "accept", hand))
	runOK(t, cli("custodian", "event", hand, "--type", "analysis", "--note", "ELA: no splicing", "--tool", "forensically", "--tool-version", "1.2"))
	hist := runOK(t, cli("auditor", "history", hand))
	for _, want := range []string{"ingest", "release", "accept", "analysis", "urn:custody:custodian:dev-custodian", "note: ELA: no splicing"} {
		if !strings.Contains(hist, want) {
			t.Fatalf("history lacks %q:\n%s", want, hist)
		}
	}
	var cp struct {
		Origin string `json:"origin"`
		Size   string `json:"size"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for cp.Size == "" || cp.Size == "0" {
		if time.Now().After(deadline) {
			t.Fatalf("custody checkpoint never covered the events: %+v", cp)
		}
		json.Unmarshal([]byte(runOK(t, cli("auditor", "-o", "json", "checkpoint"))), &cp)
		time.Sleep(100 * time.Millisecond)
	}
	if text := runOK(t, cli("auditor", "checkpoint")); !strings.HasPrefix(text, "custody.local/log\n") || !strings.Contains(text, "\u2014 custody.local/log ") {
		t.Fatalf("custody checkpoint prints no signed note:\n%s", text)
	}

	// The court: a bundle, then offline verification with keys it got
	// from the operator, and a tampered copy.
	item := results[0]
	bundle := filepath.Join(dir, "bundle.json")
	runOK(t, cli("court", "bundle", item.EvidenceID, "--out", bundle))
	var keys struct {
		LogVerifierKey      string `json:"log_verifier_key"`
		ReceiptPublicKeyPEM string `json:"receipt_public_key_pem"`
	}
	// The keys come from the public route, with no client certificate:
	// the credentials folder lends only its CA, to trust the server.
	trustFile := filepath.Join(dir, "trust.json")
	keysCmd := exec.Command(custody, "--server", d.GRPCAddr, "keys", "--url", "https://"+d.HTTPAddr)
	if out, err := keysCmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "--creds DIR whose ca.pem") {
		t.Fatalf("keys without a CA to trust the server: %v\n%s", err, out)
	}
	anon := filepath.Join(dir, "anonymous")
	os.MkdirAll(anon, 0o700)
	caPEM, _ := os.ReadFile(filepath.Join(d.CredsDir("court"), "ca.pem"))
	os.WriteFile(filepath.Join(anon, "ca.pem"), caPEM, 0o644)
	keysCmd = exec.Command(custody, "--server", d.GRPCAddr, "--creds", anon, "-o", "json", "keys", "--url", "https://"+d.HTTPAddr, "--out", trustFile)
	if err := json.Unmarshal([]byte(runOK(t, keysCmd)), &keys); err != nil {
		t.Fatal(err)
	}
	receiptKey := filepath.Join(dir, "receipt-key.pem")
	os.WriteFile(receiptKey, []byte(keys.ReceiptPublicKeyPEM), 0o644)
	verifyArgs := []string{"verify", "--bundle", bundle, "--file", item.File, "--log-key", keys.LogVerifierKey, "--receipt-key", receiptKey,
		"--ca", filepath.Join(d.CredsDir("court"), "ca.pem")}
	// No --server or --creds: verification needs no network.
	out = runOK(t, exec.Command(custody, verifyArgs...))
	// This daemon has no witnesses and no timestamp authority: those two
	// checks, and only those, are left unmade.
	if !strings.Contains(out, "VERIFIED, WITH LIMITS: every check made passed, but 2 thing(s)") || !strings.Contains(out, "- time: ") || !strings.Contains(out, "- split view: ") || strings.Contains(out, "WARNING") {
		t.Fatalf("verify output:\n%s", out)
	}
	// The trust file gives the same keys and the CA in one; its
	// fingerprints are printed, and an edited file is refused (exit 2).
	trusted := runOK(t, exec.Command(custody, "verify", "--bundle", bundle, "--file", item.File, "--trust", trustFile))
	if !strings.Contains(trusted, "VERIFIED, WITH LIMITS: every check made passed, but 2 thing(s)") || !strings.Contains(trusted, "Keys from the trust file") || !strings.Contains(trusted, "client CA cert 1:    fingerprint ") {
		t.Fatalf("verify --trust output:\n%s", trusted)
	}
	trustRaw, _ := os.ReadFile(trustFile)
	edited := filepath.Join(dir, "trust-edited.json")
	os.WriteFile(edited, bytes.Replace(trustRaw, []byte(keys.LogVerifierKey), []byte(keys.LogVerifierKey[:len(keys.LogVerifierKey)-4]+"AAA="), 1), 0o644)
	editedCmd := exec.Command(custody, "verify", "--bundle", bundle, "--trust", edited)
	if out, err := editedCmd.CombinedOutput(); editedCmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "fingerprints do not match") {
		t.Fatalf("verify with an edited trust file: %v\n%s", err, out)
	}
	raw, _ := os.ReadFile(bundle)
	tampered := filepath.Join(dir, "tampered.json")
	os.WriteFile(tampered, bytes.Replace(raw, []byte(`"seq": 1`), []byte(`"seq": 7`), 1), 0o644)
	cmd = exec.Command(custody, append([]string{"verify", "--bundle", tampered}, verifyArgs[3:]...)...)
	var vout bytes.Buffer
	cmd.Stdout = &vout
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(vout.String(), "NOT VERIFIED") {
		t.Fatalf("verify of a tampered bundle: %v\n%s", err, vout.String())
	}
	os.WriteFile(tampered, []byte("not a bundle"), 0o644)
	err = exec.Command(custody, "verify", "--bundle", tampered).Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("verify of garbage: %v, want exit 2", err)
	}

	// An attachment whose digest the record does not list: refused before
	// anything is uploaded, naming the file.
	record := filepath.Join(binaries.RepoRoot(t), "examples", "seizure-record.json")
	other := filepath.Join(dir, "export.eft")
	os.WriteFile(other, []byte("fingerprint export"), 0o600)
	cmd = cli("collector", "seizure", "create", "--record", record, "--attach", other)
	stderr.Reset()
	cmd.Stderr = &stderr
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(stderr.String(), "--attach "+other+" (attachment 0) has sha256") {
		t.Fatalf("seizure create with an attachment the record does not list: %v %s", err, stderr.String())
	}
	if got := caseDigests(t, d, "ICC-01/22-filtration"); len(got) != 0 {
		t.Fatalf("a refused seizure record left %d items", len(got))
	}
	// The example record lists the digest of a file holding "foo".
	attachment := filepath.Join(dir, "batch-0001.eft")
	os.WriteFile(attachment, []byte("foo"), 0o600)
	// As docs/CLI.md spells it: the case comes from the record.
	out = runOK(t, cli("collector", "-o", "json", "seizure", "create", "--record", record, "--attach", attachment))
	var seized struct {
		EvidenceID            string   `json:"evidence_id"`
		AttachmentEvidenceIDs []string `json:"attachment_evidence_ids"`
	}
	if err := json.Unmarshal([]byte(out), &seized); err != nil || seized.EvidenceID == "" || len(seized.AttachmentEvidenceIDs) != 1 {
		t.Fatalf("seizure create output %s: %v", out, err)
	}
}
