// Package daemon assembles custodyd from its parts according to its
// configuration. It owns the two assemblies and what they share:
//
//   - embedded (one process, state under the data dir): evidence on local
//     disk or S3, the SQLite catalog (catalog/sqlite), the file journal
//     (journal.File), in-process item locks and upload sessions in files
//     (evidence), the POSIX log (custodylog/posixlog);
//   - replicated (replicas sharing state): evidence on S3 (or local disk),
//     catalog, journal, item locks and upload sessions in PostgreSQL
//     (package postgres), the log on S3 with MySQL sequencing
//     (custodylog/awslog) or, for a single process, the POSIX log;
//   - common to both: keys, TLS, the custody log over the chosen backend
//     with its witnesses and timestamp authorities, the evidence service,
//     replay and reconciliation at start, the network server, and the
//     background loops (scrub, upload expiry, and in replicated mode
//     repair) that Daemon.Serve runs.
//
// cmd/custodyd parses flags into a Config and calls Run; tests call Start
// and Serve to run the same assembly in-process.
package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"filippo.io/age"
	"k8s.io/klog/v2"

	"github.com/custody-dev/custody/catalog"
	"github.com/custody-dev/custody/certs"
	"github.com/custody-dev/custody/custodylog"
	"github.com/custody-dev/custody/evidence"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/journal"
	"github.com/custody-dev/custody/keys"
	"github.com/custody-dev/custody/receipt"
	"github.com/custody-dev/custody/server"
	"github.com/custody-dev/custody/storage"
	"github.com/custody-dev/custody/verify"
)

// Daemon is an assembled, not yet serving custodyd.
type Daemon struct {
	Server   *server.Server
	Keys     *keys.Set
	Evidence *evidence.Service
	Log      *custodylog.Log
	closers  []func() error
	loops    []loop
}

// Run assembles custodyd and serves until ctx ends.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	d, err := Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Serve(ctx)
}

// Serve runs the assembly's background loops and serves until ctx ends,
// then waits for the loops to stop.
func (d *Daemon) Serve(ctx context.Context) error {
	loopCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, l := range d.loops {
		wg.Go(func() { l.run(loopCtx) })
	}
	err := d.Server.Serve(ctx)
	stop()
	wg.Wait()
	return err
}

// Close releases what Start opened, in reverse order.
func (d *Daemon) Close() error {
	var errs []error
	for i := len(d.closers) - 1; i >= 0; i-- {
		errs = append(errs, d.closers[i]())
	}
	return errors.Join(errs...)
}

// onClose registers what Close releases.
func (d *Daemon) onClose(f func() error) { d.closers = append(d.closers, f) }

// parts are what an assembly chooses; assemble builds the rest around
// them.
type parts struct {
	store    storage.Store
	catalog  catalog.Catalog
	journal  journal.Store
	locks    evidence.Locker
	sessions evidence.UploadSessions
	log      custodylog.Backend
	// batchMaxAge is how long an append waits to be sequenced with others
	// (zero: custodylog's default).
	batchMaxAge time.Duration
	// loops are the assembly's own background work, besides scrub and
	// expiry.
	loops []loop
}

// Start assembles custodyd in cfg.Mode: listeners are bound, nothing is
// served yet (see Serve).
func Start(ctx context.Context, cfg Config, log *slog.Logger) (*Daemon, error) {
	var assembly func(context.Context, Config, *slog.Logger, *Daemon) (parts, error)
	switch cfg.Mode {
	case Embedded:
		if cfg.Log.MySQL != "" {
			return nil, errors.New("--log-mysql shares the log between replicas; they must share the catalog too: add --catalog postgres://…")
		}
		if cfg.Replica.DSN != "" {
			return nil, errors.New("daemon: the embedded mode keeps its state under the data dir; Replica.DSN is for the replicated mode")
		}
		assembly = embedded
	case Replicated:
		if cfg.Replica.DSN == "" {
			return nil, errors.New("replicated mode keeps its state in PostgreSQL: set --catalog postgres://…")
		}
		assembly = replicated
	default:
		return nil, fmt.Errorf("daemon: mode %q: want %q or %q", cfg.Mode, Embedded, Replicated)
	}
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
	ks, err := keys.Load(ctx, keys.Config{Dir: filepath.Join(cfg.DataDir, "keys"), SigningKey: cfg.Keys.SigningKey, LogOrigin: cfg.Keys.LogOrigin})
	if err != nil {
		return nil, err
	}
	d.Keys = ks
	p, err := assembly(ctx, cfg, log, d)
	if err != nil {
		return nil, err
	}
	if err := d.assemble(ctx, cfg, log, p, cert, clientCAs, clientCACerts); err != nil {
		return nil, err
	}
	started = true
	return d, nil
}

// assemble builds what both assemblies share around their parts: the
// custody log, the evidence service (brought up to date with the log and
// checked against it), the server and the background loops.
func (d *Daemon) assemble(ctx context.Context, cfg Config, log *slog.Logger, p parts, cert tls.Certificate, clientCAs *x509.CertPool, clientCACerts []*x509.Certificate) error {
	ks := d.Keys
	logCfg := custodylog.Config{
		Backend: p.log, Signer: ks.LogSigner, Verifier: ks.LogVerifier, CheckpointInterval: cfg.Log.CheckpointInterval,
		BatchMaxAge: p.batchMaxAge,
	}
	var err error
	if logCfg.Witnesses, err = readWitnessPolicy(cfg.Log.WitnessPolicy); err != nil {
		return err
	}
	if logCfg.Authorities, err = readAuthorities(cfg.Log.TSA, cfg.Log.TSAChain); err != nil {
		return err
	}
	custodyLog, err := custodylog.Open(ctx, logCfg)
	if err != nil {
		return err
	}
	d.Log = custodyLog
	d.onClose(func() error {
		closeCtx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		return custodyLog.Close(closeCtx)
	})
	evCfg := cfg.Evidence
	if evCfg.ExtraRecipients, err = readRecipients(cfg.Keys.ExtraRecipients); err != nil {
		return err
	}
	evCfg.UploadDir = filepath.Join(cfg.DataDir, "upload-sessions")
	evCfg.StampWait = stampWait(cfg.Log)
	evCfg.HistoryWait = historyWait(cfg.Log)
	// The service's own re-verification (VerifyEvidence) checks what a
	// court would: the witnesses' quorum and the timestamps.
	evCfg.WitnessPolicy = logCfg.Witnesses
	for _, a := range logCfg.Authorities {
		evCfg.TSAChains = append(evCfg.TSAChains, a.Chain)
	}
	deps := evidence.Deps{
		Store: meteredStore{p.store}, Catalog: p.catalog, Log: custodyLog, Journal: p.journal, Locks: p.locks, Sessions: p.sessions,
		Receipts: receipt.NewSigner(keys.ReceiptSignFunc(ks.Receipt), ks.ReceiptKeyID),
		Identity: ks.Age, Logger: log,
		PublicKeys:            verify.Keys{LogVerifierKey: ks.LogVerifierKey, ReceiptPublicKeyPEM: ks.ReceiptPublicKeyPEM},
		OnCatalogDisagreement: func(op string) { catalogDisagreements.WithLabelValues(op).Inc() },
	}
	var serverLog server.Log = custodyLog
	if cfg.Faults != nil {
		cfg.Faults(&deps, &serverLog)
	}
	d.Evidence = evidence.New(deps, evCfg)
	replayed, err := d.Evidence.Replay(ctx)
	if err != nil {
		return fmt.Errorf("bringing the catalog up to date with the log: %w", err)
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
		return fmt.Errorf("checking the catalog against the log: %w", err)
	}
	log.Info("catalog checked against the log", "items", rec.Checked, "repaired", rec.Repaired, "unrepairable", rec.Unrepairable, "took", time.Since(began).Round(time.Millisecond))
	log.Info("custody log", "origin", custodyLog.Origin(), "verifier_key", ks.LogVerifierKey, "receipt_key_id", ks.ReceiptKeyID)
	srvCfg := cfg.Server
	if cfg.TLS.Revoked != "" {
		if srvCfg.Revocations, err = identity.NewRevocations(cfg.TLS.Revoked, clientCACerts, log); err != nil {
			return fmt.Errorf("--revoked: %w", err)
		}
	}
	srvCfg.CheckpointInterval, srvCfg.TimestampAuthorities = cfg.Log.CheckpointInterval, cfg.Log.TSA
	srvCfg.Certificate, srvCfg.ClientCAs, srvCfg.Logger = cert, clientCAs, log
	srvCfg.Keys = server.PublicKeys{
		LogVerifierKey: ks.LogVerifierKey, LogOrigin: custodyLog.Origin(), ReceiptPublicKeyPEM: ks.ReceiptPublicKeyPEM,
		ClientCAPEM: string(certs.EncodeCertificatesPEM(clientCACerts)),
	}
	if logCfg.Witnesses != nil {
		srvCfg.Keys.WitnessPolicy = string(logCfg.Witnesses.Text())
	}
	for _, a := range logCfg.Authorities {
		srvCfg.Keys.Authorities = append(srvCfg.Keys.Authorities, server.TimestampAuthority{URL: a.URL, ChainPEM: string(certs.EncodeCertificatesPEM(a.Chain))})
	}
	srvCfg.Evidence, srvCfg.Log = d.Evidence, serverLog
	srvCfg.Collectors = append(srvCfg.Collectors, scrubChecked, scrubMismatches, scrubLastRun, storageErrors, catalogDisagreements, catalogRepairs)
	if d.Server, err = server.New(ctx, srvCfg); err != nil {
		return err
	}
	d.loops = append(d.commonLoops(cfg.Loops, log), p.loops...)
	return nil
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
	certFile, keyFile, caFile := cfg.TLS.Cert, cfg.TLS.Key, cfg.TLS.ClientCA
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
