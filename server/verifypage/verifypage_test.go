package verifypage_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/servertest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
	"github.com/custody-dev/custody/server/verifypage"
)

// pageServer serves /verify (and nothing else) and records every request.
type pageServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []string
}

func newPageServer(t *testing.T) *pageServer {
	s := &pageServer{}
	mux := http.NewServeMux()
	mux.Handle("GET /verify", verifypage.Handler())
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, r.Method+" "+r.URL.Path)
		s.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// otherRequests lists the requests other than for the page itself.
func (s *pageServer) otherRequests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.requests {
		if r != "GET /verify" && r != "GET /favicon.ico" {
			out = append(out, r)
		}
	}
	return out
}

// uiInput is what a user gives the page.
type uiInput struct {
	bundle, file       string // paths on disk
	logKey, receiptKey string // pasted text
	checkpoint         string
	policy             string // witness policy text
	ca                 string // the operator's client CA, PEM
}

// uiResult is what the page shows.
type uiResult struct {
	Outcome  string   `json:"outcome"`
	Headline string   `json:"headline"`
	Keys     string   `json:"keys"`
	Facts    string   `json:"facts"`
	FactsOn  bool     `json:"factsOn"`
	Context  string   `json:"context"`
	NotCheck []string `json:"notChecked"`
	Checks   []string `json:"checks"`
	Failed   []string `json:"failed"`
}

// verifyInUI loads the page afresh, fills it in as a user would (files
// picked, keys pasted), presses Verify and reads what it shows.
func verifyInUI(ctx context.Context, t *testing.T, tb *tab, pageURL string, in uiInput) uiResult {
	t.Helper()
	tb.navigate(ctx, pageURL)
	if in.bundle != "" {
		tb.setFiles(ctx, "bundle", in.bundle)
	}
	if in.file != "" {
		tb.setFiles(ctx, "file", in.file)
	}
	for id, v := range map[string]string{"logkey": in.logKey, "receiptkey": in.receiptKey, "checkpoint": in.checkpoint, "policy": in.policy, "ca": in.ca} {
		tb.mustEval(ctx, "document.getElementById("+jsString(id)+").value = "+jsString(v), nil)
	}
	tb.mustEval(ctx, `document.getElementById("go").click()`, nil)
	var res uiResult
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		tb.mustEval(ctx, `(() => {
			const $ = (id) => document.getElementById(id);
			const li = (id) => Array.from($(id).children, (e) => e.textContent);
			return { outcome: $("verdict").dataset.outcome || "", headline: $("headline").textContent,
				keys: $("keys").innerText, facts: $("facts").innerText, factsOn: !$("factsbox").hidden,
				context: $("contextbox").hidden ? "" : $("context").innerText,
				notChecked: $("notcheckedbox").hidden ? [] : li("notchecked"), checks: li("checks"),
				failed: Array.from(document.querySelectorAll("#checks li.failed"), (e) => e.textContent) };
		})()`, &res)
		if res.Outcome != "" {
			return res
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page shows no verdict; console: %v", tb.b.Logs())
		}
	}
}

func jsString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r < 0x20 || r == 0x2028 || r == 0x2029:
			b.WriteString(`\u` + strings.ToUpper(hex.EncodeToString([]byte{byte(r >> 8), byte(r)})))
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func writeTemp(t *testing.T, name string, b []byte) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestVerifyPageInChromium verifies a real bundle from a running service
// through the page's user interface in headless Chromium: picked bundle
// and evidence file, pasted keys. Then a tampered bundle, a tampered file,
// no keys, and a link that tries to supply keys. The page may fetch
// nothing and send nothing anywhere.
func TestVerifyPageInChromium(t *testing.T) {
	env := servertest.StartT(t)
	ctx := t.Context()
	collector := env.Client(t, identity.RoleCollector)
	custodian := env.Client(t, identity.RoleCustodian)
	court := env.Client(t, identity.RoleCourt)
	file := bytes.Repeat([]byte("photo of the shelter "), 5000)
	sum := sha256.Sum256(file)
	up, err := collector.Upload(ctx, &custodyv1.UploadMetadata{CaseId: "case-page", Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_PHOTO, Filename: "shelter.jpg", Sha256: hex.EncodeToString(sum[:]), SizeBytes: int64(len(file))}, bytes.NewReader(file), nil)
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
	tampered := bytes.Replace(bundle, []byte(`to the lab`), []byte(`to the bin`), 1)
	tamperedFile := bytes.Clone(file)
	tamperedFile[7] ^= 1
	paths := map[string]string{
		"bundle": writeTemp(t, "bundle.json", bundle), "tampered": writeTemp(t, "tampered.json", tampered),
		"file": writeTemp(t, "shelter.jpg", file), "tamperedFile": writeTemp(t, "shelter2.jpg", tamperedFile),
	}
	srv := newPageServer(t)
	b := startBrowser(t)
	cctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	pageURL := srv.URL + "/verify"
	tb := b.open(cctx, pageURL, 1000, 800)
	trusted := uiInput{logKey: keys.GetLogVerifierKey(), receiptKey: keys.GetReceiptPublicKeyPem()}

	in := trusted
	in.bundle, in.file = paths["bundle"], paths["file"]
	r := verifyInUI(cctx, t, tb, pageURL, in)
	if r.Outcome != "verified_with_limits" || !strings.HasPrefix(r.Headline, "VERIFIED, WITH LIMITS: every check made passed, but 3 thing(s) could not be checked") || len(r.Failed) > 0 {
		t.Fatalf("the untouched bundle: %s: %s\nfailed: %v", r.Outcome, r.Headline, r.Failed)
	}
	// This service has no timestamp authority and no witnesses; no CA was
	// given.
	if len(r.NotCheck) != 3 || !strings.HasPrefix(r.NotCheck[0], "time: the bundle carries no timestamp") ||
		!strings.HasPrefix(r.NotCheck[1], "split view: no witness policy") || !strings.Contains(r.NotCheck[2], "not checked against the operator's CA") {
		t.Errorf("not checked: %q, want time, split view and the CA", r.NotCheck)
	}
	for _, want := range []string{"case-page", "shelter.jpg", "photo", "105000 bytes", hex.EncodeToString(sum[:]), "urn:custody:collector:dev-collector", "checked against the ingest receipt",
		"history complete", "no event of the item among", "checked against the history map committed in the log"} {
		if !r.FactsOn || !strings.Contains(r.Facts, want) {
			t.Errorf("the checked facts do not show %q:\n%s", want, r.Facts)
		}
	}
	if !strings.Contains(r.Context, "created_at") || !strings.Contains(r.Keys, "supplied by you") || strings.Contains(r.Keys, "NOT") {
		t.Errorf("context %q, keys %q", r.Context, r.Keys)
	}
	if len(r.Checks) < 10 {
		t.Errorf("only %d check lines: %v", len(r.Checks), r.Checks)
	}

	// With the operator's CA (as GET /v1/keys serves it), the page checks
	// the hand-off signers' certificates, issued by the service's CA, at
	// their signed_at: the CA is no longer a limit.
	in.ca = keys.GetClientCaPem()
	if in.ca == "" {
		t.Fatal("the service serves no client CA")
	}
	r = verifyInUI(cctx, t, tb, pageURL, in)
	if r.Outcome != "verified_with_limits" || len(r.Failed) > 0 || len(r.NotCheck) != 2 || strings.Contains(strings.Join(r.NotCheck, "\n"), "operator's CA") {
		t.Errorf("with the CA: %s: %s\nnot checked %q\nfailed: %v", r.Outcome, r.Headline, r.NotCheck, r.Failed)
	}
	in.ca = ""

	// The stream form, as the service serves it, picked as a .jsonl file.
	var stream bytes.Buffer
	if _, err := court.StreamBundle(ctx, id, 0, &stream); err != nil {
		t.Fatal(err)
	}
	in.bundle = writeTemp(t, "bundle.jsonl", stream.Bytes())
	r = verifyInUI(cctx, t, tb, pageURL, in)
	if r.Outcome != "verified_with_limits" || len(r.Failed) > 0 || !strings.Contains(strings.Join(r.Checks, "\n"), "strict JSON lines") || !strings.Contains(r.Facts, "case-page") {
		t.Errorf("the stream form: %s: %s\nfailed: %v", r.Outcome, r.Headline, r.Failed)
	}
	// Cut short, the stream fails its format and, its history-map proof
	// naming the event cut off, completeness.
	cutStream := stream.Bytes()[:bytes.LastIndexByte(stream.Bytes()[:stream.Len()-1], '\n')+1]
	in.bundle = writeTemp(t, "cut.jsonl", cutStream)
	r = verifyInUI(cctx, t, tb, pageURL, in)
	if r.Outcome != "failed" || len(r.Failed) != 2 || !strings.Contains(r.Failed[0], "its header announces") || !strings.Contains(r.Failed[1], "the bundle is cut short") {
		t.Errorf("the stream cut short: %s: %s\nfailed: %v", r.Outcome, r.Headline, r.Failed)
	}

	in.bundle = paths["tampered"]
	r = verifyInUI(cctx, t, tb, pageURL, in)
	if r.Outcome != "failed" || !strings.HasPrefix(r.Headline, "NOT VERIFIED: ") || !strings.Contains(strings.Join(r.Failed, "\n"), "the record was changed") || r.FactsOn {
		t.Errorf("the tampered bundle: %s: %s\nfailed: %v", r.Outcome, r.Headline, r.Failed)
	}

	in.bundle, in.file = paths["bundle"], paths["tamperedFile"]
	r = verifyInUI(cctx, t, tb, pageURL, in)
	if r.Outcome != "failed" || len(r.Failed) != 1 || !strings.Contains(r.Failed[0], "the file hashes to") {
		t.Errorf("the tampered file: %s: %s\nfailed: %v", r.Outcome, r.Headline, r.Failed)
	}

	r = verifyInUI(cctx, t, tb, pageURL, uiInput{bundle: paths["bundle"], file: paths["file"]})
	if r.Outcome != "untrusted_keys" || !strings.HasPrefix(r.Headline, "NOT VERIFIED: the checks pass only against keys the bundle carries itself") || len(r.Failed) > 0 {
		t.Errorf("no keys given: %s: %s\nfailed: %v", r.Outcome, r.Headline, r.Failed)
	}
	if strings.Count(r.Keys, "taken from the bundle itself: NOT an independent trust anchor") != 2 || !strings.Contains(r.Keys, keys.GetLogVerifierKey()) {
		t.Errorf("the keys taken from the bundle are not shown as such:\n%s", r.Keys)
	}

	// A link cannot supply keys (or anything else): the page fetches
	// nothing and verifies nothing by itself.
	q := url.Values{"bundle": {"/bundle.json"}, "logkey": {keys.GetLogVerifierKey()}, "receiptkey": {"/receipt.pem"}}
	tb.navigate(cctx, pageURL+"?"+q.Encode())
	time.Sleep(300 * time.Millisecond)
	var shown bool
	tb.mustEval(cctx, `!document.getElementById("result").hidden || document.getElementById("logkey").value !== ""`, &shown)
	if shown {
		t.Error("the page took something from its link")
	}
	if other := srv.otherRequests(); len(other) > 0 {
		t.Errorf("the page made requests: %v", other)
	}
}

// TestVerifyPageCSP checks the page is served without 'unsafe-inline':
// its one script and one style are allowed by their SHA-256, which the
// handler computes from the embedded page, and in Chromium the script runs
// and the style applies under that policy, while an injected script does
// not run.
func TestVerifyPageCSP(t *testing.T) {
	csp := verifypage.CSP()
	page := verifypage.Page()
	for _, tag := range []string{"script", "style"} {
		i := bytes.Index(page, []byte("<"+tag+">")) + len(tag) + 2
		j := bytes.Index(page, []byte("</"+tag+">"))
		sum := sha256.Sum256(page[i:j])
		if want := tag + "-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "connect-src", "*"} {
		if strings.Contains(csp, bad) {
			t.Errorf("CSP %q holds %q", csp, bad)
		}
	}
	srv := newPageServer(t)
	resp, err := http.Get(srv.URL + "/verify")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Content-Security-Policy"); got != csp {
		t.Errorf("served CSP %q, want %q", got, csp)
	}
	b := startBrowser(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	tb := b.open(ctx, srv.URL+"/verify", 1000, 800)
	var state struct {
		Ready, Verify, Injected, MaxWidth string
	}
	tb.mustEval(ctx, `(async () => {
		const s = document.createElement("script");
		s.textContent = "window.injected = 'ran'";
		document.body.append(s);
		await new Promise((r) => setTimeout(r, 100));
		return { Ready: document.documentElement.dataset.ready || "", Verify: typeof window.custodyVerify,
			Injected: String(window.injected), MaxWidth: getComputedStyle(document.body).maxWidth };
	})()`, &state)
	if state.Ready != "1" || state.Verify != "function" || state.MaxWidth != "960px" {
		t.Errorf("under its CSP the page's script or style did not apply: %+v; console: %v", state, b.Logs())
	}
	if state.Injected != "undefined" {
		t.Errorf("an injected inline script ran: %+v", state)
	}
}

// TestVerifyPageScreenshots writes docs/screenshots/verify-*.png: the
// page's verdict after verifying the single-photo conformance bundle with
// its file and the vectors' trust file (verified), a copy whose metadata
// was changed (tampered), the bundle with no keys (untrusted), and the
// trust anchors with the fingerprints to read back (trust).
// CUSTODY_UPDATE_SCREENSHOTS=1 go test ./server/verifypage -run TestVerifyPageScreenshots
func TestVerifyPageScreenshots(t *testing.T) {
	if os.Getenv("CUSTODY_UPDATE_SCREENSHOTS") == "" {
		t.Skip("set CUSTODY_UPDATE_SCREENSHOTS=1 to rewrite docs/screenshots/verify-*.png")
	}
	read := func(p string) []byte {
		b, err := os.ReadFile(filepath.Join(vectorDir, p))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	bundle := read("bundles/single-photo.json")
	tampered := bytes.Replace(bundle, []byte("north wall"), []byte("south wall"), 1)
	if bytes.Equal(bundle, tampered) {
		t.Fatal("nothing to tamper with")
	}
	evidence, err := filepath.Abs(filepath.Join(vectorDir, "files/single-photo.bin"))
	if err != nil {
		t.Fatal(err)
	}
	_, trust := vectorTrust(t)
	trustPath := writeTemp(t, "trust.json", trust)
	srv := newPageServer(t)
	b := startBrowser(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	pageURL := srv.URL + "/verify"
	tb := b.open(ctx, pageURL, 860, 700)
	shot := func(name, id string) {
		out := filepath.Join("..", "..", "docs", "screenshots", "verify-"+name+".png")
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, tb.screenshotOf(ctx, id), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", out)
	}
	for _, c := range []struct {
		name, want string
		bundle     []byte
		trust      bool
	}{{"verified", "verified_with_limits", bundle, true}, {"tampered", "failed", tampered, true}, {"untrusted", "untrusted_keys", bundle, false}} {
		tb.navigate(ctx, pageURL)
		tb.setFiles(ctx, "bundle", writeTemp(t, "single-photo.json", c.bundle))
		tb.setFiles(ctx, "file", evidence)
		if c.trust {
			tb.setFiles(ctx, "trustfile", trustPath)
			if ui := waitTrust(ctx, t, tb); ui.State != "ok" {
				t.Fatalf("the trust file: %+v", ui)
			}
		}
		if r := verifyFilled(ctx, t, tb); r.Outcome != c.want {
			t.Fatalf("%s: %s, want %s: %v", c.name, r.Outcome, c.want, r.Failed)
		}
		shot(c.name, "result")
		if c.name == "verified" {
			shot("trust", "trustanchors")
		}
	}
}
