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
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/daemon"
	"github.com/custody-dev/custody/internal/envflag"
)

func main() {
	cfg := daemon.Defaults()
	var logFormat, logLevel string
	fs := flag.NewFlagSet("custodyd", flag.ExitOnError)
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "folder for the embedded defaults: blobs/, log/, catalog.db, keys/, certs/")
	fs.StringVar(&cfg.Server.GRPCAddr, "grpc-addr", cfg.Server.GRPCAddr, "gRPC listen address (TLS 1.3, client certificate required)")
	fs.StringVar(&cfg.Server.HTTPAddr, "http-addr", cfg.Server.HTTPAddr, "HTTPS listen address: REST gateway, /log/ tiles, /verify, /healthz, /metrics, /openapi.json")
	fs.BoolVar(&cfg.Server.PublicMetrics, "public-metrics", cfg.Server.PublicMetrics, "serve /metrics to anyone; by default it needs an admin client certificate")
	fs.StringVar(&cfg.Storage.S3.Endpoint, "s3-endpoint", cfg.Storage.S3.Endpoint, "S3-compatible endpoint (host:port); unset means local disk under --data-dir")
	fs.StringVar(&cfg.Storage.S3.Bucket, "s3-bucket", cfg.Storage.S3.Bucket, "S3 bucket for evidence objects")
	fs.DurationVar(&cfg.Storage.S3.IdleTimeout, "s3-timeout", cfg.Storage.S3.IdleTimeout, "fail a connection to S3 on which no byte moved for this long (a stalled link); the call gets UNAVAILABLE")
	fs.StringVar(&cfg.Storage.S3.Region, "s3-region", cfg.Storage.S3.Region, "S3 region")
	fs.BoolVar(&cfg.Storage.S3.Insecure, "s3-insecure", cfg.Storage.S3.Insecure, "talk plain HTTP to the S3 endpoint (local test servers only)")
	fs.StringVar(&cfg.Replica.DSN, "catalog", cfg.Replica.DSN, "PostgreSQL URL of a catalog shared by replicas (postgres://user@host/db); unset means SQLite at <data-dir>/catalog.db; the record journal and item locks live there too")
	fs.StringVar(&cfg.Log.MySQL, "log-mysql", cfg.Log.MySQL, "MySQL/MariaDB DSN (user:password@tcp(host:3306)/db) that sequences a custody log shared by replicas, with its tiles in --log-bucket on --s3-endpoint; unset means the log on local disk at <data-dir>/log")
	fs.StringVar(&cfg.Log.Bucket, "log-bucket", cfg.Log.Bucket, "S3 bucket (without object lock) for the shared log's checkpoint, tiles and entry bundles; with --log-mysql")
	fs.DurationVar(&cfg.Loops.RepairInterval, "repair-interval", cfg.Loops.RepairInterval, "with --catalog: how often to catalog log entries a crashed replica logged but did not catalog")
	fs.StringVar(&cfg.TLS.Cert, "tls-cert", cfg.TLS.Cert, "server certificate PEM; unset means a local CA under <data-dir>/certs")
	fs.StringVar(&cfg.TLS.Key, "tls-key", cfg.TLS.Key, "server private key PEM (mode 0600)")
	fs.StringVar(&cfg.TLS.ClientCA, "client-ca", cfg.TLS.ClientCA, "PEM bundle of the CAs that issue client certificates")
	fs.StringVar(&cfg.Keys.SigningKey, "signing-key", cfg.Keys.SigningKey, "receipt signing key: a PEM file or a KMS URI sigstore supports (default <data-dir>/keys/receipt-key.pem)")
	fs.DurationVar(&cfg.Log.CheckpointInterval, "checkpoint-interval", cfg.Log.CheckpointInterval, "how often the log publishes a signed checkpoint")
	fs.StringVar(&cfg.Keys.LogOrigin, "log-origin", cfg.Keys.LogOrigin, "the log's origin line in checkpoints; fixed when the log key is first created")
	fs.DurationVar(&cfg.Evidence.Retention, "retention", cfg.Evidence.Retention, "how long evidence objects stay write-once (S3 compliance retention)")
	fs.Int64Var(&cfg.Evidence.MaxUploadBytes, "max-upload-bytes", cfg.Evidence.MaxUploadBytes, "largest evidence item accepted, in bytes")
	fs.IntVar(&cfg.Evidence.MaxBundleEvents, "max-bundle-events", cfg.Evidence.MaxBundleEvents, "longest history served as one bundle document; longer ones are served in the stream form")
	fs.DurationVar(&cfg.Evidence.ReleaseTTL, "release-ttl", cfg.Evidence.ReleaseTTL, "how long a custody release waits for its recipient before it lapses")
	fs.Float64Var(&cfg.Server.Limits.RatePerSecond, "rate-limit", cfg.Server.Limits.RatePerSecond, "calls per second allowed to each identity")
	fs.IntVar(&cfg.Server.Limits.Burst, "rate-burst", cfg.Server.Limits.Burst, "calls an identity may make at once above its rate")
	fs.IntVar(&cfg.Server.Limits.StreamsPerIdentity, "max-streams-per-identity", cfg.Server.Limits.StreamsPerIdentity, "concurrent uploads and downloads per identity, counted before --max-streams so one identity cannot take every place (0: a quarter of --max-streams, at least 1)")
	fs.IntVar(&cfg.Server.Admission.MaxInFlight, "max-in-flight", cfg.Server.Admission.MaxInFlight, "unary calls the service works on at once, all callers together; more wait up to --admission-wait, then get UNAVAILABLE")
	fs.IntVar(&cfg.Server.Admission.MaxStreams, "max-streams", cfg.Server.Admission.MaxStreams, "uploads and downloads the service works on at once, all callers together (memory: about 50 MiB each with S3 storage)")
	fs.DurationVar(&cfg.Server.Admission.Wait, "admission-wait", cfg.Server.Admission.Wait, "how long a call waits for room before it is shed with UNAVAILABLE")
	fs.DurationVar(&cfg.Server.Limits.StreamIdleTimeout, "stream-idle-timeout", cfg.Server.Limits.StreamIdleTimeout, "close an upload or download on which nothing moved for this long (gRPC, and the raw REST upload and download bodies)")
	fs.IntVar(&cfg.Server.Admission.HealthWatches, "max-health-watches", cfg.Server.Admission.HealthWatches, "grpc.health.v1 Watch streams (no certificate needed) open at once, all callers together; more get RESOURCE_EXHAUSTED")
	fs.IntVar(&cfg.Server.Admission.HealthWatchesPerPeer, "max-health-watches-per-peer", cfg.Server.Admission.HealthWatchesPerPeer, "grpc.health.v1 Watch streams open at once from one IP address")
	fs.DurationVar(&cfg.Evidence.UploadTTL, "upload-ttl", cfg.Evidence.UploadTTL, "how long an unfinished resumable upload is kept before its bytes are removed")
	fs.StringVar(&cfg.TLS.Revoked, "revoked", cfg.TLS.Revoked, "revoked certificates: a file of hex serial numbers (one per line; any certificate in a client's chain, intermediate CAs included) or PEM/DER CRLs verified against their issuing CA; re-read when it changes, no restart needed; a file that does not verify is refused (the last good one stays)")
	fs.StringVar(&cfg.Log.WitnessPolicy, "witness-policy", cfg.Log.WitnessPolicy, "witness policy file (Sigsum format: witness NAME VKEY URL, group NAME K MEMBER..., quorum NAME): each new checkpoint is submitted to these witnesses (C2SP tlog-witness) and published with the cosignatures that come back; a witness that is down never stops custody events")
	fs.Var((*listFlag)(&cfg.Log.TSA), "tsa", "URL of an RFC 3161 timestamp authority that timestamps each new checkpoint (at most one request per checkpoint interval); repeatable, each followed by its --tsa-chain")
	fs.Var((*listFlag)(&cfg.Log.TSAChain), "tsa-chain", "PEM file of the certificate chain (root and any intermediates) of the --tsa before it; its tokens are checked against it before they are kept")
	fs.DurationVar(&cfg.Loops.ScrubInterval, "scrub-interval", cfg.Loops.ScrubInterval, "re-hash every stored item this often and report mismatches in /metrics and the log (0: off)")
	fs.BoolVar(&cfg.Evidence.EncryptAll, "encrypt-all", cfg.Evidence.EncryptAll, "encrypt every item at rest, not only special categories (biometric data is always encrypted)")
	fs.StringVar(&cfg.Keys.ExtraRecipients, "age-recipients", cfg.Keys.ExtraRecipients, "file of extra age recipients (one per line) that can also decrypt encrypted evidence, e.g. a prosecutor's")
	fs.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.BoolVar(&cfg.Evidence.RequireAuthority, "require-authority", cfg.Evidence.RequireAuthority, "every read of evidence content must cite an authority (e.g. a court order) with type, identifier, issued_by, valid_from and valid_until, in force at the time of the read")
	specialReaders := fs.String("special-category-readers", roleList(cfg.Evidence.SpecialReaders), "comma-separated roles that may read biometric and other special-category data, besides the item's current custodian")
	fs.Parse(os.Args[1:])
	if err := envflag.Apply(fs, "CUSTODY_"); err != nil {
		fmt.Fprintln(os.Stderr, "custodyd:", err)
		os.Exit(2)
	}

	// The flag layer picks the assembly: a shared catalog means replicas.
	if cfg.Replica.DSN != "" {
		cfg.Mode = daemon.Replicated
	}
	cfg.Evidence.SpecialReaders = nil
	for _, r := range strings.Split(*specialReaders, ",") {
		if r = strings.TrimSpace(r); r == "" {
			continue
		}
		if !identity.Role(r).Valid() {
			fmt.Fprintf(os.Stderr, "custodyd: --special-category-readers: unknown role %q\n", r)
			os.Exit(2)
		}
		cfg.Evidence.SpecialReaders = append(cfg.Evidence.SpecialReaders, identity.Role(r))
	}
	if cfg.Evidence.SpecialReaders == nil {
		cfg.Evidence.SpecialReaders = []identity.Role{} // no role; custodians only
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

// roleList is roles as --special-category-readers takes them.
func roleList(roles []identity.Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, ",")
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }
