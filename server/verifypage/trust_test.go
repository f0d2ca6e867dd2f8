package verifypage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custody-dev/custody/internal/testenv"
	"github.com/custody-dev/custody/verify"
)

// vectorTrust is the trust file of the conformance vectors' operator, as
// custody keys --out writes it, made from testdata/verify-vectors/trust.
func vectorTrust(t *testing.T) (*verify.Trust, []byte) {
	t.Helper()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(vectorDir, "trust", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	tr, err := verify.NewTrust("custody.test/log", strings.TrimSpace(read("log-key.txt")), read("receipt-key.pem"), read("ca.pem"),
		read("witness-policy.txt"), []verify.TrustAuthority{{URL: "https://tsa.example/", ChainPEM: read("tsa-chain.pem")}})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.MarshalIndent(tr, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return tr, append(raw, '\n')
}

// trustUI is what the page shows of a trust file it read.
type trustUI struct {
	State        string     `json:"state"`
	Status       string     `json:"status"`
	LogKey       string     `json:"logKey"`
	ReceiptKey   string     `json:"receiptKey"`
	CA           string     `json:"ca"`
	Policy       string     `json:"policy"`
	Fingerprints [][]string `json:"fingerprints"` // name, fingerprint, source
	Taken        [][]string `json:"taken"`        // text, kind
}

const readTrustUI = `(() => {
	const $ = (id) => document.getElementById(id);
	return { state: $("trustbox").dataset.state || "", status: $("truststatus").hidden ? "" : $("truststatus").textContent,
		logKey: $("logkey").value, receiptKey: $("receiptkey").value, ca: $("ca").value, policy: $("policy").value,
		fingerprints: $("fpbox").hidden ? [] : Array.from($("fingerprints").rows, (r) => Array.from(r.cells, (c) => c.textContent)),
		taken: $("taken").hidden ? [] : Array.from($("taken").children, (li) => [li.textContent, li.dataset.kind]) };
})()`

// waitTrust waits until the page has read a trust file (or refused it) and
// finished taking dropped files.
func waitTrust(ctx context.Context, t *testing.T, tb *tab) trustUI {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var ui trustUI
		var pending string
		tb.mustEval(ctx, `document.getElementById("taken").dataset.pending || "0"`, &pending)
		tb.mustEval(ctx, readTrustUI, &ui)
		if ui.State != "" && pending == "0" {
			return ui
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page did not read the trust file; console: %v", tb.b.Logs())
		}
	}
}

// wantFingerprints checks the page shows Go's fingerprints of the trust
// file, each marked as from it.
func wantFingerprints(t *testing.T, how string, ui trustUI, tr *verify.Trust) {
	t.Helper()
	want := append([]string{tr.Fingerprints.LogVerifierKey, tr.Fingerprints.ReceiptPublicKey}, tr.Fingerprints.ClientCA...)
	want = append(want, tr.Fingerprints.WitnessPolicy)
	want = append(want, tr.Fingerprints.TimestampAuthorities...)
	var got []string
	for _, r := range ui.Fingerprints {
		got = append(got, r[1])
		if !strings.HasPrefix(r[2], "from the trust file") {
			t.Errorf("%s: fingerprint %q marked %q", how, r[0], r[2])
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s: the page shows fingerprints\n\t%q\nGo's are\n\t%q", how, got, want)
	}
	if ui.State != "ok" || !strings.Contains(ui.Status, "its fingerprints match its contents") || !strings.Contains(ui.Status, "1 timestamp authority, whose RFC 3161 timestamps this page cannot check") {
		t.Errorf("%s: status %s %q", how, ui.State, ui.Status)
	}
	if ui.LogKey != tr.LogVerifierKey || ui.ReceiptKey != tr.ReceiptPublicKeyPEM || ui.CA != tr.ClientCAPEM || ui.Policy != tr.WitnessPolicy {
		t.Errorf("%s: the fields were not filled from the trust file: %+v", how, ui)
	}
}

// TestVerifyPageTrustFile loads the vectors' trust file into the page in
// each way a clerk can (the picker, pasting it, dropping it with the
// bundle and the evidence file), checks the page shows Go's fingerprints
// (verify.Fingerprint) and fills the fields, and that the bundle then
// verifies as the Go verifier verifies it with that trust file (but for
// the timestamps, which the page cannot check); then that a trust file
// edited without its fingerprints, or otherwise not what verify.ParseTrust
// accepts, is refused and fills nothing.
func TestVerifyPageTrustFile(t *testing.T) {
	testenv.RequireFull(t, "headless Chromium")
	tr, raw := vectorTrust(t)
	trustPath := writeTemp(t, "trust.json", raw)
	bundlePath, err := filepath.Abs(filepath.Join(vectorDir, "bundles/single-photo.json"))
	if err != nil {
		t.Fatal(err)
	}
	filePath, _ := filepath.Abs(filepath.Join(vectorDir, "files/single-photo.bin"))
	srv := newPageServer(t)
	b := startBrowser(t)
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()
	pageURL := srv.URL + "/verify"
	tb := b.open(ctx, pageURL, 1000, 900)

	// The picker.
	tb.setFiles(ctx, "trustfile", trustPath)
	wantFingerprints(t, "picked", waitTrust(ctx, t, tb), tr)

	// Pasted.
	tb.navigate(ctx, pageURL)
	tb.mustEval(ctx, `(() => { const a = document.getElementById("trust"); a.value = `+jsString(string(raw))+`; a.dispatchEvent(new Event("input")); })()`, nil)
	wantFingerprints(t, "pasted", waitTrust(ctx, t, tb), tr)

	// Dropped, with the bundle and the file, in any order, by a real drag
	// and drop (Input.dispatchDragEvent), onto the middle of the page.
	tb.navigate(ctx, pageURL)
	drag := map[string]any{"items": []any{}, "files": []string{filePath, trustPath, bundlePath}, "dragOperationsMask": 1}
	for _, typ := range []string{"dragEnter", "dragOver", "drop"} {
		tb.must(ctx, "Input.dispatchDragEvent", map[string]any{"type": typ, "x": 400, "y": 300, "data": drag}, nil)
	}
	ui := waitTrust(ctx, t, tb)
	wantFingerprints(t, "dropped", ui, tr)
	var kinds []string
	for _, tk := range ui.Taken {
		kinds = append(kinds, tk[1])
	}
	if !slices.Equal(kinds, []string{"file", "trust", "bundle"}) || !strings.Contains(ui.Taken[0][0], "evidence file: single-photo.bin") || !strings.Contains(ui.Taken[2][0], "court bundle: single-photo.json") {
		t.Errorf("the page took %q, want the evidence file, the trust file and the bundle", ui.Taken)
	}
	var picked []string
	tb.mustEval(ctx, `[document.getElementById("bundle").files[0]?.name, document.getElementById("file").files[0]?.name]`, &picked)
	if !slices.Equal(picked, []string{"single-photo.json", "single-photo.bin"}) {
		t.Errorf("the dropped files were not taken for the bundle and the file: %q", picked)
	}
	r := verifyFilled(ctx, t, tb)
	opts, err := tr.Options()
	if err != nil {
		t.Fatal(err)
	}
	opts.TSAChains = nil // the page cannot check them
	file, _ := os.ReadFile(filePath)
	bundle, _ := os.ReadFile(bundlePath)
	opts.File = strings.NewReader(string(file))
	g := verify.VerifyBytes(bundle, opts)
	if r.Outcome != string(g.Outcome) || len(r.Failed) > 0 || len(r.NotCheck) != 1 || r.NotCheck[0] != pageTimeNotChecked || len(g.NotChecked) != 1 {
		t.Errorf("with the dropped trust file: %s %q, not checked %q; Go %s, not checked %q", r.Outcome, r.Headline, r.NotCheck, g.Outcome, g.NotChecked)
	}
	if !strings.Contains(r.Summary, "Bound facts") || !r.SummaryBound || !strings.Contains(r.Summary, "file name") {
		t.Errorf("the verdict's summary: %q (bound %v)", r.Summary, r.SummaryBound)
	}

	// A trust file not as verify.ParseTrust reads it: each is refused by
	// both, and the page fills nothing from it (nor keeps what a sound
	// file filled before).
	edits := []struct {
		name, want string
		edit       func(m map[string]any)
	}{
		{"another log key, same fingerprints", "fingerprints do not match", func(m map[string]any) {
			m["log_verifier_key"] = strings.Replace(m["log_verifier_key"].(string), "+", "x+", 1)
		}},
		{"the witness quorum lowered", "fingerprints do not match", func(m map[string]any) {
			m["witness_policy"] = strings.Replace(m["witness_policy"].(string), "group both all A B", "group both any A B", 1)
		}},
		{"another CA", "fingerprints do not match", func(m map[string]any) {
			m["client_ca_pem"] = m["timestamp_authorities"].([]any)[0].(map[string]any)["chain_pem"]
		}},
		{"a fingerprint in lower case", "fingerprints do not match", func(m map[string]any) {
			fp := m["fingerprints"].(map[string]any)
			fp["receipt_public_key"] = strings.ToLower(fp["receipt_public_key"].(string))
		}},
		{"an authority removed", "fingerprints do not match", func(m map[string]any) { delete(m, "timestamp_authorities") }},
		{"an unknown key", "unknown key", func(m map[string]any) { m["log_key"] = "x" }},
		{"an unknown fingerprint", "unknown key", func(m map[string]any) { m["fingerprints"].(map[string]any)["ca"] = "x" }},
		{"no receipt key", `lacks "receipt_public_key_pem"`, func(m map[string]any) { delete(m, "receipt_public_key_pem") }},
		{"a null", "is null", func(m map[string]any) { m["client_ca_pem"] = nil }},
		{"another format", "not a Custody trust file", func(m map[string]any) { m["format"] = "custody-bundle" }},
		{"version 2", "not a Custody trust file", func(m map[string]any) { m["v"] = 2 }},
		{"a private key as the CA", "not a certificate", func(m map[string]any) {
			m["client_ca_pem"] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
		}},
		{"a broken witness policy", "witness_policy", func(m map[string]any) { m["witness_policy"] = "quorum nobody\n" }},
	}
	for _, e := range edits {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		e.edit(m)
		edited, _ := json.MarshalIndent(m, "", "  ")
		if _, err := verify.ParseTrust(edited); err == nil || !strings.Contains(err.Error(), e.want) {
			t.Fatalf("%s: Go: %v, want %q", e.name, err, e.want)
		}
		tb.navigate(ctx, pageURL)
		tb.setFiles(ctx, "trustfile", trustPath) // a sound one first
		waitTrust(ctx, t, tb)
		tb.setFiles(ctx, "trustfile", writeTemp(t, "edited.json", edited))
		var ui trustUI
		for deadline := time.Now().Add(10 * time.Second); ui.State != "refused"; time.Sleep(20 * time.Millisecond) {
			tb.mustEval(ctx, readTrustUI, &ui)
			if time.Now().After(deadline) {
				t.Fatalf("%s: the page did not refuse the trust file: %+v", e.name, ui)
			}
		}
		if !strings.Contains(ui.Status, e.want) || ui.LogKey != "" || ui.ReceiptKey != "" || ui.CA != "" || ui.Policy != "" {
			t.Errorf("%s: the page shows %q and keeps the fields %+v; want it refused (%q) and the fields cleared", e.name, ui.Status, ui, e.want)
		}
	}
	// Refused, the keys are the bundle's: NOT verified.
	tb.setFiles(ctx, "bundle", bundlePath)
	if r := verifyFilled(ctx, t, tb); r.Outcome != "untrusted_keys" {
		t.Errorf("after a refused trust file: %s", r.Outcome)
	}
	// A CA that cannot be read stops the verification (custody verify
	// refuses such a --ca): no verdict, a message by the field.
	tb.mustEval(ctx, `(() => { document.getElementById("ca").value = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
		document.getElementById("go").click(); })()`, nil)
	var ca struct{ Status, Result string }
	for deadline := time.Now().Add(10 * time.Second); ca.Status == ""; time.Sleep(20 * time.Millisecond) {
		tb.mustEval(ctx, `({ Status: document.getElementById("castatus").hidden ? "" : document.getElementById("castatus").textContent,
			Result: document.getElementById("result").hidden ? "hidden" : "shown" })`, &ca)
		if time.Now().After(deadline) {
			t.Fatal("no message for a CA that cannot be read")
		}
	}
	if !strings.Contains(ca.Status, "the operator's CA cannot be read") || ca.Result != "hidden" {
		t.Errorf("a CA that cannot be read: %+v", ca)
	}
}

// filledResult is what the page shows after Verify.
type filledResult struct {
	uiResult
	Summary      string `json:"summary"`
	SummaryBound bool   `json:"summaryBound"`
}

// verifyFilled presses Verify on the page as it is filled in and reads the
// verdict.
func verifyFilled(ctx context.Context, t *testing.T, tb *tab) filledResult {
	t.Helper()
	tb.mustEval(ctx, `document.getElementById("verdict").dataset.outcome = ""; document.getElementById("go").click()`, nil)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var r filledResult
		tb.mustEval(ctx, `(() => {
			const $ = (id) => document.getElementById(id);
			return { outcome: $("verdict").dataset.outcome || "", headline: $("headline").textContent,
				notChecked: $("notcheckedbox").hidden ? [] : Array.from($("notchecked").children, (e) => e.textContent),
				failed: Array.from(document.querySelectorAll("#checks li.failed"), (e) => e.textContent),
				summary: $("summary").hidden ? "" : $("summary").innerText, summaryBound: $("summary").dataset.bound === "true" };
		})()`, &r)
		if r.Outcome != "" {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("no verdict; console: %v", tb.b.Logs())
		}
	}
}

// TestVerifyPageParseTrust compares the page's trust file reader with
// verify.ParseTrust on the vectors' trust file and edits of it: the same
// files accepted, with the same fingerprints.
func TestVerifyPageParseTrust(t *testing.T) {
	testenv.RequireFull(t, "headless Chromium")
	tr, raw := vectorTrust(t)
	variants := map[string][]byte{"as written": raw}
	add := func(name string, f func(m map[string]any) any) {
		var c map[string]any
		json.Unmarshal(raw, &c)
		out := f(c)
		if b, ok := out.([]byte); ok {
			variants[name] = b
			return
		}
		b, _ := json.Marshal(c)
		variants[name] = b
	}
	add("compact", func(m map[string]any) any { return nil })
	add("no CA, no policy, no authorities", func(m map[string]any) any {
		nt, err := verify.NewTrust(tr.LogOrigin, tr.LogVerifierKey, tr.ReceiptPublicKeyPEM, "", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(nt)
		return b
	})
	add("a key twice", func(m map[string]any) any {
		return []byte(strings.Replace(string(raw), `"v": 1,`, `"v": 1, "v": 1,`, 1))
	})
	add("v 1.0", func(m map[string]any) any { return []byte(strings.Replace(string(raw), `"v": 1,`, `"v": 1.0,`, 1)) })
	add("v a string", func(m map[string]any) any { m["v"] = "1"; return nil })
	add("an empty log key", func(m map[string]any) any { m["log_verifier_key"] = ""; return nil })
	add("fingerprints not an object", func(m map[string]any) any { m["fingerprints"] = "x"; return nil })
	add("a CA fingerprint too many", func(m map[string]any) any {
		fp := m["fingerprints"].(map[string]any)
		fp["client_ca"] = append(fp["client_ca"].([]any), fp["client_ca"].([]any)[0])
		return nil
	})
	add("two CA certificates", func(m map[string]any) any {
		ca := tr.ClientCAPEM + tr.TimestampAuthorities[0].ChainPEM
		nt, _ := verify.NewTrust(tr.LogOrigin, tr.LogVerifierKey, tr.ReceiptPublicKeyPEM, ca, tr.WitnessPolicy, tr.TimestampAuthorities)
		b, _ := json.Marshal(nt)
		return b
	})
	add("text around the PEM blocks", func(m map[string]any) any {
		ca := "the operator's CA:\n" + tr.ClientCAPEM + "end\n"
		nt, _ := verify.NewTrust(tr.LogOrigin, tr.LogVerifierKey, "key:\n"+tr.ReceiptPublicKeyPEM, ca, tr.WitnessPolicy, tr.TimestampAuthorities)
		b, _ := json.Marshal(nt)
		return b
	})
	add("not JSON", func(m map[string]any) any { return []byte(`{"format":`) })
	add("an array", func(m map[string]any) any { return []byte(`[]`) })
	names := make([]string, 0, len(variants))
	for n := range variants {
		names = append(names, n)
	}
	slices.Sort(names)
	srv := newPageServer(t)
	b := startBrowser(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	tb := b.open(ctx, srv.URL+"/verify", 1000, 800)
	for _, n := range names {
		g, gerr := verify.ParseTrust(variants[n])
		var p struct {
			Err          string                   `json:"err"`
			Fingerprints verify.TrustFingerprints `json:"fingerprints"`
		}
		tb.mustEval(ctx, fmt.Sprintf(`window.custodyParseTrust(%s).then((t) => ({ fingerprints: t.fingerprints }), (e) => ({ err: e.message }))`, jsString(string(variants[n]))), &p)
		switch {
		case (gerr == nil) != (p.Err == ""):
			t.Errorf("%s: Go %v, the page %q", n, gerr, p.Err)
		case gerr == nil && fmt.Sprint(g.Fingerprints) != fmt.Sprint(p.Fingerprints):
			t.Errorf("%s: fingerprints\n\tpage %+v\n\tGo   %+v", n, p.Fingerprints, g.Fingerprints)
		default:
			t.Logf("%s: %v", n, gerr)
		}
	}
}
