package custodylog_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/custody-dev/custody/custodylog"
	"github.com/custody-dev/custody/custodylog/posixlog"
)

// TestEntries reads runs of entries across bundle boundaries, and a
// partial last bundle, and expects what Entry reads one by one.
func TestEntries(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "custody.test/entries")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	backend, err := posixlog.New(t.Context(), filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := custodylog.Open(t.Context(), custodylog.Config{Backend: backend, Signer: signer, Verifier: verifier, CheckpointInterval: 100 * time.Millisecond,
		NoHistoryMap: true}) // the entries are not custody entries; sizes are exact
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(context.Background()) })
	const n = 600
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := l.Append(t.Context(), fmt.Appendf(nil, "entry %d", i)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	size, err := l.Settled(t.Context())
	if err != nil || size != n {
		t.Fatalf("Settled = %d, %v", size, err)
	}
	if backlog, err := l.Backlog(t.Context()); err != nil || backlog != 0 {
		t.Fatalf("Backlog once settled = %d, %v; want 0", backlog, err)
	}
	indexes := []uint64{0, 1, 255, 256, 300, 511, 512, 599}
	got, err := l.Entries(t.Context(), indexes, size)
	if err != nil {
		t.Fatal(err)
	}
	for i, index := range indexes {
		want, err := l.Entry(t.Context(), index, size)
		if err != nil || string(got[i]) != string(want) {
			t.Errorf("Entries[%d] (index %d) = %q, Entry = %q, %v", i, index, got[i], want, err)
		}
	}
	// Against a smaller tree, from a partial bundle.
	if got, err := l.Entries(t.Context(), []uint64{256, 257}, 258); err != nil || len(got) != 2 {
		t.Fatalf("Entries from a partial bundle: %q, %v", got, err)
	}
	if _, err := l.Entries(t.Context(), []uint64{5, n}, size); !errors.Is(err, custodylog.ErrBeyondTree) {
		t.Fatalf("an index past the tree: %v, want ErrBeyondTree", err)
	}
}
