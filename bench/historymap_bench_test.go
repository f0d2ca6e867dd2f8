package bench_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/custody-dev/custody/custodylog"
	"github.com/custody-dev/custody/custodylog/posixlog"
	"github.com/custody-dev/custody/events"
)

// BenchmarkHistoryMap measures what the history map (docs/HISTORY_MAP.md)
// costs the log, in the same run (four runs of 10 s, on-off-off-on): custody entries appended by 64
// goroutines (one item each, each awaiting durable sequencing, as the
// service's writes do) to a POSIX custody log with the map off and on,
// and, with it on, the p50 time from an entry's append until a
// commitment's map covers it under a published checkpoint — the earliest
// a bundle can prove its history complete up to that event. The
// checkpoint interval is custodyd's default, 1s.
//
//	go test ./bench -run '^$' -bench HistoryMap -benchtime 1x
func BenchmarkHistoryMap(b *testing.B) {
	for b.Loop() {
		// On, off, off, on: the order matters on these shared cores (a
		// second log in a row runs slower), so each is measured first and
		// second once and averaged.
		var on, off float64
		var covered []time.Duration
		for _, noMap := range []bool{false, true, true, false} {
			rate, p50 := historyMapRun(b, noMap)
			if noMap {
				off += rate / 2
			} else {
				on += rate / 2
				covered = append(covered, p50)
			}
		}
		b.ReportMetric(off, "map-off-events/s")
		b.ReportMetric(on, "map-on-events/s")
		b.ReportMetric(on/off, "on/off")
		b.ReportMetric(float64((covered[0]+covered[1]).Milliseconds()/2), "p50-covered-ms")
	}
}

// historyMapRun appends for 10 s and returns events/s and, with the map
// on, the p50 time until a map proof covers an entry.
func historyMapRun(b *testing.B, noMap bool) (float64, time.Duration) {
	ctx := context.Background()
	skey, vkey, _ := note.GenerateKey(rand.Reader, "bench.local/historymap")
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	backend, err := posixlog.New(ctx, filepath.Join(b.TempDir(), "log"))
	if err != nil {
		b.Fatal(err)
	}
	l, err := custodylog.Open(ctx, custodylog.Config{Backend: backend, Signer: signer, Verifier: verifier, CheckpointInterval: time.Second, NoHistoryMap: noMap})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close(ctx)
	type sample struct {
		id    string
		index uint64
		at    time.Time
	}
	var mu sync.Mutex
	var samples []sample
	n := 0
	deadline := time.Now().Add(10 * time.Second)
	start := time.Now()
	var wg sync.WaitGroup
	for g := range eventClients {
		wg.Go(func() {
			id := fmt.Sprintf("ev-bench%018d", g)
			var prev *events.Link
			for seq := uint64(0); time.Now().Before(deadline); seq++ {
				rec := events.Record{EvidenceID: id, Sequence: seq, Type: events.Annotation, RecordedAt: time.Now().UTC(), Performer: "urn:custody:court:bench", Previous: prev, Salt: events.NewSalt()}
				if seq == 0 {
					rec.Type, rec.ContentSHA256 = events.Ingest, strings.Repeat("ab", 32)
				}
				entry, err := rec.Entry()
				if err != nil {
					b.Error(err)
					return
				}
				a, err := l.Append(ctx, entry)
				if err != nil {
					b.Error(err)
					return
				}
				prev = &events.Link{Index: a.Index, LeafHash: a.LeafHash}
				mu.Lock()
				n++
				if seq%50 == 0 {
					samples = append(samples, sample{id, a.Index, time.Now()})
				}
				mu.Unlock()
			}
		})
	}
	// With the map on, a watcher polls (every 10 ms, while the appends
	// run and after) for the sampled entries a proof under the latest
	// checkpoint covers.
	var lat []time.Duration
	watched := make(chan struct{})
	if !noMap {
		go func() {
			defer close(watched)
			for time.Since(deadline) < time.Minute {
				time.Sleep(10 * time.Millisecond)
				cp, err := l.Latest(ctx)
				if err != nil {
					continue
				}
				mu.Lock()
				pending := samples
				samples = nil
				mu.Unlock()
				var rest []sample
				for _, s := range pending {
					p, ok, err := l.HistoryProof(ctx, s.id, cp.Size)
					if err == nil && ok && p.TreeSize > s.index {
						lat = append(lat, time.Since(s.at))
					} else {
						rest = append(rest, s)
					}
				}
				mu.Lock()
				samples = append(rest, samples...)
				left := len(samples)
				mu.Unlock()
				if left == 0 && time.Now().After(deadline) {
					return
				}
			}
		}()
	} else {
		close(watched)
	}
	wg.Wait()
	rate := float64(n) / time.Since(start).Seconds()
	<-watched
	if noMap {
		return rate, 0
	}
	if len(lat) == 0 {
		b.Fatal("no sampled entry was ever covered by a map proof")
	}
	return rate, percentile(lat, 0.5)
}
