package parts

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/custody-dev/custody/catalog"
	"github.com/custody-dev/custody/custodylog"
)

// ErrInjected is the error the flaky parts return when armed.
var ErrInjected = errors.New("injected failure")

// FailOnce fails the next call it is Armed for, and as many more after it
// as Extra says.
type FailOnce struct {
	Armed atomic.Bool
	Extra atomic.Int32
}

// Fire reports whether this call fails, and disarms what it used.
func (f *FailOnce) Fire() bool {
	if f.Armed.CompareAndSwap(true, false) {
		return true
	}
	for n := f.Extra.Load(); n > 0; n = f.Extra.Load() {
		if f.Extra.CompareAndSwap(n, n-1) {
			return true
		}
	}
	return false
}

// FlakyCatalog is a catalog whose event and item writes fail on demand.
type FlakyCatalog struct {
	catalog.Catalog
	FailAddEvent, FailAddEvidence FailOnce
	// BeforeAddEvidence runs just before the next AddEvidence, once.
	BeforeAddEvidence func()
}

func (c *FlakyCatalog) AddEvent(ctx context.Context, e catalog.Event, prev uint64, st catalog.ItemState) error {
	if c.FailAddEvent.Fire() {
		return ErrInjected
	}
	return c.Catalog.AddEvent(ctx, e, prev, st)
}

func (c *FlakyCatalog) AddEvidence(ctx context.Context, ev catalog.Evidence, first catalog.Event) error {
	if c.FailAddEvidence.Fire() {
		return ErrInjected
	}
	if f := c.BeforeAddEvidence; f != nil {
		c.BeforeAddEvidence = nil
		f()
	}
	return c.Catalog.AddEvidence(ctx, ev, first)
}

// FlakyLog is a custody log whose appends fail on demand, before
// sequencing (as a writer that dies before its entry reaches the log).
type FlakyLog struct {
	*custodylog.Log
	FailAppend FailOnce
}

func (l *FlakyLog) Append(ctx context.Context, entry []byte) (custodylog.Appended, error) {
	if l.FailAppend.Fire() {
		return custodylog.Appended{}, ErrInjected
	}
	return l.Log.Append(ctx, entry)
}

// AppendWhenReady fails on demand as Append does (package ledger appends
// this way when the journal can start a write without waiting).
func (l *FlakyLog) AppendWhenReady(ctx context.Context, entry []byte, ready <-chan error, urgent bool) (custodylog.Appended, error) {
	if l.FailAppend.Fire() {
		return custodylog.Appended{}, ErrInjected
	}
	return l.Log.AppendWhenReady(ctx, entry, ready, urgent)
}
