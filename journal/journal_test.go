package journal_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/custody-dev/custody/journal"
	"github.com/custody-dev/custody/journal/journaltest"
)

func TestAppendScanAndTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	j, err := journal.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := j.Append(t.Context(), []byte(fmt.Sprintf("record-%03d", i))); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	// A crash mid-write leaves half a record.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte{0, 0, 0, 50, 'p', 'a', 'r'})
	f.Close()

	j, err = journal.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Append(t.Context(), []byte("after-restart")); err != nil {
		t.Fatal(err)
	}
	j.Close()
	seen := map[string]bool{}
	var last string
	if err := journal.Scan(path, func(b []byte) error { seen[string(b)] = true; last = string(b); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 201 || last != "after-restart" {
		t.Fatalf("scanned %d records, last %q; want 201 ending with after-restart", len(seen), last)
	}
}

func TestFileStore(t *testing.T) {
	journaltest.Run(t, func(t *testing.T) journal.Store {
		f, err := journal.OpenFile(filepath.Join(t.TempDir(), "journal"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	})
}

func TestMemStore(t *testing.T) {
	journaltest.Run(t, func(t *testing.T) journal.Store { return journal.NewMem() })
}
