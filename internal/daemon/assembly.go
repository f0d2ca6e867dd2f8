package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/custody-dev/custody/catalog/sqlite"
	"github.com/custody-dev/custody/custodylog"
	"github.com/custody-dev/custody/custodylog/awslog"
	"github.com/custody-dev/custody/custodylog/posixlog"
	"github.com/custody-dev/custody/journal"
	"github.com/custody-dev/custody/local"
	"github.com/custody-dev/custody/postgres"
	"github.com/custody-dev/custody/storage"
	"github.com/custody-dev/custody/storage/disk"
	"github.com/custody-dev/custody/storage/s3"
)

// embedded is one custodyd with its state under the data dir.
func embedded(ctx context.Context, cfg Config, log *slog.Logger, d *Daemon) (p parts, err error) {
	// Evidence: S3 or local disk.
	if p.store, err = openStorage(ctx, cfg, log); err != nil {
		return p, err
	}
	// Catalog: SQLite.
	lite, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, "catalog.db"))
	if err != nil {
		return p, err
	}
	d.onClose(lite.Close)
	p.catalog = lite
	// Record journal: group-committed files.
	file, err := journal.OpenFile(filepath.Join(cfg.DataDir, "journal"), journal.WithLogger(log))
	if err != nil {
		return p, err
	}
	d.onClose(file.Close)
	p.journal = file
	// Item locks: in-process. Upload sessions: files.
	p.locks = local.NewLocks()
	p.sessions = local.Sessions{Dir: filepath.Join(cfg.DataDir, "upload-sessions")}
	// Log: POSIX.
	if p.log, err = posixLog(ctx, cfg); err != nil {
		return p, err
	}
	return p, nil
}

// replicated is a custodyd sharing its state with other replicas.
func replicated(ctx context.Context, cfg Config, log *slog.Logger, d *Daemon) (p parts, err error) {
	// Evidence: S3 (or local disk).
	if p.store, err = openStorage(ctx, cfg, log); err != nil {
		return p, err
	}
	// Catalog, record journal and upload sessions: PostgreSQL.
	pg, err := postgres.Open(ctx, cfg.Replica.DSN)
	if err != nil {
		return p, err
	}
	d.onClose(pg.Close)
	p.catalog, p.journal, p.sessions = pg, pg.Journal(), pg.Sessions()
	// Item locks: PostgreSQL advisory locks, on a pool of their own.
	locker, err := postgres.OpenLocker(ctx, cfg.Replica.DSN, cmp.Or(cfg.Replica.MaxHeldLocks, DefaultMaxHeldLocks))
	if err != nil {
		return p, err
	}
	d.onClose(locker.Close)
	p.locks = locker
	// Log: S3 tiles with MySQL sequencing, or POSIX for a single process.
	if cfg.Log.MySQL != "" {
		p.log, err = sharedLog(ctx, cfg)
		p.batchMaxAge = awslog.BatchMaxAge
	} else {
		p.log, err = posixLog(ctx, cfg)
	}
	if err != nil {
		return p, err
	}
	// Repair: catalog what a replica that died logged but did not catalog.
	p.loops = append(p.loops, loop{
		name: "repair", interval: cmp.Or(cfg.Loops.RepairInterval, DefaultRepairInterval),
		do: func(ctx context.Context) { d.repair(ctx, log) },
	})
	return p, nil
}

// openStorage returns S3 storage when --s3-endpoint is set, else local disk.
func openStorage(ctx context.Context, cfg Config, log *slog.Logger) (storage.Store, error) {
	s3cfg := cfg.Storage.S3
	if s3cfg.Endpoint == "" {
		return disk.New(filepath.Join(cfg.DataDir, "blobs"))
	}
	if s3cfg.Bucket == "" {
		return nil, errors.New("--s3-endpoint needs --s3-bucket")
	}
	s3cfg.OnRetry = func(err error) {
		log.Warn("evidence storage is not answering yet; waiting", "endpoint", s3cfg.Endpoint, "err", err)
	}
	return s3.New(ctx, s3cfg)
}

// posixLog is the custody log on files under the data dir.
func posixLog(ctx context.Context, cfg Config) (custodylog.Backend, error) {
	backend, err := posixlog.New(ctx, filepath.Join(cfg.DataDir, "log"))
	if err != nil {
		return backend, fmt.Errorf("log storage: %w", err)
	}
	return backend, nil
}

// sharedLog is the custody log replicas share: S3 tiles (Log.Bucket on
// the evidence S3 endpoint) with MySQL sequencing.
func sharedLog(ctx context.Context, cfg Config) (custodylog.Backend, error) {
	if cfg.Log.CheckpointInterval < awslog.MinCheckpointInterval {
		return custodylog.Backend{}, fmt.Errorf("a shared log publishes checkpoints at most once a second: set --checkpoint-interval to 1s or more (it is %s)", cfg.Log.CheckpointInterval)
	}
	s3cfg := cfg.Storage.S3
	backend, err := awslog.New(ctx, awslog.Config{
		S3Endpoint: s3cfg.Endpoint, Insecure: s3cfg.Insecure, Region: s3cfg.Region, AccessKey: s3cfg.AccessKey, SecretKey: s3cfg.SecretKey,
		Bucket: cfg.Log.Bucket, MySQLDSN: cfg.Log.MySQL, IdleTimeout: s3cfg.IdleTimeout,
	})
	if err != nil {
		return backend, fmt.Errorf("log storage: %w", err)
	}
	return backend, nil
}
