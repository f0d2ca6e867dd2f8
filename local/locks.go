package local

import (
	"context"
	"sync"
)

// Locks is the evidence.Locker of a single process. Locks are counted and
// dropped when no one holds or waits for them, so memory follows the
// number of keys in use, not the number ever used.
type Locks struct {
	mu    sync.Mutex
	locks map[string]*localLock
}

type localLock struct {
	users int // holders and waiters
	ch    chan struct{}
}

// NewLocks returns an empty Locks.
func NewLocks() *Locks { return &Locks{locks: map[string]*localLock{}} }

// Lock implements evidence.Locker.
func (l *Locks) Lock(ctx context.Context, key string) (func(), error) {
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

// Held implements evidence.Locker: an in-process lock is never lost.
func (l *Locks) Held(context.Context, string) error { return nil }

func (l *Locks) release(key string, lk *localLock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if lk.users--; lk.users == 0 {
		delete(l.locks, key)
	}
}

// held reports how many keys have holders or waiters (for tests).
func (l *Locks) held() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.locks)
}
