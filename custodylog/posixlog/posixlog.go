// Package posixlog keeps the custody log in a folder on local disk, on
// Tessera's POSIX driver: the checkpoint, tiles and entry bundles are
// files laid out as C2SP tlog-tiles paths, beside the driver's own state.
// It owns the folder and how the checkpoint's age is read from it (the
// checkpoint file's modification time). Only one process may append to a
// folder; replicas need package awslog.
package posixlog

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/transparency-dev/tessera/storage/posix"

	"github.com/custody-dev/custody/custodylog"
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
	}, nil
}
