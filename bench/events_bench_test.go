package bench_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody-dev/custody/client"
	"github.com/custody-dev/custody/custodylog"
	"github.com/custody-dev/custody/internal/testenv/binaries"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

const (
	eventClients = 64
	eventsPerRun = 20000
)

func percentile(d []time.Duration, p float64) time.Duration {
	slices.Sort(d)
	return d[int(float64(len(d)-1)*p)]
}

// BenchmarkCustodyEvents drives custody events (annotations, each a log
// entry with a signed receipt) through the real custodyd over mutual-TLS
// gRPC from 64 concurrent clients, one item each, and reports events/s,
// latency to receipt and to an inclusion proof, beside raw in-process
// Tessera POSIX appends from 64 goroutines in the same run; then the same
// 64 clients on one hot item, beside raw appends that each wait for the
// previous one to be sequenced.
func BenchmarkCustodyEvents(b *testing.B) {
	d := binaries.StartCustodyd(b, b.TempDir(), "--checkpoint-interval", "200ms", "--log-level", "warn", "--rate-limit", "1e6", "--rate-burst", "1000000")
	creds, err := client.LoadCredentials(d.CredsDir("court")) // records the events (the court may annotate any item)
	if err != nil {
		b.Fatal(err)
	}
	uploaderCreds, err := client.LoadCredentials(d.CredsDir("collector"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	uploader, err := client.Dial(ctx, d.GRPCAddr, uploaderCreds)
	if err != nil {
		b.Fatal(err)
	}
	defer uploader.Close()
	clients := make([]*client.Client, eventClients)
	ids := make([]string, eventClients)
	for i := range clients {
		// One connection per client, as separate teams would have.
		if clients[i], err = client.Dial(ctx, d.GRPCAddr, creds); err != nil {
			b.Fatal(err)
		}
		defer clients[i].Close()
		resp, err := upload(ctx, uploader, "bench", []byte(fmt.Sprintf("bench item %d %d", i, time.Now().UnixNano())))
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = resp.GetEvidence().GetEvidenceId()
	}
	logClient := custodyv1.NewLogServiceClient(clients[0].Conn())

	for b.Loop() {
		var mu sync.Mutex
		var receiptLat []time.Duration
		start := time.Now()
		var wg sync.WaitGroup
		for i := range eventClients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range eventsPerRun / eventClients {
					t0 := time.Now()
					if _, err := clients[i].RecordEvent(ctx, &custodyv1.RecordEventRequest{EvidenceId: ids[i], Type: custodyv1.EventType_EVENT_TYPE_ANNOTATION, Note: "bench"}); err != nil {
						b.Error(err)
						return
					}
					lat := time.Since(t0)
					mu.Lock()
					receiptLat = append(receiptLat, lat)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		b.ReportMetric(float64(len(receiptLat))/elapsed.Seconds(), "events/s")
		b.ReportMetric(float64(percentile(receiptLat, 0.5).Microseconds())/1000, "p50-receipt-ms")
		b.ReportMetric(float64(percentile(receiptLat, 0.99).Microseconds())/1000, "p99-receipt-ms")

		// Latency to inclusion proof, in a second pass: 200 events from 8
		// clients, each timed from the call until GetInclusionProof
		// succeeds, i.e. a signed checkpoint covers it.
		var proofLat []time.Duration
		var pmu sync.Mutex
		var pwg sync.WaitGroup
		for i := range 8 {
			pwg.Add(1)
			go func() {
				defer pwg.Done()
				for range 25 {
					t0 := time.Now()
					resp, err := clients[i].RecordEvent(ctx, &custodyv1.RecordEventRequest{EvidenceId: ids[i], Type: custodyv1.EventType_EVENT_TYPE_ANNOTATION, Note: "proof"})
					if err != nil {
						b.Error(err)
						return
					}
					for {
						_, err := logClient.GetInclusionProof(ctx, &custodyv1.GetInclusionProofRequest{Index: resp.GetEvent().GetLogIndex()})
						if err == nil {
							break
						}
						time.Sleep(5 * time.Millisecond)
					}
					pmu.Lock()
					proofLat = append(proofLat, time.Since(t0))
					pmu.Unlock()
				}
			}()
		}
		pwg.Wait()
		b.ReportMetric(float64(percentile(proofLat, 0.5).Milliseconds()), "p50-proof-ms")
		b.ReportMetric(float64(percentile(proofLat, 0.99).Milliseconds()), "p99-proof-ms")

		raw := rawTesseraRate(b)
		b.ReportMetric(raw, "raw-tessera-events/s")
		b.ReportMetric(float64(len(receiptLat))/elapsed.Seconds()/raw, "ratio")

		// A hot item: all 64 clients record events on one item for
		// hotRun. Each event links to the item's previous one, so the
		// raw baseline appends entries that each wait for the previous
		// one to be sequenced.
		hot, hotLat := hotItemRate(b, clients, ids[0])
		b.ReportMetric(hot, "hot-events/s")
		b.ReportMetric(float64(percentile(hotLat, 0.99).Microseconds())/1000, "hot-p99-receipt-ms")
		rawHot := rawTesseraChainRate(b)
		b.ReportMetric(rawHot, "raw-tessera-chain/s")
		b.ReportMetric(hot/rawHot, "hot-ratio")
	}
}

// hotRun is how long the hot-item passes run.
const hotRun = 10 * time.Second

// hotItemRate has every client record annotations on item id for hotRun
// and returns events per second and each event's latency to receipt. A
// client told the item is busy (it waited past the service's lock wait)
// retries, as the message says; the retries count in the latency.
func hotItemRate(b *testing.B, clients []*client.Client, id string) (float64, []time.Duration) {
	ctx := context.Background()
	var mu sync.Mutex
	var lats []time.Duration
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			for time.Since(start) < hotRun {
				t0 := time.Now()
				req := &custodyv1.RecordEventRequest{EvidenceId: id, Type: custodyv1.EventType_EVENT_TYPE_ANNOTATION, Note: "hot"}
				_, err := c.RecordEvent(ctx, req)
				for status.Code(err) == codes.Unavailable && strings.Contains(err.Error(), "busy") && time.Since(start) < 2*hotRun {
					_, err = c.RecordEvent(ctx, req)
				}
				if err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				lats = append(lats, time.Since(t0))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return float64(len(lats)) / time.Since(start).Seconds(), lats
}

// rawTesseraChainRate appends custody-sized entries to a fresh in-process
// Tessera POSIX log with the same batching, each only once the previous
// one is sequenced (as an item's events, each linking to the previous
// one's index), for hotRun, and returns entries per second.
func rawTesseraChainRate(b *testing.B) float64 {
	ctx := context.Background()
	appender, shutdown := rawAppender(b)
	defer shutdown(ctx)
	entry := make([]byte, 330)
	n := 0
	start := time.Now()
	for ; time.Since(start) < hotRun; n++ {
		e := append([]byte(fmt.Sprintf("chain/%d ", n)), entry...)
		if _, err := appender.Add(ctx, tessera.NewEntry(e))(); err != nil {
			b.Fatal(err)
		}
	}
	return float64(n) / time.Since(start).Seconds()
}

// rawAppender opens a fresh in-process Tessera POSIX log with custodyd's
// batching (1024 entries, custodylog.DefaultBatchMaxAge).
func rawAppender(b *testing.B) (*tessera.Appender, func(context.Context) error) {
	ctx := context.Background()
	skey, _, err := note.GenerateKey(rand.Reader, "bench.local/raw")
	if err != nil {
		b.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	driver, err := posix.New(ctx, posix.Config{Path: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	appender, shutdown, _, err := tessera.NewAppender(ctx, driver, tessera.NewAppendOptions().
		WithCheckpointSigner(signer).WithCheckpointInterval(200*time.Millisecond).WithBatching(1024, custodylog.DefaultBatchMaxAge))
	if err != nil {
		b.Fatal(err)
	}
	return appender, shutdown
}

// rawTesseraRate appends eventsPerRun entries of the same size as custody
// entries to a fresh in-process Tessera POSIX log from 64 goroutines and
// returns entries per second.
func rawTesseraRate(b *testing.B) float64 {
	ctx := context.Background()
	appender, shutdown := rawAppender(b)
	defer shutdown(ctx)
	entry := make([]byte, 330) // about a custody entry's size
	start := time.Now()
	var wg sync.WaitGroup
	for g := range eventClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range eventsPerRun / eventClients {
				e := append([]byte(fmt.Sprintf("%d/%d ", g, n)), entry...)
				if _, err := appender.Add(ctx, tessera.NewEntry(e))(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return float64(eventsPerRun/eventClients*eventClients) / time.Since(start).Seconds()
}
