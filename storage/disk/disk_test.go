package disk_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/custody-dev/custody/storage"
	"github.com/custody-dev/custody/storage/disk"
	"github.com/custody-dev/custody/storage/storagetest"
)

func TestSuite(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		s, err := disk.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestSealedFilesAreReadOnlyAndPendingCleanedAtStart(t *testing.T) {
	root := t.TempDir()
	s, err := disk.New(root)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Put(t.Context(), "sha256/ab/cd", bytes.NewReader([]byte("x")), 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Seal(t.Context(), obj, time.Now()); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(root, "sha256", "ab", "cd"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm()&0o222 != 0 {
		t.Errorf("sealed file mode %v is writable", info.Mode())
	}
	// A crash leaves a pending file; the next start removes it.
	if _, err := s.Put(t.Context(), "sha256/left/over", bytes.NewReader([]byte("y")), 1); err != nil {
		t.Fatal(err)
	}
	// An upload session's piece is pending too, and must outlive it.
	piece, err := s.Put(t.Context(), storage.KeepPendingPrefix+"session/0", bytes.NewReader([]byte("piece")), 5)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := disk.New(root); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Exists(t.Context(), "sha256/left/over"); ok {
		t.Error("pending file survived a restart")
	}
	rc, err := s.Open(t.Context(), piece)
	if err != nil {
		t.Fatalf("an upload session's piece did not survive a restart: %v", err)
	}
	rc.Close()
}
