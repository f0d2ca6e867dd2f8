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
	"fmt"
	"net/http"
)

//go:embed index.html
var page []byte

// csp is the page's content security policy: no script or style but the
// page's own inline ones, named by their SHA-256 (so no 'unsafe-inline'),
// and no fetches at all: the page reads only the files the user picks.
var csp = mustCSP(page)

// CSP returns the Content-Security-Policy the page is served with.
func CSP() string { return csp }

// Page returns the page as served.
func Page() []byte { return bytes.Clone(page) }

// inline returns the text of the one element <tag>…</tag> of the page.
func inline(html []byte, tag string) ([]byte, error) {
	open, end := []byte("<"+tag+">"), []byte("</"+tag+">")
	if bytes.Count(html, open) != 1 || bytes.Count(html, end) != 1 {
		return nil, fmt.Errorf("verifypage: the page must hold exactly one <%s> element", tag)
	}
	i := bytes.Index(html, open) + len(open)
	j := bytes.Index(html, end)
	if j < i {
		return nil, fmt.Errorf("verifypage: malformed <%s> element", tag)
	}
	return html[i:j], nil
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
