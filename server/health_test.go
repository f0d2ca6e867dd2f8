package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/servertest"
)

// TestReadiness: /healthz?ready=1 says ready while storage, catalog and
// log answer; with MinIO stopped it says 503 and names storage, and the
// metrics show it; when MinIO returns, it is ready again without a
// restart. Plain /healthz (liveness) stays 200 throughout.
func TestReadiness(t *testing.T) {
	s := backends()[1].start(t, servertest.Options{})
	hc := s.env.HTTPClient(t)
	waitFor := func(code int, contains string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			got, body := get(t, hc, s.env.URL("/healthz?ready=1"))
			if got == code && strings.Contains(string(body), contains) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("readiness %d %s, want %d with %q", got, body, code, contains)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitFor(200, `"status":"ready"`)
	s.minio.Stop(t)
	waitFor(503, `"storage":"the storage does not answer; the server log has the details"`)
	// Public readiness names what fails, never the endpoint or the error
	// text; those are in the server's log.
	if _, body := get(t, hc, s.env.URL("/healthz?ready=1")); strings.Contains(string(body), s.minio.Endpoint) || strings.Contains(string(body), "dial") {
		t.Fatalf("readiness shows internal detail: %s", body)
	}
	if !strings.Contains(s.env.Logs.String(), "not ready") {
		t.Fatalf("the cause is not in the server log")
	}
	if code, _ := get(t, hc, s.env.URL("/healthz")); code != 200 {
		t.Fatalf("liveness %d while storage is down", code)
	}
	admin := s.env.HTTPClient(t, s.env.Creds(t, identity.RoleAdmin).Certificate)
	if _, body := get(t, admin, s.env.URL("/metrics")); !strings.Contains(string(body), `custody_dependency_up{dependency="storage"} 0`) {
		t.Fatalf("metrics do not show storage down:\n%s", body)
	}
	s.minio.Restart(t)
	waitFor(200, `"status":"ready"`)
}
