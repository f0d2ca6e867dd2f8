package testenv

import "testing"

// RequireFull skips the test in the fast lane (go test -short): what
// starts a real server, browser or child process runs in the full suite
// only (scripts/test, which CI runs), never skipped there.
func RequireFull(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("starts %s; runs in the full suite (scripts/test), not with -short", what)
	}
}
