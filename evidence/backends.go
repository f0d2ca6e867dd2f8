package evidence

import (
	"context"
	"time"

	"github.com/custody-dev/custody/ledger"
)

// Locker gives exclusive locks by key (see ledger.Locker): package local
// has the in-process one, package postgres one for replicas.
type Locker = ledger.Locker

// UploadSessions keeps the state of resumable upload sessions (who owns
// one, what it is for, which pieces of bytes it has) where every replica
// sees it; the bytes themselves are pending objects in the evidence store.
// Callers serialise access to one session with its lock.
type UploadSessions interface {
	// Load returns session id's state, or nil if there is none.
	Load(ctx context.Context, id string) ([]byte, error)
	// Save stores session id's state, replacing any, until expiresAt.
	Save(ctx context.Context, id string, state []byte, expiresAt time.Time) error
	// Delete removes session id (no error if it is gone).
	Delete(ctx context.Context, id string) error
	// Expired lists the sessions whose time ended before now.
	Expired(ctx context.Context, now time.Time) ([]string, error)
}
