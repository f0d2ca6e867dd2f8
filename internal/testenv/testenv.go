package testenv

import "testing"

// RequireFull skips the test under -short: every harness that starts a real
// server, browser or child process (what names it, e.g. "MinIO") calls it at
// its entry, so `go test -short ./...` runs the unit tests alone and
// scripts/test, which runs without -short, runs everything.
func RequireFull(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("starts a real %s; runs in the full suite (scripts/test)", what)
	}
}
