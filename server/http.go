package server

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/custody-dev/custody/identity"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
	"github.com/custody-dev/custody/server/verifypage"
)

// httpHandler builds the HTTPS routes:
//
//	/v1/...         the REST gateway, which calls the gRPC server
//	/openapi.json   the gateway's OpenAPI document
//	/healthz        liveness; /healthz?ready=1 readiness
//	/metrics        Prometheus (admins only, unless Config.PublicMetrics)
//
// and a JSON 404 for anything else. browserGuard (browser.go) stands in
// front of them all against cross-site request forgery.
func (s *Server) httpHandler(ctx context.Context) (http.Handler, error) {
	gw, err := s.newGateway(ctx)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", gw)
	mux.HandleFunc("POST /v1/evidence:upload", s.handleUpload)
	mux.HandleFunc("GET /v1/evidence/{id}/content", s.handleContent)
	mux.HandleFunc("GET /v1/evidence/{id}/bundle:stream", s.handleBundleStream)
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(custodyv1.OpenAPI)
	})
	mux.Handle("/log/", logHandler(s.cfg.Log, s.log))
	mux.Handle("GET /verify", verifypage.Handler())
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.Handle("GET /metrics", s.metricsAccess(promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{})))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path))
	})
	return s.accessLog(browserGuard(mux)), nil
}

// metricsAccess serves /metrics to anyone with Config.PublicMetrics, and
// otherwise only to a caller whose client certificate verifies as an admin
// (revocation included): the per-method counts say who uses the service
// how much.
func (s *Server) metricsAccess(next http.Handler) http.Handler {
	if s.cfg.PublicMetrics {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var chain []*x509.Certificate
		if r.TLS != nil {
			chain = r.TLS.PeerCertificates
		}
		id, err := s.verifier.Verify(chain)
		if err != nil {
			s.log.WarnContext(r.Context(), "authentication refused", "method", "GET /metrics", "err", err, "remote", r.RemoteAddr)
			writeError(w, http.StatusUnauthorized, err.Error()+"; /metrics needs an admin client certificate unless custodyd runs with --public-metrics")
			return
		}
		if id.Role != identity.RoleAdmin {
			s.log.WarnContext(r.Context(), "permission denied", "method", "GET /metrics", "identity", id.String())
			writeError(w, http.StatusForbidden, fmt.Sprintf("permission denied: /metrics is for the admin role, not %s (or run custodyd with --public-metrics)", id.Role))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// newGateway dials the gRPC server over the in-memory listener and returns
// the grpc-gateway mux. The gateway forwards only the request id header; the
// caller's identity goes as its verified-or-not TLS certificate chain, which
// the gRPC authenticator checks like any other.
func (s *Server) newGateway(ctx context.Context) (http.Handler, error) {
	conn, err := grpc.NewClient("passthrough:///custodyd-internal",
		grpc.WithContextDialer(s.internal.dial),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	)
	if err != nil {
		return nil, err
	}
	s.gateway = conn
	// The gateway matches the decoded path (its default, "legacy"
	// unescaping): a "/" sent as %2F splits segments as "/" does, so
	// /v1/cases/{case_id=**}/evidence takes ICC-01/22 either way, and a
	// one-segment variable (an evidence id) never holds a "/".
	mux := runtime.NewServeMux(
		runtime.WithIncomingHeaderMatcher(func(key string) (string, bool) {
			if strings.EqualFold(key, requestIDKey) {
				return requestIDKey, true
			}
			return "", false
		}),
		runtime.WithOutgoingHeaderMatcher(func(key string) (string, bool) {
			if key == requestIDKey {
				return "X-Request-Id", true
			}
			return "", false
		}),
		runtime.WithMetadata(func(_ context.Context, r *http.Request) metadata.MD {
			md := forwardedMetadata(r)
			md.Delete(requestIDKey) // the header matcher forwards it
			return md
		}),
		// A form POST to a GET route would otherwise be served as that
		// GET ("path length fallback").
		runtime.WithDisablePathLengthFallback(),
		runtime.WithMiddlewares(checkQuery),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.HTTPBodyMarshaler{
			Marshaler: &runtime.JSONPb{
				MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true},
				UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
			},
		}),
	)
	for _, register := range []func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
		custodyv1.RegisterEvidenceServiceHandler,
		custodyv1.RegisterCustodyServiceHandler,
		custodyv1.RegisterLogServiceHandler,
		custodyv1.RegisterIdentityServiceHandler,
	} {
		if err := register(ctx, mux, conn); err != nil {
			return nil, err
		}
	}
	return mux, nil
}

// errorBody is the JSON error shape of routes outside the gateway; it
// matches the gateway's (google.rpc.Status as JSON).
type errorBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// httpToGRPCCode gives the gRPC code number that matches an HTTP status, so
// every JSON error of the service has the same shape.
var httpToGRPCCode = map[int]int{
	http.StatusBadRequest:            3,
	http.StatusUnauthorized:          16,
	http.StatusForbidden:             7,
	http.StatusNotFound:              5,
	http.StatusRequestTimeout:        4,
	http.StatusMethodNotAllowed:      12,
	http.StatusConflict:              10,
	http.StatusRequestEntityTooLarge: 8,
	http.StatusUnsupportedMediaType:  3,
	http.StatusTooManyRequests:       8,
	http.StatusInternalServerError:   13,
	http.StatusServiceUnavailable:    14,
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Code: httpToGRPCCode[code], Message: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// routeGroup names a path for metrics without unbounded label values.
func routeGroup(path string) string {
	switch {
	case strings.HasPrefix(path, "/v1/"):
		return "/v1"
	case strings.HasPrefix(path, "/log/"):
		return "/log"
	case path == "/healthz", path == "/metrics", path == "/openapi.json", path == "/verify":
		return path
	default:
		return "other"
	}
}

// accessLog logs and counts every HTTPS request. gRPC calls made through the
// gateway are logged again, with the caller's identity, by the interceptors.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.code == 0 {
			rec.code = http.StatusOK
		}
		s.metrics.http.WithLabelValues(routeGroup(r.URL.Path), strconv.Itoa(rec.code)).Inc()
		level := slog.LevelDebug
		if rec.code >= 400 {
			level = slog.LevelInfo
		}
		s.log.LogAttrs(r.Context(), level, "http",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.code),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote", r.RemoteAddr),
		)
	})
}
