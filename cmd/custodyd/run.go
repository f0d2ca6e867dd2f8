package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/custody-dev/custody/certs"
	"github.com/custody-dev/custody/server"
)

// config is custodyd's flags.
type config struct {
	dataDir            string
	grpcAddr           string
	httpAddr           string
	s3Endpoint         string
	s3Bucket           string
	s3Region           string
	s3Insecure         bool
	tlsCert            string
	tlsKey             string
	clientCA           string
	signingKey         string
	checkpointInterval time.Duration
	logFormat          string
	logLevel           string
}

func run(ctx context.Context, cfg config, log *slog.Logger) error {
	if cfg.s3Endpoint != "" {
		return errors.New("--s3-endpoint: S3 storage is not available in this build yet")
	}
	cert, clientCAs, err := loadTLS(cfg, log)
	if err != nil {
		return err
	}
	srv, err := server.New(ctx, server.Config{
		GRPCAddr:    cfg.grpcAddr,
		HTTPAddr:    cfg.httpAddr,
		Certificate: cert,
		ClientCAs:   clientCAs,
		Logger:      log,
	})
	if err != nil {
		return err
	}
	return srv.Serve(ctx)
}

// loadTLS returns the server certificate and client CA pool: the operator's
// when --tls-cert, --tls-key and --client-ca are given, else the local
// development PKI under <data-dir>/certs, created on first start.
func loadTLS(cfg config, log *slog.Logger) (tls.Certificate, *x509.CertPool, error) {
	certFile, keyFile, caFile := cfg.tlsCert, cfg.tlsKey, cfg.clientCA
	switch {
	case certFile == "" && keyFile == "" && caFile == "":
		pki, err := certs.EnsureDevPKI(filepath.Join(cfg.dataDir, "certs"))
		if err != nil {
			return tls.Certificate{}, nil, fmt.Errorf("local CA: %w", err)
		}
		certFile, keyFile, caFile = pki.ServerCertFile(), pki.ServerKeyFile(), pki.CAFile()
		log.Info("using the local development CA; client credentials per role are in "+pki.Dir,
			"ca", caFile)
	case certFile == "" || keyFile == "" || caFile == "":
		return tls.Certificate{}, nil, errors.New("--tls-cert, --tls-key and --client-ca go together: give all three or none")
	}
	if err := certs.CheckKeyFile(keyFile); err != nil {
		return tls.Certificate{}, nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("server certificate: %w", err)
	}
	pool, err := certs.ReadCertPool(caFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("--client-ca: %w", err)
	}
	return cert, pool, nil
}
