// Helpers of the CLI's end-to-end tests: the real binaries against a real
// server (the full suite; -short skips them).

package main_test

import (
	"bytes"
	"context"
	"os/exec"
	"testing"

	"github.com/custody-dev/custody/client"
	"github.com/custody-dev/custody/internal/testenv/binaries"
)

func runOK(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %v\nstdout: %s\nstderr: %s", cmd.Args, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func dialRole(t *testing.T, d *binaries.Daemon, role string) *client.Client {
	t.Helper()
	creds, err := client.LoadCredentials(d.CredsDir(role))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(context.Background(), d.GRPCAddr, creds)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
