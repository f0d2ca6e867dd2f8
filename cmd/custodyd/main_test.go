package main_test

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/custody-dev/custody/certs"
	"github.com/custody-dev/custody/internal/testenv/binaries"
	"github.com/custody-dev/custody/internal/testenv/freeport"
)

// TestFreshStart runs the real binaries as the README tells a newcomer to:
// custodyd with no flags but its ports, then the CLI, grpcurl and an HTTPS
// client with the credentials it wrote. (The CLI's own behaviour is tested
// in cmd/custody.)
func TestFreshStart(t *testing.T) {
	dir := t.TempDir()
	d := binaries.StartCustodyd(t, dir)
	custody := binaries.Build(t, "custody")

	t.Run("custody whoami", func(t *testing.T) {
		out := runOK(t, exec.Command(custody, "--server", d.GRPCAddr, "--creds", d.CredsDir("court"), "whoami"))
		if !strings.Contains(out, "role:     court") || !strings.Contains(out, "urn:custody:court:dev-court") {
			t.Fatalf("whoami output:\n%s", out)
		}
	})
	t.Run("grpcurl lists the services", func(t *testing.T) {
		creds := d.CredsDir("collector")
		args := append(binaries.Tool(t, "grpcurl"),
			"-cacert", filepath.Join(creds, "ca.pem"),
			"-cert", filepath.Join(creds, "cert.pem"),
			"-key", filepath.Join(creds, "key.pem"),
			d.GRPCAddr, "list")
		out := runOK(t, exec.Command(args[0], args[1:]...))
		for _, svc := range []string{"custody.v1.EvidenceService", "custody.v1.CustodyService", "custody.v1.LogService"} {
			if !strings.Contains(out, svc) {
				t.Errorf("grpcurl list lacks %s:\n%s", svc, out)
			}
		}
	})
	t.Run("HTTPS gateway with a client certificate", func(t *testing.T) {
		creds := d.CredsDir("custodian")
		cert, err := tls.LoadX509KeyPair(filepath.Join(creds, "cert.pem"), filepath.Join(creds, "key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		roots, err := certs.ReadCertPool(filepath.Join(creds, "ca.pem"))
		if err != nil {
			t.Fatal(err)
		}
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}}}}
		resp, err := hc.Get("https://" + d.HTTPAddr + "/v1/whoami")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || !bytes.Contains(body, []byte(`"role":"ROLE_CUSTODIAN"`)) {
			t.Fatalf("GET /v1/whoami = %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		resp, err = hc.Get("https://" + d.HTTPAddr + "/openapi.json")
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ Swagger string }
		json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		if doc.Swagger != "2.0" {
			t.Fatalf("/openapi.json is not an OpenAPI document")
		}
	})

	if err := d.Signal(t, syscall.SIGTERM, 20*time.Second); err != nil {
		t.Fatalf("custodyd exit after SIGTERM: %v\n%s", err, d.Logs)
	}
	if !strings.Contains(d.Logs.String(), "custodyd shutting down") {
		t.Errorf("no graceful shutdown in the log:\n%s", d.Logs)
	}
}

// TestRefusesReadableServerKey checks custodyd will not start with a private
// key that group or others can read.
func TestRefusesReadableServerKey(t *testing.T) {
	dir := t.TempDir()
	pki, err := certs.EnsureDevPKI(filepath.Join(dir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("chmod", "644", pki.ServerKeyFile()).Run(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binaries.Build(t, "custodyd"),
		"--grpc-addr", freeport.Addr(t), "--http-addr", freeport.Addr(t),
		"--tls-cert", pki.ServerCertFile(), "--tls-key", pki.ServerKeyFile(), "--client-ca", pki.CAFile())
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "readable by group or others") {
		t.Fatalf("custodyd with a 0644 key: %v\n%s", err, out)
	}
}

func runOK(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %v\nstdout: %s\nstderr: %s", cmd.Args, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}
