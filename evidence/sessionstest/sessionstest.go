// Package sessionstest is the test suite every evidence.UploadSessions
// runs (files in a folder, PostgreSQL).
package sessionstest

import (
	"fmt"
	"testing"
	"time"

	"github.com/custody-dev/custody/evidence"
)

// Run runs the suite against a store made by newSessions (empty).
func Run(t *testing.T, newSessions func(t *testing.T) evidence.UploadSessions) {
	s := newSessions(t)
	ctx := t.Context()
	now := time.Unix(1790000000, 0)
	if b, err := s.Load(ctx, "never"); err != nil || b != nil {
		t.Fatalf("Load of no session = %q, %v", b, err)
	}
	for _, tc := range []struct {
		id      string
		expires time.Time
	}{{"early", now.Add(-time.Minute)}, {"late", now.Add(time.Hour)}, {"replaced", now.Add(-time.Hour)}} {
		if err := s.Save(ctx, tc.id, []byte(`{"id":"`+tc.id+`"}`), tc.expires); err != nil {
			t.Fatal(err)
		}
	}
	// Saving again replaces state and expiry.
	if err := s.Save(ctx, "replaced", []byte(`{"v":2}`), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if b, err := s.Load(ctx, "replaced"); err != nil || string(b) != `{"v":2}` {
		t.Fatalf("Load after replace = %q, %v", b, err)
	}
	expired, err := s.Expired(ctx, now)
	if err != nil || fmt.Sprint(expired) != "[early]" {
		t.Fatalf("Expired = %v, %v, want [early]", expired, err)
	}
	if err := s.Delete(ctx, "early"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "early"); err != nil {
		t.Fatalf("deleting a deleted session: %v", err)
	}
	if b, _ := s.Load(ctx, "early"); b != nil {
		t.Fatal("a deleted session loads")
	}
	if b, _ := s.Load(ctx, "late"); string(b) != `{"id":"late"}` {
		t.Fatalf("Load(late) = %q", b)
	}
}
