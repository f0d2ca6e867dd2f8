// Package server owns custodyd's network face: the gRPC server with its
// interceptor chain (request logging, metrics, authentication, limits,
// admission, errors to statuses, recovery),
// health and reflection services; the HTTPS server with the REST gateway,
// OpenAPI document, health and metrics endpoints; and the translation
// between RPC types and the domain packages, including the one table that
// maps failure kinds to status codes (status.go).
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/custody-dev/custody/evidence"
	"github.com/custody-dev/custody/identity"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// Config is what a Server needs.
type Config struct {
	// GRPCAddr and HTTPAddr are listen addresses; port 0 picks a free port.
	GRPCAddr string
	HTTPAddr string
	// Certificate is the server's TLS certificate for both listeners.
	Certificate tls.Certificate
	// ClientCAs verifies client certificates.
	ClientCAs *x509.CertPool
	// Logger receives structured logs; nil means slog.Default().
	Logger *slog.Logger
	// Keys are the public keys served at /v1/keys.
	Keys PublicKeys
	// Evidence is the evidence domain service.
	Evidence *evidence.Service
	// Log is the custody log, served by the LogService and under /log/.
	Log Log
	// Limits bound each identity's calls and streams; Admission bounds
	// the whole service's.
	Limits    Limits
	Admission Admission
	// Revocations, if set, refuses revoked client certificates.
	Revocations *identity.Revocations
	// TimestampAuthorities are the URLs of the log's RFC 3161
	// authorities, for the metric of each one's state.
	TimestampAuthorities []string
	// CheckpointInterval is how often the log publishes; readiness allows
	// ten of them before calling the log stale.
	CheckpointInterval time.Duration
	// PublicMetrics serves /metrics to anyone; otherwise it needs an
	// admin client certificate.
	PublicMetrics bool
	// Collectors are more metrics to serve at /metrics.
	Collectors []prometheus.Collector
}

// PublicKeys are the verification keys the service publishes as hints.
type PublicKeys struct {
	LogVerifierKey      string
	LogOrigin           string
	ReceiptPublicKeyPEM string
	// ClientCAPEM is the client CA chain signers' certificates chain to;
	// WitnessPolicy the witness policy text (empty: none); Authorities the
	// RFC 3161 authorities with their chains: what a court's trust file
	// holds beside the keys (custody keys --out).
	ClientCAPEM   string
	WitnessPolicy string
	Authorities   []TimestampAuthority
}

// TimestampAuthority is an RFC 3161 authority and its PEM chain.
type TimestampAuthority struct{ URL, ChainPEM string }

// Server is a running custodyd network face. Create it with New, run it
// with Serve.
type Server struct {
	cfg      Config
	log      *slog.Logger
	grpc     *grpc.Server
	health   *health.Server
	http     *http.Server
	grpcLis  net.Listener
	httpLis  net.Listener
	internal *internalListener
	gateway  *grpc.ClientConn
	metrics  *metrics
	// limits are cfg.Limits with their defaults.
	limits   Limits
	verifier *identity.Verifier
}

// New builds the servers and opens their listeners, so that GRPCAddr and
// HTTPAddr report the bound addresses before Serve is called.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		internal: newInternalListener(),
		metrics:  newMetrics(prometheus.NewRegistry()),
	}
	s.metrics.registry.MustRegister(cfg.Collectors...)
	s.metrics.registry.MustRegister(newReadinessCollector(s))
	verifier := identity.NewVerifier(cfg.ClientCAs)
	if cfg.Revocations != nil {
		verifier.WithRevocations(cfg.Revocations)
	}
	s.verifier = verifier
	auth := &authenticator{verifier: verifier, log: s.log}
	cfg.Admission = cfg.Admission.withDefaults()
	s.limits = cfg.Limits.withDefaults(cfg.Admission.MaxStreams)
	if s.limits.StreamsPerIdentity >= cfg.Admission.MaxStreams {
		s.log.Warn("one identity may hold every stream the service admits: --max-streams-per-identity is not below --max-streams",
			"max_streams_per_identity", s.limits.StreamsPerIdentity, "max_streams", cfg.Admission.MaxStreams)
	}
	limits := newLimiter(s.limits, cfg.Admission.Wait)
	admit := newAdmission(cfg.Admission, s.metrics.registry)
	var err error
	tlsCfg := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cfg.Certificate},
		// The certificate is verified by the authenticator, not the
		// handshake, so a caller with a missing, expired or foreign
		// certificate gets a clear UNAUTHENTICATED instead of a TLS alert.
		ClientAuth: tls.RequestClientCert,
		NextProtos: []string{"h2"},
	}
	s.grpc = grpc.NewServer(
		grpc.Creds(newServerCredentials(tlsCfg)),
		// Evidence streams are large: big flow-control windows and socket
		// buffers cut syscalls and stalls on the upload path.
		grpc.InitialWindowSize(streamWindow),
		grpc.InitialConnWindowSize(connWindow),
		grpc.ReadBufferSize(socketBuffer),
		grpc.WriteBufferSize(socketBuffer),
		grpc.MaxRecvMsgSize(maxMessage),
		// A connection must finish its TLS handshake this soon.
		grpc.ConnectionTimeout(handshakeTimeout),
		// Per-identity limits come before admission, so a caller over
		// its own share is refused without taking the service's room.
		grpc.ChainUnaryInterceptor(
			s.logUnary,
			s.metrics.unary,
			auth.unary,
			limits.unary,
			admit.unary,
			errorsUnary(s.log),
			recoverUnary(s.log),
		),
		grpc.ChainStreamInterceptor(
			s.logStream,
			s.metrics.stream,
			auth.stream,
			limits.stream,
			admit.stream,
			limits.idle,
			errorsStream(s.log),
			recoverStream(s.log),
		),
	)
	s.registerServices()

	if s.grpcLis, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		return nil, fmt.Errorf("gRPC listener: %w", err)
	}
	if s.httpLis, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		s.grpcLis.Close()
		return nil, fmt.Errorf("HTTPS listener: %w", err)
	}
	handler, err := s.httpHandler(ctx)
	if err != nil {
		s.grpcLis.Close()
		s.httpLis.Close()
		return nil, err
	}
	httpTLS := tlsCfg.Clone()
	httpTLS.NextProtos = []string{"h2", "http/1.1"}
	s.http = &http.Server{
		Handler:           handler,
		TLSConfig:         httpTLS,
		ReadHeaderTimeout: handshakeTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

func (s *Server) registerServices() {
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	custodyv1.RegisterEvidenceServiceServer(s.grpc, &evidenceService{svc: s.cfg.Evidence, log: s.log})
	custodyv1.RegisterCustodyServiceServer(s.grpc, &custodyService{svc: s.cfg.Evidence})
	custodyv1.RegisterLogServiceServer(s.grpc, &logService{keys: s.cfg.Keys, log: s.cfg.Log})
	custodyv1.RegisterIdentityServiceServer(s.grpc, &identityService{})
	for _, name := range []string{
		custodyv1.EvidenceService_ServiceDesc.ServiceName,
		custodyv1.CustodyService_ServiceDesc.ServiceName,
		custodyv1.LogService_ServiceDesc.ServiceName,
		custodyv1.IdentityService_ServiceDesc.ServiceName,
	} {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
}

// Transport sizes for gRPC, server and client alike (see client.Dial).
const (
	streamWindow = 4 << 20
	connWindow   = 16 << 20
	socketBuffer = 256 << 10
	// maxMessage bounds one message: upload chunks are 1 MiB by default.
	maxMessage = 8 << 20
)

// handshakeTimeout bounds a TLS handshake and, over HTTPS, the request
// headers.
const handshakeTimeout = 10 * time.Second

// GRPCAddr is the address the gRPC listener is bound to.
func (s *Server) GRPCAddr() string { return s.grpcLis.Addr().String() }

// HTTPAddr is the address the HTTPS listener is bound to.
func (s *Server) HTTPAddr() string { return s.httpLis.Addr().String() }

// Serve serves until ctx is done, then stops gracefully: new calls are
// refused, running calls finish (up to shutdownGrace), listeners close.
func (s *Server) Serve(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.grpc.Serve(s.grpcLis) })
	g.Go(func() error { return s.grpc.Serve(s.internal) })
	g.Go(func() error {
		if err := s.http.ServeTLS(s.httpLis, "", ""); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	s.log.InfoContext(ctx, "custodyd serving", "grpc_addr", s.GRPCAddr(), "http_addr", s.HTTPAddr())
	g.Go(func() error {
		<-gctx.Done()
		s.shutdown()
		return nil
	})
	err := g.Wait()
	if errors.Is(err, grpc.ErrServerStopped) {
		err = nil
	}
	return err
}

const shutdownGrace = 10 * time.Second

func (s *Server) shutdown() {
	s.log.Info("custodyd shutting down")
	s.health.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := s.http.Shutdown(ctx); err != nil {
		s.log.Warn("HTTPS shutdown", "err", err)
	}
	s.gateway.Close()
	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-ctx.Done():
		s.grpc.Stop()
	}
}
