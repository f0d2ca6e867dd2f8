// Package atomicfile replaces files whole: whoever reads path sees its old
// content or the new, never part of the new.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write writes data to a temporary file in path's folder with the given
// mode, syncs it and renames it into place.
func Write(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
