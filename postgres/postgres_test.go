package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custody-dev/custody/catalog"
	"github.com/custody-dev/custody/catalog/catalogtest"
	"github.com/custody-dev/custody/evidence"
	"github.com/custody-dev/custody/evidence/sessionstest"
	"github.com/custody-dev/custody/internal/testenv/pgtest"
	"github.com/custody-dev/custody/journal"
	"github.com/custody-dev/custody/journal/journaltest"
	"github.com/custody-dev/custody/postgres"
)

var dbSeq atomic.Int64

// TestSuite runs the shared catalog and journal suites against a real
// PostgreSQL server, then the cross-replica lock tests.
func TestSuite(t *testing.T) {
	base := pgtest.Start(t)
	t.Run("Journal", func(t *testing.T) {
		journaltest.Run(t, func(t *testing.T) journal.Store {
			c, err := postgres.Open(t.Context(), pgtest.NewDatabase(t, base, fmt.Sprintf("journal_%d", dbSeq.Add(1))))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c.Journal()
		})
	})
	t.Run("Sessions", func(t *testing.T) {
		sessionstest.Run(t, func(t *testing.T) evidence.UploadSessions {
			c, err := postgres.Open(t.Context(), pgtest.NewDatabase(t, base, "sessions"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c.Sessions()
		})
	})
	t.Run("Locker", func(t *testing.T) { testLocker(t, pgtest.NewDatabase(t, base, "locks")) })
	catalogtest.Run(t, func(t *testing.T) catalog.Catalog {
		dsn := pgtest.NewDatabase(t, base, fmt.Sprintf("catalog_%d", dbSeq.Add(1)))
		c, err := postgres.Open(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		// A second replica opening the same database finds it migrated.
		again, err := postgres.Open(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		again.Close()
		return c
	})
}

// testLocker: two lockers on one database, as two replicas, exclude each
// other on a key; a replica that goes away releases what it held.
func testLocker(t *testing.T, dsn string) {
	ctx := t.Context()
	replicas := make([]*postgres.Locker, 2)
	for i := range replicas {
		l, err := postgres.OpenLocker(ctx, dsn, 8)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		replicas[i] = l
	}
	var inside atomic.Int32
	var maxInside atomic.Int32
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				unlock, err := replicas[g%2].Lock(ctx, "ev-contended")
				if err != nil {
					t.Error(err)
					return
				}
				n := inside.Add(1)
				if n > maxInside.Load() {
					maxInside.Store(n)
				}
				time.Sleep(100 * time.Microsecond)
				inside.Add(-1)
				unlock()
			}
		}()
	}
	wg.Wait()
	if m := maxInside.Load(); m != 1 {
		t.Fatalf("%d holders of one key at once across two replicas", m)
	}
	// Other keys do not wait.
	unlockA, err := replicas[0].Lock(ctx, "ev-a")
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	unlockB, err := replicas[1].Lock(short, "ev-b")
	if err != nil {
		t.Fatalf("a different key waited: %v", err)
	}
	unlockB()
	// Held by replica 0: replica 1 waits until its context ends...
	waitCtx, cancelWait := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelWait()
	if _, err := replicas[1].Lock(waitCtx, "ev-a"); err == nil {
		t.Fatal("replica 1 took a lock replica 0 holds")
	}
	if err := replicas[0].Held(ctx, "ev-a"); err != nil {
		t.Fatalf("Held on a lock replica 0 holds: %v", err)
	}
	if err := replicas[1].Held(ctx, "ev-a"); err == nil {
		t.Fatal("replica 1 claims a lock it never took")
	}
	// ...and gets it once replica 0 is gone: its process dying closes
	// its connections, as terminating its backends does here.
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted`); err != nil {
		t.Fatal(err)
	}
	if err := replicas[0].Held(ctx, "ev-a"); err == nil {
		t.Fatal("Held says a lock whose session was terminated is still held")
	}
	unlockA() // the dead replica's release fails quietly
	got, cancelGot := context.WithTimeout(ctx, 10*time.Second)
	defer cancelGot()
	unlock, err := replicas[1].Lock(got, "ev-a")
	if err != nil {
		t.Fatalf("the lock of a replica that went away was not released: %v", err)
	}
	unlock()
}
