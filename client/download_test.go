package client

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestPlaceNew: DownloadNewFile's last step gives the verified bytes the
// name asked for only if no file has it, never replacing one that appeared
// while they arrived.
func TestPlaceNew(t *testing.T) {
	for _, c := range []struct {
		name     string
		existing string // what path holds before, "" for nothing
	}{
		{"a free name", ""},
		{"a name taken meanwhile", "somebody else's file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			tmp, path := filepath.Join(dir, ".out.partial"), filepath.Join(dir, "out")
			if err := os.WriteFile(tmp, []byte("verified bytes"), 0o600); err != nil {
				t.Fatal(err)
			}
			if c.existing != "" {
				os.WriteFile(path, []byte(c.existing), 0o600)
			}
			err := placeNew(tmp, path)
			got, _ := os.ReadFile(path)
			switch {
			case c.existing == "" && (err != nil || string(got) != "verified bytes"):
				t.Fatalf("placeNew: %v; path holds %q", err, got)
			case c.existing != "" && (!errors.Is(err, fs.ErrExist) || string(got) != c.existing):
				t.Fatalf("placeNew over an existing file: %v; path holds %q", err, got)
			}
		})
	}
}
