package main_test

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/custody-dev/custody/internal/testenv/binaries"
	"github.com/custody-dev/custody/internal/testenv/tsatest"
	"github.com/custody-dev/custody/internal/testenv/witnesstest"
)

// TestWitnessedTimestampedBundle runs the real custodyd with two real
// witnesses (omniwitness) and a real timestamp authority (sigstore's
// timestamp-server): a court verifying a bundle with the witness policy and
// the authority's chain gets "same log as the witnesses", "existed no
// later than" and "history complete". Then the operator forks the log: a second custodyd with the
// same keys and another history. The witnesses refuse its checkpoints, so
// its bundle — valid under the log key — fails `custody verify --policy`,
// and without the policy is reported with the split-view check not made.
func TestWitnessedTimestampedBundle(t *testing.T) {
	const origin = "custody.local/log"
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	a := witnesstest.Start(t, "witness.test/a", origin, vkey)
	b := witnesstest.Start(t, "witness.test/b", origin, vkey)
	authority := tsatest.Start(t, "Custody Test TSA")
	work := t.TempDir()
	policy := filepath.Join(work, "witnesses.policy")
	writeFile(t, policy, fmt.Sprintf("# the court's witnesses\nwitness A %s %s\nwitness B %s %s\ngroup both all A B\nquorum both\n", a.VKey, a.URL, b.VKey, b.URL))
	logKeyFile := filepath.Join(work, "log-key.txt")
	writeFile(t, logKeyFile, vkey+"\n")
	honestDir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(honestDir, "custody-data", "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(honestDir, "custody-data", "keys", "log-key"), []byte(skey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--checkpoint-interval", "300ms", "--witness-policy", policy, "--tsa", authority.URL, "--tsa-chain", authority.ChainFile}
	honest := binaries.StartCustodyd(t, honestDir, flags...)
	custody := binaries.Build(t, "custody")
	cli := func(d *binaries.Daemon, role string, args ...string) *exec.Cmd {
		cmd := exec.Command(custody, append([]string{"--server", d.GRPCAddr, "--creds", d.CredsDir(role)}, args...)...)
		cmd.Dir = d.Dir
		return cmd
	}
	receiptKey := filepath.Join(work, "receipt-key.pem")
	var keys struct {
		Receipt string `json:"receipt_public_key_pem"`
	}
	// The court's trust file: keys, CA, the witness policy and the
	// authority's chain, as the service states them.
	trustFile := filepath.Join(work, "trust.json")
	if err := json.Unmarshal([]byte(runOK(t, cli(honest, "court", "-o", "json", "keys", "--url", "https://"+honest.HTTPAddr, "--out", trustFile))), &keys); err != nil || keys.Receipt == "" {
		t.Fatalf("custody keys: %v", err)
	}
	writeFile(t, receiptKey, keys.Receipt)
	ca := filepath.Join(honest.CredsDir("court"), "ca.pem")

	// uploadAndBundle uploads a file to d and writes the court's bundle.
	uploadAndBundle := func(d *binaries.Daemon, name, content string) (bundle, file string) {
		t.Helper()
		file = filepath.Join(d.Dir, name)
		writeFile(t, file, content)
		out := runOK(t, cli(d, "collector", "-o", "json", "upload", file, "--case", "case-w", "--kind", "photo"))
		var up []struct {
			EvidenceID string `json:"evidence_id"`
		}
		if err := json.Unmarshal([]byte(out), &up); err != nil || len(up) != 1 {
			t.Fatalf("upload: %s %v", out, err)
		}
		bundle = filepath.Join(d.Dir, name+".bundle.json")
		runOK(t, cli(d, "court", "bundle", up[0].EvidenceID, "--out", bundle))
		return bundle, file
	}
	verify := func(bundle, file string, extra ...string) (string, int) {
		cmd := exec.Command(custody, append([]string{"verify", "--bundle", bundle, "--file", file, "--log-key", logKeyFile, "--receipt-key", receiptKey, "--ca", ca}, extra...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return out.String(), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), 0
	}

	// The honest log's checkpoints are cosigned by both witnesses first.
	bundle, file := uploadAndBundle(honest, "photo.jpg", "\xff\xd8\xff\xe0 the shelled school "+strings.Repeat("px ", 1000))
	var doc struct {
		Log struct {
			Checkpoint string `json:"checkpoint"`
			Timestamps []any  `json:"timestamps"`
		} `json:"log"`
	}
	raw, _ := os.ReadFile(bundle)
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if strings.Count(doc.Log.Checkpoint, "\u2014 witness.test/") != 2 || len(doc.Log.Timestamps) != 1 {
		t.Fatalf("the bundle's checkpoint is not cosigned by both witnesses and timestamped:\n%s\n%d timestamps", doc.Log.Checkpoint, len(doc.Log.Timestamps))
	}
	out, code := verify(bundle, file, "--policy", policy, "--tsa-chain", authority.ChainFile)
	for _, want := range []string{"VERIFIED: every check passed", "same log as the witnesses", "2 of 2: A, B", "existed no later than", "Custody Test TSA", "history complete: "} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("verify with the policy and the authority: exit %d, want 0 and %q:\n%s", code, want, out)
		}
	}
	// The trust file alone gives the verifier all of it.
	trusted := exec.Command(custody, "verify", "--bundle", bundle, "--file", file, "--trust", trustFile)
	if out, err := trusted.CombinedOutput(); err != nil || !strings.Contains(string(out), "VERIFIED: every check passed") ||
		!strings.Contains(string(out), "2 of 2: A, B") || !strings.Contains(string(out), "Keys from the trust file") {
		t.Fatalf("verify --trust: %v\n%s", err, out)
	}
	// The service's own re-verification checks the quorum and the
	// timestamp too.
	var ev struct {
		Evidence struct {
			ID string `json:"evidence_id"`
		} `json:"evidence"`
	}
	json.Unmarshal(raw, &ev)
	vr, err := dialRole(t, honest, "court").VerifyEvidence(t.Context(), ev.Evidence.ID)
	if err != nil {
		t.Fatal(err)
	}
	made := map[string]bool{}
	for _, c := range vr.GetChecks() {
		made[c.GetName()] = c.GetOk()
	}
	if !vr.GetOk() || !made["checkpoint witnesses"] || !made["checkpoint timestamp"] {
		t.Fatalf("VerifyEvidence: ok %v, checks %v", vr.GetOk(), made)
	}
	if out, code := verify(bundle, file); code != 0 || !strings.Contains(out, "VERIFIED, WITH LIMITS") || !strings.Contains(out, "split view") || !strings.Contains(out, "--tsa-chain") {
		t.Fatalf("verify with neither: exit %d, want 0 with limits naming split view and time:\n%s", code, out)
	}
	ready := readiness(t, honest)
	if lag, ok := ready["witness_lag_entries"].(map[string]any); !ok || len(lag) != 2 {
		t.Fatalf("readiness has no witness lag: %v", ready)
	}
	if _, ok := ready["timestamp_gap_entries"]; !ok {
		t.Fatalf("readiness has no timestamp gap: %v", ready)
	}

	// The fork: the same keys and CA, another history.
	forkDir := t.TempDir()
	for _, sub := range []string{"keys", "certs"} {
		if err := os.CopyFS(filepath.Join(forkDir, "custody-data", sub), os.DirFS(filepath.Join(honest.DataDir(), sub))); err != nil {
			t.Fatal(err)
		}
	}
	// CopyFS writes files 0644; keys must be 0600 or custodyd refuses them.
	filepath.WalkDir(filepath.Join(forkDir, "custody-data"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			err = os.Chmod(p, 0o600)
		}
		return err
	})
	fork := binaries.StartCustodyd(t, forkDir, flags...)
	forkBundle, forkFile := uploadAndBundle(fork, "other.jpg", "\xff\xd8\xff\xe0 a different history "+strings.Repeat("px ", 1000))
	out, code = verify(forkBundle, forkFile, "--policy", policy, "--tsa-chain", authority.ChainFile)
	if code != 1 || !strings.Contains(out, "checkpoint witnesses") || !strings.Contains(out, "lacks the witness quorum") {
		t.Fatalf("verify of the fork's bundle with the policy: exit %d, want 1 failing on the witness quorum:\n%s", code, out)
	}
	if out, code := verify(forkBundle, forkFile, "--tsa-chain", authority.ChainFile); code != 0 || !strings.Contains(out, "split view") {
		t.Fatalf("verify of the fork's bundle without a policy: exit %d, want 0 with the split-view check not made:\n%s", code, out)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readiness(t *testing.T, d *binaries.Daemon) map[string]any {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := hc.Get("https://" + d.HTTPAddr + "/healthz?ready=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("readiness %s: %v", b, err)
	}
	return m
}
