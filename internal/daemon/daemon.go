// Package daemon assembles custodyd from its parts (keys, storage, catalog,
// log, evidence service, network server) according to its configuration.
// cmd/custodyd parses flags into a Config and calls Run; tests call Start to
// run the same assembly in-process.
package daemon

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"filippo.io/age"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"

	"github.com/custody-dev/custody/catalog"
	"github.com/custody-dev/custody/catalog/sqlite"
	"github.com/custody-dev/custody/certs"
	"github.com/custody-dev/custody/custodylog"
	"github.com/custody-dev/custody/custodylog/awslog"
	"github.com/custody-dev/custody/custodylog/posixlog"
	"github.com/custody-dev/custody/evidence"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/journal"
	"github.com/custody-dev/custody/keys"
	"github.com/custody-dev/custody/postgres"
	"github.com/custody-dev/custody/receipt"
	"github.com/custody-dev/custody/server"
	"github.com/custody-dev/custody/storage"
	"github.com/custody-dev/custody/storage/disk"
	"github.com/custody-dev/custody/storage/s3"
	"github.com/custody-dev/custody/verify"
)

// Config is custodyd's configuration; see cmd/custodyd for each field's
// flag and meaning.
type Config struct {
	DataDir     string
	GRPCAddr    string
	HTTPAddr    string
	S3Endpoint  string
	S3Bucket    string
	S3Region    string
	S3Insecure  bool
	S3AccessKey string
	S3SecretKey string
	// S3Timeout fails an S3 connection on which nothing moved that long.
	S3Timeout          time.Duration
	TLSCert            string
	TLSKey             string
	ClientCA           string
	SigningKey         string
	CheckpointInterval time.Duration
	LogOrigin          string
	Retention          time.Duration
	MaxUploadBytes     int64
	// MaxBundleEvents is the longest history served as one bundle
	// document; longer ones are served in the stream form.
	MaxBundleEvents int
	EncryptAll      bool
	ExtraRecipients string
	ReleaseTTL      time.Duration
	// WitnessPolicy, if set, is a witness policy file (Sigsum format):
	// the witnesses asked to cosign each checkpoint.
	WitnessPolicy string
	// TSA are RFC 3161 timestamp authorities' URLs, TSAChain the PEM
	// files of their certificate chains, in the same order.
	TSA, TSAChain []string
	// ScrubInterval, if set, re-hashes every stored item that often.
	ScrubInterval time.Duration
	// RevokedFile is a deny list of serials or a CRL, re-read on change.
	RevokedFile string
	// Limits bound each identity's calls and streams; Admission the
	// whole service's.
	Limits    server.Limits
	Admission server.Admission
	// SpecialReaders are the roles granted special-category reads besides
	// the current custodian; RequireAuthority makes content reads cite one.
	SpecialReaders   []identity.Role
	RequireAuthority bool
	// PublicMetrics serves /metrics to anyone; without it, only to
	// callers with an admin client certificate.
	PublicMetrics bool
	// UploadTTL is how long an unfinished resumable upload is kept.
	UploadTTL time.Duration
	// CatalogDSN, if set, is a PostgreSQL URL for a catalog shared by
	// replicas; unset means SQLite under DataDir. The record journal and
	// the item locks then live in the same database.
	CatalogDSN string
	// LogMySQL, if set, puts the custody log on S3 (LogBucket, on
	// S3Endpoint) with sequencing in this MySQL-compatible database, so
	// replicas share it; unset means the POSIX log under DataDir.
	LogMySQL  string
	LogBucket string
	// RepairInterval is how often a replica catalogs log entries another
	// replica logged but did not catalog (it died between the two).
	RepairInterval time.Duration
}

// shared says the catalog, journal and locks are in PostgreSQL.
func (c Config) shared() bool { return c.CatalogDSN != "" }

// Daemon is an assembled, not yet serving custodyd.
type Daemon struct {
	Server   *server.Server
	Keys     *keys.Set
	Evidence *evidence.Service
	Log      *custodylog.Log
	closers  []func() error
}

// Run assembles custodyd and serves until ctx ends.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	d, err := Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer d.Close()
	if cfg.ScrubInterval > 0 {
		go every(ctx, cfg.ScrubInterval, func() { d.scrub(ctx, log) })
	}
	if cfg.shared() {
		go every(ctx, cmp.Or(cfg.RepairInterval, 5*time.Second), func() { d.repair(ctx, log) })
	}
	expire := func() {
		if n := d.Evidence.ExpireUploads(ctx); n > 0 {
			log.Info("expired unfinished uploads removed", "sessions", n)
		}
	}
	go func() {
		expire()
		every(ctx, time.Hour, expire)
	}()
	return d.Server.Serve(ctx)
}

var (
	scrubChecked = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "custody_scrub_checked_total", Help: "Stored items re-hashed by the background scrub.",
	})
	scrubMismatches = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "custody_scrub_mismatches_total", Help: "Stored items whose bytes no longer match their recorded digest.",
	})
	scrubLastRun = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "custody_scrub_last_completed_timestamp_seconds", Help: "When the last full scrub finished.",
	})
	catalogDisagreements = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "custody_catalog_disagreements_total",
		Help: "Catalog item rows found disagreeing with their logged ingest record, by where found (read, verify, scrub, ingest, replay, start); the service refuses to serve them.",
	}, []string{"op"})
	catalogRepairs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "custody_catalog_repairs_total", Help: "Catalog item rows rewritten from their logged ingest record at start.",
	})
)

// every runs f each interval until ctx ends.
func every(ctx context.Context, interval time.Duration, f func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// scrub re-hashes every stored item once.
func (d *Daemon) scrub(ctx context.Context, log *slog.Logger) {
	checked, bad, err := d.Evidence.Scrub(ctx, func(_ string, err error) {
		scrubChecked.Inc()
		if err != nil {
			scrubMismatches.Inc()
		}
	})
	if err != nil {
		log.Error("scrub stopped", "err", err)
		return
	}
	scrubLastRun.SetToCurrentTime()
	log.Info("scrub finished", "checked", checked, "mismatches", bad)
}

// repair catalogs log entries that no replica cataloged: a replica killed
// between its log append and its catalog write leaves them behind.
func (d *Daemon) repair(ctx context.Context, log *slog.Logger) {
	n, err := d.Evidence.Replay(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		log.Error("cataloging log entries left by another replica", "err", err)
	case n > 0:
		log.Warn("cataloged log entries another replica logged but did not catalog", "entries", n)
	}
}

// Close releases what Start opened, in reverse order.
func (d *Daemon) Close() error {
	var errs []error
	for i := len(d.closers) - 1; i >= 0; i-- {
		errs = append(errs, d.closers[i]())
	}
	return errors.Join(errs...)
}

// Start assembles custodyd: listeners are bound, nothing is served yet.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (*Daemon, error) {
	d := &Daemon{}
	started := false
	defer func() {
		if !started {
			d.Close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	// Tessera logs through klog; send it to our structured log.
	klog.SetSlogLogger(log.With("component", "tessera"))
	cert, clientCAs, clientCACerts, err := loadTLS(cfg, log)
	if err != nil {
		return nil, err
	}
	ks, err := keys.Load(ctx, keys.Config{Dir: filepath.Join(cfg.DataDir, "keys"), SigningKey: cfg.SigningKey, LogOrigin: cfg.LogOrigin})
	if err != nil {
		return nil, err
	}
	d.Keys = ks
	store, err := openStorage(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	store = meteredStore{store}
	if cfg.LogMySQL != "" && !cfg.shared() {
		return nil, errors.New("--log-mysql shares the log between replicas; they must share the catalog too: add --catalog postgres://…")
	}
	var cat catalog.Catalog
	var jnl journal.Store
	var locks evidence.Locker
	var sessions evidence.UploadSessions
	if cfg.shared() {
		pg, err := postgres.Open(ctx, cfg.CatalogDSN)
		if err != nil {
			return nil, err
		}
		d.closers = append(d.closers, pg.Close)
		locker, err := postgres.OpenLocker(ctx, cfg.CatalogDSN, 64)
		if err != nil {
			return nil, err
		}
		d.closers = append(d.closers, locker.Close)
		cat, jnl, locks, sessions = pg, pg.Journal(), locker, pg.Sessions()
	} else {
		lite, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, "catalog.db"))
		if err != nil {
			return nil, err
		}
		d.closers = append(d.closers, lite.Close)
		file, err := journal.OpenFile(filepath.Join(cfg.DataDir, "journal"), journal.WithLogger(log))
		if err != nil {
			return nil, err
		}
		d.closers = append(d.closers, file.Close)
		cat, jnl = lite, file
	}
	backend, err := logBackend(ctx, cfg)
	if err != nil {
		return nil, err
	}
	logCfg := custodylog.Config{
		Backend: backend, Signer: ks.LogSigner, Verifier: ks.LogVerifier, CheckpointInterval: cfg.CheckpointInterval,
	}
	if logCfg.Witnesses, err = readWitnessPolicy(cfg.WitnessPolicy); err != nil {
		return nil, err
	}
	if logCfg.Authorities, err = readAuthorities(cfg.TSA, cfg.TSAChain); err != nil {
		return nil, err
	}
	custodyLog, err := custodylog.Open(ctx, logCfg)
	if err != nil {
		return nil, err
	}
	d.Log = custodyLog
	d.closers = append(d.closers, func() error {
		closeCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return custodyLog.Close(closeCtx)
	})
	extra, err := readRecipients(cfg.ExtraRecipients)
	if err != nil {
		return nil, err
	}
	d.Evidence = evidence.New(evidence.Deps{
		Store: store, Catalog: cat, Log: custodyLog, Journal: jnl, Locks: locks, Sessions: sessions, Receipts: receipt.NewSigner(keys.ReceiptSignFunc(ks.Receipt), ks.ReceiptKeyID),
		Identity: ks.Age, Logger: log,
		PublicKeys:            verify.Keys{LogVerifierKey: ks.LogVerifierKey, ReceiptPublicKeyPEM: ks.ReceiptPublicKeyPEM},
		OnCatalogDisagreement: func(op string) { catalogDisagreements.WithLabelValues(op).Inc() },
	}, evidence.Config{
		MaxUploadBytes: cfg.MaxUploadBytes, MaxBundleEvents: cfg.MaxBundleEvents, Retention: cfg.Retention, EncryptAll: cfg.EncryptAll, ExtraRecipients: extra,
		ReleaseTTL: cfg.ReleaseTTL, SpecialReaders: cfg.SpecialReaders, RequireAuthority: cfg.RequireAuthority,
		UploadDir: filepath.Join(cfg.DataDir, "upload-sessions"), UploadTTL: cfg.UploadTTL,
		StampWait: stampWait(cfg),
	})
	replayed, err := d.Evidence.Replay(ctx)
	if err != nil {
		return nil, fmt.Errorf("bringing the catalog up to date with the log: %w", err)
	}
	if replayed > 0 {
		log.Warn("catalog was behind the log; replayed entries from the journal", "entries", replayed)
	}
	// The log is the truth: every item row is checked against its logged
	// ingest, and rewritten from it where it disagrees.
	began := time.Now()
	rec, err := d.Evidence.Reconcile(ctx)
	catalogRepairs.Add(float64(rec.Repaired))
	if err != nil {
		return nil, fmt.Errorf("checking the catalog against the log: %w", err)
	}
	log.Info("catalog checked against the log", "items", rec.Checked, "repaired", rec.Repaired, "unrepairable", rec.Unrepairable, "took", time.Since(began).Round(time.Millisecond))
	log.Info("custody log", "origin", custodyLog.Origin(), "verifier_key", ks.LogVerifierKey, "receipt_key_id", ks.ReceiptKeyID)
	var revocations *identity.Revocations
	if cfg.RevokedFile != "" {
		if revocations, err = identity.NewRevocations(cfg.RevokedFile, clientCACerts, log); err != nil {
			return nil, fmt.Errorf("--revoked: %w", err)
		}
	}
	d.Server, err = server.New(ctx, server.Config{
		Revocations:        revocations,
		CheckpointInterval: cfg.CheckpointInterval, TimestampAuthorities: cfg.TSA,
		PublicMetrics: cfg.PublicMetrics,
		Limits:        cfg.Limits,
		Admission:     cfg.Admission,
		GRPCAddr:      cfg.GRPCAddr,
		HTTPAddr:      cfg.HTTPAddr,
		Certificate:   cert,
		ClientCAs:     clientCAs,
		Logger:        log,
		Keys: server.PublicKeys{
			LogVerifierKey: ks.LogVerifierKey, LogOrigin: custodyLog.Origin(), ReceiptPublicKeyPEM: ks.ReceiptPublicKeyPEM,
		},
		Evidence:   d.Evidence,
		Log:        custodyLog,
		Collectors: []prometheus.Collector{scrubChecked, scrubMismatches, scrubLastRun, storageErrors, catalogDisagreements, catalogRepairs},
	})
	if err != nil {
		return nil, err
	}
	started = true
	return d, nil
}

// openStorage returns S3 storage when --s3-endpoint is set, else local disk.
func openStorage(ctx context.Context, cfg Config, log *slog.Logger) (storage.Store, error) {
	if cfg.S3Endpoint == "" {
		return disk.New(filepath.Join(cfg.DataDir, "blobs"))
	}
	if cfg.S3Bucket == "" {
		return nil, errors.New("--s3-endpoint needs --s3-bucket")
	}
	return s3.New(ctx, s3.Config{
		Endpoint: cfg.S3Endpoint, Bucket: cfg.S3Bucket, Region: cfg.S3Region, Insecure: cfg.S3Insecure,
		AccessKey: cfg.S3AccessKey, SecretKey: cfg.S3SecretKey, IdleTimeout: cfg.S3Timeout,
		OnRetry: func(err error) {
			log.Warn("evidence storage is not answering yet; waiting", "endpoint", cfg.S3Endpoint, "err", err)
		},
	})
}

// logBackend builds the storage the custody log runs on: S3 tiles with
// MySQL sequencing, shared by replicas, when --log-mysql is set, else the
// POSIX log under the data dir.
func logBackend(ctx context.Context, cfg Config) (custodylog.Backend, error) {
	var backend custodylog.Backend
	var err error
	if cfg.LogMySQL != "" {
		if cfg.CheckpointInterval < awslog.MinCheckpointInterval {
			return backend, fmt.Errorf("a shared log publishes checkpoints at most once a second: set --checkpoint-interval to 1s or more (it is %s)", cfg.CheckpointInterval)
		}
		backend, err = awslog.New(ctx, awslog.Config{
			S3Endpoint: cfg.S3Endpoint, Insecure: cfg.S3Insecure, Region: cfg.S3Region, AccessKey: cfg.S3AccessKey, SecretKey: cfg.S3SecretKey,
			Bucket: cfg.LogBucket, MySQLDSN: cfg.LogMySQL, IdleTimeout: cfg.S3Timeout,
		})
	} else {
		backend, err = posixlog.New(ctx, filepath.Join(cfg.DataDir, "log"))
	}
	if err != nil {
		return backend, fmt.Errorf("log storage: %w", err)
	}
	return backend, nil
}

func readRecipients(path string) ([]age.Recipient, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rs, err := age.ParseRecipients(f)
	if err != nil {
		return nil, fmt.Errorf("--age-recipients %s: %w", path, err)
	}
	return rs, nil
}

// loadTLS returns the server certificate and client CA pool (and the
// certificates in it): the operator's when --tls-cert, --tls-key and
// --client-ca are given, else the local development PKI under
// <data-dir>/certs, created on first start.
func loadTLS(cfg Config, log *slog.Logger) (tls.Certificate, *x509.CertPool, []*x509.Certificate, error) {
	certFile, keyFile, caFile := cfg.TLSCert, cfg.TLSKey, cfg.ClientCA
	switch {
	case certFile == "" && keyFile == "" && caFile == "":
		pki, err := certs.EnsureDevPKI(filepath.Join(cfg.DataDir, "certs"))
		if err != nil {
			return tls.Certificate{}, nil, nil, fmt.Errorf("local CA: %w", err)
		}
		certFile, keyFile, caFile = pki.ServerCertFile(), pki.ServerKeyFile(), pki.CAFile()
		log.Info("using the local development CA; client credentials per role are in "+pki.Dir,
			"ca", caFile)
	case certFile == "" || keyFile == "" || caFile == "":
		return tls.Certificate{}, nil, nil, errors.New("--tls-cert, --tls-key and --client-ca go together: give all three or none")
	}
	if err := certs.CheckKeyFile(keyFile); err != nil {
		return tls.Certificate{}, nil, nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, nil, nil, fmt.Errorf("server certificate: %w", err)
	}
	cas, err := certs.ReadCertificates(caFile)
	if err != nil {
		return tls.Certificate{}, nil, nil, fmt.Errorf("--client-ca: %w", err)
	}
	pool := x509.NewCertPool()
	for _, c := range cas {
		pool.AddCert(c)
	}
	return cert, pool, cas, nil
}
