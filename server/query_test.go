package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/servertest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// TestUnknownQueryParameters: every gateway route, and the raw content
// route, refuses a query parameter it does not take with 400 naming it;
// the parameters it takes, in proto or JSON spelling, still work.
func TestUnknownQueryParameters(t *testing.T) {
	env := servertest.StartT(t)
	id := uploadOne(t, env.Client(t, identity.RoleCollector)).GetEvidenceId()
	court := env.HTTPClient(t, env.Creds(t, identity.RoleCourt).Certificate)
	collector := env.HTTPClient(t, env.Creds(t, identity.RoleCollector).Certificate)
	anon := env.HTTPClient(t)
	refused := []struct {
		hc             *http.Client
		method, path   string
		contentType    string
		body, wantName string
	}{
		{court, "GET", "/v1/evidence/" + id + "?debug=1", "", "", "debug"},
		{court, "GET", "/v1/whoami?as=admin", "", "", "as"},
		{anon, "GET", "/v1/keys?x=1", "", "", "x"},
		{anon, "GET", "/v1/log/checkpoint?cache=no", "", "", "cache"},
		{anon, "GET", "/v1/log/consistency-proof?first_size=1&second_sise=2", "", "", "second_sise"},
		{court, "GET", "/v1/cases/case-handoff/evidence?page_sise=10", "", "", "page_sise"},
		{court, "GET", "/v1/cases/case-handoff/evidence?case_id=other", "", "", "case_id"},
		{court, "GET", "/v1/evidence/" + id + "/events?evidence_id=ev-aaaaaaaaaaaaaaaaaaaaaaaaaa", "", "", "evidence_id"},
		{court, "GET", "/v1/evidence/" + id + "/bundle?consistency_from_size=1&format=pdf", "", "", "format"},
		{collector, "GET", "/v1/uploads/upload-0001?x=1", "", "", "x"},
		{court, "GET", "/v1/evidence/" + id + "/content?purpose=review&authorty_type=order", "", "", "authorty_type"},
		{court, "POST", "/v1/evidence/" + id + ":verify?dry_run=true", "application/json", "{}", "dry_run"},
		{collector, "POST", "/v1/evidence:upload?case_id=c&kind=other&sha256=" + sha([]byte("q")) + "&tag=x", "application/octet-stream", "q", "tag"},
	}
	for _, tc := range refused {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			code, _, body := do(t, tc.hc, env, browserRequest{tc.method, tc.path, tc.contentType, tc.body, nil})
			if code != http.StatusBadRequest || !strings.Contains(body, `\"`+tc.wantName+`\"`) || !strings.Contains(body, `"code":3`) {
				t.Fatalf("%s %s = %d %s, want 400 naming %q", tc.method, tc.path, code, body, tc.wantName)
			}
		})
	}
	for _, tc := range []struct {
		hc   *http.Client
		path string
	}{
		{court, "/v1/cases/case-handoff/evidence?page_size=10"},
		{court, "/v1/cases/case-handoff/evidence?pageSize=10&page_token="},
		{court, "/v1/evidence/" + id + "/events?page_size=5"},
		{court, "/v1/evidence/" + id + "/bundle?consistency_from_size=0"},
		{court, "/v1/evidence/" + id},
		{anon, "/v1/log/checkpoint"},
		{court, "/v1/evidence/" + id + "/content?purpose=review"},
	} {
		t.Run("GET "+tc.path, func(t *testing.T) {
			if code, body := get(t, tc.hc, env.URL(tc.path)); code != http.StatusOK {
				t.Fatalf("GET %s = %d %s", tc.path, code, body)
			}
		})
	}
}

// TestMetricsAccess: /metrics (per-method call counts and more) needs an
// admin's client certificate unless the operator makes it public.
func TestMetricsAccess(t *testing.T) {
	t.Run("default", func(t *testing.T) {
		env := servertest.StartT(t)
		for _, tc := range []struct {
			name string
			hc   *http.Client
			code int
			want string
		}{
			{"anonymous", env.HTTPClient(t), 401, "client certificate"},
			{"court", env.HTTPClient(t, env.Creds(t, identity.RoleCourt).Certificate), 403, "admin"},
			{"auditor", env.HTTPClient(t, env.Creds(t, identity.RoleAuditor).Certificate), 403, "admin"},
			{"admin", env.HTTPClient(t, env.Creds(t, identity.RoleAdmin).Certificate), 200, "# HELP custody_"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, body := get(t, tc.hc, env.URL("/metrics"))
				if code != tc.code || !strings.Contains(string(body), tc.want) {
					t.Fatalf("GET /metrics = %d %.300s, want %d with %q", code, body, tc.code, tc.want)
				}
			})
		}
	})
	t.Run("public", func(t *testing.T) {
		env := servertest.StartT(t, servertest.Options{PublicMetrics: true})
		if code, body := get(t, env.HTTPClient(t), env.URL("/metrics")); code != 200 || !strings.Contains(string(body), "custody_") {
			t.Fatalf("GET /metrics = %d %.300s, want 200", code, body)
		}
	})
}

// TestDocumentedQueryParametersAccepted: every query parameter the OpenAPI
// document lists for a GET route gets past the unknown-parameter check,
// so that check and the gateway agree on every route.
func TestDocumentedQueryParametersAccepted(t *testing.T) {
	env := servertest.StartT(t)
	id := uploadOne(t, env.Client(t, identity.RoleCollector)).GetEvidenceId()
	court := env.HTTPClient(t, env.Creds(t, identity.RoleCourt).Certificate)
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []struct{ Name, In string }
		}
	}
	if err := json.Unmarshal(custodyv1.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	pathValues := strings.NewReplacer("{evidence_id}", id, "{case_id}", "case-handoff", "{index}", "0", "{upload_id}", "upload-0001")
	checked := 0
	for path, ops := range doc.Paths {
		op, ok := ops["get"]
		if !ok {
			continue
		}
		q := url.Values{}
		for _, p := range op.Parameters {
			if p.In != "query" {
				continue
			}
			v := "1"
			if strings.Contains(p.Name, "valid_") {
				v = time.Now().UTC().Format(time.RFC3339)
			}
			q.Set(p.Name, v)
		}
		if len(q) == 0 {
			continue
		}
		checked++
		t.Run(path, func(t *testing.T) {
			u := pathValues.Replace(path) + "?" + q.Encode()
			if code, body := get(t, court, env.URL(u)); strings.Contains(string(body), "query parameter") {
				t.Fatalf("GET %s = %d %s", u, code, body)
			}
		})
	}
	if checked < 5 {
		t.Fatalf("only %d GET routes with query parameters in the OpenAPI document", checked)
	}
}
