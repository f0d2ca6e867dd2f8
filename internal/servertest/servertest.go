// Package servertest starts a real custodyd network face for tests: the
// server package on loopback ports with real TLS 1.3 and a development PKI
// in a temporary folder, so tests talk to it exactly as clients do.
package servertest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/custody-dev/custody/certs"
	"github.com/custody-dev/custody/client"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/server"
)

// Env is a running server and the credentials to reach it.
type Env struct {
	PKI      certs.DevPKI
	GRPCAddr string
	HTTPAddr string
	// Logs holds everything the server logged, as text.
	Logs *SyncBuffer

	stop func() error
}

// Start starts a server whose PKI lives under dir. Call Stop when done.
func Start(dir string) (*Env, error) {
	pki, err := certs.EnsureDevPKI(dir)
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(pki.ServerCertFile(), pki.ServerKeyFile())
	if err != nil {
		return nil, err
	}
	pool, err := certs.ReadCertPool(pki.CAFile())
	if err != nil {
		return nil, err
	}
	logs := &SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, server.Config{
		GRPCAddr:    "127.0.0.1:0",
		HTTPAddr:    "127.0.0.1:0",
		Certificate: cert,
		ClientCAs:   pool,
		Logger:      slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		cancel()
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	return &Env{
		PKI:      pki,
		GRPCAddr: srv.GRPCAddr(),
		HTTPAddr: srv.HTTPAddr(),
		Logs:     logs,
		stop: func() error {
			cancel()
			select {
			case err := <-done:
				return err
			case <-time.After(30 * time.Second):
				return errors.New("server did not stop within 30s")
			}
		},
	}, nil
}

// StartT starts a server for one test and stops it when the test ends.
func StartT(t testing.TB) *Env {
	t.Helper()
	env, err := Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping server: %v", err)
		}
	})
	return env
}

// Stop stops the server gracefully.
func (e *Env) Stop() error { return e.stop() }

// Creds returns the development credentials of a role.
func (e *Env) Creds(t testing.TB, r identity.Role) *client.Credentials {
	t.Helper()
	c, err := client.LoadCredentials(e.PKI.RoleDir(r))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Client dials the server as a role and closes the client when the test ends.
func (e *Env) Client(t testing.TB, r identity.Role) *client.Client {
	t.Helper()
	c, err := client.Dial(t.Context(), e.GRPCAddr, e.Creds(t, r))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// RootCAs is a pool holding the server's CA.
func (e *Env) RootCAs(t testing.TB) *x509.CertPool {
	t.Helper()
	pool, err := certs.ReadCertPool(e.PKI.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

// HTTPClient returns an HTTPS client that trusts the server and presents
// the given certificates (none for an anonymous caller).
func (e *Env) HTTPClient(t testing.TB, clientCerts ...tls.Certificate) *http.Client {
	t.Helper()
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{
			MinVersion:   tls.VersionTLS13,
			RootCAs:      e.RootCAs(t),
			Certificates: clientCerts,
		},
		ForceAttemptHTTP2: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// URL returns the HTTPS URL of path on the server.
func (e *Env) URL(path string) string { return "https://" + e.HTTPAddr + path }

// SyncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
