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
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custody-dev/custody/certs"
	"github.com/custody-dev/custody/client"
	"github.com/custody-dev/custody/evidence"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/daemon"
	"github.com/custody-dev/custody/internal/testenv"
	"github.com/custody-dev/custody/server"
)

// Env is a running server and the credentials to reach it.
type Env struct {
	PKI      certs.DevPKI
	DataDir  string
	Daemon   *daemon.Daemon
	GRPCAddr string
	HTTPAddr string
	// Logs holds everything the server logged, as text.
	Logs *SyncBuffer

	stop     func() error
	stopOnce sync.Once
	stopErr  error
}

// Options change the assembled service; the zero value is custodyd's
// embedded assembly with its defaults (daemon.Defaults: local disk,
// SQLite, POSIX log), with a fast checkpoint interval and short retention.
type Options struct {
	// S3 stores evidence in this bucket instead of on disk.
	S3 *S3
	// MaxUploadBytes overrides the upload limit.
	MaxUploadBytes int64
	// ReleaseTTL overrides how long a release waits.
	ReleaseTTL time.Duration
	// MaxBundleEvents overrides the longest history served as one bundle
	// document.
	MaxBundleEvents int
	// RevokedFile is passed as --revoked.
	RevokedFile string
	// Limits override the per-identity limits, Admission the service's.
	Limits    server.Limits
	Admission server.Admission
	// RequireAuthority and SpecialReaders are passed on.
	RequireAuthority bool
	SpecialReaders   []identity.Role
	// CatalogDSN runs the replicated assembly: catalog, journal, item
	// locks and upload sessions in this PostgreSQL database (POSIX log).
	CatalogDSN string
	// ExtraClientCAs are trusted for client certificates besides the
	// development CA, as an operator's --client-ca bundle would be; the
	// development server certificate is still used.
	ExtraClientCAs []*x509.Certificate
	// PublicMetrics is passed as --public-metrics.
	PublicMetrics bool
	// LogKey, if set, is the log's signed-note private key (its name is
	// the origin), written to the key folder before the start, so that
	// witnesses can be configured with its verifier key first.
	LogKey string
	// WitnessPolicy, TSA and TSAChain are passed as --witness-policy,
	// --tsa and --tsa-chain.
	WitnessPolicy string
	TSA, TSAChain []string
	// Faults may wrap the service's components to make them fail on
	// demand (daemon.Config.Faults).
	Faults func(deps *evidence.Deps, log *server.Log)
	// Configure, if set, changes the assembled configuration last, e.g.
	// to run the background loops (cfg.Loops) more often.
	Configure func(*daemon.Config)
}

// S3 names a bucket on an S3-compatible server.
type S3 struct {
	Endpoint, Bucket, AccessKey, SecretKey string
}

// Start starts a full service with its data under dir. Call Stop when done.
func Start(dir string, opts Options) (*Env, error) {
	logs := &SyncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := daemon.Defaults()
	cfg.DataDir = dir
	cfg.Server.GRPCAddr, cfg.Server.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Log.CheckpointInterval = 200 * time.Millisecond
	cfg.Keys.LogOrigin = "custody.test/log"
	cfg.Evidence.Retention = time.Hour
	if opts.MaxUploadBytes != 0 {
		cfg.Evidence.MaxUploadBytes = opts.MaxUploadBytes
	}
	if opts.ReleaseTTL != 0 {
		cfg.Evidence.ReleaseTTL = opts.ReleaseTTL
	}
	if opts.MaxBundleEvents != 0 {
		cfg.Evidence.MaxBundleEvents = opts.MaxBundleEvents
	}
	if opts.SpecialReaders != nil {
		cfg.Evidence.SpecialReaders = opts.SpecialReaders
	}
	cfg.Evidence.RequireAuthority = opts.RequireAuthority
	if opts.Limits != (server.Limits{}) {
		cfg.Server.Limits = opts.Limits
	}
	if opts.Admission != (server.Admission{}) {
		cfg.Server.Admission = opts.Admission
	}
	cfg.Server.PublicMetrics = opts.PublicMetrics
	cfg.TLS.Revoked = opts.RevokedFile
	if opts.CatalogDSN != "" {
		cfg.Mode, cfg.Replica.DSN = daemon.Replicated, opts.CatalogDSN
	}
	cfg.Log.WitnessPolicy, cfg.Log.TSA, cfg.Log.TSAChain = opts.WitnessPolicy, opts.TSA, opts.TSAChain
	cfg.Faults = opts.Faults
	if opts.LogKey != "" {
		name, _, _ := strings.Cut(strings.TrimPrefix(opts.LogKey, "PRIVATE+KEY+"), "+")
		cfg.Keys.LogOrigin = name
		if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, "keys", "log-key"), []byte(opts.LogKey+"\n"), 0o600); err != nil {
			return nil, err
		}
	}
	if len(opts.ExtraClientCAs) > 0 {
		pki, err := certs.EnsureDevPKI(filepath.Join(dir, "certs"))
		if err != nil {
			return nil, err
		}
		bundle, err := os.ReadFile(pki.CAFile())
		if err != nil {
			return nil, err
		}
		for _, c := range opts.ExtraClientCAs {
			bundle = append(bundle, certs.EncodeCertificate(c.Raw)...)
		}
		cfg.TLS.ClientCA = filepath.Join(dir, "client-ca.pem")
		if err := os.WriteFile(cfg.TLS.ClientCA, bundle, 0o644); err != nil {
			return nil, err
		}
		cfg.TLS.Cert, cfg.TLS.Key = pki.ServerCertFile(), pki.ServerKeyFile()
	}
	if s := opts.S3; s != nil {
		s3 := &cfg.Storage.S3
		s3.Endpoint, s3.Bucket, s3.AccessKey, s3.SecretKey, s3.Insecure = s.Endpoint, s.Bucket, s.AccessKey, s.SecretKey, true
	}
	if opts.Configure != nil {
		opts.Configure(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d, err := daemon.Start(ctx, cfg, logger)
	if err != nil {
		cancel()
		return nil, err
	}
	done := make(chan error, 1)
	// Serve, as custodyd does: the server and the background loops.
	go func() { done <- d.Serve(ctx) }()
	return &Env{
		PKI:      certs.DevPKI{Dir: filepath.Join(dir, "certs")},
		DataDir:  dir,
		GRPCAddr: d.Server.GRPCAddr(),
		HTTPAddr: d.Server.HTTPAddr(),
		Logs:     logs,
		Daemon:   d,
		stop: func() error {
			cancel()
			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				err = errors.New("server did not stop within 30s")
			}
			return errors.Join(err, d.Close())
		},
	}, nil
}

// StartT starts a server for one test and stops it when the test ends.
func StartT(t testing.TB, opts ...Options) *Env {
	t.Helper()
	testenv.RequireFull(t, "in-process custodyd (TLS, gRPC, SQLite, Tessera)")
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	env, err := Start(t.TempDir(), o)
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

// Stop stops the server gracefully; later calls return the first's result.
func (e *Env) Stop() error {
	e.stopOnce.Do(func() { e.stopErr = e.stop() })
	return e.stopErr
}

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

// ClientAs dials the server as any identity, with a certificate the dev CA
// issues for it now (valid for a day).
func (e *Env) ClientAs(t testing.TB, id identity.Identity) *client.Client {
	t.Helper()
	ca, err := certs.LoadAuthority(e.PKI.CAFile(), filepath.Join(e.PKI.Dir, "ca", "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	issued, err := ca.IssueClient(id, time.Now().Add(-time.Minute), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(issued.CertPEM, issued.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(t.Context(), e.GRPCAddr, &client.Credentials{Certificate: pair, Leaf: leaf, RootCAs: e.RootCAs(t)})
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
