package server_test

import (
	"bytes"
	"encoding/json"
	"image"
	"image/jpeg"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/openapitest"
	"github.com/custody-dev/custody/internal/testenv/servertest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// TestOpenAPIMatchesServer: /openapi.json is served to anyone, is the
// document the package embeds, validates, and describes what a running
// server really takes and answers on the gateway routes, the raw routes
// and /v1/keys, errors included.
func TestOpenAPIMatchesServer(t *testing.T) {
	env := servertest.StartT(t)
	anon := env.HTTPClient(t)
	collector := env.HTTPClient(t, env.Creds(t, identity.RoleCollector).Certificate)
	court := env.HTTPClient(t, env.Creds(t, identity.RoleCourt).Certificate)

	served := exchange(t, anon, env, http.MethodGet, "/openapi.json", "", nil)
	if served.Response.StatusCode != http.StatusOK || served.Response.Header.Get("Content-Type") != "application/json" || !bytes.Equal(served.ResponseBody, custodyv1.OpenAPI) {
		t.Fatalf("GET /openapi.json = %d %s, %d bytes (want the embedded %d)", served.Response.StatusCode, served.Response.Header.Get("Content-Type"), len(served.ResponseBody), len(custodyv1.OpenAPI))
	}
	v2, v3 := openapitest.Load(t, served.ResponseBody)
	if v2.Info.Title == "" || strings.Contains(v2.Info.Title, ".proto") || v2.Info.Version == "" || v2.Info.Version == "version not set" {
		t.Fatalf("info: title %q, version %q", v2.Info.Title, v2.Info.Version)
	}
	check := openapitest.NewChecker(t, v3)

	var photo bytes.Buffer
	if err := jpeg.Encode(&photo, image.NewGray(image.Rect(0, 0, 8, 8)), nil); err != nil {
		t.Fatal(err)
	}
	upload := exchange(t, collector, env, http.MethodPost,
		"/v1/evidence:upload?case_id=ICC-01/22&kind=photo&filename=photo.jpg&sha256="+sha(photo.Bytes()), "application/octet-stream", photo.Bytes())
	var up struct {
		Evidence struct {
			EvidenceID string `json:"evidence_id"`
		} `json:"evidence"`
	}
	if err := json.Unmarshal(upload.ResponseBody, &up); err != nil || upload.Response.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %d %s", upload.Response.StatusCode, upload.ResponseBody)
	}
	id := up.Evidence.EvidenceID
	if err := check.Check(upload); err != nil {
		t.Error(err)
	}

	for _, tc := range []struct {
		name         string
		hc           *http.Client
		method, path string
		body         string
		want         int
		badRequest   bool // breaks the document on purpose
	}{
		{"keys, anonymous", anon, "GET", "/v1/keys", "", 200, false},
		{"whoami", court, "GET", "/v1/whoami", "", 200, false},
		{"item", court, "GET", "/v1/evidence/" + id, "", 200, false},
		{"case list", court, "GET", "/v1/evidence?case_id=ICC-01/22&page_size=10", "", 200, false},
		{"case list, path form", court, "GET", "/v1/cases/ICC-01%2F22/evidence", "", 200, false},
		{"raw content", court, "GET", "/v1/evidence/" + id + "/content?purpose=review", "", 200, false},
		{"history", court, "GET", "/v1/evidence/" + id + "/events", "", 200, false},
		{"bundle stream", court, "GET", "/v1/evidence/" + id + "/bundle:stream", "", 200, false},
		{"verify", court, "POST", "/v1/evidence/" + id + ":verify", "{}", 200, false},
		{"bundle", court, "GET", "/v1/evidence/" + id + "/bundle", "", 200, false},
		{"checkpoint", anon, "GET", "/v1/log/checkpoint", "", 200, false},
		{"log entry", anon, "GET", "/v1/log/entries/0", "", 200, false},
		{"inclusion proof", anon, "GET", "/v1/log/entries/0/inclusion-proof", "", 200, false},
		{"no such item", court, "GET", "/v1/evidence/ev-aaaaaaaaaaaaaaaaaaaaaaaaaa", "", 404, false},
		{"no client certificate", anon, "GET", "/v1/whoami", "", 401, false},
		{"upload by the court", court, "POST", "/v1/evidence:upload?case_id=ICC-01/22&kind=photo&sha256=" + sha([]byte("x")), "x", 403, false},
		{"raw content without a purpose", court, "GET", "/v1/evidence/" + id + "/content", "", 400, true},
		{"an unknown query parameter", court, "GET", "/v1/evidence/" + id + "?debug=1", "", 400, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct := ""
			var body []byte
			if tc.body != "" {
				ct, body = "application/json", []byte(tc.body)
				if strings.Contains(tc.path, ":upload") {
					ct = "application/octet-stream"
				}
			}
			x := exchange(t, tc.hc, env, tc.method, tc.path, ct, body)
			if x.Response.StatusCode != tc.want {
				t.Fatalf("%s %s = %d %.300s, want %d", tc.method, tc.path, x.Response.StatusCode, x.ResponseBody, tc.want)
			}
			checkX := check.Check
			if tc.badRequest {
				checkX = check.CheckResponse
			}
			if err := checkX(x); err != nil {
				t.Fatal(err)
			}
		})
	}

	// The checker sees a response that differs from the document.
	item := exchange(t, court, env, http.MethodGet, "/v1/evidence/"+id, "", nil)
	for _, tc := range []struct {
		name  string
		alter func(t *testing.T, x *openapitest.Exchange)
	}{
		{"a field of the wrong type", func(t *testing.T, x *openapitest.Exchange) {
			// A 64-bit integer as a JSON number: protojson writes a string.
			var v map[string]map[string]any
			if err := json.Unmarshal(x.ResponseBody, &v); err != nil {
				t.Fatal(err)
			}
			v["evidence"]["size_bytes"] = 376
			x.ResponseBody, _ = json.Marshal(v)
		}},
		{"an undocumented field", func(t *testing.T, x *openapitest.Exchange) {
			x.ResponseBody = bytes.Replace(x.ResponseBody, []byte(`{"evidence":`), []byte(`{"debug":"x", "evidence":`), 1)
		}},
		{"an error body as success", func(t *testing.T, x *openapitest.Exchange) {
			x.ResponseBody = []byte(`{"code":5, "message":"no such item"}`)
		}},
		{"another media type", func(t *testing.T, x *openapitest.Exchange) { x.Response.Header.Set("Content-Type", "text/html") }},
		{"an unknown route", func(t *testing.T, x *openapitest.Exchange) { x.Request.URL.Path = "/v1/evidence/" + id + "/thumbnail" }},
	} {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			x := item
			resp := *item.Response
			resp.Header = item.Response.Header.Clone()
			x.Response = &resp
			x.Request = item.Request.Clone(t.Context())
			tc.alter(t, &x)
			if bytes.Equal(x.ResponseBody, item.ResponseBody) && strings.Contains(tc.name, "field") {
				t.Fatalf("the alteration changed nothing: %s", x.ResponseBody)
			}
			err := check.Check(x)
			if err == nil {
				t.Fatal("the checker accepted it")
			}
			t.Logf("refused: %.300v", err)
		})
	}
}

// exchange sends one request and reads the whole response.
func exchange(t *testing.T, hc *http.Client, env *servertest.Env, method, path, contentType string, body []byte) openapitest.Exchange {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, env.URL(path), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == nil {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return openapitest.Exchange{Request: req, RequestBody: body, Response: resp, ResponseBody: got}
}
