package server

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// gatewayRoute is one HTTP binding of an RPC, read from the google.api.http
// annotations the gateway is generated from, so this table cannot drift
// from the routes the gateway serves.
type gatewayRoute struct {
	method   string // HTTP method
	template string // as annotated: /v1/evidence/{evidence_id}:verify
	segments []string
	verb     string
	pathVars map[string]bool
	body     string // "" (none), "*" (whole message) or a field
	input    protoreflect.MessageDescriptor
}

// gatewayRoutes are every annotated binding of the services the gateway
// serves.
var gatewayRoutes = func() []gatewayRoute {
	var out []gatewayRoute
	for _, fd := range []protoreflect.FileDescriptor{
		custodyv1.File_custody_v1_evidence_proto,
		custodyv1.File_custody_v1_custody_proto,
		custodyv1.File_custody_v1_log_proto,
	} {
		for i := 0; i < fd.Services().Len(); i++ {
			svc := fd.Services().Get(i)
			for j := 0; j < svc.Methods().Len(); j++ {
				m := svc.Methods().Get(j)
				rule, _ := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
				if rule == nil {
					continue
				}
				for _, r := range append([]*annotations.HttpRule{rule}, rule.GetAdditionalBindings()...) {
					out = append(out, newGatewayRoute(r, m.Input()))
				}
			}
		}
	}
	return out
}()

func newGatewayRoute(r *annotations.HttpRule, input protoreflect.MessageDescriptor) gatewayRoute {
	var method, template string
	switch p := r.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		method, template = http.MethodGet, p.Get
	case *annotations.HttpRule_Post:
		method, template = http.MethodPost, p.Post
	case *annotations.HttpRule_Put:
		method, template = http.MethodPut, p.Put
	case *annotations.HttpRule_Patch:
		method, template = http.MethodPatch, p.Patch
	case *annotations.HttpRule_Delete:
		method, template = http.MethodDelete, p.Delete
	case *annotations.HttpRule_Custom:
		method, template = p.Custom.GetKind(), p.Custom.GetPath()
	}
	route := gatewayRoute{method: method, template: template, body: r.GetBody(), input: input, pathVars: map[string]bool{}}
	path := strings.TrimPrefix(template, "/")
	// A verb follows the last segment after a colon outside braces.
	if i := strings.LastIndexByte(path, ':'); i >= 0 && !strings.Contains(path[i:], "}") {
		path, route.verb = path[:i], path[i+1:]
	}
	route.segments = strings.Split(path, "/")
	for _, s := range route.segments {
		if v, ok := strings.CutPrefix(s, "{"); ok {
			name, _, _ := strings.Cut(strings.TrimSuffix(v, "}"), "=")
			route.pathVars[name] = true
		}
	}
	return route
}

// matches reports whether a request path (decoded) is this route's. A
// variable matches one non-empty segment; a deep one ({case_id=**}) one or
// more segments, any "/" in the value.
func (r gatewayRoute) matches(path string) bool {
	rest, ok := strings.CutPrefix(path, "/")
	if !ok {
		return false
	}
	if r.verb != "" {
		if rest, ok = strings.CutSuffix(rest, ":"+r.verb); !ok {
			return false
		}
	}
	segs := strings.Split(rest, "/")
	deep := slices.IndexFunc(r.segments, func(s string) bool { return strings.HasSuffix(s, "=**}") })
	if deep >= 0 {
		// The deep variable takes what the segments around it leave.
		n := len(segs) - len(r.segments) + 1
		if n < 1 {
			return false
		}
		joined := strings.Join(segs[deep:deep+n], "/")
		segs = slices.Concat(segs[:deep], []string{joined}, segs[deep+n:])
	}
	if len(segs) != len(r.segments) {
		return false
	}
	for i, s := range r.segments {
		if strings.HasPrefix(s, "{") {
			if segs[i] == "" || (r.verb == "" && i == len(segs)-1 && strings.Contains(segs[i], ":")) {
				return false
			}
			continue
		}
		if segs[i] != s {
			return false
		}
	}
	return true
}

// patternString is how runtime.Pattern.String renders the template.
func (r gatewayRoute) patternString() string {
	segs := make([]string, len(r.segments))
	for i, s := range r.segments {
		if v, ok := strings.CutPrefix(s, "{"); ok && !strings.Contains(v, "=") {
			s = "{" + strings.TrimSuffix(v, "}") + "=*}"
		}
		segs[i] = s
	}
	out := "/" + strings.Join(segs, "/")
	if r.verb != "" {
		out += ":" + r.verb
	}
	return out
}

// allowedMethods lists the methods the HTTPS server answers on path, with
// OPTIONS, sorted; nil when no route has that path.
func allowedMethods(path string) []string {
	var methods []string
	switch {
	case path == "/v1/evidence:upload":
		methods = []string{http.MethodPost}
	case isContentRoute(path):
		methods = []string{http.MethodGet, http.MethodHead}
	case strings.HasPrefix(path, "/v1/"):
		for _, r := range gatewayRoutes {
			if r.matches(path) && !slices.Contains(methods, r.method) {
				methods = append(methods, r.method)
			}
		}
	case strings.HasPrefix(path, "/log/"), path == "/healthz", path == "/metrics", path == "/openapi.json", path == "/verify":
		methods = []string{http.MethodGet, http.MethodHead}
	}
	if methods == nil {
		return nil
	}
	methods = append(methods, http.MethodOptions)
	slices.Sort(methods)
	return methods
}

// routesByPattern finds a gateway route by method and the pattern the
// gateway matched (runtime.HTTPPattern).
var routesByPattern = func() map[string]*gatewayRoute {
	m := map[string]*gatewayRoute{}
	for i := range gatewayRoutes {
		r := &gatewayRoutes[i]
		m[r.method+" "+r.patternString()] = r
	}
	return m
}()

// checkQuery refuses query parameters the gateway would ignore: any on a
// route whose request is the body, and on others any that is not a field
// of the request message or that is bound from the path. The gateway
// itself ignores unknown parameters, which would let a misspelled filter
// or option pass silently.
func checkQuery(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, pathParams map[string]string) {
		if r.URL.RawQuery == "" {
			next(w, r, pathParams)
			return
		}
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("the query string cannot be parsed: %v", err))
			return
		}
		var route *gatewayRoute
		if p, ok := runtime.HTTPPattern(r.Context()); ok {
			route = routesByPattern[r.Method+" "+p.String()]
		}
		for _, key := range slices.Sorted(maps.Keys(q)) {
			switch {
			case route == nil || route.body == "*":
				writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown query parameter %q: %s %s takes no query parameters", key, r.Method, r.URL.Path))
			case route.inPath(key):
				writeError(w, http.StatusBadRequest, fmt.Sprintf("query parameter %q is part of the path of %s, not a query parameter", key, route.template))
			case !queryFieldKnown(route.input, key):
				writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown query parameter %q for %s %s (it takes %s)", key, r.Method, route.template, strings.Join(route.queryFields(), ", ")))
			default:
				continue
			}
			return
		}
		next(w, r, pathParams)
	}
}

// inPath reports whether a query parameter names (in either spelling) a
// field bound from the path, or one inside it.
func (r *gatewayRoute) inPath(key string) bool {
	first, _, _ := strings.Cut(key, ".")
	fields := r.input.Fields()
	fd := fields.ByTextName(first)
	if fd == nil {
		fd = fields.ByJSONName(first)
	}
	return fd != nil && r.pathVars[string(fd.Name())]
}

// queryFields lists the top-level fields a GET route takes as query
// parameters.
func (r *gatewayRoute) queryFields() []string {
	var out []string
	fields := r.input.Fields()
	for i := 0; i < fields.Len(); i++ {
		if name := string(fields.Get(i).Name()); !r.pathVars[name] {
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		return []string{"none"}
	}
	return out
}

// queryFieldKnown reports whether a query parameter names a field of msg
// that the gateway would set: a dotted path of field names (proto or JSON
// spelling) through singular message fields.
func queryFieldKnown(msg protoreflect.MessageDescriptor, key string) bool {
	parts := strings.Split(key, ".")
	for i, p := range parts {
		fields := msg.Fields()
		fd := fields.ByTextName(p)
		if fd == nil {
			fd = fields.ByJSONName(p)
		}
		if fd == nil || fd.IsMap() {
			return false
		}
		if i == len(parts)-1 {
			return true
		}
		if fd.Message() == nil || fd.Cardinality() == protoreflect.Repeated {
			return false
		}
		msg = fd.Message()
	}
	return false
}
