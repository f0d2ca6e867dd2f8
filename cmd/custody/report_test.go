package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/custody-dev/custody/verify"
)

// The report's unit tests: `custody report` run in-process on the
// published conformance bundles (testdata/verify-vectors), the report read
// back as HTML. They run under -short; server/verifypage's
// TestReportInChromium renders reports of a live service's bundles, the
// CLI's and the page's, in Chromium.

const vecDir = "../../testdata/verify-vectors"

func vec(name string) string { return filepath.Join(vecDir, name) }

// report runs custody report with args and returns its exit status, the
// HTML written and stdout.
func report(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "report.html")
	code, stdout, stderr := cli(t, append(append([]string{"report"}, args...), "--out", out)...)
	html, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("custody report %v: exit %d, no report (%v)\nstdout: %s\nstderr: %s", args, code, err, stdout, stderr)
	}
	return code, string(html), stdout
}

var fullTrust = []string{"--log-key", vec("trust/log-key.txt"), "--receipt-key", vec("trust/receipt-key.pem"), "--ca", vec("trust/ca.pem"),
	"--policy", vec("trust/witness-policy.txt"), "--tsa-chain", vec("trust/tsa-chain.pem")}

// pemDERs returns the DER of each PEM block of a file.
func pemDERs(t *testing.T, path string) [][]byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for {
		var b *pem.Block
		if b, raw = pem.Decode(raw); b == nil {
			return out
		}
		out = append(out, b.Bytes)
	}
}

// verifiedClaims counts the word VERIFIED (in capitals, as verdicts are
// written) in html but in NOT VERIFIED and UNVERIFIED.
func verifiedClaims(html string) int {
	for _, ok := range []string{"NOT VERIFIED", "UNVERIFIED"} {
		html = strings.ReplaceAll(html, ok, "")
	}
	return strings.Count(html, "VERIFIED")
}

// selfContained fails the test if the document could fetch or run
// anything: no script, no external reference, and a CSP that forbids both.
func selfContained(t *testing.T, html string) {
	t.Helper()
	lower := strings.ToLower(html)
	for _, bad := range []string{"<script", "src=", "href=", "@import", "<link", "<img", "<iframe", "<object", "javascript:"} {
		if strings.Contains(lower, bad) {
			t.Errorf("the report holds %q", bad)
		}
	}
	for _, u := range regexp.MustCompile(`url\(([^)]*)\)`).FindAllStringSubmatch(html, -1) {
		if !strings.HasPrefix(u[1], "#") {
			t.Errorf("the report refers to %s", u[0])
		}
	}
	// The one style is allowed by its hash, nothing else at all.
	m := regexp.MustCompile(`(?s)<style>(.*)</style>`).FindStringSubmatch(html)
	if m == nil || strings.Count(html, "<style>") != 1 {
		t.Fatal("the report has not exactly one <style>")
	}
	sum := sha256.Sum256([]byte(m[1]))
	want := `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'sha256-` + base64.StdEncoding.EncodeToString(sum[:]) + `'; base-uri 'none'; form-action 'none'">`
	if !strings.Contains(html, want) {
		t.Errorf("the report's CSP is not %s", want)
	}
}

// TestReportVerified: the every-event bundle with everything a court can
// bring gives a VERIFIED report whose facts, timeline, events and keys are
// the bundle's and the keys'.
func TestReportVerified(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1796083200") // 2026-12-01
	args := append([]string{"--bundle", vec("bundles/every-event.json"), "--file", vec("files/every-event.bin"), "--checkpoint", vec("trust/earlier-checkpoint.txt")}, fullTrust...)
	code, html, stdout := report(t, args...)
	if code != 0 || !strings.HasPrefix(stdout, "VERIFIED: every check passed") {
		t.Fatalf("exit %d: %s", code, stdout)
	}
	selfContained(t, html)
	for _, want := range []string{
		`<p class="word">VERIFIED</p>`, `data-outcome="verified"`,
		`Made <span class="generated">2026-12-01 00:00:00 UTC by custody report</span> from the court bundle “every-event.json”`,
		`The evidence file “every-event.bin” is the logged item`,
		// The item's facts.
		"<th>Case</th><td>ICC-01/22</td>", "<th>Kind</th><td>video</td>", "<th>File name</th><td>VID_0042.MP4</td>",
		"<th>Size</th><td>12,033 bytes (11.8 KiB)</td>", "71efb1b46acd06d4aa64a81469d875ea46c69f36b39852c8220ff044baaea5c2",
		"<th>Collected by</th><td>dev-collector (urn:custody:collector:dev-collector)</td>",
		"<th>Existed no later than</th>", "<th>Same log as the witnesses saw</th><td>2 of 2: A, B</td>", "<th>History complete</th>",
		// Custody: who held it, every release and how it ended.
		`data-holder="urn:custody:collector:dev-collector" data-from="0"`, `data-holder="urn:custody:custodian:dev-custodian" data-from="4"`,
		`data-release="1"`, `data-release="3"`, `data-release="10"`,
		"withdrawn at #2", "accepted at #4", "lapsed at #11", "still the holder at the last event",
		// Events: the access's purpose under its mark and in the table, the
		// analysis's instrument and place, the derivation's new item.
		`font-size="7" text-anchor="middle" fill="#333">trial exhibit P-12</text>`, "purpose: trial exhibit P-12",
		"instrument: ffprobe 6.1", "place: lab 2; lat, lon 52.0705000, 4.3007000", "ev-hzef2jhlyd2ln2bljla5an5hku",
		"release #10 to <span class=\"who-name\">dev-court</span> <span class=\"who-role\">(court)</span> lapsed unanswered",
		"Nothing: every check was made.",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	// A lane for each party (not the service), a mark for each event.
	for _, p := range []string{"collector:dev-collector", "custodian:dev-custodian", "court:dev-court"} {
		if n := strings.Count(html, `<g class="lane" data-party="urn:custody:`+p+`">`); n != 2 { // two rows of the picture
			t.Errorf("lane %s drawn %d times, want 2", p, n)
		}
	}
	if strings.Contains(html, `data-party="urn:custody:service`) {
		t.Error("the service has a lane")
	}
	types := []string{"ingest", "release", "release_cancelled", "release", "accept", "analysis", "derivation", "verification", "submission_to_court", "access", "release", "release_expired", "annotation"}
	for seq, typ := range types {
		mark := `<g class="ev" data-seq="` + itoa(seq) + `" data-type="` + typ + `">`
		if strings.Count(html, mark) != 1 {
			t.Errorf("event #%d (%s) has %d marks, want 1", seq, typ, strings.Count(html, mark))
		}
		if !strings.Contains(html, `<tr><td class="seq">#`+itoa(seq)+`<`) {
			t.Errorf("event #%d has no row in the event table", seq)
		}
	}
	// The keys, with the fingerprints custody keys writes.
	logKey := mustRead(t, vec("trust/log-key.txt"))
	fps := []string{verify.Fingerprint([]byte(logKey)), verify.Fingerprint(pemDERs(t, vec("trust/receipt-key.pem"))[0])}
	for _, der := range append(pemDERs(t, vec("trust/ca.pem")), pemDERs(t, vec("trust/tsa-chain.pem"))...) {
		fps = append(fps, verify.Fingerprint(der))
	}
	policy, _ := os.ReadFile(vec("trust/witness-policy.txt"))
	fps = append(fps, verify.Fingerprint(policy))
	for _, fp := range fps {
		if !strings.Contains(html, fp) {
			t.Errorf("the report lacks the fingerprint %s", fp)
		}
	}
	if !strings.Contains(html, "supplied by the court (log-key.txt, receipt-key.pem, ca.pem, witness-policy.txt, tsa-chain.pem)") || strings.Contains(html, "NOT an independent") {
		t.Error("the keys' source is not the court's files")
	}
	// Run again: the same report, byte for byte (nothing but the time
	// varies, and SOURCE_DATE_EPOCH fixes it).
	if _, again, _ := report(t, args...); again != html {
		t.Error("two runs gave different reports")
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// TestReportWithLimits: every limit the verifier lists is in the report,
// and the headline says VERIFIED, WITH LIMITS.
func TestReportWithLimits(t *testing.T) {
	bundle := vec("bundles/handoff.json")
	code, html, _ := report(t, "--bundle", bundle, "--log-key", vec("trust/log-key.txt"), "--receipt-key", vec("trust/receipt-key.pem"))
	raw, _ := os.ReadFile(bundle)
	opts := verify.Options{LogVerifierKey: mustRead(t, vec("trust/log-key.txt"))}
	opts.ReceiptKeyPEM, _ = os.ReadFile(vec("trust/receipt-key.pem"))
	r := verify.VerifyBytes(raw, opts)
	if code != 0 || r.Outcome != verify.OutcomeVerifiedWithLimits || len(r.NotChecked) < 3 {
		t.Fatalf("exit %d, outcome %s, not checked %q", code, r.Outcome, r.NotChecked)
	}
	if !strings.Contains(html, `<p class="word">VERIFIED, WITH LIMITS</p>`) || !strings.Contains(html, "4 points could not be checked") {
		t.Error("the headline is not VERIFIED, WITH LIMITS with 4 points")
	}
	for _, n := range append(r.NotChecked, r.CannotProve...) {
		if !strings.Contains(html, "<li>"+htmlEscape(n)+"</li>") {
			t.Errorf("the report does not list %q", n)
		}
	}
	for _, f := range r.Unauthenticated {
		if !strings.Contains(html, "<th>"+htmlEscape(f.Name)+"</th><td class=\"mono\">"+htmlEscape(f.Value)+"</td>") {
			t.Errorf("the report does not show the unauthenticated %s", f.Name)
		}
	}
	for _, want := range []string{"No evidence file was compared", `<th>Operator&#39;s client CA</th><td>not supplied</td>`, "statement-W17.pdf", "purpose: exhibit review"} {
		if !strings.Contains(html, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#39;").Replace(s)
}

// TestReportNotVerified: a changed record, keys from the bundle itself, a
// file that is no bundle: the report says NOT VERIFIED, claims nothing as
// verified, and marks the bundle's content UNVERIFIED.
func TestReportNotVerified(t *testing.T) {
	raw, err := os.ReadFile(vec("bundles/handoff.json"))
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Replace(raw, []byte("to the lab for analysis"), []byte("to the bin for disposal"), 1)
	if bytes.Equal(raw, tampered) {
		t.Fatal("nothing to tamper with")
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keys := []string{"--log-key", vec("trust/log-key.txt"), "--receipt-key", vec("trust/receipt-key.pem"), "--ca", vec("trust/ca.pem")}
	for _, c := range []struct {
		name    string
		args    []string
		code    int
		outcome string
		want    []string
	}{
		{"tampered", append([]string{"--bundle", write("tampered.json", tampered)}, keys...), 1, "failed",
			[]string{"2 checks failed: the bundle was altered or damaged", "the record was changed", "The item (UNVERIFIED)", "Who held it, when (UNVERIFIED)", "Events (UNVERIFIED)",
				"UNVERIFIED: the custody history, as the bundle states it", "to the bin for disposal", "signed by the releaser (not verified)", "Custody periods (unverified)",
				"this event failed its checks: record commitment", `<text class="failed" x=`}},
		{"untrusted keys", []string{"--bundle", vec("bundles/handoff.json")}, 1, "untrusted_keys",
			[]string{"checks out only against keys it carries itself", "The item (UNVERIFIED)", "taken from the bundle itself: NOT an independent trust anchor"}},
		{"tampered file", append([]string{"--bundle", vec("bundles/handoff.json"), "--file", vec("files/single-photo.bin")}, keys...), 1, "failed",
			[]string{"does not match the logged item", "evidence file: the file hashes to"}},
		{"not a bundle", append([]string{"--bundle", write("junk.json", []byte(`{"format":"custody-bundle","v":1,`))}, keys...), 2, "failed",
			[]string{"The file given is not a readable court bundle"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, html, stdout := report(t, c.args...)
			if code != c.code || !strings.HasPrefix(stdout, "NOT VERIFIED") {
				t.Errorf("exit %d, want %d: %s", code, c.code, stdout)
			}
			selfContained(t, html)
			if !strings.Contains(html, `<div class="verdict not" data-outcome="`+c.outcome+`"><p class="word">NOT VERIFIED</p>`) {
				t.Error("the headline is not NOT VERIFIED")
			}
			if n := verifiedClaims(html); n != 0 {
				t.Errorf("a NOT VERIFIED report says VERIFIED %d time(s)", n)
			}
			if strings.Contains(html, "Custody periods<") || strings.Contains(html, "The item<") {
				t.Error("a section is not marked unverified")
			}
			for _, w := range c.want {
				if !strings.HasPrefix(w, "<") { // markup is looked for as it is, text escaped
					w = htmlEscape(w)
				}
				if !strings.Contains(html, w) {
					t.Errorf("the report lacks %q", w)
				}
			}
		})
	}
}

// TestReportWithheld: a bundle whose records were withheld shows the
// chain's shape (the entries' types and times) and nobody's name.
func TestReportWithheld(t *testing.T) {
	code, html, _ := report(t, "--bundle", vec("bundles/seizure-auditor.json"), "--log-key", vec("trust/log-key.txt"), "--receipt-key", vec("trust/receipt-key.pem"))
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{`<p class="word">VERIFIED, WITH LIMITS</p>`, "holders withheld", `data-seq="0" data-type="ingest"`, `data-seq="1" data-type="access"`,
		"records of this special-category item were withheld", "<th>Kind</th><td>biometric_seizure_record</td>"} {
		if !strings.Contains(html, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	if strings.Contains(html, "urn:custody:") || strings.Contains(html, "dev-") {
		t.Error("a withheld bundle's report names someone")
	}
}

// TestReportEscapes: what the bundle says is text, never markup.
func TestReportEscapes(t *testing.T) {
	_, html, _ := report(t, "--bundle", vec("bundles/single-photo.json"), "--log-key", vec("trust/log-key.txt"), "--receipt-key", vec("trust/receipt-key.pem"))
	if !strings.Contains(html, "<th>Description</th><td>north wall, &quot;impact&quot; &lt;crater&gt; &amp; debris</td>") || strings.Contains(html, "<crater>") {
		t.Error("the description is not escaped")
	}
	for _, want := range []string{"<th>Captured at, as stated</th><td>2022-03-16 10:04:05.120 UTC</td>",
		"<th>Place, as stated</th><td>Mariupol, drama theatre square; lat, lon 47.0951, 37.5494 (±4 m, altitude 41.5 m)</td>", "<th>Device, as stated</th><td>Google Pixel 7</td>"} {
		if !strings.Contains(html, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
}

// TestReportTrustFile: keys from a trust file (custody keys --out) are
// shown with the trust file's own fingerprints.
func TestReportTrustFile(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile(vec(name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	tsa := read("trust/tsa-chain.pem")
	trust, err := verify.NewTrust("custody.test/log", mustRead(t, vec("trust/log-key.txt")), read("trust/receipt-key.pem"), read("trust/ca.pem"), read("trust/witness-policy.txt"),
		[]verify.TrustAuthority{{URL: "https://tsa.example", ChainPEM: tsa}})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(trust)
	path := filepath.Join(t.TempDir(), "trust.json")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	code, html, _ := report(t, "--bundle", vec("bundles/every-event.json"), "--file", vec("files/every-event.bin"), "--checkpoint", vec("trust/earlier-checkpoint.txt"), "--trust", path)
	if code != 0 || !strings.Contains(html, `<p class="word">VERIFIED</p>`) {
		t.Fatalf("exit %d", code)
	}
	fp := trust.Fingerprints
	for _, want := range append(append([]string{fp.LogVerifierKey, fp.ReceiptPublicKey, fp.WitnessPolicy}, fp.ClientCA...), fp.TimestampAuthorities...) {
		if !strings.Contains(html, want) {
			t.Errorf("the report lacks the trust file's fingerprint %s", want)
		}
	}
	if strings.Count(html, "supplied by the court (trust file trust.json)") != 5 {
		t.Error("the keys are not shown as the trust file's")
	}
	// --trust with --log-key is refused, as by custody verify.
	if code, _, _ := cli(t, "report", "--bundle", vec("bundles/every-event.json"), "--trust", path, "--log-key", vec("trust/log-key.txt"), "--out", filepath.Join(t.TempDir(), "r.html")); code != 2 {
		t.Errorf("--trust and --log-key: exit %d, want 2", code)
	}
}

// TestReportStreamForm: a bundle in the stream form gives the same
// picture and verdict as the document.
func TestReportStreamForm(t *testing.T) {
	raw, err := os.ReadFile(vec("bundles/every-event.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var evs []json.RawMessage
	json.Unmarshal(doc["events"], &evs)
	delete(doc, "events")
	doc["format"] = json.RawMessage(`"custody-bundle-stream"`)
	doc["event_count"] = json.RawMessage(itoa(len(evs)))
	head, _ := json.Marshal(doc)
	var stream bytes.Buffer
	stream.Write(head)
	stream.WriteByte('\n')
	for _, e := range evs {
		var c bytes.Buffer
		json.Compact(&c, e)
		stream.Write(c.Bytes())
		stream.WriteByte('\n')
	}
	path := filepath.Join(t.TempDir(), "every-event.jsonl")
	if err := os.WriteFile(path, stream.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1796083200")
	args := append([]string{"--file", vec("files/every-event.bin"), "--checkpoint", vec("trust/earlier-checkpoint.txt")}, fullTrust...)
	code, fromStream, _ := report(t, append([]string{"--bundle", path}, args...)...)
	_, fromDoc, _ := report(t, append([]string{"--bundle", vec("bundles/every-event.json")}, args...)...)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	// The picture, the item and the events are the same.
	cut := func(html, from, to string) string {
		i, j := strings.Index(html, from), strings.Index(html, to)
		if i < 0 || j < i {
			t.Fatalf("no %s … %s", from, to)
		}
		return html[i:j]
	}
	if cut(fromStream, `<section class="facts">`, `<section class="keys`) != cut(fromDoc, `<section class="facts">`, `<section class="keys`) {
		t.Error("the stream form's report differs from the document's")
	}
}

// TestReportRendersAnyBundle: whatever the bundle holds — wrong types,
// unreadable records, names like __proto__ — the renderer writes a NOT
// VERIFIED report rather than failing, and escapes what it shows.
func TestReportRendersAnyBundle(t *testing.T) {
	raw, err := os.ReadFile(vec("bundles/handoff.json"))
	if err != nil {
		t.Fatal(err)
	}
	failed := &verify.Report{EvidenceID: "ev-x", Outcome: verify.OutcomeFailed, Checks: []verify.Check{
		{Step: "event", Name: "event #1 (log 3): record commitment", Detail: "<b>changed</b>"},
		{Step: "event", Name: "event #__proto__ (log 3): receipt", Detail: "x"},
	}, Facts: []verify.Fact{{Name: "__proto__", Value: "x"}, {Name: "constructor", Value: "y"}}}
	edits := map[string]func(doc map[string]any){
		"events not an array": func(d map[string]any) { d["events"] = "x" },
		"events of numbers":   func(d map[string]any) { d["events"] = []any{1, nil, "x"} },
		"records of the wrong types": func(d map[string]any) {
			for _, e := range d["events"].([]any) {
				e.(map[string]any)["record"] = `{"details":5,"performer":7,"counterparty":[1],"type":"__proto__","recorded_at":{"a":1},"purpose":"<script>alert(1)</script>"}`
			}
		},
		"types that are Object's names": func(d map[string]any) {
			for i, e := range d["events"].([]any) {
				e.(map[string]any)["record"] = `{"type":"` + []string{"constructor", "toString", "hasOwnProperty"}[i%3] + `","details":{"authority":"x","location":[],"instrument":null}}`
			}
		},
		"unreadable records and entries": func(d map[string]any) {
			for _, e := range d["events"].([]any) {
				e.(map[string]any)["record"], e.(map[string]any)["entry"], e.(map[string]any)["seq"] = "{", 5, "seq"
			}
		},
		"evidence of the wrong types": func(d map[string]any) {
			d["evidence"] = map[string]any{"metadata": []any{1}, "size": "big", "withheld": "yes", "evidence_id": map[string]any{}}
		},
		"no evidence, no keys": func(d map[string]any) { delete(d, "evidence"); d["keys"] = 5 },
	}
	for name, edit := range edits {
		t.Run(name, func(t *testing.T) {
			var doc map[string]any
			if err := json.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			edit(doc)
			b, _ := json.Marshal(doc)
			html, err := renderReport(failed, b, reportKeys{LogVerifierKey: "<key>", ReceiptPublicKeyPEM: "-----BEGIN PUBLIC KEY-----\n!!\n-----END PUBLIC KEY-----\n", ClientCAPEM: "junk"}, reportMeta{})
			if err != nil {
				t.Fatalf("the renderer failed: %v", err)
			}
			if !strings.Contains(html, `<p class="word">NOT VERIFIED</p>`) || verifiedClaims(html) != 0 {
				t.Error("not a NOT VERIFIED report")
			}
			if strings.Contains(html, "<script>") || strings.Contains(html, "<b>") || strings.Contains(html, "<key>") {
				t.Error("text from the inputs shown as markup")
			}
		})
	}
	for _, doc := range []string{"null", "[]", `"x"`, "5"} {
		html, err := renderReport(failed, json.RawMessage(doc), reportKeys{}, reportMeta{})
		if err != nil || !strings.Contains(html, "The file given is not a readable court bundle") {
			t.Errorf("bundle %s: %v", doc, err)
		}
	}
}

// TestReportJSON: with -o json, stdout is one JSON document naming the
// file and the outcome.
func TestReportJSON(t *testing.T) {
	out := filepath.Join(t.TempDir(), "r.html")
	code, stdout, _ := cli(t, "-o", "json", "report", "--bundle", vec("bundles/handoff.json"), "--log-key", vec("trust/log-key.txt"), "--receipt-key", vec("trust/receipt-key.pem"), "--out", out)
	var got struct {
		File       string `json:"file"`
		Bytes      int    `json:"bytes"`
		EvidenceID string `json:"evidence_id"`
		Outcome    string `json:"outcome"`
		Headline   string `json:"headline"`
	}
	dec := json.NewDecoder(strings.NewReader(stdout))
	if err := dec.Decode(&got); err != nil || dec.More() || code != 0 {
		t.Fatalf("exit %d, not one JSON document (%v): %s", code, err, stdout)
	}
	st, err := os.Stat(out)
	if err != nil || got.File != out || int64(got.Bytes) != st.Size() || got.Outcome != "verified_with_limits" || got.EvidenceID != "ev-omukrlku3jrmxeyrtxuiqrjlau" || !strings.HasPrefix(got.Headline, "VERIFIED, WITH LIMITS") {
		t.Errorf("%+v", got)
	}
}
