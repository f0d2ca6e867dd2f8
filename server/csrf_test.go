package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/servertest"
)

// browserRequest is a request as a browser would send it, with the court's
// client certificate presented by the browser on the user's behalf.
type browserRequest struct {
	method, path, contentType, body string
	headers                         map[string]string
}

func do(t *testing.T, hc *http.Client, env *servertest.Env, r browserRequest) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), r.method, env.URL(r.path), strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if r.body == "" {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

var (
	crossSite = map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}
	// An older browser: Origin only.
	foreignOrigin = map[string]string{"Origin": "https://evil.example"}
	sameSite      = map[string]string{"Origin": "https://custody.evil.example", "Sec-Fetch-Site": "same-site"}
	nullOrigin    = map[string]string{"Origin": "null"}
)

// TestCrossSiteRequestForgery: a page on another site makes a court's
// browser, which presents the court's client certificate, send requests to
// the gateway. None may record an event, a verification, an upload or an
// access; what curl and the clients send keeps working.
func TestCrossSiteRequestForgery(t *testing.T) {
	env := servertest.StartT(t)
	court := env.HTTPClient(t, env.Creds(t, identity.RoleCourt).Certificate)
	collector := env.HTTPClient(t, env.Creds(t, identity.RoleCollector).Certificate)
	id := uploadOne(t, env.Client(t, identity.RoleCollector)).GetEvidenceId()
	events := func() int {
		hist, err := env.Client(t, identity.RoleCourt).History(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		return len(hist)
	}
	annotation := `{"type":"EVENT_TYPE_ANNOTATION","note":"forged"}`
	origin := map[string]string{"Origin": "https://" + env.HTTPAddr, "Sec-Fetch-Site": "same-origin"}

	refused := []struct {
		name string
		hc   *http.Client
		req  browserRequest
		code int
		msg  string
	}{
		// A form post: no preflight, any browser.
		{"form post of an event", court, browserRequest{"POST", "/v1/evidence/" + id + "/events", "application/x-www-form-urlencoded", "type=EVENT_TYPE_ANNOTATION&note=forged", crossSite}, 403, "cross-site"},
		{"form post, Origin only", court, browserRequest{"POST", "/v1/evidence/" + id + "/events", "application/x-www-form-urlencoded", "type=EVENT_TYPE_ANNOTATION", foreignOrigin}, 403, "Origin"},
		{"form post, no Origin", court, browserRequest{"POST", "/v1/evidence/" + id + "/events", "application/x-www-form-urlencoded", "type=EVENT_TYPE_ANNOTATION", nil}, 415, "application/json"},
		// fetch(…, {mode: "no-cors", body: JSON}) sends text/plain.
		{"JSON as text/plain", court, browserRequest{"POST", "/v1/evidence/" + id + "/events", "text/plain;charset=UTF-8", annotation, nil}, 415, "application/json"},
		{"JSON as text/plain, cross-site", court, browserRequest{"POST", "/v1/evidence/" + id + "/events", "text/plain", annotation, crossSite}, 403, "cross-site"},
		{"multipart", court, browserRequest{"POST", "/v1/evidence/" + id + "/events", "multipart/form-data; boundary=x", "--x--", nil}, 415, "application/json"},
		{"verification without a body", court, browserRequest{"POST", "/v1/evidence/" + id + ":verify", "", "", nil}, 415, "application/json"},
		{"verification, cross-site", court, browserRequest{"POST", "/v1/evidence/" + id + ":verify", "application/json", "{}", crossSite}, 403, "cross-site"},
		{"verification, same-site", court, browserRequest{"POST", "/v1/evidence/" + id + ":verify", "application/json", "{}", sameSite}, 403, "same-site"},
		{"verification, foreign Origin", court, browserRequest{"POST", "/v1/evidence/" + id + ":verify", "application/json", "{}", foreignOrigin}, 403, "Origin"},
		{"verification, null Origin", court, browserRequest{"POST", "/v1/evidence/" + id + ":verify", "application/json", "{}", nullOrigin}, 403, "Origin"},
		{"unparsable content type", court, browserRequest{"POST", "/v1/evidence/" + id + ":verify", "application/json; =", "{}", nil}, 415, "application/json"},
		// A POST form to a GET route is the gateway's "path length fallback".
		{"form post to a read route", court, browserRequest{"POST", "/v1/evidence/" + id + "/bundle", "application/x-www-form-urlencoded", "", nil}, 415, "application/json"},
		// The raw upload: its body is the file, so its Content-Type is the
		// file's media type; the three a browser sends without preflight
		// are refused.
		{"upload as a form", collector, browserRequest{"POST", "/v1/evidence:upload?case_id=c&kind=other&sha256=" + sha([]byte("x")), "application/x-www-form-urlencoded", "x", nil}, 415, "Content-Type"},
		{"upload as text/plain", collector, browserRequest{"POST", "/v1/evidence:upload?case_id=c&kind=other&sha256=" + sha([]byte("x")), "text/plain", "x", nil}, 415, "Content-Type"},
		{"upload as multipart", collector, browserRequest{"POST", "/v1/evidence:upload?case_id=c&kind=other&sha256=" + sha([]byte("x")), "multipart/form-data; boundary=y", "x", nil}, 415, "Content-Type"},
		{"upload without a type", collector, browserRequest{"POST", "/v1/evidence:upload?case_id=c&kind=other&sha256=" + sha([]byte("x")), "", "x", nil}, 415, "Content-Type"},
		{"upload, type a browser reads as text/plain", collector, browserRequest{"POST", "/v1/evidence:upload?case_id=c&kind=other&sha256=" + sha([]byte("x")), "text/plain; garbage", "x", nil}, 415, "Content-Type"},
		{"upload, cross-site", collector, browserRequest{"POST", "/v1/evidence:upload?case_id=c&kind=other&sha256=" + sha([]byte("x")), "image/jpeg", "x", crossSite}, 403, "cross-site"},
		// <img src=…/content?purpose=…> would log an access in the court's
		// name.
		{"content read from another site", court, browserRequest{"GET", "/v1/evidence/" + id + "/content?purpose=forged", "", "", crossSite}, 403, "cross-site"},
		{"seizure record read from another site", court, browserRequest{"GET", "/v1/seizure-records/" + id + "?purpose=forged", "", "", crossSite}, 403, "cross-site"},
		{"content read, foreign Origin", court, browserRequest{"GET", "/v1/evidence/" + id + "/content?purpose=forged", "", "", foreignOrigin}, 403, "Origin"},
	}
	before := events()
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			code, h, body := do(t, tc.hc, env, tc.req)
			if code != tc.code || !strings.Contains(body, tc.msg) || !strings.Contains(h.Get("Content-Type"), "application/json") {
				t.Fatalf("%s %s = %d %s, want %d JSON mentioning %q", tc.req.method, tc.req.path, code, body, tc.code, tc.msg)
			}
			if v := h.Get("Access-Control-Allow-Origin"); v != "" {
				t.Fatalf("Access-Control-Allow-Origin: %s", v)
			}
		})
	}
	if after := events(); after != before {
		t.Fatalf("the refused requests recorded %d events", after-before)
	}

	t.Run("preflight", func(t *testing.T) {
		code, h, body := do(t, court, env, browserRequest{"OPTIONS", "/v1/evidence/" + id + "/events", "", "",
			map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}})
		if code != http.StatusForbidden || !strings.Contains(body, "cross-origin") {
			t.Fatalf("preflight = %d %s, want 403", code, body)
		}
		for k := range h {
			if strings.HasPrefix(k, "Access-Control-") {
				t.Fatalf("preflight answer grants %s: %s", k, h.Get(k))
			}
		}
	})
	for _, tc := range []struct{ path, allow string }{
		{"/v1/evidence/" + id + "/events", "GET, OPTIONS, POST"},
		{"/v1/evidence/" + id + ":verify", "OPTIONS, POST"},
		{"/v1/evidence:upload", "OPTIONS, POST"},
		{"/v1/evidence/" + id + "/content", "GET, HEAD, OPTIONS"},
		{"/v1/keys", "GET, OPTIONS"},
		{"/healthz", "GET, HEAD, OPTIONS"},
	} {
		t.Run("OPTIONS "+tc.path, func(t *testing.T) {
			code, h, _ := do(t, court, env, browserRequest{"OPTIONS", tc.path, "", "", nil})
			if code != http.StatusNoContent || h.Get("Allow") != tc.allow {
				t.Fatalf("OPTIONS = %d, Allow %q; want 204 and %q", code, h.Get("Allow"), tc.allow)
			}
		})
	}
	t.Run("OPTIONS of no route", func(t *testing.T) {
		if code, _, _ := do(t, court, env, browserRequest{"OPTIONS", "/v1/nothing/here", "", "", nil}); code != http.StatusNotFound {
			t.Fatalf("OPTIONS = %d, want 404", code)
		}
	})

	// What keeps working: curl and the clients (no Origin), and the
	// service's own pages (same origin).
	accepted := []struct {
		name string
		hc   *http.Client
		req  browserRequest
		code int
	}{
		{"event as JSON", court, browserRequest{"POST", "/v1/evidence/" + id + "/events", "application/json", annotation, nil}, 200},
		{"event as JSON with charset", court, browserRequest{"POST", "/v1/evidence/" + id + "/events", "application/json; charset=utf-8", annotation, nil}, 200},
		{"verification from the same origin", court, browserRequest{"POST", "/v1/evidence/" + id + ":verify", "application/json", "{}", origin}, 200},
		{"verification from a typed URL", court, browserRequest{"POST", "/v1/evidence/" + id + ":verify", "application/json", "{}", map[string]string{"Sec-Fetch-Site": "none"}}, 200},
		{"upload of a JPEG", collector, browserRequest{"POST", "/v1/evidence:upload?case_id=c&kind=other&sha256=" + sha([]byte("jpeg")), "image/jpeg", "jpeg", nil}, 201},
		{"upload as octet-stream", collector, browserRequest{"POST", "/v1/evidence:upload?case_id=c&kind=other&sha256=" + sha([]byte("bytes")), "application/octet-stream", "bytes", nil}, 201},
		{"content read", court, browserRequest{"GET", "/v1/evidence/" + id + "/content?purpose=review", "", "", nil}, 200},
		{"content read from the same origin", court, browserRequest{"GET", "/v1/evidence/" + id + "/content?purpose=review", "", "", origin}, 200},
		{"public keys from another site", court, browserRequest{"GET", "/v1/keys", "", "", crossSite}, 200},
	}
	for _, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			if code, _, body := do(t, tc.hc, env, tc.req); code != tc.code {
				t.Fatalf("%s %s = %d %s, want %d", tc.req.method, tc.req.path, code, body, tc.code)
			}
		})
	}
}
