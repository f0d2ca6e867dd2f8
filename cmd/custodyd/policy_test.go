package main_test

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custody-dev/custody/internal/testenv/binaries"
)

// TestRequireAuthorityCLI: custodyd --require-authority refuses a CLI
// download that cites an incomplete or expired authority (exit 1, the
// reason on stderr) and serves one that cites a complete authority in
// force, given with custody download's --authority-* flags.
func TestRequireAuthorityCLI(t *testing.T) {
	dir := t.TempDir()
	d := binaries.StartCustodyd(t, dir, "--require-authority")
	custody := binaries.Build(t, "custody")
	cli := func(role string, args ...string) *exec.Cmd {
		cmd := exec.Command(custody, append([]string{"--server", d.GRPCAddr, "--creds", d.CredsDir(role)}, args...)...)
		cmd.Dir = dir
		return cmd
	}
	file := filepath.Join(dir, "statement.pdf")
	data := []byte("%PDF-1.4 witness statement")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var up []struct {
		EvidenceID string `json:"evidence_id"`
	}
	if err := json.Unmarshal([]byte(runOK(t, cli("collector", "-o", "json", "upload", file, "--case", "case-auth", "--kind", "document"))), &up); err != nil || len(up) != 1 {
		t.Fatalf("upload: %v", err)
	}
	id := up[0].EvidenceID
	now := time.Now().UTC()
	in := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	base := []string{"download", id, "--out", filepath.Join(dir, "copy.pdf"), "--purpose", "trial",
		"--authority-type", "court-order", "--authority-id", "ICC-01/22-123"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"incomplete", nil, "authority.issued_by is missing"},
		{"expired", []string{"--authority-issued-by", "Pre-Trial Chamber II", "--authority-valid-from", in(-48 * time.Hour), "--authority-valid-until", in(-24 * time.Hour)}, "expired"},
		{"inverted", []string{"--authority-issued-by", "Pre-Trial Chamber II", "--authority-valid-from", in(24 * time.Hour), "--authority-valid-until", in(-24 * time.Hour)}, "before its valid_from"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := cli("court", append(append([]string{}, base...), tc.args...)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("download: %v, stderr %s; want exit 1 mentioning %q", err, stderr.String(), tc.want)
			}
		})
	}
	runOK(t, cli("court", append(base, "--authority-issued-by", "Pre-Trial Chamber II",
		"--authority-valid-from", in(-24*time.Hour), "--authority-valid-until", in(24*time.Hour))...))
	if got, err := os.ReadFile(filepath.Join(dir, "copy.pdf")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("copy.pdf: %v", err)
	}
	hist := runOK(t, cli("auditor", "history", id))
	if strings.Count(hist, "access") != 1 {
		t.Fatalf("want one access in the history:\n%s", hist)
	}
}

// TestPublicMetricsFlag: /metrics needs an admin client certificate unless
// custodyd runs with --public-metrics (or CUSTODY_PUBLIC_METRICS=true).
func TestPublicMetricsFlag(t *testing.T) {
	anon := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	status := func(d *binaries.Daemon) int {
		resp, err := anon.Get("https://" + d.HTTPAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	d := binaries.StartCustodyd(t, t.TempDir())
	if got := status(d); got != http.StatusUnauthorized {
		t.Fatalf("default: anonymous /metrics = %d, want 401", got)
	}
	if m := scrape(t, d); !strings.Contains(m, "# HELP custody_") {
		t.Fatalf("default: the admin's scrape lacks custody metrics:\n%.300s", m)
	}
	if got := status(binaries.StartCustodyd(t, t.TempDir(), "--public-metrics")); got != http.StatusOK {
		t.Fatalf("--public-metrics: anonymous /metrics = %d, want 200", got)
	}
}
