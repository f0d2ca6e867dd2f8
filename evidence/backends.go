package evidence

import (
	"context"
	"time"
)

// Locker gives exclusive locks by key. The service holds an item's lock
// from reading the item's latest event, through the log append, to the
// catalog write, so two writers never link events to the same predecessor;
// upload sessions are locked the same way. Replicas must share one Locker
// (catalog/postgres has one built on advisory locks): an in-process lock
// does not order writers in other processes.
type Locker interface {
	// Lock blocks until it holds key's lock or ctx ends, and returns the
	// function that releases it.
	Lock(ctx context.Context, key string) (unlock func(), err error)
	// Held checks that this process still holds key's lock. A lock kept
	// by a database session is lost with the session (a partition): the
	// service checks just before the log append, the step it cannot undo.
	Held(ctx context.Context, key string) error
}

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
