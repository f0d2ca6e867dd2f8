// Package ledger owns the journal → custody log → catalog write protocol:
// a record is journaled durably, appended to the log, awaited, its receipt
// signed, and projected into the catalog; replay at start (and resolve
// before an item's next event) settles records whose outcome is unknown.
// Its one call for writers is (*Writer).Append: a record in, the
// acknowledged event out. The custody rules, what a record says and what a
// receipt states belong to the caller (package evidence), which passes them
// in as a Domain.
//
// The journal's record bodies (journalrecord.go) are an on-disk format
// this package defines: journals written years ago are replayed through
// them.
package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/custody-dev/custody/canonicaljson"
	"github.com/custody-dev/custody/catalog"
	"github.com/custody-dev/custody/custodylog"
	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/failure"
	"github.com/custody-dev/custody/journal"
	"github.com/custody-dev/custody/receipt"
)

// Errors of the protocol; package evidence returns the same values.
var (
	// ErrUnavailable: the journal, the log or a lock cannot be had now; retry.
	ErrUnavailable error = failure.New(failure.Unavailable, "unavailable")
	// ErrNoSpace: the journal's or the log's disk is full; nothing was recorded.
	ErrNoSpace error = failure.New(failure.NoSpace, "no space")
	// ErrConflict: a concurrent change won; the caller may retry.
	ErrConflict error = failure.New(failure.Conflict, "conflict")
)

// Log is what the protocol needs of the custody log (package custodylog).
type Log interface {
	// Append adds an entry and returns once it is durably sequenced.
	Append(ctx context.Context, entry []byte) (custodylog.Appended, error)
	// Entry reads the entry at index from the tree of size treeSize.
	Entry(ctx context.Context, index, treeSize uint64) ([]byte, error)
	// Settled returns the log's size once everything sequenced is
	// integrated.
	Settled(ctx context.Context) (uint64, error)
	// Origin is the log's origin line.
	Origin() string
}

// Locker gives exclusive locks by key. The service holds an item's lock
// from reading the item's latest event, through the log append, to the
// catalog write, so two writers never link events to the same predecessor;
// upload sessions are locked the same way. Replicas must share one Locker
// (package postgres has one built on advisory locks): an in-process lock
// (package local) does not order writers in other processes.
type Locker interface {
	// Lock blocks until it holds key's lock or ctx ends, and returns the
	// function that releases it.
	Lock(ctx context.Context, key string) (unlock func(), err error)
	// Held checks that this process still holds key's lock. A lock kept
	// by a database session is lost with the session (a partition): the
	// service checks just before the log append, the step it cannot undo.
	Held(ctx context.Context, key string) error
}

// Domain is what the protocol asks of the service whose records it
// writes, for records it catalogs itself (replay) and receipts it signs.
type Domain interface {
	// Receipt is the statement signed for rec, logged at index with leaf
	// hash leaf; item is the new item's row for an ingest, else nil.
	Receipt(rec events.Record, item *catalog.Evidence, index uint64, leaf [32]byte) canonicaljson.Object
	// ReplayedItem is the row to catalog for an ingest being replayed:
	// row, as journaled, made to agree with what the logged ingest (entry
	// at index, committing to record) states.
	ReplayedItem(ctx context.Context, rec events.Record, record []byte, index uint64, entry []byte, row catalog.Evidence) catalog.Evidence
	// NextState applies a logged event to an item's custody state. A
	// logged record is a fact: the state follows it even when it breaks
	// the custody rules, and the error says which.
	NextState(st catalog.ItemState, rec events.Record) (catalog.ItemState, error)
}

// Config is a Writer's collaborators.
type Config struct {
	Journal  journal.Store
	Log      Log
	Catalog  catalog.Catalog
	Locks    Locker
	Receipts *receipt.Signer
	Domain   Domain
	Logger   *slog.Logger
	// LockWait bounds how long Lock waits (default 5s).
	LockWait time.Duration
}

// Writer writes records by the protocol.
type Writer struct {
	journal  journal.Store
	log      Log
	catalog  catalog.Catalog
	locks    Locker
	receipts *receipt.Signer
	domain   Domain
	logger   *slog.Logger
	lockWait time.Duration

	usersMu sync.Mutex
	users   map[string]int // key -> callers holding or waiting for its lock
}

// New returns a Writer.
func New(c Config) *Writer {
	if c.LockWait == 0 {
		c.LockWait = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return &Writer{
		journal: c.Journal, log: c.Log, catalog: c.Catalog, locks: c.Locks, receipts: c.Receipts, domain: c.Domain,
		logger: c.Logger, lockWait: c.LockWait, users: map[string]int{},
	}
}

// Projection is what the catalog holds once a record is logged: the new
// item's row for an ingest (sequence 0), or the item's custody state
// after any later event.
type Projection struct {
	Item  *catalog.Evidence
	State catalog.ItemState
}

// Event is an acknowledged record: in the log, its receipt signed, and
// (unless a failed catalog write left that to replay) in the catalog.
type Event struct {
	// Row is the event as cataloged: where the entry landed in the log
	// (LogIndex, LeafHash), the record's canonical bytes and the receipt.
	Row     catalog.Event
	Receipt receipt.Receipt
	// Entry is the log entry written.
	Entry []byte
}

// receiptAttempts is how often a receipt is tried for an ingest already in
// the log before the caller is told to fetch it later.
const receiptAttempts = 3

// Append writes rec by the protocol and returns the acknowledged event.
// An event on an existing item links to its predecessor, read under the
// item's lock (Lock), which the caller holds throughout, having resolved
// the item's earlier records first (Resolve). An ingest needs no lock:
// its id is new.
//
// Once the entry is in the log the work runs to its end whatever happens
// to the caller. For an ingest, only a receipt that cannot be signed is
// then an error (one naming the item, so it is not uploaded again): a
// failed catalog write is logged and repaired by replay, never reported
// as a failed upload that would invite another.
func (w *Writer) Append(ctx context.Context, rec events.Record, p Projection) (Event, error) {
	appended, entry, canon, key, err := w.appendRecord(ctx, rec, p.Item)
	if err != nil {
		return Event{}, err
	}
	// The record is in the log: catalog it even if the caller has gone.
	ctx = context.WithoutCancel(ctx)
	attempts := 1
	if p.Item != nil {
		attempts = receiptAttempts
	}
	var rcpt receipt.Receipt
	for attempt := 1; ; attempt++ {
		if rcpt, err = w.signReceipt(ctx, w.domain.Receipt(rec, p.Item, appended.Index, appended.LeafHash), appended.LeafHash); err == nil {
			break
		}
		if attempt == attempts && p.Item == nil {
			return Event{}, err
		}
		if attempt == attempts {
			// Replay catalogs the entry and signs its receipt later.
			w.logger.ErrorContext(ctx, "an ingest is logged but its receipt cannot be signed", "evidence_id", rec.EvidenceID, "log_index", appended.Index, "err", err)
			return Event{}, fmt.Errorf("%w: the item is stored and logged as %s (log index %d) but its receipt cannot be signed now; do not upload it again: its receipt comes with its bundle once the service can sign", ErrUnavailable, rec.EvidenceID, appended.Index)
		}
		time.Sleep(time.Duration(attempt) * 100 * time.Millisecond)
	}
	e := catalog.Event{
		EvidenceID: rec.EvidenceID, Seq: rec.Sequence, Type: string(rec.Type), RecordedAt: rec.RecordedAt,
		LogIndex: appended.Index, LeafHash: appended.LeafHash, Record: canon,
		ReceiptPayload: rcpt.Payload, ReceiptSignature: rcpt.Signature, ReceiptKeyID: rcpt.KeyID,
	}
	ev := Event{Row: e, Receipt: rcpt, Entry: entry}
	if p.Item != nil {
		row := *p.Item
		row.LastSeq, row.LastLogIndex, row.LastLeafHash = 0, appended.Index, appended.LeafHash
		if err := w.catalog.AddEvidence(ctx, row, e); err != nil {
			// With replicas, the repair loop may have cataloged this very
			// entry between the append and here. That is success, and so
			// is any other failure here: the entry is in the log and its
			// record in the journal, so replay catalogs it.
			if !errors.Is(err, catalog.ErrExists) || !w.ingestedAt(ctx, rec.EvidenceID, appended) {
				w.repairIngest(ctx, rec.EvidenceID, appended, err)
			}
			return ev, nil
		}
	} else if ac, ok := w.catalog.(asyncCatalog); ok {
		// The catalog shows the event to every read from now on; its
		// commit is not awaited. If it fails, the record stays
		// unresolved in the journal, and the item's next event (Resolve)
		// or the next start (Replay) catalogs the entry from the log.
		err := ac.AddEventAsync(e, rec.Sequence-1, p.State, func(err error) {
			if err != nil {
				w.logger.ErrorContext(ctx, "an event is logged but its catalog write failed; it is cataloged from the log before the item's next event", "evidence_id", rec.EvidenceID, "seq", rec.Sequence, "log_index", appended.Index, "err", err)
				return
			}
			w.resolveCataloged(ctx, key)
		})
		if err != nil {
			return Event{}, catalogError(rec, err)
		}
		return ev, nil
	} else if err := w.catalog.AddEvent(ctx, e, rec.Sequence-1, p.State); err != nil {
		return Event{}, catalogError(rec, err)
	}
	w.resolveCataloged(ctx, key)
	return ev, nil
}

// appendRecord journals a record (with the new item's row, for an ingest),
// then writes its entry to the log, and returns where it landed, the
// entry, the record's canonical bytes and its journal key.
func (w *Writer) appendRecord(ctx context.Context, rec events.Record, item *catalog.Evidence) (custodylog.Appended, []byte, []byte, string, error) {
	if err := rec.Validate(); err != nil {
		return custodylog.Appended{}, nil, nil, "", err
	}
	canon, err := rec.Canonical()
	if err != nil {
		return custodylog.Appended{}, nil, nil, "", err
	}
	entry, err := rec.EntryOf(canon)
	if err != nil {
		return custodylog.Appended{}, nil, nil, "", err
	}
	jr := journalRecord{Kind: kindEvent, Record: canon}
	if item != nil {
		jr.Kind, jr.Item = kindItem, newJournalItem(*item)
	}
	key := sha256Hex(canon)
	jrec := journal.Record{Key: key, EvidenceID: rec.EvidenceID, Seq: rec.Sequence}
	log, starter := w.log.(readyAppender)
	jstart, ok := w.journal.(journal.Starter)
	var appended custodylog.Appended
	if ok && starter {
		// The record is journaled while its entry waits in the log's
		// batch: the batch hands the entry to the log only once the
		// record is durable (custodylog.Log.AppendWhenReady).
		durable, err := w.journalStart(ctx, jstart, jrec, jr)
		if err != nil {
			return custodylog.Appended{}, nil, nil, "", err
		}
		if err := w.lockStillHeld(ctx, rec); err != nil {
			// The record goes out anyway; unreferenced by the log, it is
			// never used.
			return custodylog.Appended{}, nil, nil, "", err
		}
		// Others waiting for the item's lock wait for this entry to be
		// sequenced: it does not wait for its batch to gather.
		appended, err = log.AppendWhenReady(context.WithoutCancel(ctx), entry, durable, w.contended(rec.EvidenceID))
		var nr *custodylog.NotReadyError
		if errors.As(err, &nr) {
			return custodylog.Appended{}, nil, nil, "", w.journalError(ctx, nr.Err)
		}
		if err != nil {
			return custodylog.Appended{}, nil, nil, "", logError(err)
		}
		return appended, entry, canon, key, nil
	}
	if err := w.journalPut(ctx, jrec, jr, true); err != nil {
		return custodylog.Appended{}, nil, nil, "", err
	}
	if err := w.lockStillHeld(ctx, rec); err != nil {
		return custodylog.Appended{}, nil, nil, "", err
	}
	// Once journaled, the append runs to its end whatever happens to the
	// caller: an append abandoned half-way could land after the item's
	// lock is released, beside the next writer's event.
	appended, err = w.log.Append(context.WithoutCancel(ctx), entry)
	if err != nil {
		return custodylog.Appended{}, nil, nil, "", logError(err)
	}
	return appended, entry, canon, key, nil
}

// asyncCatalog is a Catalog that can take an event without the caller
// waiting for its commit, every later read seeing it (catalog/sqlite).
type asyncCatalog interface {
	AddEventAsync(e catalog.Event, prevSeq uint64, state catalog.ItemState, done func(error)) error
}

func catalogError(rec events.Record, err error) error {
	if errors.Is(err, catalog.ErrConflict) {
		return fmt.Errorf("%w: another event was recorded for %s at the same time; retry", ErrConflict, rec.EvidenceID)
	}
	return err
}

// readyAppender is a Log that takes an entry whose record is still being
// journaled (custodylog.Log.AppendWhenReady).
type readyAppender interface {
	AppendWhenReady(ctx context.Context, entry []byte, ready <-chan error, urgent bool) (custodylog.Appended, error)
}

// lockStillHeld checks, for an event on an existing item, that the item's
// lock is still the caller's: the event links to the predecessor read
// under it, and the log append is the step that cannot be undone.
func (w *Writer) lockStillHeld(ctx context.Context, rec events.Record) error {
	if rec.Sequence == 0 {
		return nil
	}
	if err := w.locks.Held(ctx, rec.EvidenceID); err != nil {
		return wrapCause(ErrUnavailable, err, "the item's lock was lost; nothing was logged; retry")
	}
	return nil
}

// logError is what the caller reads of a failed log append.
func logError(err error) error {
	if diskFull(err) {
		return wrapCause(ErrNoSpace, err, "the log's disk is full; the event was not recorded")
	}
	return wrapCause(ErrUnavailable, err, "the custody log cannot take the event now; nothing was logged; retry later")
}

// repairIngest catalogs a logged ingest whose catalog write failed, by
// replaying the log now; if that fails too, the next replay (at start, or
// the replicas' repair loop) does.
func (w *Writer) repairIngest(ctx context.Context, id string, a custodylog.Appended, cause error) {
	w.logger.ErrorContext(ctx, "an ingest is logged but its catalog write failed; replaying it from the journal", "evidence_id", id, "log_index", a.Index, "err", cause)
	if _, err := w.Replay(ctx); err != nil || !w.ingestedAt(ctx, id, a) {
		w.logger.ErrorContext(ctx, "a logged ingest is not cataloged yet; the next replay catalogs it", "evidence_id", id, "log_index", a.Index, "err", err)
	}
}

// ingestedAt reports whether item id's ingest event is the log entry a.
func (w *Writer) ingestedAt(ctx context.Context, id string, a custodylog.Appended) bool {
	evs, err := w.catalog.Events(ctx, id)
	return err == nil && len(evs) > 0 && evs[0].LogIndex == a.Index && evs[0].LeafHash == a.LeafHash
}

// Lock takes key's lock (an item's id, or an upload session's key), in
// this process or across replicas, depending on the Locker.
// A caller waits at most Config.LockWait for it: under load the queue on
// one item must not grow without bound, so a caller that cannot get in
// soon is told to retry (ErrUnavailable).
func (w *Writer) Lock(ctx context.Context, key string) (func(), error) {
	wait, cancel := context.WithTimeout(ctx, w.lockWait)
	defer cancel()
	w.lockUsers(key, 1)
	unlock, err := w.locks.Lock(wait, key)
	if err != nil {
		w.lockUsers(key, -1)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if wait.Err() != nil {
			return nil, fmt.Errorf("%w: %s is busy with other changes (waited %v); retry shortly", ErrUnavailable, key, w.lockWait)
		}
		return nil, wrapCause(ErrUnavailable, err, "the lock on %s cannot be taken; retry shortly", key)
	}
	return func() { unlock(); w.lockUsers(key, -1) }, nil
}

// lockUsers counts the callers of Lock in this process holding or
// waiting for key's lock.
func (w *Writer) lockUsers(key string, n int) {
	w.usersMu.Lock()
	defer w.usersMu.Unlock()
	if w.users[key] += n; w.users[key] <= 0 {
		delete(w.users, key)
	}
}

// contended reports whether others in this process wait for key's lock.
func (w *Writer) contended(key string) bool {
	w.usersMu.Lock()
	defer w.usersMu.Unlock()
	return w.users[key] > 1
}

// diskFull reports an ENOSPC, also where a dependency (Tessera's POSIX
// driver) flattened the error into its message.
func diskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), syscall.ENOSPC.Error())
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// wrapCause returns an error of sentinel's kind that the caller reads as
// "<sentinel>: <format>" and the log reads with cause: the way to report
// an internal error (a path, SQL, a driver's or library's text) without
// showing it to the caller.
func wrapCause(sentinel, cause error, format string, args ...any) error {
	return failure.Wrap(failure.KindOf(sentinel), sentinel.Error()+": "+fmt.Sprintf(format, args...), cause)
}
