package server

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Admission bounds the work the whole service takes on at once, whoever
// asks: beyond it, calls are shed with UNAVAILABLE (retry with backoff,
// or on another replica) instead of queueing without end, so the calls
// admitted keep their latency and memory stays under a ceiling. Per-caller
// quotas are Limits, applied first: a stream over its identity's share
// never takes one of the service's places.
type Admission struct {
	// MaxInFlight bounds unary calls in progress; MaxStreams bounds
	// uploads and downloads in progress (each holds up to a few upload
	// parts in memory: see docs/BENCHMARKS.md for the ceiling).
	MaxInFlight int
	MaxStreams  int
	// Wait is how long a call may wait for room before it is shed.
	Wait time.Duration
}

// Default admission.
const (
	DefaultMaxInFlight   = 256
	DefaultMaxStreams    = 16
	DefaultAdmissionWait = 500 * time.Millisecond
)

func (a Admission) withDefaults() Admission {
	if a.MaxInFlight == 0 {
		a.MaxInFlight = DefaultMaxInFlight
	}
	if a.MaxStreams == 0 {
		a.MaxStreams = DefaultMaxStreams
	}
	if a.Wait == 0 {
		a.Wait = DefaultAdmissionWait
	}
	return a
}

type admission struct {
	cfg       Admission
	unarySem  chan struct{}
	streamSem chan struct{}
	inFlight  *prometheus.GaugeVec
	shed      *prometheus.CounterVec
}

func newAdmission(cfg Admission, reg prometheus.Registerer) *admission {
	cfg = cfg.withDefaults()
	a := &admission{
		cfg:       cfg,
		unarySem:  make(chan struct{}, cfg.MaxInFlight),
		streamSem: make(chan struct{}, cfg.MaxStreams),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "custody_inflight_calls", Help: "Calls admitted and in progress, by kind (unary, stream).",
		}, []string{"kind"}),
		shed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custody_shed_calls_total", Help: "Calls refused with UNAVAILABLE because the service was at capacity, by kind.",
		}, []string{"kind"}),
	}
	reg.MustRegister(a.inFlight, a.shed)
	return a
}

// exempt calls are never shed: probes must see an overloaded service as
// alive.
func exempt(method string) bool {
	return strings.HasPrefix(method, "/grpc.health.") || strings.HasPrefix(method, "/grpc.reflection.")
}

func (a *admission) acquire(ctx context.Context, sem chan struct{}, kind string, max int) (func(), error) {
	select {
	case sem <- struct{}{}:
	default:
		t := time.NewTimer(a.cfg.Wait)
		defer t.Stop()
		select {
		case sem <- struct{}{}:
		case <-t.C:
			a.shed.WithLabelValues(kind).Inc()
			return nil, status.Errorf(codes.Unavailable, "the service is at capacity (%d %s calls in progress); retry with backoff", max, kind)
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	g := a.inFlight.WithLabelValues(kind)
	g.Inc()
	return func() { g.Dec(); <-sem }, nil
}

func (a *admission) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if exempt(info.FullMethod) {
		return handler(ctx, req)
	}
	release, err := a.acquire(ctx, a.unarySem, "unary", a.cfg.MaxInFlight)
	if err != nil {
		return nil, err
	}
	defer release()
	return handler(ctx, req)
}

func (a *admission) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if exempt(info.FullMethod) {
		return handler(srv, ss)
	}
	release, err := a.acquire(ss.Context(), a.streamSem, "stream", a.cfg.MaxStreams)
	if err != nil {
		return err
	}
	defer release()
	return handler(srv, ss)
}
