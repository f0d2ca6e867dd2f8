// Package custodylog owns the append-only custody log: a Tessera tile-based
// transparency log (C2SP tlog-tiles, RFC 6962 hashing) with checkpoints
// signed as C2SP signed notes. It appends opaque entries and reads back
// checkpoints, tiles, entries and proofs; what an entry means belongs to
// package events.
//
// The log does not choose where it is kept: it runs on a Backend, a
// Tessera driver with what the log needs besides, built by a driver
// package — posixlog (files on local disk, one appending process) or
// awslog (S3 tiles and MySQL sequencing, shared by replicas) — so that
// neither this package nor its readers depend on the engines' clients.
package custodylog

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/transparency-dev/tessera"
	"golang.org/x/mod/sumdb/note"

	"github.com/custody-dev/custody/historymap"
	"github.com/custody-dev/custody/witness"
)

// DefaultBatchMaxAge is Config.BatchMaxAge's default.
const DefaultBatchMaxAge = 10 * time.Millisecond

// MaxEntrySize is the largest entry the log takes (C2SP tlog-tiles).
const MaxEntrySize = tessera.DefaultEntrySizeLimit

// ErrEntryTooLarge is returned for an entry over MaxEntrySize.
var ErrEntryTooLarge = errors.New("log entry too large")

// Backend is the storage a log runs on, as a driver package builds it.
type Backend struct {
	// Driver is the Tessera storage driver (posix.New, aws.New, …).
	Driver tessera.Driver
	// CheckpointTime tells when the checkpoint was last written
	// (republished unchanged or not): readiness and metrics take the
	// checkpoint's age from it.
	CheckpointTime func(context.Context) (time.Time, error)
	// WrapReader, if set, wraps the reader Tessera returns for the
	// driver, so that a missing resource is os.ErrNotExist whatever
	// the engine calls it (partial-tile fallbacks and 404s need it).
	WrapReader func(tessera.LogReader) tessera.LogReader
	// Annex keeps the log's own small files beside the driver's (the
	// checkpoints' timestamps).
	Annex Annex
}

// Annex is a small key-value file store beside the log. Names are
// slash-separated paths of [a-z0-9.-] segments.
type Annex interface {
	// Read returns the named file, or an error wrapping os.ErrNotExist.
	Read(ctx context.Context, name string) ([]byte, error)
	// Write replaces the named file as a whole (readers see the old or
	// the new content, never a mix).
	Write(ctx context.Context, name string, data []byte) error
}

// Config configures a log.
type Config struct {
	// Backend is the storage the log runs on (see packages posixlog and
	// awslog).
	Backend Backend
	// Signer signs checkpoints; its name is the log's origin. Verifier
	// checks them.
	Signer   note.Signer
	Verifier note.Verifier
	// CheckpointInterval is how often a new checkpoint is published
	// (at least 100ms; the backend may require more).
	CheckpointInterval time.Duration
	// BatchMaxAge bounds how long an entry waits to be sequenced with
	// others (default 10ms; negative: no wait, a batch is what arrived
	// while the previous one was handed over). The log gathers batches
	// itself (batcher.go).
	BatchMaxAge time.Duration
	// Witnesses, if set, are asked to cosign each new checkpoint (C2SP
	// tlog-witness) before it is published; the cosignatures become extra
	// signature lines of the published checkpoint. A witness that is down
	// or slower than WitnessTimeout (default the checkpoint interval,
	// at least a second) does not stop publication: the checkpoint goes
	// out with the cosignatures that came, and the next one catches the
	// witness up.
	Witnesses      *witness.Policy
	WitnessTimeout time.Duration
	// Authorities, if set, timestamp each new checkpoint (RFC 3161), at
	// most one request to each per checkpoint interval; see Timestamped.
	Authorities []Authority
	// NoHistoryMap turns off the history map (docs/HISTORY_MAP.md), which
	// is on by default: this process follows the log and commits, at most
	// once per checkpoint interval, to the map from each item to its
	// last entry; see HistoryProof. Off, bundles cannot prove their
	// history complete.
	NoHistoryMap bool
}

// Log is an open custody log. How many processes may append to the same
// log is the backend's to say.
type Log struct {
	batcher  *batcher
	shutdown func(context.Context) error
	reader   tessera.LogReader
	origin   string
	verifier note.Verifier
	cancel   context.CancelFunc
	// checkpointTime tells when the checkpoint was last written.
	checkpointTime func(context.Context) (time.Time, error)
	witnesses      *witnessLag // nil: no witnesses
	stamper        *stamper    // nil: no timestamp authorities
	mapper         *mapper     // nil: no history map
	stopMapper     context.CancelFunc
	mapperDone     chan struct{}
}

// Open opens (creating if needed) the log on cfg.Backend. The log's
// background work (integration, checkpoint publishing) runs until Close,
// whatever happens to ctx: Close must be able to publish a final
// checkpoint.
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
	b := cfg.Backend
	if b.Driver == nil || b.CheckpointTime == nil {
		return nil, errors.New("log storage: the backend has no driver or no checkpoint time")
	}
	if cfg.BatchMaxAge == 0 {
		cfg.BatchMaxAge = DefaultBatchMaxAge
	}
	cfg.BatchMaxAge = max(cfg.BatchMaxAge, 0)
	opts := tessera.NewAppendOptions().
		WithCheckpointSigner(cfg.Signer).
		WithCheckpointInterval(cfg.CheckpointInterval).
		// Republish an unchanged checkpoint now and then, so its age tells
		// a stuck log from an idle one (readiness, metrics).
		WithCheckpointRepublishInterval(max(5*cfg.CheckpointInterval, time.Second)).
		WithBatching(maxBatch, tesseraMaxAge).
		WithPushback(64 << 10)
	var wl *witnessLag
	if cfg.Witnesses != nil && !cfg.Witnesses.RequiresNone() {
		group, err := tessera.NewWitnessGroupFromPolicy(cfg.Witnesses.Text())
		if err != nil {
			return nil, fmt.Errorf("witness policy: %w", err)
		}
		timeout := cfg.WitnessTimeout
		if timeout == 0 {
			timeout = max(cfg.CheckpointInterval, time.Second)
		}
		opts.WithWitnesses(group, &tessera.WitnessOptions{Timeout: timeout, FailOpen: true})
		wl = &witnessLag{policy: cfg.Witnesses, last: map[string]uint64{}}
	}
	appender, shutdown, reader, err := tessera.NewAppender(ctx, b.Driver, opts)
	if err != nil {
		return nil, fmt.Errorf("log appender: %w", err)
	}
	if b.WrapReader != nil {
		reader = b.WrapReader(reader)
	}
	l := &Log{batcher: newBatcher(appender, cfg.BatchMaxAge), shutdown: shutdown, reader: reader, origin: cfg.Signer.Name(), verifier: cfg.Verifier, checkpointTime: b.CheckpointTime, witnesses: wl}
	if len(cfg.Authorities) > 0 {
		if b.Annex == nil {
			return nil, errors.New("log storage: the backend keeps no annex for timestamps")
		}
		l.stamper = newStamper(b.Annex, cfg.Authorities, l)
		go l.stamper.run(ctx, max(cfg.CheckpointInterval, 100*time.Millisecond))
	}
	if !cfg.NoHistoryMap {
		l.mapper = &mapper{log: l, builder: historymap.NewBuilder()}
		mctx, stop := context.WithCancel(ctx)
		l.stopMapper, l.mapperDone = stop, make(chan struct{})
		go func() {
			defer close(l.mapperDone)
			l.mapper.run(mctx, max(cfg.CheckpointInterval, 100*time.Millisecond))
		}()
	}
	return l, nil
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
	return l.AppendWhenReady(ctx, entry, nil, false)
}

// AppendWhenReady is Append of an entry that may go into the log only
// once ready yields nil (a nil ready is ready now): the entry joins the
// current batch at once, and the batch waits for it to be ready before
// it goes to Tessera. If ready yields an error, the entry is not
// appended and the error is a *NotReadyError wrapping it.
//
// Package ledger hands over an entry this way while its record is being
// journaled, so the journal's write and the batch's gathering overlap,
// and no entry is ever in the log before its record is durable.
//
// An urgent entry does not wait for the batch to gather: the batch goes
// as soon as its entries are ready. Package ledger marks urgent the event
// of an item other writers are waiting for (a hot item), whose lock is
// held until the entry is sequenced.
func (l *Log) AppendWhenReady(ctx context.Context, entry []byte, ready <-chan error, urgent bool) (Appended, error) {
	if len(entry) > MaxEntrySize {
		return Appended{}, fmt.Errorf("%w: %d bytes, at most %d", ErrEntryTooLarge, len(entry), MaxEntrySize)
	}
	future, err := l.batcher.add(entry, ready, urgent)
	if err != nil {
		var nr *NotReadyError
		if errors.As(err, &nr) {
			return Appended{}, err
		}
		return Appended{}, fmt.Errorf("log append: %w", err)
	}
	idx, err := future()
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

// Backlog is how many entries are sequenced (their appends acknowledged)
// but not yet integrated into the tree.
func (l *Log) Backlog(ctx context.Context) (uint64, error) {
	next, err := l.reader.NextIndex(ctx)
	if err != nil {
		return 0, err
	}
	integrated, err := l.reader.IntegratedSize(ctx)
	if err != nil {
		return 0, err
	}
	if next < integrated {
		return 0, fmt.Errorf("the log reads %d entries integrated but only %d sequenced", integrated, next)
	}
	return next - integrated, nil
}

// Reader gives the raw tile, entry bundle and checkpoint reads.
func (l *Log) Reader() tessera.LogReader { return l.reader }

// Close flushes pending work and stops the appender.
func (l *Log) Close(ctx context.Context) error {
	defer l.cancel()
	if l.mapper != nil {
		l.stopMapper()
		<-l.mapperDone
	}
	l.batcher.close()
	return l.shutdown(ctx)
}
