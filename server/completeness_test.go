package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/servertest"
	"github.com/custody-dev/custody/logaudit"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
	"github.com/custody-dev/custody/verify"
)

// TestBundleProvesItsHistoryComplete: the court's bundle carries the
// history map's proof (docs/HISTORY_MAP.md), and the verifier binds it:
// the bundle states "history complete", while the attack of a bundle that
// hides the item's latest event — the last one cut off, proofs intact —
// fails at the completeness step. Stripped of its map proof as well, it is
// never verified: completeness is listed as not checked. The public log
// audit recomputes every map the service committed to.
func TestBundleProvesItsHistoryComplete(t *testing.T) {
	env := servertest.StartT(t)
	collector := env.Client(t, identity.RoleCollector)
	court := env.Client(t, identity.RoleCourt)
	ctx := t.Context()
	// Two items, their events interleaved in the log.
	var ids []string
	for i := range 2 {
		data := randomBytes(1000 + i)
		up, err := collector.Upload(ctx, meta("case-complete", data), bytes.NewReader(data), nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, up.GetEvidence().GetEvidenceId())
	}
	for i := range 3 {
		for _, id := range ids {
			if _, err := court.RecordEvent(ctx, &custodyv1.RecordEventRequest{EvidenceId: id, Type: custodyv1.EventType_EVENT_TYPE_ANNOTATION, Note: fmt.Sprint("note ", i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	keys, err := court.PublicKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	opts := func() verify.Options {
		return verify.Options{LogVerifierKey: keys.GetLogVerifierKey(), ReceiptKeyPEM: []byte(keys.GetReceiptPublicKeyPem()), Roots: env.RootCAs(t)}
	}
	raw, err := court.Bundle(ctx, ids[0], 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := verify.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if b.Completeness == nil {
		t.Fatal("the bundle carries no history-map proof")
	}
	r := verify.Verify(b, opts())
	if !r.Success() {
		t.Fatalf("the bundle does not verify: %s %v", r.Outcome, r.Failures())
	}
	if !hasFact(r, "history complete") || slices.ContainsFunc(r.NotChecked, func(s string) bool { return strings.HasPrefix(s, "completeness") }) {
		t.Fatalf("a bundle with its map proof does not state its history complete: facts %v, not checked %v", r.Facts, r.NotChecked)
	}
	t.Logf("facts %v\ncannot prove %q", r.Facts, r.CannotProve)
	if got := len(b.Events); got != 4 {
		t.Fatalf("the bundle holds %d events, want 4", got)
	}

	t.Run("the last event cut off", func(t *testing.T) {
		cut := *b
		cut.Events = b.Events[:len(b.Events)-1]
		r := verify.Verify(&cut, opts())
		if r.Success() || len(r.Failures()) == 0 || r.Failures()[0].Step != "completeness" {
			t.Fatalf("a bundle without its latest event: %s, failures %v; want a failure at step completeness", r.Outcome, r.Failures())
		}
	})
	t.Run("cut off and the proof removed", func(t *testing.T) {
		cut := *b
		cut.Events, cut.Completeness = b.Events[:len(b.Events)-1], nil
		r := verify.Verify(&cut, opts())
		if r.Outcome == verify.OutcomeVerified || hasFact(r, "history complete") ||
			!slices.ContainsFunc(r.NotChecked, func(s string) bool { return strings.HasPrefix(s, "completeness") }) {
			t.Fatalf("a bundle with no map proof: %s, facts %v, not checked %v", r.Outcome, r.Facts, r.NotChecked)
		}
	})
	t.Run("the stream form carries it too", func(t *testing.T) {
		var buf bytes.Buffer
		if _, err := court.StreamBundle(ctx, ids[1], 0, &buf); err != nil {
			t.Fatal(err)
		}
		r := verify.VerifyStream(&buf, opts())
		if !r.Success() || !hasFact(r, "history complete") {
			t.Fatalf("stream form: %s, failures %v, facts %v", r.Outcome, r.Failures(), r.Facts)
		}
	})
	t.Run("the public audit recomputes every committed map", func(t *testing.T) {
		verifier, err := note.NewVerifier(keys.GetLogVerifierKey())
		if err != nil {
			t.Fatal(err)
		}
		hc := env.HTTPClient(t)
		fetch := func(ctx context.Context, path string) ([]byte, error) {
			resp, err := hc.Get(env.URL("/log/" + path))
			if err != nil {
				return nil, err
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				return nil, fmt.Errorf("GET /log/%s: %s", path, resp.Status)
			}
			return io.ReadAll(resp.Body)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			rep, err := logaudit.Audit(ctx, fetch, keys.GetLogOrigin(), verifier, nil)
			if err != nil {
				t.Fatalf("log audit: %v", err)
			}
			if rep.Maps.Commitments > 0 && rep.Maps.Last.TreeSize >= b.Events[3].LogIndex+1 {
				if rep.Items != 2 {
					t.Fatalf("the audit counts %d chains, want 2: commitments are not chains", rep.Items)
				}
				// Operators see how far the map lags.
				if _, body := get(t, hc, env.URL("/healthz?ready=1")); !strings.Contains(string(body), `"history_map_lag_entries"`) {
					t.Fatalf("readiness does not show the history map's lag: %s", body)
				}
				if _, body := get(t, env.HTTPClient(t, env.Creds(t, identity.RoleAdmin).Certificate), env.URL("/metrics")); !strings.Contains(string(body), "\ncustody_history_map_lag_entries ") {
					t.Fatal("/metrics has no custody_history_map_lag_entries")
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no audited commitment covers the bundle's events: %+v", rep.Maps)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

func hasFact(r *verify.Report, name string) bool {
	return slices.ContainsFunc(r.Facts, func(f verify.Fact) bool { return f.Name == name })
}
