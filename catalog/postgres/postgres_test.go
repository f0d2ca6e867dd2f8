package postgres_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/custody-dev/custody/catalog"
	"github.com/custody-dev/custody/catalog/catalogtest"
	"github.com/custody-dev/custody/catalog/postgres"
	"github.com/custody-dev/custody/internal/pgtest"
)

var dbSeq atomic.Int64

// TestSuite runs the shared catalog suite against a real PostgreSQL server.
func TestSuite(t *testing.T) {
	base := pgtest.Start(t)
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
