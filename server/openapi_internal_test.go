package server

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"

	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// TestRawRouteParametersDocumented: /openapi.json documents exactly the
// query parameters each raw route takes, and the upload's kinds.
func TestRawRouteParametersDocumented(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []struct {
				Name, In string
				Enum     []string
			}
		}
	}
	if err := json.Unmarshal(custodyv1.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, path string
		takes        []string
	}{
		{"post", "/v1/evidence:upload", uploadQueryParams},
		{"get", "/v1/evidence/{evidence_id}/content", contentQueryParams},
		{"get", "/v1/evidence/{evidence_id}/bundle:stream", bundleStreamQueryParams},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			op, ok := doc.Paths[tc.path][tc.method]
			if !ok {
				t.Fatal("not in /openapi.json")
			}
			var documented []string
			for _, p := range op.Parameters {
				if p.In == "query" {
					documented = append(documented, p.Name)
				}
				if p.Name == "kind" {
					// Every documented kind is accepted; the one left out
					// is made only by CreateSeizureRecord.
					for _, k := range p.Enum {
						if _, err := uploadMetadataFromQuery(url.Values{"kind": {k}}, 0, ""); err != nil {
							t.Errorf("documented kind %q: %v", k, err)
						}
					}
					var all []string
					for v, name := range custodyv1.EvidenceKind_name {
						if v != 0 && name != "EVIDENCE_KIND_BIOMETRIC_SEIZURE_RECORD" {
							all = append(all, strings.ToLower(strings.TrimPrefix(name, "EVIDENCE_KIND_")))
						}
					}
					if !slices.Equal(slices.Sorted(slices.Values(all)), slices.Sorted(slices.Values(p.Enum))) {
						t.Errorf("documented kinds %v, the uploadable ones are %v", p.Enum, all)
					}
				}
			}
			slices.Sort(documented)
			if takes := slices.Sorted(slices.Values(tc.takes)); !slices.Equal(documented, takes) {
				t.Fatalf("documented query parameters %v, the route takes %v", documented, takes)
			}
		})
	}
}
