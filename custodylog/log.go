// Package custodylog owns the append-only custody log: a Tessera tile-based
// transparency log (C2SP tlog-tiles, RFC 6962 hashing) with checkpoints
// signed as C2SP signed notes. It appends opaque entries and reads back
// checkpoints, tiles, entries and proofs; what an entry means belongs to
// package events.
package custodylog

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"
)

// MaxEntrySize is the largest entry the log takes (C2SP tlog-tiles).
const MaxEntrySize = tessera.DefaultEntrySizeLimit

// ErrEntryTooLarge is returned for an entry over MaxEntrySize.
var ErrEntryTooLarge = errors.New("log entry too large")

// Config configures a log.
type Config struct {
	// Dir is the POSIX log folder (<data-dir>/log), used unless Shared is
	// set.
	Dir string
	// Shared, if set, puts the log on S3 and a MySQL-compatible database
	// for several replicas (see Shared).
	Shared *Shared
	// Signer signs checkpoints; its name is the log's origin. Verifier
	// checks them.
	Signer   note.Signer
	Verifier note.Verifier
	// CheckpointInterval is how often a new checkpoint is published
	// (at least 100ms).
	CheckpointInterval time.Duration
	// BatchMaxAge bounds how long an entry waits to be sequenced with
	// others (default 10ms).
	BatchMaxAge time.Duration
}

// Log is an open custody log. Only one process may append to a POSIX log
// folder; any number may append to a Shared log.
type Log struct {
	appender *tessera.Appender
	shutdown func(context.Context) error
	reader   tessera.LogReader
	origin   string
	verifier note.Verifier
	cancel   context.CancelFunc
	// checkpointTime tells when the checkpoint was last written.
	checkpointTime func(context.Context) (time.Time, error)
}

// Open opens (creating if needed) the log in cfg.Dir. The log's background
// work (integration, checkpoint publishing) runs until Close, whatever
// happens to ctx: Close must be able to publish a final checkpoint.
func Open(ctx context.Context, cfg Config) (*Log, error) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l, err := open(ctx, cfg)
	if err != nil {
		cancel()
		return nil, err
	}
	l.cancel = cancel
	return l, nil
}

func open(ctx context.Context, cfg Config) (*Log, error) {
	var driver tessera.Driver
	var checkpointTime func(context.Context) (time.Time, error)
	var err error
	if cfg.Shared != nil {
		if cfg.CheckpointInterval < time.Second {
			return nil, fmt.Errorf("a shared log publishes checkpoints at most once a second: set --checkpoint-interval to 1s or more (it is %s)", cfg.CheckpointInterval)
		}
		driver, checkpointTime, err = sharedDriver(ctx, *cfg.Shared)
	} else {
		driver, err = posix.New(ctx, posix.Config{Path: cfg.Dir})
		checkpointTime = func(context.Context) (time.Time, error) {
			info, err := os.Stat(filepath.Join(cfg.Dir, "checkpoint"))
			if err != nil {
				return time.Time{}, err
			}
			return info.ModTime(), nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("log storage: %w", err)
	}
	if cfg.BatchMaxAge == 0 {
		cfg.BatchMaxAge = 10 * time.Millisecond
	}
	opts := tessera.NewAppendOptions().
		WithCheckpointSigner(cfg.Signer).
		WithCheckpointInterval(cfg.CheckpointInterval).
		// Republish an unchanged checkpoint now and then, so its age tells
		// a stuck log from an idle one (readiness, metrics).
		WithCheckpointRepublishInterval(max(5*cfg.CheckpointInterval, time.Second)).
		WithBatching(1024, cfg.BatchMaxAge).
		WithPushback(64 << 10)
	appender, shutdown, reader, err := tessera.NewAppender(ctx, driver, opts)
	if err != nil {
		return nil, fmt.Errorf("log appender: %w", err)
	}
	if cfg.Shared != nil {
		reader = notExistReader{reader}
	}
	return &Log{appender: appender, shutdown: shutdown, reader: reader, origin: cfg.Signer.Name(), verifier: cfg.Verifier, checkpointTime: checkpointTime}, nil
}

// Origin is the log's origin line.
func (l *Log) Origin() string { return l.origin }

// Appended is where an entry landed.
type Appended struct {
	Index    uint64
	LeafHash [32]byte
}

// Append adds entry and returns once the log has durably sequenced it: the
// index is final and survives a crash. Inclusion in a published checkpoint
// follows within about one checkpoint interval.
func (l *Log) Append(ctx context.Context, entry []byte) (Appended, error) {
	if len(entry) > MaxEntrySize {
		return Appended{}, fmt.Errorf("%w: %d bytes, at most %d", ErrEntryTooLarge, len(entry), MaxEntrySize)
	}
	idx, err := l.appender.Add(ctx, tessera.NewEntry(entry))()
	if err != nil {
		return Appended{}, fmt.Errorf("log append: %w", err)
	}
	return Appended{Index: idx.Index, LeafHash: LeafHash(entry)}, nil
}

// LeafHash is the RFC 6962 leaf hash: SHA-256(0x00 || entry).
func LeafHash(entry []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(entry)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// Checkpoint returns the latest published signed checkpoint.
func (l *Log) Checkpoint(ctx context.Context) ([]byte, error) {
	return l.reader.ReadCheckpoint(ctx)
}

// Settled waits until the log has integrated everything sequenced when it
// was called (after a restart, what was sequenced before it; with
// replicas, what any of them had sequenced), and returns the integrated
// size. Entries sequenced meanwhile are not waited for: under steady load
// the log never catches up with a moving target.
func (l *Log) Settled(ctx context.Context) (uint64, error) {
	target, err := l.reader.NextIndex(ctx)
	if err != nil {
		return 0, err
	}
	deadline := time.Now().Add(time.Minute)
	for {
		integrated, err := l.reader.IntegratedSize(ctx)
		if err != nil {
			return 0, err
		}
		if integrated >= target {
			return integrated, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("the log integrated %d of %d entries within a minute", integrated, target)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Reader gives the raw tile, entry bundle and checkpoint reads.
func (l *Log) Reader() tessera.LogReader { return l.reader }

// Close flushes pending work and stops the appender.
func (l *Log) Close(ctx context.Context) error {
	defer l.cancel()
	return l.shutdown(ctx)
}
