package custodyv1

import (
	_ "embed"
	"encoding/json"
	"fmt"
)

// generatedOpenAPI is what protoc-gen-openapiv2 generates from these protos
// (buf generate; its info comes from openapi.yaml): the gateway's routes.
//
//go:embed custody.swagger.json
var generatedOpenAPI []byte

// rawOpenAPI describes, by hand, the HTTPS routes that take or give raw
// bytes and so have no google.api.http binding: the raw upload, the raw
// content download and the bundle stream (server/rest.go), and the
// messages only they use. Its paths and definitions are added to the
// generated ones; a name both have is a mistake (TestOpenAPIDocument).
//
//go:embed openapi_raw.json
var rawOpenAPI []byte

// OpenAPI is the OpenAPI v2 document of the HTTPS API that custodyd serves
// at /openapi.json: the generated document with the raw routes added.
var OpenAPI = mustMergeOpenAPI(generatedOpenAPI, rawOpenAPI)

// mergeOpenAPI adds the paths and definitions of extra to the document
// base. A path or definition both have is an error.
func mergeOpenAPI(base, extra []byte) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(base, &doc); err != nil {
		return nil, fmt.Errorf("the generated OpenAPI document: %w", err)
	}
	var add struct {
		Paths       map[string]any `json:"paths"`
		Definitions map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(extra, &add); err != nil {
		return nil, fmt.Errorf("the raw routes' OpenAPI paths: %w", err)
	}
	for _, section := range []struct {
		name string
		add  map[string]any
	}{{"paths", add.Paths}, {"definitions", add.Definitions}} {
		have, _ := doc[section.name].(map[string]any)
		if have == nil {
			have = map[string]any{}
			doc[section.name] = have
		}
		for k, v := range section.add {
			if _, dup := have[k]; dup {
				return nil, fmt.Errorf("OpenAPI %s %q is both generated and written by hand", section.name, k)
			}
			have[k] = v
		}
	}
	return json.MarshalIndent(doc, "", "  ")
}

func mustMergeOpenAPI(base, extra []byte) []byte {
	doc, err := mergeOpenAPI(base, extra)
	if err != nil {
		panic(err)
	}
	return doc
}
