package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/custody-dev/custody/catalog"
	"github.com/custody-dev/custody/catalog/catalogtest"
	"github.com/custody-dev/custody/catalog/sqlite"
)

func TestSuite(t *testing.T) {
	catalogtest.Run(t, func(t *testing.T) catalog.Catalog {
		c, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "catalog.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	})
}
