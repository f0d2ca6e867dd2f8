package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/custody-dev/custody/identity"
)

// requestIDKey is the metadata key (and HTTP header) of a request id. A
// caller may send one; otherwise the server makes one. It is returned in
// the response header either way.
const requestIDKey = "x-request-id"

// callInfo is what the logging interceptor learns about a call from the
// interceptors inside it.
type callInfo struct {
	requestID string
	identity  string
}

type callInfoKey struct{}

func setLogIdentity(ctx context.Context, id identity.Identity) {
	if ci, ok := ctx.Value(callInfoKey{}).(*callInfo); ok {
		ci.identity = id.String()
	}
}

func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// startCall reads or makes the request id and returns ctx carrying it.
func startCall(ctx context.Context) (context.Context, *callInfo) {
	ci := &callInfo{}
	if v := metadata.ValueFromIncomingContext(ctx, requestIDKey); len(v) == 1 && validRequestID(v[0]) {
		ci.requestID = v[0]
	} else {
		ci.requestID = newRequestID()
	}
	return context.WithValue(ctx, callInfoKey{}, ci), ci
}

// validRequestID accepts what a caller may reasonably send and nothing that
// could forge log lines.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func (s *Server) logCall(ctx context.Context, ci *callInfo, method string, start time.Time, err error) {
	code := status.Code(err)
	level := slog.LevelInfo
	switch code {
	case codes.OK, codes.Canceled, codes.NotFound, codes.AlreadyExists:
	case codes.Internal, codes.DataLoss, codes.Unknown:
		level = slog.LevelError
	default:
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("request_id", ci.requestID),
		slog.String("method", method),
		slog.String("code", code.String()),
		slog.Duration("duration", time.Since(start)),
	}
	if ci.identity != "" {
		attrs = append(attrs, slog.String("identity", ci.identity))
	}
	s.log.LogAttrs(ctx, level, "rpc", attrs...)
}

func (s *Server) logUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	ctx, ci := startCall(ctx)
	grpc.SetHeader(ctx, metadata.Pairs(requestIDKey, ci.requestID))
	resp, err := handler(ctx, req)
	s.logCall(ctx, ci, info.FullMethod, start, err)
	return resp, err
}

func (s *Server) logStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	ctx, ci := startCall(ss.Context())
	ss.SetHeader(metadata.Pairs(requestIDKey, ci.requestID))
	err := handler(srv, &contextStream{ServerStream: ss, ctx: ctx})
	s.logCall(ctx, ci, info.FullMethod, start, err)
	return err
}

// metrics are the Prometheus collectors of the RPC layer.
type metrics struct {
	registry *prometheus.Registry
	handled  *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	http     *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		registry: reg,
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custody_grpc_handled_total",
			Help: "RPCs completed, by method and status code.",
		}, []string{"method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "custody_grpc_handling_seconds",
			Help:    "RPC latency, by method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"method"}),
		http: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custody_http_requests_total",
			Help: "HTTPS requests, by route group and status code.",
		}, []string{"route", "code"}),
	}
	reg.MustRegister(m.handled, m.latency, m.http,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observe(method string, start time.Time, err error) {
	m.handled.WithLabelValues(method, status.Code(err).String()).Inc()
	m.latency.WithLabelValues(method).Observe(time.Since(start).Seconds())
}

func (m *metrics) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	m.observe(info.FullMethod, start, err)
	return resp, err
}

func (m *metrics) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	err := handler(srv, ss)
	m.observe(info.FullMethod, start, err)
	return err
}

// recoverUnary and recoverStream turn a panic in a handler into INTERNAL,
// with the stack in the log and a fixed message for the caller. They sit
// last in the chain, so the interceptors outside them log and count the
// failed call.
func recoverUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				err = panicked(ctx, log, info.FullMethod, r)
			}
		}()
		return handler(ctx, req)
	}
}

func recoverStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = panicked(ss.Context(), log, info.FullMethod, r)
			}
		}()
		return handler(srv, ss)
	}
}

func panicked(ctx context.Context, log *slog.Logger, method string, r any) error {
	log.ErrorContext(ctx, "panic in handler", "method", method, "panic", r, "stack", string(debug.Stack()))
	return status.Error(codes.Internal, "internal error")
}
