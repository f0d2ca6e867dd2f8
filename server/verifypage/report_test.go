package verifypage_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/binaries"
	"github.com/custody-dev/custody/internal/testenv/servertest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
	"github.com/custody-dev/custody/server/verifypage"
	"github.com/custody-dev/custody/verify"
)

// reportCase is a live service's bundle of a photo with a two-party
// hand-off, accesses with their purpose and authority, an analysis, a
// derivation, a withdrawn release and a submission to court; and the trust
// file of that service.
type reportCase struct {
	dir                     string
	bundle, tampered, trust string // paths
	evidence                string // the photo
	trustDoc                *verify.Trust
	id                      string
}

const (
	rcCollector = "urn:custody:collector:dev-collector"
	rcLab       = "urn:custody:custodian:dev-custodian"
	rcCourt     = "urn:custody:court:dev-court"
)

func newReportCase(t *testing.T) *reportCase {
	t.Helper()
	env := servertest.StartT(t)
	ctx := t.Context()
	collector := env.Client(t, identity.RoleCollector)
	lab := env.Client(t, identity.RoleCustodian)
	court := env.Client(t, identity.RoleCourt)
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// A real camera JPEG, with EXIF time, camera and GPS position: the
	// report shows what the file says beside what the collector states.
	photo, err := os.ReadFile(filepath.Join("..", "..", "media", "testdata", "gps.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(photo)
	alt, acc := 41.5, 4.0
	md := &custodyv1.UploadMetadata{CaseId: "ICC-01/22", Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_PHOTO, Filename: "IMG_2041.JPG",
		Description: "north wall of the theatre, \"impact\" <crater> & debris", Sha256: hex.EncodeToString(sum[:]), SizeBytes: int64(len(photo)),
		Capture: &custodyv1.Capture{CapturedAt: timestamppb.New(time.Date(2022, 3, 16, 10, 4, 5, 0, time.UTC)),
			Location: &custodyv1.Location{Description: "Mariupol, drama theatre square", Point: &custodyv1.GeoPoint{Latitude: 47.0951, Longitude: 37.5494, AltitudeM: &alt, AccuracyM: &acc}},
			Device:   &custodyv1.Device{Make: "Google", Model: "Pixel 7"}}}
	must(nil, collector.SignCapture(md))
	up, err := collector.Upload(ctx, md, bytes.NewReader(photo), nil)
	if err != nil {
		t.Fatal(err)
	}
	id := up.GetEvidence().GetEvidenceId()
	warrant := &custodyv1.Authority{Type: "warrant", Identifier: "PTC-II-W-17", IssuedBy: "Pre-Trial Chamber II",
		ValidFrom: timestamppb.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), ValidUntil: timestamppb.New(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))}
	must(court.Download(ctx, &custodyv1.DownloadRequest{EvidenceId: id, Purpose: "review before transfer", Authority: warrant}, &bytes.Buffer{}))
	must(collector.Release(ctx, id, rcLab, "to the lab for analysis"))
	must(lab.Accept(ctx, id))
	must(lab.Download(ctx, &custodyv1.DownloadRequest{EvidenceId: id, Purpose: "forensic working copy",
		Authority: &custodyv1.Authority{Type: "mandate", Identifier: "OTP-2022-114", IssuedBy: "Office of the Prosecutor"}}, &bytes.Buffer{}))
	must(lab.RecordEvent(ctx, &custodyv1.RecordEventRequest{EvidenceId: id, Type: custodyv1.EventType_EVENT_TYPE_ANALYSIS, Note: "error level analysis: no splicing found",
		Instrument: &custodyv1.Instrument{Name: "exiftool", Version: "12.76"}, Location: &custodyv1.Location{Description: "lab 2, The Hague"}}))
	still := []byte("\xff\xd8\xff\xe0 enhanced crop of the crater " + strings.Repeat("px ", 200))
	stillSum := sha256.Sum256(still)
	stillUp, err := lab.Upload(ctx, &custodyv1.UploadMetadata{CaseId: "ICC-01/22", Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_PHOTO, Filename: "IMG_2041-crop.jpg",
		Sha256: hex.EncodeToString(stillSum[:]), SizeBytes: int64(len(still))}, bytes.NewReader(still), nil)
	if err != nil {
		t.Fatal(err)
	}
	must(lab.RecordEvent(ctx, &custodyv1.RecordEventRequest{EvidenceId: id, Type: custodyv1.EventType_EVENT_TYPE_DERIVATION, Note: "enhanced crop of the crater",
		RelatedEvidenceId: stillUp.GetEvidence().GetEvidenceId(), Instrument: &custodyv1.Instrument{Name: "GIMP", Version: "2.10"}}))
	must(lab.Release(ctx, id, rcCourt, "exhibit P-7"))
	must(lab.CancelRelease(ctx, id, "wrong exhibit number"))
	must(lab.RecordEvent(ctx, &custodyv1.RecordEventRequest{EvidenceId: id, Type: custodyv1.EventType_EVENT_TYPE_SUBMISSION_TO_COURT, Note: "exhibit P-12"}))
	must(lab.Release(ctx, id, rcCourt, "exhibit P-12, for the hearing"))
	must(court.Accept(ctx, id))
	must(court.Download(ctx, &custodyv1.DownloadRequest{EvidenceId: id, Purpose: "trial exhibit P-12",
		Authority: &custodyv1.Authority{Type: "court order", Identifier: "ICC-01/22-412", IssuedBy: "Trial Chamber I"}}, &bytes.Buffer{}))
	bundle, err := court.Bundle(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := court.PublicKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	trust, err := verify.NewTrust(keys.GetLogOrigin(), keys.GetLogVerifierKey(), keys.GetReceiptPublicKeyPem(), keys.GetClientCaPem(), keys.GetWitnessPolicy(), nil)
	if err != nil {
		t.Fatal(err)
	}
	trustJSON, err := json.MarshalIndent(trust, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	// Tampered: the first access's purpose, in its record.
	tampered := bytes.Replace(bundle, []byte("review before transfer"), []byte("review after transfer!"), 1)
	if bytes.Equal(tampered, bundle) {
		t.Fatal("nothing to tamper with")
	}
	dir := t.TempDir()
	rc := &reportCase{dir: dir, trustDoc: trust, id: id}
	for p, b := range map[*string][]byte{&rc.bundle: bundle, &rc.tampered: tampered, &rc.trust: trustJSON, &rc.evidence: photo} {
		name := map[*string]string{&rc.bundle: "bundle.json", &rc.tampered: "tampered.json", &rc.trust: "trust.json", &rc.evidence: "IMG_2041.JPG"}[p]
		*p = filepath.Join(dir, name)
		if err := os.WriteFile(*p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return rc
}

// reportEpoch fixes the reports' "made at" (SOURCE_DATE_EPOCH).
const reportEpoch = 1796083200 // 2026-12-01T00:00:00Z

// cliReport runs the custody binary's report command and returns its exit
// status and the HTML it wrote.
func cliReport(t *testing.T, out string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binaries.Build(t, "custody"), append(append([]string{"report"}, args...), "--out", out)...)
	cmd.Env = append(os.Environ(), fmt.Sprintf("SOURCE_DATE_EPOCH=%d", reportEpoch))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	html, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("custody report wrote nothing (exit %d): %s%s", code, stdout.String(), stderr.String())
	}
	return code, string(html)
}

// screenshotsDir is where the report's pictures go: docs/screenshots with
// CUSTODY_UPDATE_SCREENSHOTS=1, else the test's temporary folder.
func screenshotsDir(t *testing.T) string {
	if os.Getenv("CUSTODY_UPDATE_SCREENSHOTS") != "" {
		return filepath.Join("..", "..", "docs", "screenshots")
	}
	return t.TempDir()
}

// fullPage returns a PNG of the whole document, width CSS pixels wide.
func (tb *tab) fullPage(ctx context.Context) []byte {
	tb.b.t.Helper()
	var size struct{ W, H float64 }
	tb.mustEval(ctx, `({ W: document.documentElement.scrollWidth, H: document.documentElement.scrollHeight })`, &size)
	var res struct{ Data string }
	tb.must(ctx, "Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true,
		"clip": map[string]any{"x": 0, "y": 0, "width": size.W, "height": size.H, "scale": 1}}, &res)
	png, err := base64.StdEncoding.DecodeString(res.Data)
	if err != nil {
		tb.b.t.Fatal(err)
	}
	return png
}

// screenshotTop returns a PNG of the top of the element with that id, at
// most height CSS pixels of it.
func (tb *tab) screenshotTop(ctx context.Context, id string, height float64) []byte {
	tb.b.t.Helper()
	var box struct{ X, Y, Width, Height float64 }
	tb.mustEval(ctx, fmt.Sprintf(`(() => { const r = document.getElementById(%q).getBoundingClientRect();
		return { X: r.left + scrollX, Y: r.top + scrollY, Width: r.width, Height: r.height }; })()`, id), &box)
	var res struct{ Data string }
	tb.must(ctx, "Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true,
		"clip": map[string]any{"x": max(box.X-12, 0), "y": max(box.Y-12, 0), "width": box.Width + 24, "height": min(box.Height, height) + 12, "scale": 1}}, &res)
	png, err := base64.StdEncoding.DecodeString(res.Data)
	if err != nil {
		tb.b.t.Fatal(err)
	}
	return png
}

// printPDF prints the tab as Chromium's "Save as PDF" does, on paper of
// that size (inches), backgrounds included, the page's own @page margins.
func (tb *tab) printPDF(ctx context.Context, width, height float64) []byte {
	tb.b.t.Helper()
	var res struct{ Data string }
	tb.must(ctx, "Page.printToPDF", map[string]any{"paperWidth": width, "paperHeight": height, "printBackground": true,
		"marginTop": 0, "marginBottom": 0, "marginLeft": 0, "marginRight": 0, "preferCSSPageSize": false}, &res)
	pdf, err := base64.StdEncoding.DecodeString(res.Data)
	if err != nil {
		tb.b.t.Fatal(err)
	}
	return pdf
}

// pdfPages renders each page of pdf to a PNG (pdftoppm, poppler-utils)
// and returns their paths, and the text of each page (pdftotext).
func pdfPages(t *testing.T, pdf []byte, dir, prefix string) ([]string, []string) {
	t.Helper()
	for _, tool := range []string{"pdftoppm", "pdftotext"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("no %s on PATH: apt-get install poppler-utils (scripts/test does)", tool)
		}
	}
	work := t.TempDir()
	in := filepath.Join(work, "in.pdf")
	if err := os.WriteFile(in, pdf, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("pdftoppm", "-png", "-r", "80", in, filepath.Join(work, "page")).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v\n%s", err, out)
	}
	pngs, _ := filepath.Glob(filepath.Join(work, "page-*.png"))
	var paths, texts []string
	for i, p := range pngs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, fmt.Sprintf("%s%d.png", prefix, i+1))
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, dst)
		out, err := exec.Command("pdftotext", "-f", fmt.Sprint(i+1), "-l", fmt.Sprint(i+1), "-layout", in, "-").Output()
		if err != nil {
			t.Fatalf("pdftotext: %v", err)
		}
		texts = append(texts, string(out))
	}
	return paths, texts
}

// TestReportInChromium renders `custody report` of a live service's
// bundle, and of a tampered copy, in headless Chromium: what the report
// says (verdict, facts, timeline, events, keys, limits), that its CSP lets
// its style apply and nothing else, a screenshot of each, and the
// verified one printed to PDF on A4 and on Letter, the pages rendered to
// PNGs (docs/screenshots/report-*.png with CUSTODY_UPDATE_SCREENSHOTS=1).
func TestReportInChromium(t *testing.T) {
	rc := newReportCase(t)
	code, html := cliReport(t, filepath.Join(rc.dir, "verified.html"), "--bundle", rc.bundle, "--file", rc.evidence, "--trust", rc.trust)
	if code != 0 {
		t.Fatalf("custody report: exit %d", code)
	}
	tcode, thtml := cliReport(t, filepath.Join(rc.dir, "tampered.html"), "--bundle", rc.tampered, "--file", rc.evidence, "--trust", rc.trust)
	if tcode != 1 {
		t.Fatalf("custody report of the tampered bundle: exit %d, want 1", tcode)
	}

	// What the verified report says. No witness policy or timestamp
	// authority here: verified with limits.
	raw, _ := os.ReadFile(rc.bundle)
	opts, err := rc.trustDoc.Options()
	if err != nil {
		t.Fatal(err)
	}
	opts.File = bytes.NewReader(mustReadFile(t, rc.evidence))
	goReport := verify.VerifyBytes(raw, opts)
	if goReport.Outcome != verify.OutcomeVerifiedWithLimits {
		t.Fatalf("the bundle verifies %s: %v", goReport.Outcome, goReport.Failures())
	}
	want := []string{`<p class="word">VERIFIED, WITH LIMITS</p>`, `The evidence file “IMG_2041.JPG” is the logged item`,
		"<th>Case</th><td>ICC-01/22</td>", "<th>Kind</th><td>photo</td>", "<th>File name</th><td>IMG_2041.JPG</td>",
		"north wall of the theatre, &quot;impact&quot; &lt;crater&gt; &amp; debris", rc.trustDoc.Fingerprints.LogVerifierKey,
		"<th>Captured at, as stated</th><td>2022-03-16 10:04:05 UTC</td>", "<th>Place, as stated</th><td>Mariupol, drama theatre square; lat, lon 47.0951, 37.5494 (±4 m, altitude 41.5 m)</td>",
		"<th>Place, embedded in the file</th><td>lat, lon -38.405194783333336, 144.188958</td>", "<th>Device, embedded in the file</th>",
		"purpose: review before transfer", "authority: warrant PTC-II-W-17, issued by Pre-Trial Chamber II, valid from 2026-01-01 00:00:00 UTC until 2027-01-01 00:00:00 UTC",
		"purpose: forensic working copy", "authority: mandate OTP-2022-114, issued by Office of the Prosecutor",
		"purpose: trial exhibit P-12", "authority: court order ICC-01/22-412, issued by Trial Chamber I",
		"note: error level analysis: no splicing found", "instrument: exiftool 12.76", "note: enhanced crop of the crater",
		"withdrawn at #8", "accepted at #3", "accepted at #11", "still the holder at the last event",
		`>review before</text>`, `>transfer</text>`, `>warrant</text>`, `>PTC-II-W-17</text>`, `>forensic working</text>`, `>mandate</text>`, `>OTP-2022-114</text>`}
	sum := sha256.Sum256(raw)
	want = append(want, hex.EncodeToString(sum[:]))
	for _, fp := range append([]string{rc.trustDoc.Fingerprints.ReceiptPublicKey}, rc.trustDoc.Fingerprints.ClientCA...) {
		want = append(want, fp)
	}
	for _, n := range append(goReport.NotChecked, goReport.CannotProve...) {
		want = append(want, "<li>"+htmlEscape(n)+"</li>")
	}
	for _, w := range want {
		if !strings.Contains(html, w) {
			t.Errorf("the report lacks %q", w)
		}
	}
	// Each holder has a lane and a band from the event that gave them
	// the item; each event its mark and its row.
	for _, b := range []struct {
		who  string
		from int
	}{{rcCollector, 0}, {rcLab, 3}, {rcCourt, 11}} {
		if !strings.Contains(html, `<g class="lane" data-party="`+b.who+`">`) || !strings.Contains(html, fmt.Sprintf(`data-holder="%s" data-from="%d"`, b.who, b.from)) {
			t.Errorf("no lane or band of %s from #%d", b.who, b.from)
		}
	}
	types := []string{"ingest", "access", "release", "accept", "access", "analysis", "derivation", "release", "release_cancelled", "submission_to_court", "release", "accept", "access"}
	for seq, typ := range types {
		if !strings.Contains(html, fmt.Sprintf(`<g class="ev" data-seq="%d" data-type="%s">`, seq, typ)) || !strings.Contains(html, fmt.Sprintf(`<tr><td class="seq">#%d<`, seq)) {
			t.Errorf("event #%d (%s) has no mark or no row", seq, typ)
		}
	}
	if strings.Contains(html, fmt.Sprintf(`data-seq="%d"`, len(types))) {
		t.Errorf("more than %d events", len(types))
	}

	// The tampered one says NOT VERIFIED, and VERIFIED nowhere else.
	if !strings.Contains(thtml, `<p class="word">NOT VERIFIED</p>`) || !strings.Contains(thtml, "review after transfer!") || !strings.Contains(thtml, "the record was changed") {
		t.Error("the tampered bundle's report does not say NOT VERIFIED, or does not show what was changed")
	}
	if n := strings.Count(strings.NewReplacer("NOT VERIFIED", "", "UNVERIFIED", "").Replace(thtml), "VERIFIED"); n > 0 {
		t.Errorf("the tampered bundle's report says VERIFIED %d time(s)", n)
	}
	for _, h := range []string{"The item (UNVERIFIED)", "Who held it, when (UNVERIFIED)", "Events (UNVERIFIED)"} {
		if !strings.Contains(thtml, h) {
			t.Errorf("the tampered bundle's report lacks %q", h)
		}
	}

	// In Chromium: the style applies under the report's own CSP, nothing
	// is blocked or fetched, no script runs; then the pictures.
	b := startBrowser(t)
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()
	shots := screenshotsDir(t)
	for _, c := range []struct{ name, file, outcome string }{{"verified", "verified.html", "verified_with_limits"}, {"tampered", "tampered.html", "failed"}} {
		url := "file://" + filepath.Join(rc.dir, c.file)
		tb := b.open(ctx, url, 860, 1000)
		var got struct {
			Outcome, Border, Font string
			Figures, Avoid        int
			Scripts               int
		}
		tb.mustEval(ctx, `(() => {
			const m = document.querySelector("main.custody-report");
			const figs = Array.from(document.querySelectorAll("figure.timeline"));
			return { Outcome: m.dataset.outcome, Border: getComputedStyle(document.querySelector(".verdict")).borderTopStyle,
				Font: getComputedStyle(m).fontSize, Figures: figs.length,
				Avoid: figs.filter((f) => getComputedStyle(f).breakInside === "avoid").length,
				Scripts: document.scripts.length };
		})()`, &got)
		if got.Outcome != c.outcome || got.Border != "solid" || got.Font != "13.3333px" || got.Figures == 0 || got.Avoid != got.Figures || got.Scripts != 0 {
			t.Errorf("%s in Chromium: %+v (want the style applied: a solid verdict border, 10pt text, figures kept whole)", c.name, got)
		}
		png := tb.fullPage(ctx)
		out := filepath.Join(shots, "report-"+c.name+".png")
		if err := os.WriteFile(out, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", out)
		if c.name != "verified" {
			continue
		}
		for _, paper := range []struct {
			name string
			w, h float64
		}{{"a4", 8.27, 11.69}, {"letter", 8.5, 11}} {
			pngs, texts := pdfPages(t, tb.printPDF(ctx, paper.w, paper.h), t.TempDir(), "report-print-page")
			if len(pngs) < 2 || len(pngs) > 8 {
				t.Errorf("%s: %d pages", paper.name, len(pngs))
			}
			if !strings.Contains(texts[0], "VERIFIED, WITH LIMITS") {
				t.Errorf("%s: page 1 does not carry the verdict:\n%s", paper.name, texts[0])
			}
			// The timeline is one figure: its first and last lane and its
			// time row are on one page.
			for i, text := range texts {
				if strings.Contains(text, "Who held it, when") && !strings.Contains(text, "holds the item") {
					t.Errorf("%s: page %d cuts the timeline from its legend", paper.name, i+1)
				}
			}
			t.Logf("%s: %d pages: %v", paper.name, len(pngs), pngs)
			// A4's first two pages: the verdict and the item, then the
			// timeline.
			for i := 0; paper.name == "a4" && i < 2; i++ {
				out := filepath.Join(shots, filepath.Base(pngs[i]))
				if err := os.WriteFile(out, mustReadFile(t, pngs[i]), 0o644); err != nil {
					t.Fatal(err)
				}
				t.Logf("wrote %s", out)
			}
		}
	}
	for _, l := range b.Logs() {
		if strings.Contains(l, "Content Security Policy") || strings.Contains(l, "Refused") || strings.Contains(l, "ERR_") {
			t.Errorf("Chromium: %s", l)
		}
	}
}

func mustReadFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#39;").Replace(s)
}

// TestPageEmbedsReport: the served page holds report.js, byte for byte,
// in its one script and the report's style in its one style, no marker
// left, and its CSP hashes what is served.
func TestPageEmbedsReport(t *testing.T) {
	page := string(verifypage.Page())
	js := verifypage.ReportScript()
	script := page[strings.Index(page, "<script>")+len("<script>") : strings.Index(page, "</script>")]
	style := page[strings.Index(page, "<style>")+len("<style>") : strings.Index(page, "</style>")]
	css := js[strings.Index(js, "String.raw`")+len("String.raw`") : strings.Index(js, "`; // end REPORT_CSS")]
	if !strings.Contains(script, js) || !strings.Contains(style, css) || len(css) < 1000 {
		t.Fatal("the page does not hold report.js in its script and the report's style in its style")
	}
	if strings.Contains(page, "@custody-report.js@") || strings.Contains(page, "@custody-report.css@") {
		t.Error("a marker is left in the page")
	}
	for tag, text := range map[string]string{"script": script, "style": style} {
		sum := sha256.Sum256([]byte(text))
		if want := tag + "-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(verifypage.CSP(), want) {
			t.Errorf("the CSP lacks %s", want)
		}
	}
}

// TestReportPageMatchesCLI: the /verify page's report and custody
// report's are one report. The renderer the page embeds, given in Chromium
// the inputs the CLI gave it in goja, returns the CLI's file byte for byte;
// and the page's own report, made through its user interface (trust file
// picked, bundle and file picked, Verify pressed) with its own verifier,
// is the CLI's but for the time and tool that made it, for a verified
// bundle and a tampered one. Printed, the page gives the report alone.
func TestReportPageMatchesCLI(t *testing.T) {
	rc := newReportCase(t)
	srv := newPageServer(t)
	b := startBrowser(t)
	ctx, cancel := context.WithTimeout(t.Context(), 180*time.Second)
	defer cancel()
	pageURL := srv.URL + "/verify"
	tb := b.open(ctx, pageURL, 1000, 900)
	generated := regexp.MustCompile(`<span class="generated">[^<]*</span>`)
	for _, c := range []struct{ name, bundle string }{{"verified", rc.bundle}, {"tampered", rc.tampered}} {
		_, cli := cliReport(t, filepath.Join(rc.dir, c.name+"-cli.html"), "--bundle", c.bundle, "--file", rc.evidence, "--trust", rc.trust)

		// The renderer, on the CLI's inputs.
		raw := mustReadFile(t, c.bundle)
		opts, err := rc.trustDoc.Options()
		if err != nil {
			t.Fatal(err)
		}
		opts.File = bytes.NewReader(mustReadFile(t, rc.evidence))
		sum := sha256.Sum256(raw)
		inputs := []any{verify.VerifyBytes(raw, opts), json.RawMessage(raw),
			map[string]any{"log_verifier_key": rc.trustDoc.LogVerifierKey, "receipt_public_key_pem": rc.trustDoc.ReceiptPublicKeyPEM,
				"client_ca_pem": rc.trustDoc.ClientCAPEM, "witness_policy": rc.trustDoc.WitnessPolicy, "tsa_chain_pems": []string{}, "source": "trust file trust.json"},
			map[string]any{"generated_at": time.Unix(reportEpoch, 0).UTC().Format(time.RFC3339), "generator": "custody report",
				"bundle_file": map[string]any{"name": filepath.Base(c.bundle), "sha256": hex.EncodeToString(sum[:])}, "evidence_file": map[string]any{"name": "IMG_2041.JPG"}}}
		args, err := json.Marshal(inputs)
		if err != nil {
			t.Fatal(err)
		}
		var inPage string
		tb.mustEval(ctx, `CustodyReport.renderReport(...`+string(args)+`)`, &inPage)
		if inPage != cli {
			t.Errorf("%s: the page's renderer, on the CLI's inputs, differs from custody report's file (%d and %d bytes)%s", c.name, len(inPage), len(cli), firstDiff(inPage, cli))
		}

		// The page's own report, through its user interface.
		tb.navigate(ctx, pageURL)
		tb.setFiles(ctx, "trustfile", rc.trust)
		waitFor(ctx, t, tb, `document.getElementById("trustbox").dataset.state === "ok"`)
		tb.setFiles(ctx, "bundle", c.bundle)
		tb.setFiles(ctx, "file", rc.evidence)
		tb.mustEval(ctx, `document.getElementById("go").click()`, nil)
		waitFor(ctx, t, tb, `!document.getElementById("reportsection").hidden`)
		var page string
		tb.mustEval(ctx, `window.custodyReportHTML()`, &page)
		if n := len(generated.FindAllString(page, -1)); n != 1 || !strings.Contains(page, "by the /verify page</span>") {
			t.Fatalf("%s: the page's report does not say once what made it", c.name)
		}
		norm := func(s string) string { return generated.ReplaceAllString(s, `<span class="generated">…</span>`) }
		if norm(page) != norm(cli) {
			t.Errorf("%s: the page's report differs from custody report's (%d and %d bytes)%s", c.name, len(page), len(cli), firstDiff(norm(page), norm(cli)))
		}
		// What the page shows is the report's body.
		var shown struct{ Outcome, Heading string }
		tb.mustEval(ctx, `(() => { const m = document.querySelector("#report main.custody-report");
			return { Outcome: m ? m.dataset.outcome : "", Heading: m ? m.querySelector(".verdict .word").textContent : "" }; })()`, &shown)
		wantWord := map[string]string{"verified": "VERIFIED, WITH LIMITS", "tampered": "NOT VERIFIED"}[c.name]
		if shown.Heading != wantWord {
			t.Errorf("%s: the page shows the report's verdict %q, want %q", c.name, shown.Heading, wantWord)
		}
		if c.name != "verified" {
			continue
		}
		if os.Getenv("CUSTODY_UPDATE_SCREENSHOTS") != "" {
			out := filepath.Join(screenshotsDir(t), "verify-report.png")
			if err := os.WriteFile(out, tb.screenshotTop(ctx, "reportsection", 1100), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s", out)
		}
		// Printed (the button calls window.print), the page is the report
		// alone: none of the page's own parts.
		_, texts := pdfPages(t, tb.printPDF(ctx, 8.27, 11.69), t.TempDir(), "page-print-")
		all := strings.Join(texts, "\n")
		if !strings.Contains(texts[0], "Custody report") || !strings.Contains(texts[0], "VERIFIED, WITH LIMITS") {
			t.Errorf("the page's print does not begin with the report:\n%s", texts[0])
		}
		for _, chrome := range []string{"Verify a Custody court bundle", "Trust anchors", "Print / save as PDF", "Checks"} {
			if strings.Contains(all, chrome) {
				t.Errorf("the page's print holds %q", chrome)
			}
		}
	}
	if other := srv.otherRequests(); len(other) > 0 {
		t.Errorf("the page made requests: %v", other)
	}
	for _, l := range b.Logs() {
		if strings.Contains(l, "Content Security Policy") || strings.Contains(l, "exceptionThrown") {
			t.Errorf("Chromium: %s", l)
		}
	}
}

// waitFor waits until a JavaScript condition holds in the tab.
func waitFor(ctx context.Context, t *testing.T, tb *tab, cond string) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var ok bool
		if err := tb.eval(ctx, "!!("+cond+")", &ok); err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never held; console: %v", cond, tb.b.Logs())
		}
	}
}

// firstDiff shows where two texts first differ.
func firstDiff(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	from := max(i-120, 0)
	return fmt.Sprintf("\nfirst difference at byte %d:\n  %q\n  %q", i, a[from:min(i+120, len(a))], b[from:min(i+120, len(b))])
}
