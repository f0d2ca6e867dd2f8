package custodylog_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/custody-dev/custody/custodylog"
	"github.com/custody-dev/custody/custodylog/posixlog"
	"github.com/custody-dev/custody/internal/testenv/tsatest"
	"github.com/custody-dev/custody/tsa"
)

// TestTimestampedCheckpoints runs the log with a real RFC 3161 authority
// (sigstore's timestamp-server on loopback): new checkpoints get a token
// that verifies against the authority's chain; with the authority down,
// checkpoints go on being published, the gap shows, and the token follows
// when it is back.
func TestTimestampedCheckpoints(t *testing.T) {
	const origin = "custody.test/timestamped"
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	authority := tsatest.Start(t, "Custody Test TSA")
	backend, err := posixlog.New(t.Context(), filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := custodylog.Open(t.Context(), custodylog.Config{Backend: backend, Signer: signer, Verifier: verifier,
		CheckpointInterval: 200 * time.Millisecond, NoHistoryMap: true,
		Authorities: []custodylog.Authority{{URL: authority.URL, Chain: authority.Chain}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(context.Background()) })
	appendN := func(n int) uint64 {
		var last uint64
		for i := range n {
			a, err := l.Append(t.Context(), fmt.Appendf(nil, "entry %d %d", time.Now().UnixNano(), i))
			if err != nil {
				t.Fatal(err)
			}
			last = a.Index
		}
		return last
	}
	waitStamped := func(index uint64) custodylog.Stamped {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			s, ok, err := l.Timestamped(t.Context(), index)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("no timestamped checkpoint covers entry %d within 30s\n%s", index, authority.Logs())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	check := func(s custodylog.Stamped) {
		t.Helper()
		n, err := note.Open(s.Raw, note.VerifierList(verifier))
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Timestamps) != 1 || s.Timestamps[0].Authority != authority.URL {
			t.Fatalf("timestamps = %+v", s.Timestamps)
		}
		stamp, err := tsa.Verify(s.Timestamps[0].Response, []byte(n.Text), authority.Chain)
		if err != nil {
			t.Fatalf("the kept token does not verify over the checkpoint's text: %v", err)
		}
		if time.Since(stamp.Time) > time.Minute {
			t.Fatalf("stamp time %v", stamp.Time)
		}
	}

	check(waitStamped(appendN(5)))

	authority.Stop()
	last := appendN(5)
	deadline := time.Now().Add(30 * time.Second)
	for {
		cp, err := l.Latest(t.Context())
		st, _, err2 := l.Timestamping(t.Context())
		if err == nil && err2 == nil && cp.Size > last && st.PublishedSize > st.StampedSize && len(st.Errors) == 1 {
			break // published without a token, and the gap shows
		}
		if time.Now().After(deadline) {
			t.Fatalf("with the authority down: checkpoint %d (%v), state %+v (%v)", cp.Size, err, st, err2)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, ok, _ := l.Timestamped(t.Context(), last); ok {
		t.Fatal("a timestamp for a checkpoint made while the authority was down")
	}

	authority.Restart(t)
	check(waitStamped(last))
	st, _, err := l.Timestamping(t.Context())
	if err != nil || len(st.Errors) != 0 || st.StampedSize <= last {
		t.Fatalf("after the authority is back: %+v, %v", st, err)
	}
}
