package evidence

import (
	"context"
	"sync"
)

// Locker gives exclusive locks by key. The service holds an item's lock
// from reading the item's latest event, through the log append, to the
// catalog write, so two writers never link events to the same predecessor;
// upload sessions are locked the same way. Replicas must share one Locker
// (package postgres has one built on advisory locks): an in-process lock
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

// LocalLocks is the Locker of a single process. Locks are counted and
// dropped when no one holds or waits for them, so memory follows the
// number of keys in use, not the number ever used.
type LocalLocks struct {
	mu    sync.Mutex
	locks map[string]*localLock
}

type localLock struct {
	users int // holders and waiters
	ch    chan struct{}
}

// NewLocalLocks returns an empty LocalLocks.
func NewLocalLocks() *LocalLocks { return &LocalLocks{locks: map[string]*localLock{}} }

// Lock implements Locker.
func (l *LocalLocks) Lock(ctx context.Context, key string) (func(), error) {
	l.mu.Lock()
	lk, ok := l.locks[key]
	if !ok {
		lk = &localLock{ch: make(chan struct{}, 1)}
		l.locks[key] = lk
	}
	lk.users++
	l.mu.Unlock()
	select {
	case lk.ch <- struct{}{}:
		return func() {
			<-lk.ch
			l.release(key, lk)
		}, nil
	case <-ctx.Done():
		l.release(key, lk)
		return nil, ctx.Err()
	}
}

// Held implements Locker: an in-process lock is never lost.
func (l *LocalLocks) Held(context.Context, string) error { return nil }

func (l *LocalLocks) release(key string, lk *localLock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if lk.users--; lk.users == 0 {
		delete(l.locks, key)
	}
}

// held reports how many keys have holders or waiters (for tests).
func (l *LocalLocks) held() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.locks)
}
