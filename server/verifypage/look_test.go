package verifypage_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/custody-dev/custody/internal/testenv"
)

// greenish reports whether a CSS rgb()/rgba() colour reads as green: a hue
// between yellow-green and cyan-green, clearly saturated and visible.
func greenish(css string) bool {
	css = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(css, "rgba("), "rgb("), ")")
	parts := strings.Split(css, ",")
	if len(parts) < 3 {
		return false
	}
	var c [4]float64
	c[3] = 1
	for i, p := range parts {
		c[i], _ = strconv.ParseFloat(strings.TrimSpace(p), 64)
	}
	if c[3] < 0.1 {
		return false // transparent
	}
	r, g, b := c[0]/255, c[1]/255, c[2]/255
	hi, lo := max(r, g, b), min(r, g, b)
	if hi-lo < 0.03 {
		return false // grey
	}
	l := (hi + lo) / 2
	s := (hi - lo) / (1 - abs(2*l-1))
	var h float64
	switch hi {
	case r:
		h = 60 * (g - b) / (hi - lo)
	case g:
		h = 60*(b-r)/(hi-lo) + 120
	default:
		h = 60*(r-g)/(hi-lo) + 240
	}
	if h < 0 {
		h += 360
	}
	return h >= 70 && h <= 170 && s > 0.15
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// colours lists the colours the verdict shows in: every element of the
// result that carries the outcome (the verdict box, its headline and
// summary, the checks and their markers, the facts heading, the keys).
const colours = `(() => {
	const out = [];
	const add = (what, e, pseudo) => {
		if (!e || e.closest("[hidden]")) return;
		const s = getComputedStyle(e, pseudo);
		for (const p of ["color", "backgroundColor", "borderTopColor", "borderLeftColor"]) {
			if (p.startsWith("border") && s[p.replace("Color", "Width")] === "0px") continue;
			out.push([what + (pseudo || "") + " " + p, s[p]]);
		}
	};
	const $ = (id) => document.getElementById(id);
	add("verdict", $("verdict")); add("headline", $("headline")); add("summary", $("summary")); add("summaryhead", $("summaryhead"));
	for (const dd of document.querySelectorAll("#summary dd")) add("summary value", dd);
	add("facts heading", $("factshead"));
	for (const li of document.querySelectorAll("#checks li")) { add("check", li); add("check", li, "::marker"); }
	for (const td of document.querySelectorAll("#keys td")) add("keys", td);
	return out;
})()`

// TestVerifyPageUntrustedNotGreen: a bundle verified against its own keys
// (outcome untrusted_keys) must not look like a success anywhere: no green
// in the verdict, its headline and summary, the checks' ticks, the facts'
// heading or the keys, as Chromium computes the styles; and the summary
// by the verdict does not call the case, file name and kind bound. (A
// verified bundle, for contrast, is green: the test can see green.)
func TestVerifyPageUntrustedNotGreen(t *testing.T) {
	testenv.RequireFull(t, "headless Chromium")
	bundle, err := filepath.Abs(filepath.Join(vectorDir, "bundles/single-photo.json"))
	if err != nil {
		t.Fatal(err)
	}
	srv := newPageServer(t)
	b := startBrowser(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	pageURL := srv.URL + "/verify"
	tb := b.open(ctx, pageURL, 1000, 800)
	r := verifyInUI(ctx, t, tb, pageURL, uiInput{bundle: bundle})
	if r.Outcome != "untrusted_keys" {
		t.Fatalf("no keys: %s", r.Outcome)
	}
	var cs [][2]string
	tb.mustEval(ctx, colours, &cs)
	if len(cs) < 20 {
		t.Fatalf("only %d colours read: %v", len(cs), cs)
	}
	for _, c := range cs {
		if greenish(c[1]) {
			t.Errorf("untrusted_keys: %s is green (%s)", c[0], c[1])
		}
	}
	var sum struct {
		Bound string
		Text  string
	}
	tb.mustEval(ctx, `({ Bound: document.getElementById("summary").dataset.bound, Text: document.getElementById("summary").innerText })`, &sum)
	if sum.Bound != "false" || !strings.Contains(sum.Text, "checked only against the bundle's own keys, so NOT verified") {
		t.Errorf("untrusted_keys: the summary by the verdict %q (bound %s)", sum.Text, sum.Bound)
	}
	if strings.Contains(sum.Text, "Bound facts") {
		t.Errorf("untrusted_keys: the summary calls the facts bound: %q", sum.Text)
	}

	// A tampered bundle: failed, the summary says what the bundle claims.
	raw, _ := os.ReadFile(bundle)
	tampered := writeTemp(t, "tampered.json", []byte(strings.Replace(string(raw), "north wall", "south wall", 1)))
	keys := trustedKeys(t)
	keys.bundle = tampered
	if r := verifyInUI(ctx, t, tb, pageURL, keys); r.Outcome != "failed" {
		t.Fatalf("tampered: %s", r.Outcome)
	}
	tb.mustEval(ctx, `({ Bound: document.getElementById("summary").dataset.bound, Text: document.getElementById("summary").innerText })`, &sum)
	if sum.Bound != "false" || !strings.Contains(sum.Text, "As the bundle claims: NOT verified") || !strings.Contains(sum.Text, "case") {
		t.Errorf("failed: the summary by the verdict %q (bound %s)", sum.Text, sum.Bound)
	}

	// Verified with the keys: green, and the summary's facts are bound.
	keys.bundle = bundle
	if r := verifyInUI(ctx, t, tb, pageURL, keys); r.Outcome != "verified_with_limits" {
		t.Fatalf("with keys: %s %v", r.Outcome, r.Failed)
	}
	var verdict string
	tb.mustEval(ctx, `getComputedStyle(document.getElementById("verdict")).backgroundColor`, &verdict)
	if !greenish(verdict) {
		t.Errorf("verified_with_limits: the verdict is not green (%s): the test cannot see green", verdict)
	}
	tb.mustEval(ctx, `({ Bound: document.getElementById("summary").dataset.bound, Text: document.getElementById("summary").innerText })`, &sum)
	if sum.Bound != "true" || !strings.Contains(sum.Text, "Bound facts") || !strings.Contains(sum.Text, "file name") {
		t.Errorf("verified: the summary by the verdict %q (bound %s)", sum.Text, sum.Bound)
	}
}

// trustedKeys are the vectors' log and receipt keys, to paste.
func trustedKeys(t *testing.T) uiInput {
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(vectorDir, p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	return uiInput{logKey: strings.TrimSpace(read("trust/log-key.txt")), receiptKey: read("trust/receipt-key.pem")}
}
