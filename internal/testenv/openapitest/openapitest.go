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
	"github.com/getkin/kin-openapi/routers/legacy"
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
	router routers.Router
}

// NewChecker routes requests by the document's paths.
func NewChecker(t testing.TB, doc *openapi3.T) *Checker {
	t.Helper()
	r, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("routing the OpenAPI document: %v", err)
	}
	return &Checker{router: r}
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
// type) or a response it does not describe (status, media type, body
// schema). Statuses the operation does not list must fit its default.
func (c *Checker) Check(x Exchange) error {
	route, pathParams, err := c.router.FindRoute(x.Request)
	if err != nil {
		return fmt.Errorf("%s %s: no operation in the document: %w", x.Request.Method, x.Request.URL, err)
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
	if err := openapi3filter.ValidateRequest(x.Request.Context(), in); err != nil {
		errs = append(errs, fmt.Errorf("request: %w", err))
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
