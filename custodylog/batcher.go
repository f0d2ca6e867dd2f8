package custodylog

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/transparency-dev/tessera"
)

// The log batches appends itself, in front of Tessera, so that a caller
// can hand over an entry whose precondition (its record being durable in
// the journal, package ledger) is still being written: the entry waits
// in the batch, and goes to Tessera only once its precondition holds.
// The precondition's wait and the batch's wait then overlap, instead of
// adding up.
//
// A batch is what arrived within BatchMaxAge of its first entry (at most
// maxBatch entries), as Tessera's own batching would gather it. Once a
// batch closes its entries' preconditions are awaited in order, and the
// batch is handed to Tessera in one go, with Tessera's own max age short
// (tesseraMaxAge): Tessera then sequences the batch right away, while
// the next one is gathered (pipelined).

// maxBatch is the most entries a batch holds (Tessera's own batch size).
const maxBatch = 1024

// tesseraMaxAge is Tessera's own batching wait: long enough that a batch
// handed over entry by entry goes out in one flush, short enough to add
// little to an event's wait.
const tesseraMaxAge = time.Millisecond

// NotReadyError is the error an entry's precondition reported: the entry
// was not appended.
type NotReadyError struct{ Err error }

func (e *NotReadyError) Error() string { return "log entry not appended: " + e.Err.Error() }
func (e *NotReadyError) Unwrap() error { return e.Err }

var errBatcherClosed = errors.New("log closed")

type batcher struct {
	appender *tessera.Appender
	maxAge   time.Duration

	mu     sync.Mutex
	queue  []*pendingAppend
	closed bool
	wake   chan struct{} // an entry arrived
	now    chan struct{} // close the batch now: it is full, or an entry is urgent
	done   chan struct{}
}

type pendingAppend struct {
	entry []byte
	ready <-chan error // nil: ready now
	at    time.Time
	res   chan appendResult
}

type appendResult struct {
	future tessera.IndexFuture
	err    error
}

func newBatcher(a *tessera.Appender, maxAge time.Duration) *batcher {
	b := &batcher{appender: a, maxAge: maxAge, wake: make(chan struct{}, 1), now: make(chan struct{}, 1), done: make(chan struct{})}
	go b.run()
	return b
}

// add queues entry, to be handed to Tessera once ready (if not nil)
// yields nil, and returns Tessera's future for it. An urgent entry closes
// its batch at once.
func (b *batcher) add(entry []byte, ready <-chan error, urgent bool) (tessera.IndexFuture, error) {
	p := &pendingAppend{entry: entry, ready: ready, at: time.Now(), res: make(chan appendResult, 1)}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, errBatcherClosed
	}
	b.queue = append(b.queue, p)
	signal(b.wake)
	if urgent || len(b.queue) >= maxBatch {
		signal(b.now)
	}
	b.mu.Unlock()
	r := <-p.res
	return r.future, r.err
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (b *batcher) run() {
	defer close(b.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		_, open := <-b.wake
		for b.next(timer) {
		}
		if !open {
			return
		}
	}
}

// next gathers one batch and hands it over; false if none was queued.
func (b *batcher) next(timer *time.Timer) bool {
	b.mu.Lock()
	if len(b.queue) == 0 {
		b.mu.Unlock()
		return false
	}
	first, closed := b.queue[0].at, b.closed
	b.mu.Unlock()
	// Gather for maxAge from the batch's first entry, unless the batch
	// fills, an urgent entry comes, or the log closes first.
	if wait := time.Until(first.Add(b.maxAge)); wait > 0 && !closed {
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-b.now:
			timer.Stop()
		}
	}
	b.mu.Lock()
	n := min(len(b.queue), maxBatch)
	batch := b.queue[:n:n]
	b.queue = b.queue[n:]
	b.mu.Unlock()
	b.handOver(batch)
	return true
}

// handOver awaits each entry's precondition, then adds the ready ones to
// Tessera in their order, together.
func (b *batcher) handOver(batch []*pendingAppend) {
	ready := batch[:0:0]
	for _, p := range batch {
		if p.ready != nil {
			if err := <-p.ready; err != nil {
				p.res <- appendResult{err: &NotReadyError{Err: err}}
				continue
			}
		}
		ready = append(ready, p)
	}
	ctx := context.Background()
	for _, p := range ready {
		p.res <- appendResult{future: b.appender.Add(ctx, tessera.NewEntry(p.entry))}
	}
}

// close stops taking entries, hands over those queued, and returns once
// they are with Tessera.
func (b *batcher) close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	signal(b.now)
	close(b.wake)
	b.mu.Unlock()
	<-b.done
}
