// Command custodyd is the Custody service: it hashes, signs and stores
// evidence and writes every custody event into an append-only log.
//
// With no flags it runs on embedded defaults under ./custody-data: local
// disk storage, a local CA and development credentials for every role.
// Every flag can also be set from the environment as CUSTODY_<NAME>.
package main

import (
	"context"
	"flag"
	"fmt"
	"github.com/custody-dev/custody/evidence"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/daemon"
	"github.com/custody-dev/custody/internal/envflag"
	"github.com/custody-dev/custody/server"
	"github.com/custody-dev/custody/storage/s3"
)

func main() {
	var cfg daemon.Config
	var logFormat, logLevel string
	fs := flag.NewFlagSet("custodyd", flag.ExitOnError)
	fs.StringVar(&cfg.DataDir, "data-dir", "./custody-data", "folder for the embedded defaults: blobs/, log/, catalog.db, keys/, certs/")
	fs.StringVar(&cfg.GRPCAddr, "grpc-addr", "127.0.0.1:8443", "gRPC listen address (TLS 1.3, client certificate required)")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", "127.0.0.1:8080", "HTTPS listen address: REST gateway, /log/ tiles, /verify, /healthz, /metrics, /openapi.json")
	fs.BoolVar(&cfg.PublicMetrics, "public-metrics", false, "serve /metrics to anyone; by default it needs an admin client certificate")
	fs.StringVar(&cfg.S3Endpoint, "s3-endpoint", "", "S3-compatible endpoint (host:port); unset means local disk under --data-dir")
	fs.StringVar(&cfg.S3Bucket, "s3-bucket", "", "S3 bucket for evidence objects")
	fs.DurationVar(&cfg.S3Timeout, "s3-timeout", s3.DefaultIdleTimeout, "fail a connection to S3 on which no byte moved for this long (a stalled link); the call gets UNAVAILABLE")
	fs.StringVar(&cfg.S3Region, "s3-region", "", "S3 region")
	fs.BoolVar(&cfg.S3Insecure, "s3-insecure", false, "talk plain HTTP to the S3 endpoint (local test servers only)")
	fs.StringVar(&cfg.CatalogDSN, "catalog", "", "PostgreSQL URL of a catalog shared by replicas (postgres://user@host/db); unset means SQLite at <data-dir>/catalog.db; the record journal and item locks live there too")
	fs.StringVar(&cfg.LogMySQL, "log-mysql", "", "MySQL/MariaDB DSN (user:password@tcp(host:3306)/db) that sequences a custody log shared by replicas, with its tiles in --log-bucket on --s3-endpoint; unset means the log on local disk at <data-dir>/log")
	fs.StringVar(&cfg.LogBucket, "log-bucket", "", "S3 bucket (without object lock) for the shared log's checkpoint, tiles and entry bundles; with --log-mysql")
	fs.DurationVar(&cfg.RepairInterval, "repair-interval", 5*time.Second, "with --catalog: how often to catalog log entries a crashed replica logged but did not catalog")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "server certificate PEM; unset means a local CA under <data-dir>/certs")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "server private key PEM (mode 0600)")
	fs.StringVar(&cfg.ClientCA, "client-ca", "", "PEM bundle of the CAs that issue client certificates")
	fs.StringVar(&cfg.SigningKey, "signing-key", "", "receipt signing key: a PEM file or a KMS URI sigstore supports (default <data-dir>/keys/receipt-key.pem)")
	fs.DurationVar(&cfg.CheckpointInterval, "checkpoint-interval", time.Second, "how often the log publishes a signed checkpoint")
	fs.StringVar(&cfg.LogOrigin, "log-origin", "custody.local/log", "the log's origin line in checkpoints; fixed when the log key is first created")
	fs.DurationVar(&cfg.Retention, "retention", 10*365*24*time.Hour, "how long evidence objects stay write-once (S3 compliance retention)")
	fs.Int64Var(&cfg.MaxUploadBytes, "max-upload-bytes", 64<<30, "largest evidence item accepted, in bytes")
	fs.IntVar(&cfg.MaxBundleEvents, "max-bundle-events", evidence.MaxBundleEvents, "longest history served as one bundle document; longer ones are served in the stream form")
	fs.DurationVar(&cfg.ReleaseTTL, "release-ttl", 72*time.Hour, "how long a custody release waits for its recipient before it lapses")
	fs.Float64Var(&cfg.Limits.RatePerSecond, "rate-limit", server.DefaultRatePerSecond, "calls per second allowed to each identity")
	fs.IntVar(&cfg.Limits.Burst, "rate-burst", server.DefaultBurst, "calls an identity may make at once above its rate")
	fs.IntVar(&cfg.Limits.StreamsPerIdentity, "max-streams-per-identity", 0, "concurrent uploads and downloads per identity, counted before --max-streams so one identity cannot take every place (0: a quarter of --max-streams, at least 1)")
	fs.IntVar(&cfg.Admission.MaxInFlight, "max-in-flight", server.DefaultMaxInFlight, "unary calls the service works on at once, all callers together; more wait up to --admission-wait, then get UNAVAILABLE")
	fs.IntVar(&cfg.Admission.MaxStreams, "max-streams", server.DefaultMaxStreams, "uploads and downloads the service works on at once, all callers together (memory: about 50 MiB each with S3 storage)")
	fs.DurationVar(&cfg.Admission.Wait, "admission-wait", server.DefaultAdmissionWait, "how long a call waits for room before it is shed with UNAVAILABLE")
	fs.DurationVar(&cfg.Limits.StreamIdleTimeout, "stream-idle-timeout", server.DefaultStreamIdleTimeout, "close an upload or download on which nothing moved for this long (gRPC, and the raw REST upload and download bodies)")
	fs.IntVar(&cfg.Admission.HealthWatches, "max-health-watches", server.DefaultHealthWatches, "grpc.health.v1 Watch streams (no certificate needed) open at once, all callers together; more get RESOURCE_EXHAUSTED")
	fs.IntVar(&cfg.Admission.HealthWatchesPerPeer, "max-health-watches-per-peer", server.DefaultHealthWatchesPerPeer, "grpc.health.v1 Watch streams open at once from one IP address")
	fs.DurationVar(&cfg.UploadTTL, "upload-ttl", 24*time.Hour, "how long an unfinished resumable upload is kept before its bytes are removed")
	fs.StringVar(&cfg.RevokedFile, "revoked", "", "revoked certificates: a file of hex serial numbers (one per line; any certificate in a client's chain, intermediate CAs included) or PEM/DER CRLs verified against their issuing CA; re-read when it changes, no restart needed; a file that does not verify is refused (the last good one stays)")
	fs.StringVar(&cfg.WitnessPolicy, "witness-policy", "", "witness policy file (Sigsum format: witness NAME VKEY URL, group NAME K MEMBER..., quorum NAME): each new checkpoint is submitted to these witnesses (C2SP tlog-witness) and published with the cosignatures that come back; a witness that is down never stops custody events")
	fs.Var((*listFlag)(&cfg.TSA), "tsa", "URL of an RFC 3161 timestamp authority that timestamps each new checkpoint (at most one request per checkpoint interval); repeatable, each followed by its --tsa-chain")
	fs.Var((*listFlag)(&cfg.TSAChain), "tsa-chain", "PEM file of the certificate chain (root and any intermediates) of the --tsa before it; its tokens are checked against it before they are kept")
	fs.DurationVar(&cfg.ScrubInterval, "scrub-interval", 0, "re-hash every stored item this often and report mismatches in /metrics and the log (0: off)")
	fs.BoolVar(&cfg.EncryptAll, "encrypt-all", false, "encrypt every item at rest, not only special categories (biometric data is always encrypted)")
	fs.StringVar(&cfg.ExtraRecipients, "age-recipients", "", "file of extra age recipients (one per line) that can also decrypt encrypted evidence, e.g. a prosecutor's")
	fs.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.BoolVar(&cfg.RequireAuthority, "require-authority", false, "every read of evidence content must cite an authority (e.g. a court order) with type, identifier, issued_by, valid_from and valid_until, in force at the time of the read")
	specialReaders := fs.String("special-category-readers", "court", "comma-separated roles that may read biometric and other special-category data, besides the item's current custodian")
	fs.Parse(os.Args[1:])
	if err := envflag.Apply(fs, "CUSTODY_"); err != nil {
		fmt.Fprintln(os.Stderr, "custodyd:", err)
		os.Exit(2)
	}

	for _, r := range strings.Split(*specialReaders, ",") {
		if r = strings.TrimSpace(r); r == "" {
			continue
		}
		if !identity.Role(r).Valid() {
			fmt.Fprintf(os.Stderr, "custodyd: --special-category-readers: unknown role %q\n", r)
			os.Exit(2)
		}
		cfg.SpecialReaders = append(cfg.SpecialReaders, identity.Role(r))
	}
	if cfg.SpecialReaders == nil {
		cfg.SpecialReaders = []identity.Role{} // no role; custodians only
	}

	logger, err := newLogger(logFormat, logLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "custodyd:", err)
		os.Exit(2)
	}
	slog.SetDefault(logger)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, logger); err != nil {
		logger.Error("custodyd stopped", "err", err)
		os.Exit(1)
	}
}

func newLogger(format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format %q: want text or json", format)
	}
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }
