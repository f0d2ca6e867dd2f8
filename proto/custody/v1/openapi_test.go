package custodyv1

import (
	"encoding/json"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi2"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/custody-dev/custody/internal/testenv/openapitest"
)

// TestOpenAPIDocument: the document custodyd serves is valid OpenAPI with
// a real title and version, and lists every route the gateway is
// generated with, the raw routes with their parameters, and /v1/keys.
func TestOpenAPIDocument(t *testing.T) {
	v2, _ := openapitest.Load(t, OpenAPI)
	if v2.Swagger != "2.0" || v2.Info.Title != "Custody REST API" || v2.Info.Version != "v1" || !slices.Equal(v2.Schemes, []string{"https"}) {
		t.Fatalf("swagger %q, title %q, version %q, schemes %v", v2.Swagger, v2.Info.Title, v2.Info.Version, v2.Schemes)
	}

	t.Run("every google.api.http binding", func(t *testing.T) {
		deep := regexp.MustCompile(`\{([a-z_.]+)=[^}]*\}`)
		n := 0
		for _, fd := range []protoreflect.FileDescriptor{File_custody_v1_evidence_proto, File_custody_v1_custody_proto, File_custody_v1_log_proto} {
			for i := range fd.Services().Len() {
				methods := fd.Services().Get(i).Methods()
				for j := range methods.Len() {
					rule, _ := proto.GetExtension(methods.Get(j).Options(), annotations.E_Http).(*annotations.HttpRule)
					if rule == nil {
						continue
					}
					for _, r := range append([]*annotations.HttpRule{rule}, rule.GetAdditionalBindings()...) {
						method, path := binding(r)
						path = deep.ReplaceAllString(path, "{$1}")
						if op := operation(v2, method, path); op == nil {
							t.Errorf("%s %s (%s) is not in the document", method, path, methods.Get(j).FullName())
						}
						n++
					}
				}
			}
		}
		if n < 18 {
			t.Fatalf("only %d bindings", n)
		}
	})

	for _, tc := range []struct {
		method, path, consumes, produces string
		required, optional               []string
		okStatus                         string
	}{
		{http.MethodPost, "/v1/evidence:upload", "application/octet-stream", "",
			[]string{"case_id", "sha256", "body"},
			[]string{"kind", "filename", "description", "captured_at", "special_category", "derived_from", "size_bytes", "upload_id", "resume_offset", "declared_media_type"}, "201"},
		{http.MethodGet, "/v1/evidence/{evidence_id}/content", "", "application/octet-stream",
			[]string{"evidence_id", "purpose"},
			[]string{"authority_type", "authority_id", "authority_issued_by", "authority_valid_from", "authority_valid_until"}, "200"},
		{http.MethodGet, "/v1/evidence/{evidence_id}/bundle:stream", "", "application/jsonl",
			[]string{"evidence_id"}, []string{"consistency_from_size"}, "200"},
		{http.MethodGet, "/v1/keys", "", "", nil, nil, "200"},
		{http.MethodGet, "/v1/evidence", "", "", nil, []string{"case_id", "page_size", "page_token"}, "200"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			op := operation(v2, tc.method, tc.path)
			if op == nil {
				t.Fatal("not in the document")
			}
			if op.Summary == "" || op.OperationID == "" || len(op.Tags) == 0 {
				t.Errorf("summary %q, operationId %q, tags %v", op.Summary, op.OperationID, op.Tags)
			}
			var required, optional []string
			for _, p := range op.Parameters {
				if p.Required {
					required = append(required, p.Name)
				} else {
					optional = append(optional, p.Name)
				}
			}
			for _, s := range [][]string{required, optional, tc.required, tc.optional} {
				slices.Sort(s)
			}
			if !slices.Equal(required, tc.required) || !slices.Equal(optional, tc.optional) {
				t.Errorf("parameters: required %v, optional %v; want %v and %v", required, optional, tc.required, tc.optional)
			}
			if tc.consumes != "" && !slices.Contains(op.Consumes, tc.consumes) {
				t.Errorf("consumes %v, want %s", op.Consumes, tc.consumes)
			}
			// The success's media type, and JSON for errors.
			if tc.produces != "" && !slices.Equal(op.Produces, []string{tc.produces, "application/json"}) {
				t.Errorf("produces %v, want %s and application/json", op.Produces, tc.produces)
			}
			if op.Responses.Value(tc.okStatus) == nil || op.Responses.Value("default") == nil {
				t.Errorf("responses %v, want %s and default", slices.Sorted(maps.Keys(op.Responses.Map())), tc.okStatus)
			}
		})
	}

	// Only the upload refuses form and text bodies: its consumes must not
	// name them.
	for _, ct := range operation(v2, http.MethodPost, "/v1/evidence:upload").Consumes {
		if ct == "*/*" || strings.HasPrefix(ct, "multipart/") || ct == "text/plain" || ct == "application/x-www-form-urlencoded" || ct == "application/*" || ct == "text/*" {
			t.Errorf("the upload is documented to consume %s, which it refuses", ct)
		}
	}
}

// TestOpenAPIRawDefinitions: a message the hand-written part describes has
// exactly the proto message's fields, so it cannot drift from the proto.
func TestOpenAPIRawDefinitions(t *testing.T) {
	var raw struct {
		Definitions map[string]struct {
			Properties map[string]any `json:"properties"`
		} `json:"definitions"`
	}
	if err := json.Unmarshal(rawOpenAPI, &raw); err != nil {
		t.Fatal(err)
	}
	if len(raw.Definitions) == 0 {
		t.Fatal("openapi_raw.json defines no message")
	}
	for name, def := range raw.Definitions {
		t.Run(name, func(t *testing.T) {
			msg := File_custody_v1_evidence_proto.Messages().ByName(protoreflect.Name(strings.TrimPrefix(name, "v1")))
			if msg == nil {
				t.Fatalf("no message custody.v1.%s", strings.TrimPrefix(name, "v1"))
			}
			var fields []string
			for i := range msg.Fields().Len() {
				fields = append(fields, string(msg.Fields().Get(i).Name()))
			}
			slices.Sort(fields)
			if got := slices.Sorted(maps.Keys(def.Properties)); !slices.Equal(got, fields) {
				t.Fatalf("properties %v, the message has %v", got, fields)
			}
		})
	}
}

// TestMergeOpenAPIRefusesDuplicates: a hand-written path or definition may
// not shadow a generated one.
func TestMergeOpenAPIRefusesDuplicates(t *testing.T) {
	for _, tc := range []struct{ name, extra, want string }{
		{"path", `{"paths": {"/v1/keys": {}}}`, `paths "/v1/keys"`},
		{"definition", `{"definitions": {"rpcStatus": {}}}`, `definitions "rpcStatus"`},
		{"not JSON", `{`, "raw routes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := mergeOpenAPI(generatedOpenAPI, []byte(tc.extra)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("merge: %v, want an error naming %s", err, tc.want)
			}
		})
	}
	if _, err := mergeOpenAPI(generatedOpenAPI, rawOpenAPI); err != nil {
		t.Fatal(err)
	}
}

func binding(r *annotations.HttpRule) (method, path string) {
	switch p := r.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		return http.MethodGet, p.Get
	case *annotations.HttpRule_Post:
		return http.MethodPost, p.Post
	case *annotations.HttpRule_Put:
		return http.MethodPut, p.Put
	case *annotations.HttpRule_Patch:
		return http.MethodPatch, p.Patch
	case *annotations.HttpRule_Delete:
		return http.MethodDelete, p.Delete
	case *annotations.HttpRule_Custom:
		return p.Custom.GetKind(), p.Custom.GetPath()
	}
	return "", ""
}

func operation(doc *openapi2.T, method, path string) *openapi2.Operation {
	item := doc.Paths[path]
	if item == nil {
		return nil
	}
	return item.GetOperation(method)
}
