package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/servertest"
)

// TestCaseIDWithSlashOverREST: a case id holding "/" (the README's
// ICC-01/22) works on every HTTPS route that takes a case id: the raw
// upload's query, a seizure record's JSON body, and both listing forms,
// GET /v1/evidence?case_id= and GET /v1/cases/{case_id}/evidence (the id
// as is or with %2F), page by page, without mixing up cases whose ids
// are prefixes of each other or end like the route.
func TestCaseIDWithSlashOverREST(t *testing.T) {
	env := servertest.StartT(t)
	collector := env.HTTPClient(t, env.Creds(t, identity.RoleCollector).Certificate)
	court := env.HTTPClient(t, env.Creds(t, identity.RoleCourt).Certificate)

	// The last has parts that HTTP clients and servers clean out of a
	// path: it goes in the query, or in the path with %2F, never as is.
	cases := []string{"ICC-01/22", "ICC-01", "ICC-01/22/evidence", "a:b/c", "x//y/./z/.."}
	held := map[string][]string{}
	for i, c := range cases {
		for j := range 3 - min(i, 2) { // ICC-01/22 has three items: two pages of two
			data := randomBytes(64 + 10*i + j)
			// The case id goes into the query as the README writes it,
			// its "/" unescaped.
			u := env.URL("/v1/evidence:upload?case_id=" + c + "&kind=other&filename=f.bin&sha256=" + sha(data))
			code, body := post(t, collector, u, "application/octet-stream", data)
			var up struct {
				Evidence struct {
					EvidenceID string `json:"evidence_id"`
					CaseID     string `json:"case_id"`
				} `json:"evidence"`
			}
			if err := json.Unmarshal(body, &up); err != nil || code != http.StatusCreated {
				t.Fatalf("upload to case %q: %d %s", c, code, body)
			}
			if up.Evidence.CaseID != c {
				t.Fatalf("upload to case %q was filed under %q", c, up.Evidence.CaseID)
			}
			held[c] = append(held[c], up.Evidence.EvidenceID)
		}
	}
	// A seizure record: the case id in the JSON body.
	record, err := os.ReadFile("../examples/seizure-record.json")
	if err != nil {
		t.Fatal(err)
	}
	code, body := post(t, collector, env.URL("/v1/seizure-records"), "application/json",
		[]byte(`{"case_id": "ICC-01/22", "record": `+string(record)+`}`))
	var created struct {
		Evidence struct {
			EvidenceID string `json:"evidence_id"`
			CaseID     string `json:"case_id"`
		} `json:"evidence"`
	}
	if err := json.Unmarshal(body, &created); err != nil || code != http.StatusOK || created.Evidence.CaseID != "ICC-01/22" {
		t.Fatalf("POST /v1/seizure-records for ICC-01/22: %d %s", code, body)
	}
	held["ICC-01/22"] = append(held["ICC-01/22"], created.Evidence.EvidenceID)

	forms := []struct {
		name string
		url  func(caseID string) string
	}{
		{"query, / as is", func(c string) string { return "/v1/evidence?case_id=" + c }},
		{"query, encoded", func(c string) string { return "/v1/evidence?" + url.Values{"case_id": {c}}.Encode() }},
		{"path, / as is", func(c string) string { return "/v1/cases/" + c + "/evidence" }},
		{"path, %2F", func(c string) string { return "/v1/cases/" + url.PathEscape(c) + "/evidence" }},
	}
	for _, f := range forms {
		for _, c := range cases {
			if f.name == "path, / as is" && strings.Contains(c, "//") {
				continue
			}
			t.Run(f.name+"/"+c, func(t *testing.T) {
				var got []string
				token := ""
				for pages := 0; ; pages++ {
					if pages > 5 {
						t.Fatal("more than 5 pages")
					}
					u := f.url(c) + "?page_size=2"
					if strings.Contains(f.url(c), "?") {
						u = f.url(c) + "&page_size=2"
					}
					if token != "" {
						u += "&page_token=" + url.QueryEscape(token)
					}
					code, body := get(t, court, env.URL(u))
					var page struct {
						Evidence []struct {
							EvidenceID string `json:"evidence_id"`
							CaseID     string `json:"case_id"`
						} `json:"evidence"`
						NextPageToken string `json:"next_page_token"`
					}
					if err := json.Unmarshal(body, &page); err != nil || code != http.StatusOK {
						t.Fatalf("GET %s = %d %s", u, code, body)
					}
					for _, e := range page.Evidence {
						if e.CaseID != c {
							t.Fatalf("GET %s listed an item of case %q", u, e.CaseID)
						}
						got = append(got, e.EvidenceID)
					}
					if token = page.NextPageToken; token == "" {
						break
					}
				}
				want := slices.Clone(held[c])
				slices.Sort(want)
				slices.Sort(got)
				if !slices.Equal(got, want) {
					t.Fatalf("case %q listed %v, want %v", c, got, want)
				}
			})
		}
	}

	// OPTIONS knows the path form with a "/" in the id.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodOptions, env.URL("/v1/cases/ICC-01/22/evidence"), nil)
	resp, err := court.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Allow") != "GET, OPTIONS" {
		t.Fatalf("OPTIONS /v1/cases/ICC-01/22/evidence = %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	// The unknown-parameter check knows both routes: the case id belongs
	// in the path of one, not also in its query; a misspelt parameter is
	// named with the route's template.
	for _, tc := range []struct{ path, want string }{
		{"/v1/cases/ICC-01/22/evidence?case_id=ICC-01", `query parameter \"case_id\" is part of the path of /v1/cases/{case_id=**}/evidence`},
		{"/v1/cases/ICC-01%2F22/evidence?case_id=ICC-01", `query parameter \"case_id\" is part of the path`},
		{"/v1/evidence?case_id=ICC-01/22&page_sise=2", `unknown query parameter \"page_sise\" for GET /v1/evidence (it takes case_id, page_size, page_token)`},
	} {
		if code, body := get(t, court, env.URL(tc.path)); code != http.StatusBadRequest || !strings.Contains(string(body), tc.want) {
			t.Fatalf("GET %s = %d %s, want 400 with %s", tc.path, code, body, tc.want)
		}
	}
	// No case id: 400 naming it, on both forms.
	for _, u := range []string{"/v1/evidence", "/v1/cases//evidence"} {
		if code, body := get(t, court, env.URL(u)); code != http.StatusBadRequest || !strings.Contains(string(body), "case_id") {
			t.Fatalf("GET %s = %d %s, want 400 naming case_id", u, code, body)
		}
	}
}

func post(t *testing.T, hc *http.Client, url, contentType string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	out.ReadFrom(resp.Body)
	return resp.StatusCode, out.Bytes()
}
