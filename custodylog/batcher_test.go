package custodylog_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/custody-dev/custody/custodylog"
	"github.com/custody-dev/custody/internal/testenv/parts"
)

// An entry handed over with a precondition (its record being journaled)
// is not in the log, not even sequenced, until the precondition holds; if
// it fails, the entry never is, and the log goes on.
func TestAppendWhenReady(t *testing.T) {
	l := parts.Log(t, t.TempDir(), "custody.test/ready")
	ctx := t.Context()
	next := func() uint64 {
		n, err := l.Reader().NextIndex(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	ready := make(chan error, 1)
	type result struct {
		a   custodylog.Appended
		err error
	}
	got := make(chan result, 1)
	go func() {
		a, err := l.AppendWhenReady(ctx, []byte("first"), ready, false)
		got <- result{a, err}
	}()
	// Several batch ages pass: the entry waits for its precondition.
	time.Sleep(10 * custodylog.DefaultBatchMaxAge)
	if n := next(); n != 0 {
		t.Fatalf("%d entries sequenced before the precondition held", n)
	}
	select {
	case r := <-got:
		t.Fatalf("appended before the precondition held: %+v", r)
	default:
	}
	ready <- nil
	if r := <-got; r.err != nil || r.a.Index != 0 {
		t.Fatalf("first entry: %+v", r)
	}

	failed := make(chan error, 1)
	failed <- errors.New("the journal's disk is full")
	_, err := l.AppendWhenReady(ctx, []byte("never"), failed, true)
	var nr *custodylog.NotReadyError
	if !errors.As(err, &nr) {
		t.Fatalf("entry whose precondition failed: %v, want a NotReadyError", err)
	}
	a, err := l.Append(ctx, []byte("third"))
	if err != nil {
		t.Fatal(err)
	}
	size, err := l.Settled(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range size {
		e, err := l.Entry(ctx, i, size)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(e, []byte("never")) {
			t.Fatalf("the entry whose precondition failed is in the log at %d", i)
		}
		if i == a.Index && !bytes.Equal(e, []byte("third")) {
			t.Fatalf("entry %d is %q, want the third", i, e)
		}
	}
}
