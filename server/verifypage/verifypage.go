// Package verifypage is the court's verify page: one static HTML file with
// JavaScript and WebCrypto, no framework and no build step, that checks a
// court bundle in the browser and uploads nothing. custodyd serves it at
// /verify; anyone may also save it and open it offline.
package verifypage

import (
	_ "embed"
	"net/http"
)

//go:embed index.html
var page []byte

// Handler serves the page with a strict content security policy: the page
// may fetch from its own origin only (for ?bundle= links) and runs no
// script but its own.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		w.Write(page)
	})
}
