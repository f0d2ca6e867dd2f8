package local

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestLocks: a key's lock excludes, waiters give up with their
// context, and no lock outlives its users.
func TestLocks(t *testing.T) {
	l := NewLocks()
	var mu sync.Mutex
	inside := map[string]int{}
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range 200 {
				key := fmt.Sprintf("item-%d", (g+n)%4)
				unlock, err := l.Lock(t.Context(), key)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				inside[key]++
				if inside[key] != 1 {
					t.Errorf("%d holders of %s", inside[key], key)
				}
				mu.Unlock()
				mu.Lock()
				inside[key]--
				mu.Unlock()
				unlock()
			}
		}()
	}
	wg.Wait()
	unlock, err := l.Lock(t.Context(), "busy")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := l.Lock(ctx, "busy"); err == nil {
		t.Fatal("a second holder got a held lock")
	}
	unlock()
	if n := l.held(); n != 0 {
		t.Fatalf("%d locks remain after every holder left", n)
	}
}
