package daemon_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/custody-dev/custody/internal/daemon"
)

// Start builds only the assembly the config names, and refuses parts that
// belong to the other one.
func TestStartChecksMode(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*daemon.Config)
		want   string
	}{
		{"no mode", func(c *daemon.Config) { c.Mode = "" }, `mode ""`},
		{"embedded with a shared log", func(c *daemon.Config) { c.Log.MySQL = "u:p@tcp(127.0.0.1:1)/log" }, "add --catalog"},
		{"embedded with PostgreSQL", func(c *daemon.Config) { c.Replica.DSN = "postgres://127.0.0.1:1/x" }, "Replica.DSN"},
		{"replicated without PostgreSQL", func(c *daemon.Config) { c.Mode = daemon.Replicated }, "set --catalog"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := daemon.Defaults()
			cfg.DataDir = t.TempDir()
			tc.change(&cfg)
			d, err := daemon.Start(t.Context(), cfg, slog.New(slog.DiscardHandler))
			if err == nil {
				d.Close()
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to say %q", err, tc.want)
			}
		})
	}
}
