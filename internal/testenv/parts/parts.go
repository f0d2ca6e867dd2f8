// Package parts builds the real, in-process parts unit tests assemble a
// service or a writer from: a POSIX custody log with a fresh signed-note
// key, and a SQLite catalog, each in a folder the test owns and closed
// when it ends. Nothing here starts a server, so the fast lane runs it.
package parts

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/custody-dev/custody/catalog/sqlite"
	"github.com/custody-dev/custody/custodylog"
	"github.com/custody-dev/custody/custodylog/posixlog"
)

// Log opens a custody log under dir/log whose origin is origin,
// publishing a checkpoint every 100 ms.
func Log(t testing.TB, dir, origin string) *custodylog.Log {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	backend, err := posixlog.New(t.Context(), filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := custodylog.Open(t.Context(), custodylog.Config{Backend: backend, Signer: signer, Verifier: verifier, CheckpointInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(context.Background()) })
	return l
}

// Catalog opens a SQLite catalog at dir/catalog.db.
func Catalog(t testing.TB, dir string) *sqlite.Catalog {
	t.Helper()
	c, err := sqlite.Open(t.Context(), filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
