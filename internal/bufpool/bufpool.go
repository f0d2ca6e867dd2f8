// Package bufpool is a gRPC buffer pool that does not zero the buffers it
// hands out.
package bufpool

import (
	"math/bits"
	"sync"
)

// Dirty is a mem.BufferPool for a process that sends large messages (the
// custody CLI: experimental.SetDefaultBufferPool at start). gRPC's default
// pool zeroes every buffer it hands out — 1 MiB for each upload chunk
// marshalled, about 3% of the CLI's CPU in a folder upload. gRPC writes a buffer's
// whole length before it reads any of it (it marshals into it or reads
// into it in full), so the old contents are never seen. Buffers come in
// powers of two from 256 bytes; a buffer is kept by the largest power of
// two its capacity holds.
type Dirty struct {
	tiers [40]sync.Pool
}

const minTier = 8 // 256 bytes

func (p *Dirty) Get(n int) *[]byte {
	t := max(bits.Len(uint(n-1)), minTier)
	if n <= 0 || t >= len(p.tiers) {
		b := make([]byte, n)
		return &b
	}
	if b, ok := p.tiers[t].Get().(*[]byte); ok {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, 1<<t)
	return &b
}

func (p *Dirty) Put(b *[]byte) {
	c := cap(*b)
	if c < 1<<minTier {
		return
	}
	t := bits.Len(uint(c)) - 1
	if t >= len(p.tiers) {
		return
	}
	p.tiers[t].Put(b)
}
