package server

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody-dev/custody/identity"
)

// Limits bound what one identity can take from the service. Zero fields
// take the defaults below.
type Limits struct {
	// RatePerSecond and Burst bound calls per identity (token bucket).
	RatePerSecond float64
	Burst         int
	// StreamsPerIdentity bounds concurrent streams (uploads, downloads)
	// per identity.
	StreamsPerIdentity int
	// StreamIdleTimeout ends a stream on which nothing moved for this long.
	StreamIdleTimeout time.Duration
}

// Default limits.
const (
	DefaultRatePerSecond      = 1000
	DefaultBurst              = 2000
	DefaultStreamsPerIdentity = 32
	DefaultStreamIdleTimeout  = 2 * time.Minute
)

func (l Limits) withDefaults() Limits {
	if l.RatePerSecond == 0 {
		l.RatePerSecond = DefaultRatePerSecond
	}
	if l.Burst == 0 {
		l.Burst = DefaultBurst
	}
	if l.StreamsPerIdentity == 0 {
		l.StreamsPerIdentity = DefaultStreamsPerIdentity
	}
	if l.StreamIdleTimeout == 0 {
		l.StreamIdleTimeout = DefaultStreamIdleTimeout
	}
	return l
}

// limiter applies Limits per identity. It sits after authentication;
// unauthenticated public calls are not limited here.
type limiter struct {
	limits   Limits
	buckets  sync.Map // identity -> *rate.Limiter
	inFlight sync.Map // identity -> *atomic.Int64
}

func newLimiter(l Limits) *limiter { return &limiter{limits: l.withDefaults()} }

func (l *limiter) allow(ctx context.Context) error {
	id, ok := identity.FromContext(ctx)
	if !ok {
		return nil
	}
	b, _ := l.buckets.LoadOrStore(id.String(), rate.NewLimiter(rate.Limit(l.limits.RatePerSecond), l.limits.Burst))
	if !b.(*rate.Limiter).Allow() {
		return status.Errorf(codes.ResourceExhausted, "rate limit exceeded: %s may make %.0f calls per second (burst %d); slow down and retry", id, l.limits.RatePerSecond, l.limits.Burst)
	}
	return nil
}

func (l *limiter) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := l.allow(ctx); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (l *limiter) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx := ss.Context()
	if err := l.allow(ctx); err != nil {
		return err
	}
	if id, ok := identity.FromContext(ctx); ok {
		c, _ := l.inFlight.LoadOrStore(id.String(), new(atomic.Int64))
		n := c.(*atomic.Int64)
		if n.Add(1) > int64(l.limits.StreamsPerIdentity) {
			n.Add(-1)
			return status.Errorf(codes.ResourceExhausted, "too many concurrent streams: %s may have %d at once; wait for one to finish", id, l.limits.StreamsPerIdentity)
		}
		defer n.Add(-1)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ws := &watchedStream{ServerStream: ss, ctx: ctx}
	ws.touch()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(l.limits.StreamIdleTimeout / 4)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if time.Since(time.Unix(0, ws.last.Load())) > l.limits.StreamIdleTimeout {
					cancel(errIdle)
					return
				}
			}
		}
	}()
	err := handler(srv, ws)
	if context.Cause(ctx) == errIdle {
		return status.Errorf(codes.DeadlineExceeded, "the stream was idle for more than %v and was closed; nothing from it was kept", l.limits.StreamIdleTimeout)
	}
	return err
}

var errIdle = fmt.Errorf("stream idle")

// watchedStream records when a message last moved.
type watchedStream struct {
	grpc.ServerStream
	ctx  context.Context
	last atomic.Int64
}

func (w *watchedStream) touch()                   { w.last.Store(time.Now().UnixNano()) }
func (w *watchedStream) Context() context.Context { return w.ctx }

func (w *watchedStream) RecvMsg(m any) error {
	err := w.ServerStream.RecvMsg(m)
	w.touch()
	return err
}

func (w *watchedStream) SendMsg(m any) error {
	err := w.ServerStream.SendMsg(m)
	w.touch()
	return err
}
