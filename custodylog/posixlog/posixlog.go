// Package posixlog keeps the custody log in a folder on local disk, on
// Tessera's POSIX driver: the checkpoint, tiles and entry bundles are
// files laid out as C2SP tlog-tiles paths, beside the driver's own state.
// It owns the folder and how the checkpoint's age is read from it (the
// checkpoint file's modification time) and the log's own files (the
// checkpoints' timestamps, under custody/). Only one process may append to a
// folder; replicas need package awslog.
package posixlog

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/transparency-dev/tessera/storage/posix"

	"github.com/custody-dev/custody/custodylog"
	"github.com/custody-dev/custody/internal/atomicfile"
)

// New returns the backend for a log in dir (custodyd's <data-dir>/log),
// which custodylog.Open creates if needed.
func New(ctx context.Context, dir string) (custodylog.Backend, error) {
	driver, err := posix.New(ctx, posix.Config{Path: dir})
	if err != nil {
		return custodylog.Backend{}, err
	}
	return custodylog.Backend{
		Driver: driver,
		CheckpointTime: func(context.Context) (time.Time, error) {
			info, err := os.Stat(filepath.Join(dir, "checkpoint"))
			if err != nil {
				return time.Time{}, err
			}
			return info.ModTime(), nil
		},
		Annex: annex{dir: filepath.Join(dir, "custody")},
	}, nil
}

// annex keeps the log's own files under dir/custody/.
type annex struct{ dir string }

func (a annex) path(name string) (string, error) {
	if !validName(name) {
		return "", fmt.Errorf("annex name %q", name)
	}
	return filepath.Join(a.dir, filepath.FromSlash(name)), nil
}

func (a annex) Read(_ context.Context, name string) ([]byte, error) {
	p, err := a.path(name)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

func (a annex) Write(_ context.Context, name string, data []byte) error {
	p, err := a.path(name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(p, data, 0o644)
}

func validName(name string) bool {
	if name == "" {
		return false
	}
	for seg := range strings.SplitSeq(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for _, r := range seg {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-') {
				return false
			}
		}
	}
	return true
}
