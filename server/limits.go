package server

import (
	"context"
	"errors"
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
	// per identity, counted before a stream takes one of the service's
	// Admission.MaxStreams places, so that one identity cannot take them
	// all. Zero means a quarter of Admission.MaxStreams (at least 1).
	StreamsPerIdentity int
	// StreamIdleTimeout ends a stream on which nothing moved for this
	// long, whatever its handler waits on; the raw REST upload and
	// download routes end a body read or write stuck for as long.
	StreamIdleTimeout time.Duration
}

// Default limits. The default streams per identity is a share of the
// service's streams: StreamsPerIdentityShare of Admission.MaxStreams.
const (
	DefaultRatePerSecond    = 1000
	DefaultBurst            = 2000
	StreamsPerIdentityShare = 4
	// DefaultStreamsPerIdentity is the share of DefaultMaxStreams.
	DefaultStreamsPerIdentity = DefaultMaxStreams / StreamsPerIdentityShare
	DefaultStreamIdleTimeout  = 2 * time.Minute
)

// withDefaults fills zero fields; maxStreams is the service's stream
// admission, of which one identity gets a share.
func (l Limits) withDefaults(maxStreams int) Limits {
	if l.RatePerSecond == 0 {
		l.RatePerSecond = DefaultRatePerSecond
	}
	if l.Burst == 0 {
		l.Burst = DefaultBurst
	}
	if l.StreamsPerIdentity == 0 {
		l.StreamsPerIdentity = max(1, maxStreams/StreamsPerIdentityShare)
	}
	if l.StreamIdleTimeout == 0 {
		l.StreamIdleTimeout = DefaultStreamIdleTimeout
	}
	return l
}

// limiter applies Limits per identity. It sits after authentication;
// unauthenticated public calls are not limited here.
type limiter struct {
	limits  Limits
	wait    time.Duration // how long a stream may wait for its identity's room
	buckets sync.Map      // identity -> *rate.Limiter
	streams sync.Map      // identity -> chan struct{} (a semaphore of StreamsPerIdentity)
}

func newLimiter(l Limits, wait time.Duration) *limiter { return &limiter{limits: l, wait: wait} }

func (l *limiter) allow(ctx context.Context) error {
	id, ok := identity.FromContext(ctx)
	if !ok {
		return nil
	}
	b, _ := l.buckets.LoadOrStore(id.String(), rate.NewLimiter(rate.Limit(l.limits.RatePerSecond), l.limits.Burst))
	if !b.(*rate.Limiter).Allow() {
		return busy(codes.ResourceExhausted, "rate limit exceeded: %s may make %.0f calls per second (burst %d); slow down and retry", id, l.limits.RatePerSecond, l.limits.Burst)
	}
	return nil
}

func (l *limiter) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := l.allow(ctx); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// stream applies the rate and the identity's share of streams. It runs
// before admission, so a stream over its identity's share never holds one
// of the service's places: it waits up to the admission wait for one of
// its identity's own streams to end, then is refused.
func (l *limiter) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx := ss.Context()
	if err := l.allow(ctx); err != nil {
		return err
	}
	if id, ok := identity.FromContext(ctx); ok {
		sem, ok := l.streams.Load(id.String())
		if !ok {
			sem, _ = l.streams.LoadOrStore(id.String(), make(chan struct{}, l.limits.StreamsPerIdentity))
		}
		release, err := l.take(ctx, sem.(chan struct{}), id)
		if err != nil {
			return err
		}
		defer release()
	}
	return handler(srv, ss)
}

func (l *limiter) take(ctx context.Context, sem chan struct{}, id identity.Identity) (func(), error) {
	select {
	case sem <- struct{}{}:
	default:
		t := time.NewTimer(l.wait)
		defer t.Stop()
		select {
		case sem <- struct{}{}:
		case <-t.C:
			return nil, busy(codes.ResourceExhausted, "too many concurrent streams: %s may have %d at once; wait for one to finish", id, l.limits.StreamsPerIdentity)
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	return func() { <-sem }, nil
}

// idle ends a stream on which no message moved for StreamIdleTimeout. The
// stream's handler may be blocked in RecvMsg or SendMsg, which only the
// end of the stream unblocks, and a derived context does not end it: so
// the watched stream returns from a blocked RecvMsg or SendMsg as soon as
// the stream is idle, the handler returns, and returning ends the stream
// (grpc then cancels it, which also releases the abandoned call).
func (l *limiter) idle(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	timeout := l.limits.StreamIdleTimeout
	ctx, cancel := context.WithCancelCause(ss.Context())
	defer cancel(nil)
	ws := &watchedStream{ServerStream: ss, ctx: ctx, recvDone: make(chan error, 1), sendDone: make(chan error, 1)}
	ws.touch()
	var mu sync.Mutex
	var timer *time.Timer
	mu.Lock()
	timer = time.AfterFunc(timeout, func() {
		mu.Lock()
		defer mu.Unlock()
		if quiet := time.Since(time.Unix(0, ws.last.Load())); quiet >= timeout {
			cancel(errIdle)
		} else {
			timer.Reset(timeout - quiet)
		}
	})
	mu.Unlock()
	defer func() {
		mu.Lock()
		timer.Stop()
		mu.Unlock()
	}()
	err := handler(srv, ws)
	if errors.Is(context.Cause(ctx), errIdle) {
		return status.Errorf(codes.DeadlineExceeded, "the stream was idle for more than %v and was closed; nothing from it was kept", timeout)
	}
	return err
}

var errIdle = errors.New("stream idle")

// watchedStream records when a message last moved, and gives up waiting
// for one when its context ends.
type watchedStream struct {
	grpc.ServerStream
	ctx                context.Context
	last               atomic.Int64
	recvDone, sendDone chan error
}

func (w *watchedStream) touch()                   { w.last.Store(time.Now().UnixNano()) }
func (w *watchedStream) Context() context.Context { return w.ctx }

// ended is what calls return once the stream's context is done.
func (w *watchedStream) ended() error {
	if errors.Is(context.Cause(w.ctx), errIdle) {
		return status.Error(codes.DeadlineExceeded, "the stream was idle and was closed")
	}
	return status.FromContextError(w.ctx.Err()).Err()
}

// await runs call (the stream's RecvMsg or SendMsg) and returns its result,
// or ended() if the context ends first. Once that happened, every later
// call returns ended() at once: the abandoned call may still be running
// until the stream ends, and grpc allows only one RecvMsg and one SendMsg
// at a time.
func (w *watchedStream) await(done chan error, call func() error) error {
	if w.ctx.Err() != nil {
		return w.ended()
	}
	go func() { done <- call() }()
	select {
	case err := <-done:
		w.touch()
		return err
	case <-w.ctx.Done():
		return w.ended()
	}
}

func (w *watchedStream) RecvMsg(m any) error {
	return w.await(w.recvDone, func() error { return w.ServerStream.RecvMsg(m) })
}

func (w *watchedStream) SendMsg(m any) error {
	return w.await(w.sendDone, func() error { return w.ServerStream.SendMsg(m) })
}
