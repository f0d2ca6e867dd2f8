package bufpool

import "testing"

// TestDirtyPool: a buffer has the length asked for and room for it, also
// when it was given back by another size.
func TestDirtyPool(t *testing.T) {
	p := &Dirty{}
	for _, n := range []int{0, 1, 255, 256, 257, 4096, 1<<20 + 5, 1 << 20, 3<<20 + 1} {
		b := p.Get(n)
		if len(*b) != n || cap(*b) < n {
			t.Fatalf("Get(%d): len %d cap %d", n, len(*b), cap(*b))
		}
		p.Put(b)
		odd := make([]byte, 0, n+n/3+1)
		p.Put(&odd)
	}
	for _, n := range []int{1, 300, 5000, 1<<20 + 5} {
		for range 3 {
			b := p.Get(n)
			if len(*b) != n || cap(*b) < n {
				t.Fatalf("Get(%d) again: len %d cap %d", n, len(*b), cap(*b))
			}
		}
	}
}
