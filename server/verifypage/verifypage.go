// Package verifypage is the court's verify page: one static HTML file with
// JavaScript and WebCrypto, no framework and no build step, that checks a
// court bundle in the browser and uploads nothing. Its verifier mirrors
// package verify check for check (same steps, order and outcomes; the
// signers' certificates against the operator's CA too, as crypto/x509's
// Verify; not the RFC 3161 timestamps), and is tested against every
// conformance vector in testdata/verify-vectors in headless Chromium,
// without the CA and with it. It reads the operator's trust file (verify.
// ParseTrust's rules) and shows its fingerprints, and takes files dropped
// anywhere on it. custodyd serves it at /verify; anyone may also save it
// and open it offline: the script and style stay inline for that.
package verifypage

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

//go:embed index.html
var index []byte

// page is the page as served: index.html with the custody report's
// renderer in its script and the report's style in its style (assemble),
// so the CSP's hashes cover them and a saved copy works offline.
var page = mustAssemble(index, reportJS)

func mustAssemble(index []byte, js string) []byte {
	p, err := assemble(index, js)
	if err != nil {
		panic(err)
	}
	return p
}

// reportJS is the custody report's renderer (docs/REPORT.md): a pure
// JavaScript function the page embeds and `custody report` runs in Go
// (goja), so both render one report the same way.
//
//go:embed report.js
var reportJS string

// ReportScript returns report.js: it defines CustodyReport, with
// renderReport(report, bundle, keys, meta) returning the report's HTML
// document.
func ReportScript() string { return reportJS }

// The markers in index.html where the page takes the report's renderer
// (inside its one inline script) and the report's style (inside its one
// inline style), and the bounds of that style in report.js.
const (
	scriptMarker = "// @custody-report.js@"
	styleMarker  = "/* @custody-report.css@ */"
	cssBegin     = "const REPORT_CSS = String.raw`"
	cssEnd       = "`; // end REPORT_CSS"
)

// reportCSS returns the report's style, as report.js holds it: the text
// of its REPORT_CSS template, which is its value (String.raw, and no
// substitution in it).
func reportCSS(js string) (string, error) {
	i := strings.Index(js, cssBegin)
	j := strings.Index(js, cssEnd)
	if i < 0 || j < i || strings.Count(js, cssBegin) != 1 {
		return "", errors.New("verifypage: report.js holds no REPORT_CSS template")
	}
	css := js[i+len(cssBegin) : j]
	if strings.Contains(css, "${") || strings.Contains(css, "`") || strings.Contains(strings.ToLower(css), "</style") {
		return "", errors.New("verifypage: REPORT_CSS must be plain text: no substitution, backquote or </style")
	}
	return css, nil
}

// assemble returns the page as served: index.html with report.js in its
// script and the report's style in its style, each at its marker.
func assemble(index []byte, js string) ([]byte, error) {
	css, err := reportCSS(js)
	if err != nil {
		return nil, err
	}
	if strings.Contains(strings.ToLower(js), "</script") || strings.Contains(js, "<!--") {
		return nil, errors.New("verifypage: report.js must not hold </script or <!-- (it goes into an inline script)")
	}
	out := index
	for _, m := range []struct{ marker, text string }{{scriptMarker, js}, {styleMarker, css}} {
		if n := bytes.Count(out, []byte(m.marker)); n != 1 {
			return nil, fmt.Errorf("verifypage: index.html holds the marker %q %d times, want once", m.marker, n)
		}
		out = bytes.Replace(out, []byte(m.marker), []byte(m.text), 1)
	}
	return out, nil
}

// csp is the page's content security policy: no script or style but the
// page's own inline ones, named by their SHA-256 (so no 'unsafe-inline'),
// and no fetches at all: the page reads only the files the user picks.
var csp = mustCSP(page)

// CSP returns the Content-Security-Policy the page is served with.
func CSP() string { return csp }

// Page returns the page as served.
func Page() []byte { return bytes.Clone(page) }

// inline returns the text of the one element <tag>…</tag> of the page.
// Other tags are looked for outside the one script, whose text may spell
// them (the report's renderer writes a <style> into the documents it
// makes).
func inline(html []byte, tag string) ([]byte, error) {
	open, end := []byte("<"+tag+">"), []byte("</"+tag+">")
	outside, offset := html, 0
	if tag != "script" {
		script, err := inline(html, "script")
		if err != nil {
			return nil, err
		}
		k := bytes.Index(html, script) // the script's text, cut out
		outside = append(append([]byte{}, html[:k]...), html[k+len(script):]...)
		if i := bytes.Index(outside, open); i > k {
			offset = len(script)
		}
	}
	if bytes.Count(outside, open) != 1 || bytes.Count(outside, end) != 1 {
		return nil, fmt.Errorf("verifypage: the page must hold exactly one <%s> element", tag)
	}
	i := bytes.Index(outside, open) + len(open)
	j := bytes.Index(outside, end)
	if j < i {
		return nil, fmt.Errorf("verifypage: malformed <%s> element", tag)
	}
	return html[i+offset : j+offset], nil
}

func hashSource(b []byte) string {
	sum := sha256.Sum256(b)
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

func mustCSP(html []byte) string {
	script, err := inline(html, "script")
	if err != nil {
		panic(err)
	}
	style, err := inline(html, "style")
	if err != nil {
		panic(err)
	}
	return "default-src 'none'; script-src " + hashSource(script) + "; style-src " + hashSource(style) +
		"; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

// Handler serves the page with its strict content security policy.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		w.Write(page)
	})
}
