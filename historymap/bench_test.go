package historymap_test

import (
	"fmt"
	"testing"

	"github.com/custody-dev/custody/historymap"
)

// benchEntry is a canonical custody entry of item i (with a fake record
// digest: the map reads evidence_id and seq only).
func benchEntry(i, seq int) []byte {
	return fmt.Appendf(nil, `{"evidence_id":"ev-%026d","record_sha256":"%064x","seq":%d,"time":"2026-11-28T00:00:00Z","type":"annotation","v":1}`, i, i, seq)
}

// BenchmarkMap measures one snapshot of a map of n items after 1% of them
// changed and 0.1% were new since the previous snapshot: the cost a
// service pays each commitment interval. Run:
//
//	go test -run '^$' -bench Map -benchtime 5x ./historymap/
func BenchmarkMap(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			bl := historymap.NewBuilder()
			idx := uint64(0)
			add := func(e []byte) {
				if err := bl.Add(idx, e); err != nil {
					b.Fatal(err)
				}
				idx++
			}
			for i := range n {
				add(benchEntry(i, 0))
			}
			if _, err := bl.Map(idx); err != nil { // the first snapshot encodes every leaf
				b.Fatal(err)
			}
			items, round := n, 0
			for b.Loop() {
				b.StopTimer()
				round++
				for k := range n / 100 {
					add(benchEntry((k*7919+round)%items, round))
				}
				for range n / 1000 {
					add(benchEntry(items, 0))
					items++
				}
				b.StartTimer()
				m, err := bl.Map(idx)
				if err != nil {
					b.Fatal(err)
				}
				if m.Size() != uint64(items) {
					b.Fatalf("%d leaves, want %d", m.Size(), items)
				}
			}
		})
	}
}

// BenchmarkAdd measures feeding one custody entry to the builder.
func BenchmarkAdd(b *testing.B) {
	bl := historymap.NewBuilder()
	e := benchEntry(1, 0)
	i := uint64(0)
	for b.Loop() {
		if err := bl.Add(i, e); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkProof measures one leaf proof in a map of 1,000,000 items.
func BenchmarkProof(b *testing.B) {
	bl := historymap.NewBuilder()
	const n = 1_000_000
	for i := range n {
		if err := bl.Add(uint64(i), benchEntry(i, 0)); err != nil {
			b.Fatal(err)
		}
	}
	m, err := bl.Map(n)
	if err != nil {
		b.Fatal(err)
	}
	k := 0
	for b.Loop() {
		if _, _, err := m.Proof(id(k * 7919 % n)); err != nil {
			b.Fatal(err)
		}
		k++
	}
}
