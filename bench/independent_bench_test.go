package bench_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/custody-dev/custody/client"
	"github.com/custody-dev/custody/internal/testenv/binaries"
	"github.com/custody-dev/custody/internal/testenv/tsatest"
	"github.com/custody-dev/custody/internal/testenv/witnesstest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// BenchmarkWitnessedTimestamped measures what independent witnesses and
// time cost: the same event load on a custodyd with no witness and no
// timestamp authority, and on one with two real witnesses (omniwitness)
// and a real RFC 3161 authority (timestamp-server), in the same run.
// Reported for each: events/s (64 clients), the p50 time from an event's
// receipt until a published checkpoint covers it (witnessed, when there
// are witnesses), and, with the authority, until a timestamped one does.
//
//	go test ./bench -run '^$' -bench WitnessedTimestamped -benchtime 1x
func BenchmarkWitnessedTimestamped(b *testing.B) {
	const origin = "custody.local/log"
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		b.Fatal(err)
	}
	wa := witnesstest.Start(b, "witness.test/a", origin, vkey)
	wb := witnesstest.Start(b, "witness.test/b", origin, vkey)
	authority := tsatest.Start(b, "Bench TSA")
	policy := filepath.Join(b.TempDir(), "policy")
	os.WriteFile(policy, []byte(fmt.Sprintf("witness A %s %s\nwitness B %s %s\ngroup both all A B\nquorum both\n", wa.VKey, wa.URL, wb.VKey, wb.URL)), 0o600)
	common := []string{"--checkpoint-interval", "1s", "--log-level", "warn", "--rate-limit", "1e6", "--rate-burst", "1000000"}
	plain := binaries.StartCustodyd(b, b.TempDir(), common...)
	dir := b.TempDir()
	os.MkdirAll(filepath.Join(dir, "custody-data", "keys"), 0o700)
	os.WriteFile(filepath.Join(dir, "custody-data", "keys", "log-key"), []byte(skey+"\n"), 0o600)
	independent := binaries.StartCustodyd(b, dir, append(common, "--witness-policy", policy, "--tsa", authority.URL, "--tsa-chain", authority.ChainFile)...)
	for b.Loop() {
		for _, run := range []struct {
			name string
			d    *binaries.Daemon
		}{{"plain", plain}, {"witnessed+tsa", independent}} {
			rate, published, stamped := independentRun(b, run.d, run.d == independent)
			b.ReportMetric(rate, run.name+"-events/s")
			b.ReportMetric(float64(published.Milliseconds()), run.name+"-p50-published-ms")
			if run.d == independent {
				b.ReportMetric(float64(stamped.Milliseconds()), run.name+"-p50-timestamped-ms")
			}
		}
	}
}

func independentRun(b *testing.B, d *binaries.Daemon, stamped bool) (float64, time.Duration, time.Duration) {
	ctx := context.Background()
	dial := func(role string) *client.Client {
		creds, err := client.LoadCredentials(d.CredsDir(role))
		if err != nil {
			b.Fatal(err)
		}
		c, err := client.Dial(ctx, d.GRPCAddr, creds)
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	uploader := dial("collector")
	defer uploader.Close()
	clients := make([]*client.Client, eventClients)
	ids := make([]string, eventClients)
	for i := range clients {
		clients[i] = dial("court")
		defer clients[i].Close()
		resp, err := upload(ctx, uploader, "bench", []byte(fmt.Sprintf("bench item %d %d", i, time.Now().UnixNano())))
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = resp.GetEvidence().GetEvidenceId()
	}
	var n int
	var mu sync.Mutex
	start := time.Now()
	var wg sync.WaitGroup
	for i := range eventClients {
		wg.Go(func() {
			for range eventsPerRun / eventClients {
				if _, err := clients[i].RecordEvent(ctx, &custodyv1.RecordEventRequest{EvidenceId: ids[i], Type: custodyv1.EventType_EVENT_TYPE_ANNOTATION, Note: "bench"}); err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				n++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	rate := float64(n) / time.Since(start).Seconds()

	// Publication latency: 20 events one after another, each timed from its
	// receipt until /log/checkpoint (and /log/timestamp) covers it.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	size := func(path string) uint64 {
		resp, err := hc.Get("https://" + d.HTTPAddr + path)
		if err != nil {
			return 0
		}
		defer resp.Body.Close()
		if path == "/log/timestamp" {
			var v struct {
				TreeSize uint64 `json:"tree_size"`
			}
			json.NewDecoder(resp.Body).Decode(&v)
			return v.TreeSize
		}
		var origin string
		var n uint64
		fmt.Fscan(resp.Body, &origin, &n)
		return n
	}
	var pub, ts []time.Duration
	for range 20 {
		resp, err := clients[0].RecordEvent(ctx, &custodyv1.RecordEventRequest{EvidenceId: ids[0], Type: custodyv1.EventType_EVENT_TYPE_ANNOTATION, Note: "latency"})
		if err != nil {
			b.Fatal(err)
		}
		idx, t0 := resp.GetEvent().GetLogIndex(), time.Now()
		for size("/log/checkpoint") <= idx {
			time.Sleep(10 * time.Millisecond)
		}
		pub = append(pub, time.Since(t0))
		if stamped {
			for size("/log/timestamp") <= idx {
				time.Sleep(10 * time.Millisecond)
			}
			ts = append(ts, time.Since(t0))
		}
	}
	var p50ts time.Duration
	if stamped {
		p50ts = percentile(ts, 0.5)
	}
	return rate, percentile(pub, 0.5), p50ts
}
