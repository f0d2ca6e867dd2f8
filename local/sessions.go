package local

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/custody-dev/custody/internal/atomicfile"
)

// Sessions keeps sessions as files <id>.json in a folder of one
// custodyd's data dir.
type Sessions struct{ Dir string }

type dirSession struct {
	ExpiresAt time.Time       `json:"expires_at"`
	State     json.RawMessage `json:"state"`
}

func (d Sessions) path(id string) string { return filepath.Join(d.Dir, id+".json") }

// Load implements evidence.UploadSessions.
func (d Sessions) Load(_ context.Context, id string) ([]byte, error) {
	b, err := os.ReadFile(d.path(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s dirSession
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	return s.State, nil
}

// Save implements evidence.UploadSessions.
func (d Sessions) Save(_ context.Context, id string, state []byte, expiresAt time.Time) error {
	if err := os.MkdirAll(d.Dir, 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(dirSession{ExpiresAt: expiresAt, State: state})
	if err != nil {
		return err
	}
	return atomicfile.Write(d.path(id), b, 0o600)
}

// Delete implements evidence.UploadSessions.
func (d Sessions) Delete(_ context.Context, id string) error {
	if err := os.Remove(d.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Expired implements evidence.UploadSessions.
func (d Sessions) Expired(_ context.Context, now time.Time) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(d.Dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var s dirSession
		if json.Unmarshal(b, &s) == nil && now.After(s.ExpiresAt) {
			out = append(out, strings.TrimSuffix(filepath.Base(f), ".json"))
		}
	}
	return out, nil
}
