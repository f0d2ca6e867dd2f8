// Package openapitest checks the service's OpenAPI document with
// kin-openapi: that the document is valid, and that real requests and
// responses of a running server match it.
package openapitest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

var defineOnce sync.Once

// defineFormats teaches kin-openapi the formats protoc-gen-openapiv2
// writes beyond OpenAPI's own, so values are checked against them: 64-bit
// integers as decimal strings (protojson), bytes as base64 (standard or
// URL alphabet, as protojson reads them), and raw bodies.
func defineFormats() {
	defineOnce.Do(func() {
		decimal := func(re string) func(string) error {
			r := regexp.MustCompile(re)
			return func(s string) error {
				if !r.MatchString(s) {
					return fmt.Errorf("%q is not a decimal integer", s)
				}
				return nil
			}
		}
		openapi3.DefineStringFormatCallback("int64", func(s string) error {
			if err := decimal(`^-?[0-9]+$`)(s); err != nil {
				return err
			}
			_, err := strconv.ParseInt(s, 10, 64)
			return err
		})
		openapi3.DefineStringFormatCallback("uint64", func(s string) error {
			if err := decimal(`^[0-9]+$`)(s); err != nil {
				return err
			}
			_, err := strconv.ParseUint(s, 10, 64)
			return err
		})
		openapi3.DefineStringFormatCallback("byte", func(s string) error {
			if _, err := base64.StdEncoding.DecodeString(s); err == nil {
				return nil
			}
			_, err := base64.URLEncoding.DecodeString(s)
			return err
		})
		openapi3.DefineStringFormatCallback("binary", func(string) error { return nil })
		// Raw bodies: the JSON lines of a bundle stream are text.
		openapi3filter.RegisterBodyDecoder("application/jsonl", openapi3filter.PlainBodyDecoder)
	})
}

// Load parses an OpenAPI v2 document, converts it to OpenAPI 3 and
// validates it, formats included; it fails the test if any step fails.
func Load(t testing.TB, doc []byte) (*openapi2.T, *openapi3.T) {
	t.Helper()
	defineFormats()
	var v2 openapi2.T
	if err := json.Unmarshal(doc, &v2); err != nil {
		t.Fatalf("the OpenAPI document does not parse: %v", err)
	}
	if v2.Swagger != "2.0" {
		t.Fatalf("swagger is %q, want 2.0", v2.Swagger)
	}
	v3, err := openapi2conv.ToV3(&v2)
	if err != nil {
		t.Fatalf("the OpenAPI document does not convert to OpenAPI 3: %v", err)
	}
	if err := v3.Validate(t.Context(), openapi3.EnableSchemaFormatValidation(), openapi3.EnableSchemaPatternValidation()); err != nil {
		t.Fatalf("the OpenAPI document is invalid: %v", err)
	}
	return &v2, v3
}

// Checker matches requests and responses against a document.
type Checker struct {
	doc    *openapi3.T
	routes []route
}

type route struct {
	path   string
	re     *regexp.Regexp
	names  []string
	method string
	op     *openapi3.Operation
	item   *openapi3.PathItem
}

var pathVar = regexp.MustCompile(`\{([^}]+)\}`)

// NewChecker routes requests by the document's paths. A path parameter
// matches one segment, or several where its schema's pattern is ".+"
// (protoc-gen-openapiv2's rendering of {case_id=**}); the request's
// decoded path is matched, as the gateway matches it. kin-openapi's own
// routers match neither a variable followed by a custom verb
// ({evidence_id}:verify) nor one that spans segments.
//
// The checker is strict where OpenAPI is lax by default: an object schema
// that lists properties and says nothing of others takes no others (it
// changes doc so), so a response field the document does not describe is
// a difference too.
func NewChecker(t testing.TB, doc *openapi3.T) *Checker {
	t.Helper()
	seen := map[*openapi3.Schema]bool{}
	for _, s := range doc.Components.Schemas {
		closeObjects(s, seen)
	}
	c := &Checker{doc: doc}
	for path, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			if op.RequestBody != nil && op.RequestBody.Value != nil {
				for _, mt := range op.RequestBody.Value.Content {
					closeObjects(mt.Schema, seen)
				}
			}
			for _, r := range op.Responses.Map() {
				if r.Value != nil {
					for _, mt := range r.Value.Content {
						closeObjects(mt.Schema, seen)
					}
				}
			}
		}
		var names []string
		re := "^"
		last := 0
		for _, m := range pathVar.FindAllStringSubmatchIndex(path, -1) {
			name := path[m[2]:m[3]]
			re += regexp.QuoteMeta(path[last:m[0]])
			seg := `([^/]+)`
			for _, op := range item.Operations() {
				if p := op.Parameters.GetByInAndName("path", name); p != nil && p.Schema != nil && p.Schema.Value != nil && p.Schema.Value.Pattern == ".+" {
					seg = `(.+)`
				}
			}
			re += seg
			names = append(names, name)
			last = m[1]
		}
		re += regexp.QuoteMeta(path[last:]) + "$"
		for method, op := range item.Operations() {
			c.routes = append(c.routes, route{path: path, re: regexp.MustCompile(re), names: names, method: method, op: op, item: item})
		}
	}
	if len(c.routes) == 0 {
		t.Fatal("the OpenAPI document has no operations")
	}
	return c
}

// closeObjects makes every object schema under ref that lists properties,
// and says nothing of others, refuse others.
func closeObjects(ref *openapi3.SchemaRef, seen map[*openapi3.Schema]bool) {
	if ref == nil || ref.Value == nil || seen[ref.Value] {
		return
	}
	s := ref.Value
	seen[s] = true
	if len(s.Properties) > 0 && s.AdditionalProperties.Has == nil && s.AdditionalProperties.Schema == nil {
		s.AdditionalProperties.Has = openapi3.Ptr(false)
	}
	for _, p := range s.Properties {
		closeObjects(p, seen)
	}
	closeObjects(s.Items, seen)
	closeObjects(s.AdditionalProperties.Schema, seen)
	for _, list := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
		for _, r := range list {
			closeObjects(r, seen)
		}
	}
}

// find returns the one operation of the document that the request is.
func (c *Checker) find(r *http.Request) (*routers.Route, map[string]string, error) {
	var found []route
	var params map[string]string
	for _, rt := range c.routes {
		m := rt.re.FindStringSubmatch(r.URL.Path)
		if m == nil || rt.method != r.Method {
			continue
		}
		found = append(found, rt)
		params = map[string]string{}
		for i, name := range rt.names {
			params[name] = m[i+1]
		}
	}
	switch len(found) {
	case 0:
		return nil, nil, errors.New("no operation in the document")
	case 1:
		rt := found[0]
		return &routers.Route{Spec: c.doc, Path: rt.path, PathItem: rt.item, Method: rt.method, Operation: rt.op}, params, nil
	default:
		var paths []string
		for _, rt := range found {
			paths = append(paths, rt.path)
		}
		return nil, nil, fmt.Errorf("several operations of the document match: %v", paths)
	}
}

// Exchange is one HTTP request and the response a server gave, bodies
// read.
type Exchange struct {
	Request      *http.Request
	RequestBody  []byte
	Response     *http.Response
	ResponseBody []byte
}

// Check reports how an exchange differs from the document: an unknown
// route, a request the operation does not take (parameters, body, media
// type) or a response it does not describe (status, media type, headers,
// body schema). Statuses the operation does not list must fit its
// default.
func (c *Checker) Check(x Exchange) error {
	return c.check(x, true)
}

// CheckResponse is Check for an exchange whose request breaks the
// document on purpose: only the route and the response are checked.
func (c *Checker) CheckResponse(x Exchange) error {
	return c.check(x, false)
}

func (c *Checker) check(x Exchange, request bool) error {
	route, pathParams, err := c.find(x.Request)
	if err != nil {
		return fmt.Errorf("%s %s: %w", x.Request.Method, x.Request.URL, err)
	}
	opts := &openapi3filter.Options{
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
		IncludeResponseStatus: true,
		MultiError:            true,
	}
	req := x.Request.Clone(x.Request.Context())
	req.Body = io.NopCloser(bytes.NewReader(x.RequestBody))
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: pathParams, Route: route, Options: opts}
	var errs []error
	if request {
		if err := openapi3filter.ValidateRequest(x.Request.Context(), in); err != nil {
			errs = append(errs, fmt.Errorf("request: %w", err))
		}
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 x.Response.StatusCode,
		Header:                 x.Response.Header,
		Options:                opts,
	}
	out.SetBodyBytes(x.ResponseBody)
	if err := openapi3filter.ValidateResponse(x.Request.Context(), out); err != nil {
		errs = append(errs, fmt.Errorf("response %d: %w", x.Response.StatusCode, err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s %s (operation %s): %w", x.Request.Method, x.Request.URL, route.Operation.OperationID, err)
	}
	return nil
}
