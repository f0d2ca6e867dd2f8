package certs_test

import (
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custody-dev/custody/certs"
	"github.com/custody-dev/custody/identity"
)

// readmeRecipe returns the openssl commands of README.md, from "openssl
// req" to "chmod 600 key.pem", as a shell script.
func readmeRecipe(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	in := false
	for line := range strings.SplitSeq(string(data), "\n") {
		code, ok := strings.CutPrefix(line, "    ")
		if ok && strings.HasPrefix(code, "openssl req") {
			in = true
		}
		if in {
			lines = append(lines, code)
			if strings.HasPrefix(code, "chmod 600 key.pem") {
				return strings.Join(lines, "\n") + "\n"
			}
		}
	}
	t.Fatal("README.md has no openssl recipe from `openssl req` to `chmod 600 key.pem`")
	return ""
}

// TestREADMEOpensslRecipe issues a client certificate with the README's
// openssl commands and checks the verifier accepts it as the identity it
// names, and refuses it once the basicConstraints line is left out.
func TestREADMEOpensslRecipe(t *testing.T) {
	for _, tool := range []string{"openssl", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	recipe := readmeRecipe(t)
	ca, err := certs.NewAuthority("operator CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	issue := func(t *testing.T, script string) identity.Identity {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "ca.pem"), ca.CertPEM(), 0o644)
		os.WriteFile(filepath.Join(dir, "ca-key.pem"), keyPEM, 0o600)
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("recipe: %v\n%s", err, out)
		}
		cert, err := certs.ReadCertificate(filepath.Join(dir, "cert.pem"))
		if err != nil {
			t.Fatal(err)
		}
		roots, _ := certs.ReadCertPool(filepath.Join(dir, "ca.pem"))
		id, err := identity.NewVerifier(roots).Verify([]*x509.Certificate{cert})
		if err != nil {
			t.Logf("refused: %v", err)
			return identity.Identity{}
		}
		return id
	}
	if id := issue(t, recipe); id.String() != "urn:custody:court:judge-1" {
		t.Fatalf("the README's certificate is accepted as %q, want urn:custody:court:judge-1", id)
	}
	without := strings.Replace(recipe, `basicConstraints=critical,CA:FALSE\n`, "", 1)
	if without == recipe {
		t.Fatal("the recipe has no basicConstraints=critical,CA:FALSE line")
	}
	if id := issue(t, without); id.Role != "" {
		t.Fatalf("a certificate without basicConstraints is accepted as %v", id)
	}
}
