package verifypage_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/servertest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
	"github.com/custody-dev/custody/server/verifypage"
)

// chromium finds Debian's chromium; .ci/run installs it.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: apt-get install chromium (the CI script does)")
	return ""
}

// TestVerifyPageInChromium loads the verify page in headless Chromium with
// a real bundle, the evidence file and the keys, and reads its verdict; then
// a tampered bundle and a tampered file. The page may only fetch what it is
// given, and must send nothing anywhere.
func TestVerifyPageInChromium(t *testing.T) {
	browser := chromium(t)
	env := servertest.StartT(t)
	ctx := t.Context()
	collector := env.Client(t, identity.RoleCollector)
	custodian := env.Client(t, identity.RoleCustodian)
	court := env.Client(t, identity.RoleCourt)
	file := bytes.Repeat([]byte("photo of the shelter "), 5000)
	sum := sha256.Sum256(file)
	up, err := collector.Upload(ctx, &custodyv1.UploadMetadata{CaseId: "case-page", Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_PHOTO, Sha256: hex.EncodeToString(sum[:]), SizeBytes: int64(len(file))}, bytes.NewReader(file), nil)
	if err != nil {
		t.Fatal(err)
	}
	id := up.GetEvidence().GetEvidenceId()
	if _, err := collector.Release(ctx, id, "urn:custody:custodian:dev-custodian", "to the lab"); err != nil {
		t.Fatal(err)
	}
	if _, err := custodian.Accept(ctx, id); err != nil {
		t.Fatal(err)
	}
	bundle, err := court.Bundle(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := court.PublicKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tamperedBundle := bytes.Replace(bundle, []byte(`to the lab`), []byte(`to the bin`), 1)
	tamperedFile := bytes.Clone(file)
	tamperedFile[7] ^= 1

	var mu sync.Mutex
	var methods []string
	mux := http.NewServeMux()
	mux.Handle("/verify", verifypage.Handler())
	serve := func(path string, body []byte) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) { w.Write(body) })
	}
	serve("/bundle.json", bundle)
	serve("/tampered.json", tamperedBundle)
	serve("/file.bin", file)
	serve("/tampered.bin", tamperedFile)
	serve("/receipt.pem", []byte(keys.GetReceiptPublicKeyPem()))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		methods = append(methods, r.Method+" "+r.URL.Path)
		mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	defer srv.Close()

	run := func(bundlePath, filePath string) (bool, string) {
		q := url.Values{"bundle": {bundlePath}, "file": {filePath}, "logkey": {keys.GetLogVerifierKey()}, "receiptkey": {"/receipt.pem"}}
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(cctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
			"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--user-data-dir="+t.TempDir(), "--virtual-time-budget=15000", "--dump-dom", srv.URL+"/verify?"+q.Encode())
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium: %v\n%s", err, stderr.String())
		}
		dom := string(out)
		m := regexp.MustCompile(`id="verdict"[^>]*data-ok="(true|false)"`).FindStringSubmatch(dom)
		if m == nil {
			m = regexp.MustCompile(`data-ok="(true|false)"[^>]*id="verdict"`).FindStringSubmatch(dom)
		}
		if m == nil {
			t.Fatalf("the page shows no verdict:\n%s", dom)
		}
		return m[1] == "true", dom
	}

	if ok, dom := run("/bundle.json", "/file.bin"); !ok {
		t.Fatalf("the untouched bundle does not verify in the browser:\n%s", failedChecks(dom))
	}
	ok, dom := run("/tampered.json", "/file.bin")
	if ok || !strings.Contains(dom, "the record was changed") {
		t.Fatalf("the tampered bundle: ok=%v\n%s", ok, failedChecks(dom))
	}
	ok, dom = run("/bundle.json", "/tampered.bin")
	if ok || !strings.Contains(dom, "the file hashes to") {
		t.Fatalf("the tampered file: ok=%v\n%s", ok, failedChecks(dom))
	}
	mu.Lock()
	defer mu.Unlock()
	for _, m := range methods {
		if !strings.HasPrefix(m, "GET ") {
			t.Errorf("the page sent %s", m)
		}
	}
}

func failedChecks(dom string) string {
	var lines []string
	for _, m := range regexp.MustCompile(`<li class="failed"[^>]*>([^<]*)</li>`).FindAllStringSubmatch(dom, -1) {
		lines = append(lines, m[1])
	}
	if len(lines) == 0 {
		return dom
	}
	return strings.Join(lines, "\n")
}
