// Package evidence owns the life of an evidence item inside the service:
// the custody rules every event is checked against (events.State.Next,
// before anything is logged), ingest (validate, hash while streaming to
// storage, seal, then record), reads that re-verify every byte against the
// log, resumable uploads, seizure records, bundles, scrub and readiness.
// Its Item is its own type, made from a catalog row at the boundary
// (itemOf); Event still carries the catalog's event row. It does not
// write the journal, the log or the catalog's events itself: package
// ledger does, by the write protocol. It knows nothing of gRPC: errors
// are failure.Errors (the sentinels below are of their kinds), which the
// RPC layer maps to status codes.
package evidence

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"filippo.io/age"

	"github.com/custody-dev/custody/catalog"
	"github.com/custody-dev/custody/custodylog"
	"github.com/custody-dev/custody/failure"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/journal"
	"github.com/custody-dev/custody/ledger"
	"github.com/custody-dev/custody/local"
	"github.com/custody-dev/custody/receipt"
	"github.com/custody-dev/custody/storage"
	"github.com/custody-dev/custody/verify"
	"github.com/custody-dev/custody/witness"
)

// Errors of this package, each a failure.Error of its kind. Messages wrapping
// them are written for the caller; internal errors go in a failure.Wrap
// cause, never into the message.
var (
	// ErrInvalid: the request is malformed (bad metadata, wrong digest).
	ErrInvalid error = failure.New(failure.Invalid, "invalid request")
	// ErrDigestMismatch: the bytes do not hash to the declared SHA-256.
	ErrDigestMismatch = fmt.Errorf("%w: SHA-256 mismatch", ErrInvalid)
	// ErrTruncated: the stream ended before the declared size.
	ErrTruncated error = failure.New(failure.Truncated, "upload stream ended early")
	// ErrTooLarge: over the configured limit, or more bytes than declared.
	ErrTooLarge error = failure.New(failure.TooLarge, "too large")
	// ErrNotFound: no such item.
	ErrNotFound error = failure.New(failure.NotFound, "not found")
	// ErrCorrupt: stored bytes no longer match their recorded digest.
	ErrCorrupt error = failure.New(failure.Corrupt, "stored evidence does not match its recorded digest")
	// ErrUnavailable: storage or the log cannot be reached now; retry.
	ErrUnavailable = ledger.ErrUnavailable
	// ErrNoSpace: storage or the data dir is full; nothing was kept.
	ErrNoSpace = ledger.ErrNoSpace
	// ErrFailedPrecondition: the item is not in a state that allows this.
	ErrFailedPrecondition error = failure.New(failure.FailedPrecondition, "failed precondition")
	// ErrCatalogDisagrees: an item's catalog row disagrees with what its
	// logged ingest commits to (the catalog was edited or damaged); the
	// service refuses to act on the row until it is repaired from the log.
	ErrCatalogDisagrees error = failure.New(failure.Inconsistent, "the catalog disagrees with the custody log")
)

// Log is what the service needs of the custody log (package custodylog
// is the implementation; a distributed one can take its place).
type Log interface {
	// Append adds an entry and returns once it is durably sequenced.
	Append(ctx context.Context, entry []byte) (custodylog.Appended, error)
	// Entry reads the entry at index from the tree of size treeSize.
	Entry(ctx context.Context, index, treeSize uint64) ([]byte, error)
	// Entries reads the entries at indexes (ascending) from the tree of
	// size treeSize, each entry bundle once.
	Entries(ctx context.Context, indexes []uint64, treeSize uint64) ([][]byte, error)
	// Settled returns the log's size once everything sequenced is
	// integrated.
	Settled(ctx context.Context) (uint64, error)
	// Origin is the log's origin line.
	Origin() string
	// Latest is the latest signed checkpoint, verified.
	Latest(ctx context.Context) (custodylog.Published, error)
	// Timestamped is the newest timestamped checkpoint, if it includes
	// the entry at index (ok false if none does, or the log has no
	// timestamp authorities).
	Timestamped(ctx context.Context, index uint64) (s custodylog.Stamped, ok bool, err error)
	// PublishedAt is when the latest checkpoint was written.
	PublishedAt(ctx context.Context) (time.Time, error)
	// InclusionProof and ConsistencyProof prove against a tree size.
	InclusionProof(ctx context.Context, index, treeSize uint64) ([][]byte, error)
	ConsistencyProof(ctx context.Context, first, second uint64) ([][]byte, error)
	// HistoryProof proves the item's leaf in the newest history map whose
	// commitment a tree of treeSize includes (ok false: none, or no leaf
	// for the item).
	HistoryProof(ctx context.Context, evidenceID string, treeSize uint64) (custodylog.HistoryProof, bool, error)
}

// DefaultMaxUploadBytes and DefaultRetention are Config's defaults for
// MaxUploadBytes and Retention.
const (
	DefaultMaxUploadBytes = 64 << 30
	DefaultRetention      = 10 * 365 * 24 * time.Hour
)

// Config tunes the service.
type Config struct {
	// WitnessPolicy and TSAChains, when the log has witnesses and
	// timestamp authorities, are given to the verifier when the service
	// re-verifies an item (VerifyStored), as a court would give them.
	WitnessPolicy *witness.Policy
	TSAChains     [][]*x509.Certificate
	// StampWait is how long a bundle waits for a timestamped checkpoint
	// to cover the item's last event before it settles for one without a
	// timestamp (0: it does not wait; set it when the log has timestamp
	// authorities).
	StampWait time.Duration
	// HistoryWait is how long a bundle waits for a checkpoint that covers
	// a history-map commitment covering the item's last event (which lets
	// the bundle prove its history complete up to that event) before it
	// settles for an older commitment or none (0: it does not wait).
	HistoryWait time.Duration
	// MaxUploadBytes is the largest item accepted (default 64 GiB).
	MaxUploadBytes int64
	// MaxBundleEvents is the longest history served as one bundle
	// document (default MaxBundleEvents); longer ones stream.
	MaxBundleEvents int
	// Retention is how long stored objects are kept write-once (default
	// 10 years).
	Retention time.Duration
	// EncryptAll encrypts every item at rest, not only special categories.
	EncryptAll bool
	// ExtraRecipients also receive encrypted items (e.g. a prosecutor).
	ExtraRecipients []age.Recipient
	// ReleaseTTL is how long a release waits to be accepted (default 72h).
	ReleaseTTL time.Duration
	// SpecialReaders are the roles that may read special-category content
	// and records besides the item's current custodian (default: court).
	SpecialReaders []identity.Role
	// RequireAuthority makes every content read cite an authority.
	RequireAuthority bool
	// LockWait bounds how long a change waits for its item's lock
	// (default 5s).
	LockWait time.Duration
	// UploadDir keeps resumable upload sessions when Deps.Sessions is nil
	// (their bytes are in the store); UploadTTL is how long an unfinished
	// one is kept (default 24h).
	UploadDir string
	UploadTTL time.Duration
	// UploadPartSize is the size of a resumable upload's staged parts
	// (default DefaultUploadPartSize; at least the store's minimum), and
	// UploadBuffers how many part buffers the service lends its
	// resumable streams beyond one each (default DefaultUploadBuffers):
	// resumable streams hold at most UploadPartSize × (streams +
	// UploadBuffers) in part buffers.
	UploadPartSize int
	UploadBuffers  int
}

// Service is the evidence domain service.
type Service struct {
	store    storage.Store
	catalog  catalog.Catalog
	log      Log
	ledger   *ledger.Writer // writes every record: journal, log, catalog
	sessions UploadSessions
	identity *age.X25519Identity
	keys     verify.Keys
	cfg      Config
	logger   *slog.Logger
	now      func() time.Time
	// ingests caches what items' logged ingests commit to (logbinding.go);
	// logSize is an integrated log size known to this process.
	ingests factsCache
	logSize atomic.Uint64
	// disagreed hears of each catalog row found disagreeing with the log.
	disagreed func(op string)
	// observers keep what paused upload sessions' bytes said; lent holds
	// a token for each part buffer lent to a resumable stream; partBufs
	// keeps part buffers for reuse (resumable.go).
	observers observerCache
	lent      chan struct{}
	partBufs  chan []byte
}

// Deps are the service's collaborators.
type Deps struct {
	Store   storage.Store
	Catalog catalog.Catalog
	Log     Log
	Journal journal.Store
	// Locks serialise work on one item or upload session; nil means
	// in-process locks (one custodyd). Replicas share a database's.
	Locks Locker
	// Sessions keep resumable upload sessions; nil means files in
	// Config.UploadDir (one custodyd). Replicas share a database's.
	Sessions UploadSessions
	Receipts *receipt.Signer
	// Identity decrypts special-category items; its recipient encrypts them.
	Identity *age.X25519Identity
	Logger   *slog.Logger
	// PublicKeys go into bundles as hints.
	PublicKeys verify.Keys
	// OnCatalogDisagreement, if set, is called with where it was found
	// (read, verify, scrub, ingest, replay, start) each time an item's catalog row
	// is found disagreeing with its logged ingest: for metrics.
	OnCatalogDisagreement func(op string)
}

// New returns a Service.
func New(d Deps, cfg Config) *Service {
	if cfg.MaxUploadBytes == 0 {
		cfg.MaxUploadBytes = DefaultMaxUploadBytes
	}
	if cfg.SpecialReaders == nil {
		cfg.SpecialReaders = []identity.Role{identity.RoleCourt}
	}
	if cfg.LockWait == 0 {
		cfg.LockWait = 5 * time.Second
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Locks == nil {
		d.Locks = local.NewLocks()
	}
	if d.Sessions == nil {
		d.Sessions = local.Sessions{Dir: cfg.UploadDir}
	}
	s := &Service{
		store: d.Store, catalog: d.Catalog, log: d.Log, sessions: d.Sessions, identity: d.Identity, keys: d.PublicKeys,
		cfg: cfg, logger: d.Logger, now: time.Now, disagreed: d.OnCatalogDisagreement,
		lent:     make(chan struct{}, cmp.Or(cfg.UploadBuffers, DefaultUploadBuffers)),
		partBufs: make(chan []byte, cmp.Or(cfg.UploadBuffers, DefaultUploadBuffers)+partBufsKept),
	}
	s.ledger = ledger.New(ledger.Config{
		Journal: d.Journal, Log: d.Log, Catalog: d.Catalog, Locks: d.Locks, Receipts: d.Receipts, Domain: domain{s},
		Logger: d.Logger, LockWait: cfg.LockWait,
	})
	return s
}

// Replay brings the catalog up to date with the log (ledger.Writer.Replay).
// It runs before serving and, with replicas, now and then while serving.
func (s *Service) Replay(ctx context.Context) (int, error) { return s.ledger.Replay(ctx) }

// newID returns an opaque evidence id: "ev-" and 26 base32 characters (130
// random bits).
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return "ev-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// CheckID validates an evidence id's shape.
func CheckID(id string) error {
	if len(id) != 29 || !strings.HasPrefix(id, "ev-") {
		return fmt.Errorf("%w: evidence id %q is not of the form ev-<26 characters>", ErrInvalid, truncate(id, 40))
	}
	for _, c := range id[3:] {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return fmt.Errorf("%w: evidence id %q has %q", ErrInvalid, id, c)
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// lockItem serialises chain appends (and upload sessions) for one key, in
// this process or across replicas, depending on the Locker; see
// ledger.Writer.Lock.
func (s *Service) lockItem(ctx context.Context, key string) (func(), error) {
	return s.ledger.Lock(ctx, key)
}

// wrapCause returns an error of sentinel's kind that the caller reads as
// "<sentinel>: <format>" and the log reads with cause: the way to report
// an internal error (a path, SQL, a driver's or library's text) without
// showing it to the caller.
func wrapCause(sentinel, cause error, format string, args ...any) error {
	return failure.Wrap(failure.KindOf(sentinel), sentinel.Error()+": "+fmt.Sprintf(format, args...), cause)
}

// classifyStorage maps storage errors to this package's errors; the
// storage error is their cause, for the log.
func classifyStorage(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrUnavailable):
		return wrapCause(ErrUnavailable, err, "evidence storage cannot be reached; retry later")
	case errors.Is(err, storage.ErrNotFound):
		return wrapCause(ErrCorrupt, err, "the stored object is missing")
	case errors.Is(err, storage.ErrNoSpace):
		return wrapCause(ErrNoSpace, err, "evidence storage is full; nothing was kept; retry when the operator has freed space")
	}
	return err
}

func (s *Service) loadItem(ctx context.Context, id string) (catalog.Evidence, error) {
	if err := CheckID(id); err != nil {
		return catalog.Evidence{}, err
	}
	ev, err := s.catalog.Evidence(ctx, id)
	if errors.Is(err, catalog.ErrNotFound) {
		return ev, fmt.Errorf("%w: no evidence %s", ErrNotFound, id)
	}
	if err != nil && ctx.Err() == nil {
		return ev, wrapCause(ErrUnavailable, err, "the catalog cannot be read; retry later")
	}
	return ev, err
}
