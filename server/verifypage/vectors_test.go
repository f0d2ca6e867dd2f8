package verifypage_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custody-dev/custody/canonicaljson"
	"github.com/custody-dev/custody/certs"
	"github.com/custody-dev/custody/internal/testenv"
	"github.com/custody-dev/custody/server/verifypage"
	"github.com/custody-dev/custody/verify"
	"github.com/custody-dev/custody/verify/vectors"
	"github.com/custody-dev/custody/witness"
)

// vectorDir is the published conformance set.
const vectorDir = "../../testdata/verify-vectors"

// goCANotChecked is what the Go verifier reports without --ca; the page,
// given no CA, reports pageCANotChecked.
const (
	goCANotChecked = "the signers' certificates were not checked against the operator's CA (give it with --ca)"
	// goTimeNotChecked is what the Go verifier reports for timestamps
	// without --tsa-chain; the page, which cannot check RFC 3161 tokens,
	// reports pageTimeNotChecked instead.
	goTimeNotChecked   = "time: the bundle's 1 timestamp(s) were not checked: no timestamp authority's chain was given (give it with --tsa-chain)"
	pageTimeNotChecked = "time: the bundle's 1 timestamp(s) were not checked (this page cannot check RFC 3161 timestamps: run custody verify --tsa-chain for that)"
)

var goTimeNotCheckedN = regexp.MustCompile(`^time: the bundle's ([0-9]+) timestamp\(s\) were not checked: no timestamp authority's chain was given \(give it with --tsa-chain\)$`)

const (
	pageCANotChecked = "the signers' certificates were not checked against the operator's CA (give it: load the trust file, or paste the CA under \"Operator's client CA\")"
)

// pageCase is one verification for testdata/harness.js.
type pageCase struct {
	Name              string       `json:"name"`
	Base              string       `json:"base,omitempty"`
	Raw               string       `json:"raw,omitempty"`
	Patch             []vectors.Op `json:"patch,omitempty"`
	LogKey            string       `json:"logKey,omitempty"`
	ReceiptKey        string       `json:"receiptKey,omitempty"`
	LogKeyText        *string      `json:"logKeyText,omitempty"`
	ReceiptKeyText    *string      `json:"receiptKeyText,omitempty"`
	CA                string       `json:"ca,omitempty"`
	EarlierCheckpoint string       `json:"earlierCheckpoint,omitempty"`
	Policy            string       `json:"policy,omitempty"`
	File              string       `json:"file,omitempty"`

	bundle []byte // what the Go verifier gets
}

// pageReport is what the harness returns for a case.
type pageReport struct {
	Name              string         `json:"name"`
	Outcome           string         `json:"outcome"`
	OK                bool           `json:"ok"`
	Headline          string         `json:"headline"`
	Checks            []verify.Check `json:"checks"`
	Facts             []verify.Fact  `json:"facts"`
	Unauthenticated   []verify.Fact  `json:"unauthenticated"`
	NotChecked        []string       `json:"not_checked"`
	CannotProve       []string       `json:"cannot_prove"`
	TrustedFromBundle []string       `json:"trusted_from_bundle"`
}

func (r pageReport) firstFailedStep() string {
	for _, c := range r.Checks {
		if !c.OK {
			return c.Step
		}
	}
	return ""
}

// vectorFiles reads the files a set of cases needs, base64, by path.
type vectorFiles map[string]string

func (f vectorFiles) need(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectorDir, path))
	if err != nil {
		t.Fatal(err)
	}
	f[path] = base64.StdEncoding.EncodeToString(b)
	return b
}

// goOptions are the Go verifier's options for a case; roots is the CA, or
// nil when the page was given none.
func (c pageCase) goOptions(t *testing.T, roots *x509.CertPool) verify.Options {
	read := func(p string) []byte {
		b, err := os.ReadFile(filepath.Join(vectorDir, p))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	o := verify.Options{Roots: roots}
	if c.LogKey != "" {
		o.LogVerifierKey = strings.TrimSpace(string(read(c.LogKey)))
	}
	if c.LogKeyText != nil {
		o.LogVerifierKey = *c.LogKeyText
	}
	if c.ReceiptKey != "" {
		o.ReceiptKeyPEM = read(c.ReceiptKey)
	}
	if c.ReceiptKeyText != nil && *c.ReceiptKeyText != "" {
		o.ReceiptKeyPEM = []byte(*c.ReceiptKeyText)
	}
	if c.EarlierCheckpoint != "" {
		o.OldCheckpoint = read(c.EarlierCheckpoint)
	}
	if c.Policy != "" {
		p, err := witness.ParsePolicy(read(c.Policy))
		if err != nil {
			t.Fatal(err)
		}
		o.Policy = p
	}
	if c.File != "" {
		o.File = bytes.NewReader(read(c.File))
	}
	return o
}

// goVerify is the Go verifier on a bundle as custody verify runs it: the
// stream form (found by its first line) with VerifyStream, a document with
// VerifyBytes.
func goVerify(bundle []byte, opts verify.Options) *verify.Report {
	if verify.IsStream(bundle) {
		return verify.VerifyStream(bytes.NewReader(bundle), opts)
	}
	return verify.VerifyBytes(bundle, opts)
}

// runPage verifies every case in the /verify page, served with its
// production content security policy, in headless Chromium.
func runPage(t *testing.T, files vectorFiles, cases []pageCase) []pageReport {
	t.Helper()
	harness, err := os.ReadFile("testdata/harness.js")
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(map[string]any{"files": files, "cases": cases})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /verify", verifypage.Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	// 1736 vectors take about 50 s on two idle cores; the cores are shared
	// (CI, other jobs), so the page gets far longer before the test fails.
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Second)
	defer cancel()
	b := startBrowser(t)
	tb := b.open(ctx, srv.URL+"/verify", 1000, 800)
	var out []pageReport
	start := time.Now()
	if err := tb.eval(ctx, "("+string(harness)+")("+string(data)+")", &out); err != nil {
		t.Fatalf("the harness: %v\n%s", err, strings.Join(b.Logs(), "\n"))
	}
	t.Logf("the page verified %d cases in %v", len(out), time.Since(start).Round(time.Millisecond))
	if len(out) != len(cases) {
		t.Fatalf("the page returned %d reports for %d cases", len(out), len(cases))
	}
	return out
}

// rootMismatch is how transparency-dev/merkle states a wrong root.
var rootMismatch = regexp.MustCompile(`calculated root:\n\[[0-9 ]*\]\n does not match expected root:\n\[[0-9 ]*\]`)

// jsonSyntax is how the page states a JSON syntax error: the text before
// it must be Go's, the wording of the error itself is the parser's own.
var jsonSyntax = regexp.MustCompile(`^(.*?)(invalid character|invalid escape|unexpected end|expected |data after|key ".*" appears twice|number \S+ is|integer \S+ outside|exceeded max depth).*\(offset [0-9]+\)$`)

// sameDetail reports whether a check's detail in the page is the Go
// verifier's: the same text, line for line, except for the wording of a
// JSON syntax error and the Merkle library's dump of a wrong root.
func sameDetail(goDetail, pageDetail string) bool {
	goDetail = rootMismatch.ReplaceAllString(goDetail, "calculated root does not match expected root")
	gl, pl := strings.Split(goDetail, "\n"), strings.Split(pageDetail, "\n")
	if len(gl) != len(pl) {
		return false
	}
	for i := range gl {
		if gl[i] == pl[i] {
			continue
		}
		m := jsonSyntax.FindStringSubmatch(pl[i])
		if m == nil || !strings.HasPrefix(gl[i], m[1]) {
			return false
		}
	}
	return true
}

// sameAsGo lists how the page's report differs from the Go verifier's,
// run with the options the page had: the same outcome and headline, the
// same checks (step, name, verdict and detail, in order; see sameDetail,
// and a malformed bundle's detail is not compared), facts, context, keys
// taken from the bundle, limits (the CA limit worded for the page) and what
// the bundle cannot prove.
func sameAsGo(g *verify.Report, p pageReport) []string {
	var diffs []string
	d := func(format string, args ...any) { diffs = append(diffs, fmt.Sprintf(format, args...)) }
	if string(g.Outcome) != p.Outcome || g.OK != p.OK {
		d("outcome %s (ok %v), Go %s (ok %v)", p.Outcome, p.OK, g.Outcome, g.OK)
	}
	if g.Headline() != p.Headline {
		d("headline %q, Go %q", p.Headline, g.Headline())
	}
	if len(g.Checks) != len(p.Checks) {
		d("%d checks, Go %d", len(p.Checks), len(g.Checks))
	}
	for i := range min(len(g.Checks), len(p.Checks)) {
		gc, pc := g.Checks[i], p.Checks[i]
		// Why a bundle is malformed is worded by encoding/json and found by
		// a walk in Go's random map order: that detail is not compared.
		malformed := gc.Name == "bundle format" && !gc.OK
		if gc.Step != pc.Step || gc.Name != pc.Name || gc.OK != pc.OK || (!malformed && !sameDetail(gc.Detail, pc.Detail)) {
			d("check %d: page %+v\n\tGo %+v", i, pc, gc)
		}
	}
	if !slices.Equal(g.Facts, p.Facts) {
		d("facts %v, Go %v", p.Facts, g.Facts)
	}
	if !slices.Equal(g.Unauthenticated, p.Unauthenticated) {
		d("unauthenticated %v, Go %v", p.Unauthenticated, g.Unauthenticated)
	}
	want := slices.Clone(g.NotChecked)
	for i, n := range want {
		if m := goTimeNotCheckedN.FindStringSubmatch(n); m != nil {
			want[i] = strings.Replace(pageTimeNotChecked, "1", m[1], 1)
		}
		if n == goCANotChecked {
			want[i] = pageCANotChecked
		}
	}
	if !slices.Equal(want, p.NotChecked) {
		d("not checked %q, Go %q", p.NotChecked, want)
	}
	if !slices.Equal(g.TrustedFromBundle, p.TrustedFromBundle) {
		d("trusted from bundle %v, Go %v", p.TrustedFromBundle, g.TrustedFromBundle)
	}
	if !slices.Equal(g.CannotProve, p.CannotProve) {
		d("cannot prove %q, Go %q", p.CannotProve, g.CannotProve)
	}
	return diffs
}

func caRoots(t *testing.T, set *vectors.Set) *x509.CertPool {
	raw, err := os.ReadFile(filepath.Join(vectorDir, set.Trust.CA))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := certs.ParseCertificatesPEM(raw)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	for _, c := range cs {
		roots.AddCert(c)
	}
	return roots
}

// TestVerifyPageVectors runs every published conformance vector through the
// page's verifier in headless Chromium, in the page configuration (the
// keys, file, earlier checkpoint and policy the vector gives, but no CA
// and no timestamp authority), and asserts, for each:
//
//   - the outcome and first failing step vectors.json expects, with one
//     documented exception: without the CA the page lists the signers'
//     certificates under "Not checked"; where a vector gives the CA and
//     expects "verified", the page must say "verified_with_limits" instead
//     (and nothing else may differ). The test proves that exception is the
//     only effect of the CA on these vectors: the Go verifier with the CA
//     and without it differ exactly so;
//   - the very report of the Go verifier run as the page is (without the
//     CA): outcome, headline, every check's step, name and verdict in
//     order, facts, context and limits.
//
// TestVerifyPageVectorsWithCA runs them again with the CA.
func TestVerifyPageVectors(t *testing.T) { testVectors(t, false) }

// TestVerifyPageVectorsWithCA is the second page configuration, "page with
// CA": every vector that gives the CA (vectors.json "ca") is verified in
// the page with the operator's CA certificates, which the page validates
// each signer's certificate against (docs/VERIFY.md step 7), and the
// page's whole report must be the Go verifier's given the same CA; the
// outcome must be the one vectors.json expects (but for the timestamps,
// which the page cannot check).
func TestVerifyPageVectorsWithCA(t *testing.T) { testVectors(t, true) }

func testVectors(t *testing.T, withCA bool) {
	testenv.RequireFull(t, "headless Chromium")
	set, err := vectors.Load(vectorDir)
	if err != nil {
		t.Fatal(err)
	}
	roots := caRoots(t, set)
	files := vectorFiles{}
	var cases []pageCase
	for _, v := range set.Vectors {
		c := pageCase{Name: v.Name, Base: v.Bundle, Raw: v.Raw, Patch: v.Patch, File: v.File}
		files.need(t, v.Bundle)
		if v.Raw != "" {
			files.need(t, v.Raw)
		}
		if v.File != "" {
			files.need(t, v.File)
		}
		if v.Keys {
			c.LogKey, c.ReceiptKey = set.Trust.LogKey, set.Trust.ReceiptKey
			files.need(t, c.LogKey)
			files.need(t, c.ReceiptKey)
		}
		if v.CA && withCA {
			c.CA = set.Trust.CA
			files.need(t, c.CA)
		}
		if v.EarlierCheckpoint {
			c.EarlierCheckpoint = set.Trust.EarlierCheckpoint
			files.need(t, c.EarlierCheckpoint)
		}
		if v.Policy {
			c.Policy = set.Trust.Policy
			files.need(t, c.Policy)
		}
		if c.bundle, err = vectors.BundleText(vectorDir, v); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, c)
	}
	page := runPage(t, files, cases)
	passed, caLimited, tsaLimited, caChecked := 0, 0, 0, 0
	for i, v := range set.Vectors {
		p, c := page[i], cases[i]
		want := v.Expect.Outcome
		// What the page was given: the CA, or not.
		var pageRoots *x509.CertPool
		if c.CA != "" {
			pageRoots = roots
			caChecked++
		}
		asPage := goVerify(c.bundle, c.goOptions(t, pageRoots))
		if v.CA && !withCA {
			withCA := goVerify(c.bundle, c.goOptions(t, roots))
			if diffs := caOnlyDifference(withCA, asPage); len(diffs) > 0 {
				t.Errorf("%s: the CA changes more than the CA limit: %s", v.Name, strings.Join(diffs, "; "))
			}
			if want == string(verify.OutcomeVerified) && slices.Contains(p.NotChecked, pageCANotChecked) {
				want = string(verify.OutcomeVerifiedWithLimits)
				caLimited++
			}
		}
		// Timestamps: the page cannot check them (see pageTimeNotChecked).
		// Where the vector gives the authority's chain, what the page can
		// reach is what Go reaches without it, no better; a vector that
		// fails only on its timestamp is one the page cannot fail.
		step := v.Expect.Step
		if v.TSAChain {
			if g := goVerify(c.bundle, c.goOptions(t, roots)); want == string(verify.OutcomeVerified) && slices.ContainsFunc(g.NotChecked, goTimeNotCheckedN.MatchString) {
				want = string(verify.OutcomeVerifiedWithLimits)
				tsaLimited++
			} else if want == string(verify.OutcomeFailed) && g.Outcome != verify.OutcomeFailed {
				if len(failed(withTSA(t, c, roots).Checks)) > 0 && onlyTimestampFails(withTSA(t, c, roots)) {
					want, step = string(g.Outcome), ""
					if want == string(verify.OutcomeVerified) && slices.Contains(p.NotChecked, pageCANotChecked) {
						want = string(verify.OutcomeVerifiedWithLimits)
					}
					tsaLimited++
				}
			}
		}
		ok := true
		if p.Outcome != want || p.firstFailedStep() != step {
			ok = false
			t.Errorf("%s: the page says %s at step %q, want %s at %q (vectors.json: %s); failures: %v", v.Name, p.Outcome, p.firstFailedStep(), want, step, v.Expect.Outcome, failed(p.Checks))
		}
		if v.Expect.Unauthenticated != nil {
			var names []string
			for _, f := range p.Unauthenticated {
				names = append(names, f.Name)
			}
			if !slices.Equal(names, v.Expect.Unauthenticated) {
				ok = false
				t.Errorf("%s: unauthenticated %v, want %v", v.Name, names, v.Expect.Unauthenticated)
			}
		}
		if diffs := sameAsGo(asPage, p); len(diffs) > 0 {
			ok = false
			t.Errorf("%s: the page differs from the Go verifier (CA given: %v):\n\t%s", v.Name, c.CA != "", strings.Join(diffs, "\n\t"))
		}
		if ok {
			passed++
		}
	}
	t.Logf("vectors passed in the page: %d/%d, %d of them with the CA (%d verified_with_limits for want of the CA, where vectors.json, with the CA, expects verified; %d limited by the timestamp check it cannot make)", passed, len(set.Vectors), caChecked, caLimited, tsaLimited)
}

// withTSA is the Go verifier with the vectors' authority chain (and
// without the CA, as the page is).
func withTSA(t *testing.T, c pageCase, roots *x509.CertPool) *verify.Report {
	t.Helper()
	o := c.goOptions(t, nil)
	chainPEM, err := os.ReadFile(filepath.Join(vectorDir, "trust", "tsa-chain.pem"))
	if err != nil {
		t.Fatal(err)
	}
	chain, err := certs.ParseCertificatesPEM(chainPEM)
	if err != nil {
		t.Fatal(err)
	}
	o.TSAChains = [][]*x509.Certificate{chain}
	return goVerify(c.bundle, o)
}

// onlyTimestampFails: every failed check is the timestamp's.
func onlyTimestampFails(r *verify.Report) bool {
	for _, c := range failed(r.Checks) {
		if c.Name != "checkpoint timestamp" {
			return false
		}
	}
	return true
}

// caOnlyDifference lists how a report made with the CA differs from one
// made without it beyond the CA limit itself.
func caOnlyDifference(withCA, withoutCA *verify.Report) []string {
	var diffs []string
	notChecked := slices.DeleteFunc(slices.Clone(withoutCA.NotChecked), func(s string) bool { return s == goCANotChecked })
	if !slices.Equal(notChecked, withCA.NotChecked) {
		diffs = append(diffs, fmt.Sprintf("not checked %q vs %q", withCA.NotChecked, withoutCA.NotChecked))
	}
	wantOutcome := withCA.Outcome
	if wantOutcome == verify.OutcomeVerified && len(withoutCA.NotChecked) > 0 {
		wantOutcome = verify.OutcomeVerifiedWithLimits
	}
	if withoutCA.Outcome != wantOutcome {
		diffs = append(diffs, fmt.Sprintf("outcome %s with the CA, %s without", withCA.Outcome, withoutCA.Outcome))
	}
	if len(withCA.Checks) != len(withoutCA.Checks) {
		diffs = append(diffs, "a different number of checks")
	} else {
		for i := range withCA.Checks {
			if withCA.Checks[i] != withoutCA.Checks[i] {
				diffs = append(diffs, fmt.Sprintf("check %q differs", withCA.Checks[i].Name))
			}
		}
	}
	return diffs
}

func failed(cs []verify.Check) []verify.Check {
	var out []verify.Check
	for _, c := range cs {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

// TestVerifyPageMatchesGoOnEdgeCases verifies, in the page and with the Go
// verifier, inputs the vectors do not hold but where a verifier written
// from scratch easily parts from Go's standard library: time forms Go
// accepts or refuses, integer and byte-string spellings, JSON edge cases
// (BOM, depth, lone surrogates, number forms), key text with stray
// whitespace or other PEM framing, extra note signatures. The two must
// give the same report.
func TestVerifyPageMatchesGoOnEdgeCases(t *testing.T) {
	testenv.RequireFull(t, "headless Chromium")
	set, err := vectors.Load(vectorDir)
	if err != nil {
		t.Fatal(err)
	}
	files := vectorFiles{}
	photo := files.need(t, "bundles/single-photo.json")
	handoff := files.need(t, "bundles/handoff.json")
	every := files.need(t, "bundles/every-event.json")
	logKey := strings.TrimSpace(string(files.need(t, set.Trust.LogKey)))
	receiptPEM := string(files.need(t, set.Trust.ReceiptKey))
	files.need(t, set.Trust.EarlierCheckpoint)
	files.need(t, "files/single-photo.bin")
	files.need(t, "files/every-event.bin")

	var cases []pageCase
	add := func(name string, bundle []byte, mod func(c *pageCase)) {
		path := fmt.Sprintf("edge/%d.json", len(cases))
		files[path] = base64.StdEncoding.EncodeToString(bundle)
		c := pageCase{Name: name, Raw: path, LogKey: set.Trust.LogKey, ReceiptKey: set.Trust.ReceiptKey, bundle: bundle}
		if mod != nil {
			mod(&c)
		}
		cases = append(cases, c)
	}
	edit := func(base []byte, f func(doc canonicaljson.Object)) []byte {
		v, err := canonicaljson.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		f(v.(canonicaljson.Object))
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	replace := func(base []byte, old, new string) []byte {
		if !bytes.Contains(base, []byte(old)) {
			t.Fatalf("no %q in the base bundle", old)
		}
		return bytes.Replace(base, []byte(old), []byte(new), 1)
	}
	obj := func(v any) canonicaljson.Object { return v.(canonicaljson.Object) }
	toByteArray := func(s string) []any {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]any, len(b))
		for i, x := range b {
			out[i] = float64(x)
		}
		return out
	}
	withFile := func(c *pageCase) { c.File = "files/single-photo.bin" }

	add("untouched, with the file", photo, withFile)
	for _, at := range []string{
		"2026-11-28T4:43:51Z", "2026-11-28T04:43:51,5Z", "2026-11-28T04:43:51+24:00", "2026-11-28T04:43:51+23:60",
		"2026-11-28T04:43:51+25:00", "2026-11-28T04:43:51.1234567891234Z", "2026-02-29T00:00:00Z", "2024-02-29T00:00:00-00:00",
		"2026-11-28t04:43:51Z", "2026-11-28T04:43:51.Z", "2026-11-28T24:00:00Z", "2026-11-28T04:43:60Z", "0000-01-01T00:00:00+00:01",
		"2026-11-28T04:43:51", "2026-11-28 04:43:51Z", "+2026-11-28T04:43:51Z", "2026-1-28T04:43:51Z",
	} {
		add("created_at "+at, edit(photo, func(d canonicaljson.Object) { d["created_at"] = at }), nil)
	}
	add("receipt signature as an array of bytes", edit(photo, func(d canonicaljson.Object) {
		r := obj(d["events"].([]any)[0].(canonicaljson.Object)["receipt"])
		r["signature"] = toByteArray(r["signature"].(string))
	}), withFile)
	add("inclusion proof hash as an array of bytes", edit(handoff, func(d canonicaljson.Object) {
		p := d["events"].([]any)[1].(canonicaljson.Object)["inclusion_proof"].([]any)
		p[0] = toByteArray(p[0].(string))
	}), nil)
	add("receipt signature byte 256", edit(photo, func(d canonicaljson.Object) {
		obj(d["events"].([]any)[0].(canonicaljson.Object)["receipt"])["signature"] = []any{float64(256)}
	}), nil)
	add("receipt signature empty", edit(photo, func(d canonicaljson.Object) {
		obj(d["events"].([]any)[0].(canonicaljson.Object)["receipt"])["signature"] = ""
	}), nil)
	add("receipt signature base64 with a line break", edit(photo, func(d canonicaljson.Object) {
		r := obj(d["events"].([]any)[0].(canonicaljson.Object)["receipt"])
		s := r["signature"].(string)
		r["signature"] = s[:8] + "\r\n" + s[8:]
	}), withFile)
	add(`"v": 1.0`, replace(photo, `"v": 1,`, `"v": 1.0,`), nil)
	add(`"v": 1e0`, replace(photo, `"v": 1,`, `"v": 1e0,`), nil)
	add(`"v": -0`, replace(photo, `"v": 1,`, `"v": -0,`), nil)
	add(`"seq": -0`, replace(photo, `"seq": 0,`, `"seq": -0,`), nil)
	add(`"size": 2144.0`, replace(photo, `"size": 2144,`, `"size": 2144.0,`), nil)
	add("a byte order mark", append([]byte("\ufeff"), photo...), nil)
	add("trailing whitespace", append(bytes.Clone(photo), " \n\t\r"...), withFile)
	add("trailing data", append(bytes.Clone(photo), "{}"...), nil)
	add("invalid UTF-8", replace(photo, `"Pixel 7"`, "\"Pixel \xff\""), nil)
	add("a lone surrogate escape in the metadata", replace(photo, `"Pixel 7"`, `"Pixel \ud800"`), nil)
	add("a surrogate pair escape in the metadata", replace(photo, `"Pixel 7"`, `"Pixel \ud83d\ude00"`), nil)
	add("a key twice in the metadata", replace(photo, `"make": "Google",`, `"make": "Google", "make": "Google",`), nil)
	add("a null in the metadata", replace(photo, `"make": "Google",`, `"make": null,`), nil)
	add("numbers in the metadata", replace(photo, `"make": "Google",`, `"a": 1e21, "b": 1e-7, "c": -0, "d": 0.30000000000000004, "e": 5e-324, "f": 1E+2, "g": 123456789012345678901234567890,`), nil)
	add("a number out of range in the metadata", replace(photo, `"make": "Google",`, `"a": 1e400,`), nil)
	add("key order by UTF-16 in the metadata", replace(photo, `"make": "Google",`, `"\ud83d\ude00": 1, "\uffff": 2, "é": 3, "a\u0000": 4,`), nil)
	deep := func(n int) []byte {
		return replace(photo, `"make": "Google",`, `"deep": `+strings.Repeat("[", n)+strings.Repeat("]", n)+",")
	}
	add("nesting 10000 deep", deep(10000-5), nil) // below root, evidence, metadata, capture, device
	add("nesting 10001 deep", deep(10001-5), nil)
	add("an empty object", []byte(`{}`), nil)
	add("an array", []byte(`[]`), nil)
	add("null", []byte(`null`), nil)
	add("empty", nil, nil)

	str := func(s string) *string { return &s }
	add("log key with surrounding white space", photo, func(c *pageCase) { c.LogKey, c.LogKeyText = "", str(" "+logKey+"\n") })
	add("log key hash in upper case", photo, func(c *pageCase) {
		parts := strings.SplitN(logKey, "+", 3)
		c.LogKey, c.LogKeyText = "", str(parts[0]+"+"+strings.ToUpper(parts[1])+"+"+parts[2])
	})
	add("log key of another algorithm", photo, func(c *pageCase) {
		parts := strings.SplitN(logKey, "+", 3)
		c.LogKey, c.LogKeyText = "", str(parts[0]+"+"+parts[1]+"+B"+parts[2][1:])
	})
	add("receipt key with CRLF line ends", photo, func(c *pageCase) {
		c.ReceiptKey, c.ReceiptKeyText = "", str(strings.ReplaceAll(receiptPEM, "\n", "\r\n"))
	})
	add("receipt key with text around it", photo, func(c *pageCase) {
		c.ReceiptKey, c.ReceiptKeyText = "", str("the operator's key:\n"+receiptPEM+"end\n")
	})
	add("receipt key with a header", photo, func(c *pageCase) {
		c.ReceiptKey, c.ReceiptKeyText = "", str(strings.Replace(receiptPEM, "-----\n", "-----\nComment: x\n\n", 1))
	})
	add("receipt key framed as a certificate", photo, func(c *pageCase) {
		c.ReceiptKey, c.ReceiptKeyText = "", str(strings.ReplaceAll(receiptPEM, "PUBLIC KEY", "CERTIFICATE"))
	})
	add("receipt key hint without its final newline", edit(photo, func(d canonicaljson.Object) {
		k := obj(d["keys"])
		k["receipt_public_key_pem"] = strings.TrimSuffix(k["receipt_public_key_pem"].(string), "\n")
	}), nil)
	add("no keys, hint without its final newline", edit(photo, func(d canonicaljson.Object) {
		k := obj(d["keys"])
		k["receipt_public_key_pem"] = strings.TrimSuffix(k["receipt_public_key_pem"].(string), "\n")
	}), func(c *pageCase) { c.LogKey, c.ReceiptKey = "", "" })
	cp := func(f func(string) string) []byte {
		return edit(photo, func(d canonicaljson.Object) { l := obj(d["log"]); l["checkpoint"] = f(l["checkpoint"].(string)) })
	}
	add("checkpoint with another signer's line", cp(func(s string) string {
		return s + "— other.example/log " + base64.StdEncoding.EncodeToString(make([]byte, 68)) + "\n"
	}), nil)
	add("checkpoint with a line of our key's name and another hash", cp(func(s string) string {
		return s + "— custody.test/log " + base64.StdEncoding.EncodeToString(make([]byte, 68)) + "\n"
	}), nil)
	add("checkpoint signature line twice", cp(func(s string) string {
		i := strings.Index(s, "\n\n")
		return s + s[i+2:]
	}), nil)
	add("checkpoint without its final newline", cp(func(s string) string { return strings.TrimSuffix(s, "\n") }), nil)
	add("checkpoint with a tab", cp(func(s string) string { return strings.Replace(s, "\n", "\t\n", 1) }), nil)
	add("every-event, earlier checkpoint", every, func(c *pageCase) {
		c.EarlierCheckpoint, c.File = set.Trust.EarlierCheckpoint, "files/every-event.bin"
	})
	add("every-event, consistency from_size 0", edit(every, func(d canonicaljson.Object) {
		obj(d["consistency"])["from_size"] = float64(0)
	}), func(c *pageCase) { c.EarlierCheckpoint = set.Trust.EarlierCheckpoint })
	add("single-photo, an earlier checkpoint but no proof", photo, func(c *pageCase) { c.EarlierCheckpoint = set.Trust.EarlierCheckpoint })
	add("every-event, no earlier checkpoint, no keys", every, func(c *pageCase) { c.LogKey, c.ReceiptKey = "", "" })

	// The stream form: how lines end and break, what a line may hold.
	stream := files.need(t, "raw/handoff-stream-form.jsonl")
	lines := bytes.SplitAfter(stream, []byte("\n"))
	swapLine := func(i int, f func([]byte) []byte) []byte {
		out := make([][]byte, len(lines))
		copy(out, lines)
		out[i] = f(bytes.Clone(lines[i]))
		return bytes.Join(out, nil)
	}
	add("stream, untouched", stream, nil)
	add("stream with CRLF line ends", bytes.ReplaceAll(stream, []byte("\n"), []byte("\r\n")), nil)
	add("stream without its final newline", bytes.TrimSuffix(stream, []byte("\n")), nil)
	add("stream with a blank line at the end", append(bytes.Clone(stream), '\n'), nil)
	add("stream with a blank line inside", swapLine(2, func(l []byte) []byte { return append([]byte("\n"), l...) }), nil)
	add("stream with a CR alone at the end", append(bytes.TrimSuffix(bytes.Clone(stream), []byte("\n")), '\r'), nil)
	add("stream header only", lines[0], nil)
	add("stream header without a newline", bytes.TrimSuffix(lines[0], []byte("\n")), nil)
	add("stream header announcing no events", swapLine(0, func(l []byte) []byte {
		return bytes.Replace(l, []byte(`"event_count":4`), []byte(`"event_count":0`), 1)
	}), nil)
	add("stream header with events", swapLine(0, func(l []byte) []byte {
		return bytes.Replace(l, []byte(`"event_count":4`), []byte(`"event_count":4,"events":[]`), 1)
	}), nil)
	add("stream header version 2", swapLine(0, func(l []byte) []byte { return bytes.Replace(l, []byte(`"v":1`), []byte(`"v":2`), 1) }), nil)
	add("stream event line with a lone surrogate", swapLine(3, func(l []byte) []byte { return bytes.Replace(l, []byte(`{"seq"`), []byte(`{"x\ud800":1,"seq"`), 1) }), nil)
	add("stream event line invalid UTF-8", swapLine(3, func(l []byte) []byte { return bytes.Replace(l, []byte(`{"seq"`), []byte("{\"\xff\":1,\"seq\""), 1) }), nil)
	add("stream event line with an unknown key", swapLine(2, func(l []byte) []byte { return bytes.Replace(l, []byte(`{"seq"`), []byte(`{"x":1,"seq"`), 1) }), nil)
	add("stream event line with a short inclusion hash", swapLine(2, func(l []byte) []byte {
		return regexp.MustCompile(`"inclusion_proof":\["[^"]*"`).ReplaceAll(l, []byte(`"inclusion_proof":["AAAA"`))
	}), nil)
	add("stream with an event line twice", swapLine(2, func(l []byte) []byte { return append(bytes.Clone(l), l...) }), nil)
	add("stream, the format key in upper case", swapLine(0, func(l []byte) []byte { return bytes.Replace(l, []byte(`"format"`), []byte(`"FORMAT"`), 1) }), nil)
	add("stream, no keys", stream, func(c *pageCase) { c.LogKey, c.ReceiptKey = "", "" })

	// Step 10, the history map's proof: what the vectors' one-character
	// mutations do not reach, each branch of historymap's checks.
	complete := func(base []byte, f func(k, d canonicaljson.Object)) []byte {
		return edit(base, func(d canonicaljson.Object) { f(obj(d["completeness"]), d) })
	}
	swap := func(k canonicaljson.Object, key, pattern, repl string) {
		re := regexp.MustCompile(pattern)
		if !re.MatchString(k[key].(string)) {
			t.Fatalf("no %s in completeness.%s %s", pattern, key, k[key])
		}
		k[key] = re.ReplaceAllString(k[key].(string), repl)
	}
	events := func(d canonicaljson.Object) []any { return d["events"].([]any) }
	for _, e := range []struct{ name, key, pattern, repl string }{
		{"commitment of format version 2", "entry", `"v":1`, `"v":2`},
		{"commitment with map_root in upper case", "entry", `"map_root":"([0-9a-f]{8})`, `"map_root":"ABCDEF12`},
		{"commitment with map_root of 31 bytes", "entry", `"map_root":"[0-9a-f]{2}`, `"map_root":"`},
		{"commitment with an unknown field", "entry", `^\{`, `{"extra":1,`},
		{"commitment with map_size above tree_size", "entry", `"map_size":[0-9]+`, `"map_size":999999`},
		{"commitment with tree_size a string", "entry", `"tree_size":([0-9]+)`, `"tree_size":"$1"`},
		{"commitment with tree_size negative", "entry", `"tree_size":[0-9]+`, `"tree_size":-1`},
		{"commitment with map_size missing", "entry", `"map_size":[0-9]+,`, ``},
		{"commitment covering itself", "entry", `"tree_size":[0-9]+`, `"tree_size":22`},
		{"commitment in non-canonical form", "entry", `,"v":1\}$`, `, "v":1}`},
		{"commitment not JSON", "entry", `^.*$`, ``},
		{"leaf with an unknown field", "map_leaf", `^\{`, `{"aaa":1,`},
		{"leaf with seq a string", "map_leaf", `"seq":([0-9]+)`, `"seq":"$1"`},
		{"leaf with log_index missing", "map_leaf", `,"log_index":[0-9]+`, ``},
		{"leaf with leaf_hash in upper case", "map_leaf", `"leaf_hash":"([0-9a-f]{8})`, `"leaf_hash":"ABCDEF12`},
		{"leaf with an empty evidence_id", "map_leaf", `"evidence_id":"[^"]*"`, `"evidence_id":""`},
		{"leaf with another evidence_id", "map_leaf", `"evidence_id":"[^"]*"`, `"evidence_id":"ev-aaaaaaaaaaaaaaaaaaaaaaaaaa"`},
		{"leaf beyond the map's tree size", "map_leaf", `"log_index":[0-9]+`, `"log_index":99`},
		{"leaf in non-canonical form", "map_leaf", `\}$`, ` }`},
		{"leaf not JSON", "map_leaf", `^.*$`, ``},
	} {
		add("completeness: "+e.name, complete(handoff, func(k, _ canonicaljson.Object) { swap(k, e.key, e.pattern, e.repl) }), nil)
	}
	add("completeness: a custody entry for the commitment", complete(handoff, func(k, d canonicaljson.Object) {
		k["entry"] = obj(events(d)[0])["entry"]
	}), nil)
	add("completeness: log_index at the checkpoint's size", complete(handoff, func(k, d canonicaljson.Object) {
		k["log_index"] = obj(d["log"])["tree_size"]
	}), nil)
	add("completeness: log_index 2^64-1", complete(handoff, func(k, _ canonicaljson.Object) { k["log_index"] = json.Number("18446744073709551615") }), nil)
	add("completeness: map_index 2^64-1", complete(handoff, func(k, _ canonicaljson.Object) { k["map_index"] = json.Number("18446744073709551615") }), nil)
	add("completeness: no inclusion proof", complete(handoff, func(k, _ canonicaljson.Object) { k["inclusion_proof"] = []any{} }), nil)
	add("completeness: no map proof", complete(handoff, func(k, _ canonicaljson.Object) { k["map_proof"] = []any{} }), nil)
	add("completeness: a map proof hash of 31 bytes", complete(handoff, func(k, _ canonicaljson.Object) {
		k["map_proof"].([]any)[0] = base64.StdEncoding.EncodeToString(make([]byte, 31))
	}), nil)
	add("completeness: null", edit(handoff, func(d canonicaljson.Object) { d["completeness"] = nil }), nil)
	add("completeness: the checkpoint does not verify", handoff, func(c *pageCase) {
		parts := strings.SplitN(logKey, "+", 3)
		c.LogKey, c.LogKeyText = "", str(parts[0]+"+"+parts[1]+"+B"+parts[2][1:])
	})
	add("completeness: no keys given", handoff, func(c *pageCase) { c.LogKey, c.ReceiptKey = "", "" })
	// The events against the leaf (historymap.Completion): the leaf is
	// handoff's event #3.
	add("completeness: the last event at another log index", complete(handoff, func(_, d canonicaljson.Object) {
		obj(events(d)[3])["log_index"] = float64(6)
	}), nil)
	add("completeness: the last event with another entry", complete(handoff, func(_, d canonicaljson.Object) {
		obj(events(d)[3])["entry"] = obj(events(d)[2])["entry"]
	}), nil)
	add("completeness: the last event twice", complete(handoff, func(_, d canonicaljson.Object) {
		d["events"] = append(events(d), events(d)[3])
	}), nil)
	add("completeness: an event after the leaf's, before the map's tree size", complete(handoff, func(_, d canonicaljson.Object) {
		extra := cloneObject(obj(events(d)[3]))
		extra["seq"], extra["log_index"] = float64(4), float64(7)
		d["events"] = append(events(d), extra)
	}), nil)
	add("completeness: an event after the leaf's, at the map's tree size", complete(handoff, func(_, d canonicaljson.Object) {
		extra := cloneObject(obj(events(d)[3]))
		extra["seq"], extra["log_index"] = float64(4), float64(21)
		d["events"] = append(events(d), extra)
	}), nil)
	add("completeness: an earlier event at the leaf's log index", complete(handoff, func(_, d canonicaljson.Object) {
		obj(events(d)[1])["log_index"] = float64(5)
	}), nil)
	add("completeness: the last event cut off, an event beyond the checkpoint", complete(handoff, func(_, d canonicaljson.Object) {
		obj(events(d)[3])["seq"], obj(events(d)[3])["log_index"] = float64(4), float64(40)
	}), nil)
	// Step 10 passes (the event lies after the map's tree size), the rest
	// fails; the residual counts the entries from after the last event to
	// the checkpoint in uint64, as Go does.
	add("completeness: an event after the leaf's, beyond the checkpoint", complete(handoff, func(_, d canonicaljson.Object) {
		extra := cloneObject(obj(events(d)[3]))
		extra["seq"], extra["log_index"] = float64(4), float64(40)
		d["events"] = append(events(d), extra)
	}), nil)
	add("completeness: the events in reverse", complete(handoff, func(_, d canonicaljson.Object) { slices.Reverse(events(d)) }), nil)
	add("completeness: the leaf's event first", complete(handoff, func(_, d canonicaljson.Object) {
		evs := events(d)
		d["events"] = append([]any{evs[3]}, evs[:3]...)
	}), nil)
	add("every-event, completeness and consistency, no earlier checkpoint", every, nil)
	add("stream header with a completeness hash of 3 bytes", swapLine(0, func(l []byte) []byte {
		return regexp.MustCompile(`"map_proof":\["[^"]*"`).ReplaceAll(l, []byte(`"map_proof":["AAAA"`))
	}), nil)
	add("stream header with an unknown key in completeness", swapLine(0, func(l []byte) []byte {
		return bytes.Replace(l, []byte(`"completeness":{`), []byte(`"completeness":{"x":1,`), 1)
	}), nil)
	header := func(f func(h canonicaljson.Object)) []byte {
		return swapLine(0, func(l []byte) []byte { return append(edit(bytes.TrimSuffix(l, []byte("\n")), f), '\n') })
	}
	add("stream header with completeness null", header(func(h canonicaljson.Object) { h["completeness"] = nil }), nil)
	add("stream header without completeness", header(func(h canonicaljson.Object) { delete(h, "completeness") }), nil)
	add("stream header with a commitment covering itself", header(func(h canonicaljson.Object) {
		k := obj(h["completeness"])
		k["entry"] = strings.Replace(k["entry"].(string), `"tree_size":21`, `"tree_size":22`, 1)
	}), nil)
	everyStream := files.need(t, "raw/every-event-stream-form.jsonl")
	add("stream header with a consistency hash of 3 bytes", regexp.MustCompile(`("consistency":\{"from_size":[0-9]+,"proof":\[)"[^"]*"`).ReplaceAll(everyStream, []byte(`$1"AAAA"`)), nil)
	add("every-event stream, untouched", everyStream, func(c *pageCase) { c.File = "files/every-event.bin" })

	page := runPage(t, files, cases)
	for i, c := range cases {
		g := goVerify(c.bundle, c.goOptions(t, nil))
		if diffs := sameAsGo(g, page[i]); len(diffs) > 0 {
			t.Errorf("%s: the page differs from the Go verifier:\n\t%s\n\tGo failures: %v", c.Name, strings.Join(diffs, "\n\t"), g.Failures())
		}
	}
}
