package server_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/custody-dev/custody/internal/testenv/servertest"
	"github.com/custody-dev/custody/server"
)

// TestHealthWatchesBounded: anonymous grpc.health.v1 Watch streams are
// capped per peer address and in all; those over are refused with
// RESOURCE_EXHAUSTED, Check keeps answering, and a watch that ends frees
// its place.
func TestHealthWatchesBounded(t *testing.T) {
	env := servertest.StartT(t)
	dial := func(source string) healthpb.HealthClient {
		tc := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: env.RootCAs(t), ServerName: "127.0.0.1"}
		conn, err := grpc.NewClient(env.GRPCAddr, grpc.WithTransportCredentials(credentials.NewTLS(tc)),
			grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
				return d.DialContext(ctx, "tcp", addr)
			}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return healthpb.NewHealthClient(conn)
	}
	// watch opens one Watch and returns its cancel, or the refusal.
	watch := func(c healthpb.HealthClient) (context.CancelFunc, error) {
		ctx, cancel := context.WithCancel(t.Context())
		st, err := c.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err == nil {
			_, err = st.Recv()
		}
		if err != nil {
			cancel()
			return nil, err
		}
		return cancel, nil
	}
	perPeer, total := server.DefaultHealthWatchesPerPeer, server.DefaultHealthWatches
	first := dial("127.0.0.1")
	var cancels []context.CancelFunc
	for i := range perPeer {
		cancel, err := watch(first)
		if err != nil {
			t.Fatalf("watch %d from one address: %v", i+1, err)
		}
		cancels = append(cancels, cancel)
	}
	_, err := watch(first)
	wantCode(t, err, codes.ResourceExhausted, "health watches")
	if _, err := first.Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("Check while watches are at their cap: %v", err)
	}

	// From more addresses, up to the total.
	open := perPeer
	var last healthpb.HealthClient
	for a := 2; open < total; a++ {
		last = dial(fmt.Sprintf("127.0.0.%d", a))
		for i := 0; i < perPeer && open < total; i++ {
			if _, err := watch(last); err != nil {
				t.Fatalf("watch %d in all (127.0.0.%d): %v", open+1, a, err)
			}
			open++
		}
	}
	_, err = watch(dial("127.0.1.1"))
	wantCode(t, err, codes.ResourceExhausted, "health watches")
	if n := metric(t, env, `custody_shed_calls_total{kind="health_watch"}`); n != 2 {
		t.Errorf("%v refused watches counted, want 2", n)
	}

	// One ends; its place is free again.
	cancels[0]()
	deadline := time.Now().Add(5 * time.Second)
	for {
		cancel, err := watch(first)
		if err == nil {
			cancel()
			break
		}
		if time.Now().After(deadline) || status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "health watches") {
			t.Fatalf("a watch that ended did not free its place: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
