package postgres

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"fmt"
	"sync"
	"time"
)

// Locker is the cross-replica lock (evidence.Locker) of a deployment whose
// replicas share this PostgreSQL database: session-level advisory locks,
// each held on its own connection from a pool kept apart from the
// catalog's (a lock holder's catalog writes must never wait for a
// connection that another lock holder keeps). If a replica dies, its
// connections close and PostgreSQL releases its locks.
type Locker struct {
	db *sql.DB

	mu   sync.Mutex
	held map[string]*sql.Conn // key -> the connection holding its lock
}

// OpenLocker connects to dsn; maxHeld bounds how many locks this replica
// holds at once (further Lock calls wait for a connection).
func OpenLocker(ctx context.Context, dsn string, maxHeld int) (*Locker, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(maxHeld)
	db.SetMaxIdleConns(maxHeld)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("lock database: %w", err)
	}
	return &Locker{db: db, held: map[string]*sql.Conn{}}, nil
}

// lockID maps a key to the 64-bit advisory lock id (first 8 bytes of its
// SHA-256; a collision only makes two keys share a lock).
func lockID(key string) int64 {
	sum := sha256.Sum256([]byte(key))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// Lock implements evidence.Locker.
func (l *Locker) Lock(ctx context.Context, key string) (func(), error) {
	conn, err := l.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	id := lockID(key)
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, id); err != nil {
		// The lock may have been granted as the context ended: never hand
		// this connection to anyone else.
		discard(conn)
		return nil, err
	}
	l.mu.Lock()
	l.held[key] = conn
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		delete(l.held, key)
		l.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, id); err != nil {
			discard(conn)
			return
		}
		conn.Close()
	}, nil
}

// Held implements evidence.Locker: the session holding key's lock must
// still answer (a session lock lasts as long as its session).
func (l *Locker) Held(ctx context.Context, key string) error {
	l.mu.Lock()
	conn, ok := l.held[key]
	l.mu.Unlock()
	if !ok {
		return fmt.Errorf("the lock on %s is not held", key)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := conn.PingContext(ctx); err != nil {
		return fmt.Errorf("the lock on %s may be lost: its database session does not answer: %w", key, err)
	}
	return nil
}

// discard closes conn's underlying connection instead of returning it to
// the pool, which releases any lock it holds.
func discard(conn *sql.Conn) {
	conn.Raw(func(any) error { return driver.ErrBadConn })
	conn.Close()
}

// Close closes the lock connections (releasing every lock held).
func (l *Locker) Close() error { return l.db.Close() }
