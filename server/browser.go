package server

import (
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// Browsers present a user's client certificate to this service whatever
// page made the request, so a page on another site could make a court's
// browser record an event, a verification, an upload or a content read in
// the court's name (cross-site request forgery). The HTTPS server grants no
// cross-origin access (no CORS headers, preflights refused) and refuses:
//
//   - a request that changes state (any method but GET, HEAD and OPTIONS)
//     or reads evidence content or a seizure record (which logs an access)
//     when the browser
//     says it comes from another site (Sec-Fetch-Site other than
//     same-origin or none) or from another origin (an Origin header that is
//     not https://<this host>, or "null"): 403;
//   - a gateway request that changes state without Content-Type
//     application/json (the three types a page may send cross-site without
//     a preflight are x-www-form-urlencoded, multipart/form-data and
//     text/plain): 415;
//   - a raw upload whose Content-Type (the file's declared media type) is
//     missing, unparsable or one of those three: 415. Declare the file's
//     type, or application/octet-stream; the service identifies the media
//     type from the bytes either way.
//
// Clients that are not browsers (curl, the CLI, the Go client) send no
// Origin or Sec-Fetch-Site headers and are not affected beyond the
// Content-Type rules.

// browserGuard applies those rules and answers OPTIONS.
func browserGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			answerOptions(w, r)
			return
		}
		unsafe := r.Method != http.MethodGet && r.Method != http.MethodHead
		if unsafe || logsAccess(r.URL.Path) {
			if err := sameOrigin(r); err != nil {
				writeError(w, http.StatusForbidden, err.Error())
				return
			}
		}
		if unsafe && strings.HasPrefix(r.URL.Path, "/v1/") {
			var err error
			if r.URL.Path == "/v1/evidence:upload" {
				err = uploadContentType(r.Header.Get("Content-Type"))
			} else {
				err = jsonContentType(r.Header.Get("Content-Type"))
			}
			if err != nil {
				writeError(w, http.StatusUnsupportedMediaType, err.Error())
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// isContentRoute reports whether path is GET /v1/evidence/{id}/content.
func isContentRoute(path string) bool {
	rest, ok := strings.CutPrefix(path, "/v1/evidence/")
	if !ok {
		return false
	}
	id, ok := strings.CutSuffix(rest, "/content")
	return ok && id != "" && !strings.Contains(id, "/")
}

// logsAccess reports whether a GET of path reads content and so logs an
// access: evidence content and seizure records.
func logsAccess(path string) bool {
	return isContentRoute(path) || strings.HasPrefix(path, "/v1/seizure-records/")
}

// sameOrigin refuses a request a browser marks as coming from elsewhere.
func sameOrigin(r *http.Request) error {
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin", "none":
	default:
		return fmt.Errorf("refused a request a browser sent from another site (Sec-Fetch-Site: %s); this service takes state-changing requests and content reads only from its own pages or from clients that are not browsers", site)
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if origin == "null" || err != nil || u.Scheme != "https" || !strings.EqualFold(stripHTTPSPort(u.Host), stripHTTPSPort(r.Host)) {
		return fmt.Errorf("refused a request from Origin %s, which is not this service (https://%s); this service grants no cross-origin access", origin, r.Host)
	}
	return nil
}

func stripHTTPSPort(host string) string { return strings.TrimSuffix(host, ":443") }

// jsonContentType accepts application/json with any parameters.
func jsonContentType(ct string) error {
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || mt != "application/json" {
		return fmt.Errorf("a request that changes state must send Content-Type: application/json (got %q)", ct)
	}
	return nil
}

// corsSafelisted are the media types a page may send to another origin
// without a preflight.
var corsSafelisted = map[string]bool{
	"application/x-www-form-urlencoded": true,
	"multipart/form-data":               true,
	"text/plain":                        true,
}

// uploadContentType accepts a raw upload's declared media type unless a
// browser could send it cross-site without asking first.
func uploadContentType(ct string) error {
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || corsSafelisted[mt] {
		return fmt.Errorf("a raw upload must declare the file's media type in Content-Type, e.g. image/jpeg or application/octet-stream, and it may not be application/x-www-form-urlencoded, multipart/form-data or text/plain (got %q): those a web page on another site can send with a user's certificate", ct)
	}
	return nil
}

// answerOptions answers OPTIONS: a CORS preflight is refused (this service
// grants no cross-origin access), anything else gets the path's methods.
func answerOptions(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Access-Control-Request-Method") != "" {
		w.Header().Set("Vary", "Origin")
		writeError(w, http.StatusForbidden, "this service grants no cross-origin (CORS) access; use it from its own pages or from a client that is not a browser")
		return
	}
	methods := allowedMethods(r.URL.Path)
	if methods == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path))
		return
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	w.WriteHeader(http.StatusNoContent)
}
