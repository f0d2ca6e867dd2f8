package server

import (
	"context"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
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
	// HealthWatches bounds the grpc.health.v1 Watch streams open at once
	// (they need no certificate and may last until the stream idle
	// timeout), HealthWatchesPerPeer those from one IP address; more are
	// refused with RESOURCE_EXHAUSTED.
	HealthWatches        int
	HealthWatchesPerPeer int
}

// Default admission.
const (
	DefaultMaxInFlight   = 256
	DefaultMaxStreams    = 16
	DefaultAdmissionWait = 500 * time.Millisecond

	DefaultHealthWatches        = 64
	DefaultHealthWatchesPerPeer = 8
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
	if a.HealthWatches == 0 {
		a.HealthWatches = DefaultHealthWatches
	}
	if a.HealthWatchesPerPeer == 0 {
		a.HealthWatchesPerPeer = DefaultHealthWatchesPerPeer
	}
	return a
}

type admission struct {
	cfg       Admission
	unarySem  chan struct{}
	streamSem chan struct{}
	inFlight  *prometheus.GaugeVec
	shed      *prometheus.CounterVec

	watchMu     sync.Mutex
	watches     int
	watchesByIP map[string]int
}

func newAdmission(cfg Admission, reg prometheus.Registerer) *admission {
	cfg = cfg.withDefaults()
	a := &admission{
		cfg:         cfg,
		watchesByIP: map[string]int{},
		unarySem:    make(chan struct{}, cfg.MaxInFlight),
		streamSem:   make(chan struct{}, cfg.MaxStreams),
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

// healthWatch is the one public streaming method.
const healthWatch = "/grpc.health.v1.Health/Watch"

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
			return nil, busy(codes.Unavailable, "the service is at capacity (%d %s calls in progress); retry with backoff", max, kind)
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
	if info.FullMethod == healthWatch {
		release, err := a.acquireWatch(ss.Context())
		if err != nil {
			return err
		}
		defer release()
		return handler(srv, ss)
	}
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

// acquireWatch takes a place for a health Watch stream, in all and for the
// caller's IP address, or refuses it: anyone may open these, without a
// certificate, and each holds goroutines until it ends.
func (a *admission) acquireWatch(ctx context.Context) (func(), error) {
	ip := "unknown"
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		ip = p.Addr.String()
		if host, _, err := net.SplitHostPort(ip); err == nil {
			ip = host
		}
	}
	a.watchMu.Lock()
	defer a.watchMu.Unlock()
	if a.watches >= a.cfg.HealthWatches || a.watchesByIP[ip] >= a.cfg.HealthWatchesPerPeer {
		a.shed.WithLabelValues("health_watch").Inc()
		return nil, status.Errorf(codes.ResourceExhausted, "too many health watches (at most %d from one address, %d in all); use Check, or retry later", a.cfg.HealthWatchesPerPeer, a.cfg.HealthWatches)
	}
	a.watches++
	a.watchesByIP[ip]++
	return func() {
		a.watchMu.Lock()
		defer a.watchMu.Unlock()
		a.watches--
		if a.watchesByIP[ip]--; a.watchesByIP[ip] == 0 {
			delete(a.watchesByIP, ip)
		}
	}, nil
}
