package server

import (
	"slices"
	"testing"
)

// TestRouteMatchesDeepCaseID: the route table (OPTIONS answers, the
// unknown-parameter check) knows both ListEvidence bindings, the path one
// with a case id of any number of segments.
func TestRouteMatchesDeepCaseID(t *testing.T) {
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"/v1/evidence", []string{"GET", "OPTIONS"}},
		{"/v1/cases/ICC-01/evidence", []string{"GET", "OPTIONS"}},
		{"/v1/cases/ICC-01/22/evidence", []string{"GET", "OPTIONS"}},
		{"/v1/cases/ICC-01/22/evidence/evidence", []string{"GET", "OPTIONS"}},
		{"/v1/cases/a:b/c/evidence", []string{"GET", "OPTIONS"}},
		{"/v1/cases/evidence", nil},
		{"/v1/cases//evidence", nil},
		{"/v1/cases/ICC-01/22", nil},
		{"/v1/cases/ICC-01/22/evidence/", nil},
		{"/v1/evidence/ev-1", []string{"GET", "OPTIONS"}},
		{"/v1/evidence/ev-1/events", []string{"GET", "OPTIONS", "POST"}},
		{"/v1/evidence/ev-1:verify", []string{"OPTIONS", "POST"}},
		{"/v1/evidence/ev-1/x/events", nil},
	} {
		t.Run(tc.path, func(t *testing.T) {
			if got := allowedMethods(tc.path); !slices.Equal(got, tc.want) {
				t.Fatalf("allowedMethods(%q) = %v, want %v", tc.path, got, tc.want)
			}
		})
	}
	var templates []string
	for _, r := range gatewayRoutes {
		if r.input.Name() == "ListEvidenceRequest" {
			templates = append(templates, r.method+" "+r.patternString())
		}
	}
	slices.Sort(templates)
	if want := []string{"GET /v1/cases/{case_id=**}/evidence", "GET /v1/evidence"}; !slices.Equal(templates, want) {
		t.Fatalf("ListEvidence is bound to %v, want %v", templates, want)
	}
}
