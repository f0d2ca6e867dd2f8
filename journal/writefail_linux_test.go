package journal_test

import (
	"bytes"
	"errors"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/custody-dev/custody/journal"
)

// TestFailedWriteIsUndone: a batch the file system refuses half-way (here
// the file size limit; a full disk alike) is cut off again, so the next
// batch does not land behind a partial record, which the next start would
// take for damage.
func TestFailedWriteIsUndone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	j, err := journal.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if err := j.Append(t.Context(), []byte("first")); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	signal.Ignore(syscall.SIGXFSZ)
	defer signal.Reset(syscall.SIGXFSZ)
	lim := old
	lim.Cur = uint64(st.Size()) + 100
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Skipf("cannot lower the file size limit: %v", err)
	}
	err = j.Append(t.Context(), bytes.Repeat([]byte{'x'}, 1000))
	if !errors.Is(err, syscall.EFBIG) {
		syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old)
		t.Fatalf("an append over the file size limit: %v, want EFBIG", err)
	}
	if now, _ := os.Stat(path); now.Size() != st.Size() {
		syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old)
		t.Fatalf("after the failed append the journal has %d bytes, want %d", now.Size(), st.Size())
	}
	err = j.Append(t.Context(), []byte("fits"))
	syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old)
	if err != nil {
		t.Fatalf("an append that fits after a failed one: %v", err)
	}
	if err := j.Append(t.Context(), []byte("last")); err != nil {
		t.Fatal(err)
	}
	j.Close()
	got, err := scanAll(t, path)
	if err != nil || len(got) != 3 || string(got[1]) != "fits" {
		t.Fatalf("the journal holds %q (%v), want first, fits, last", got, err)
	}
}
