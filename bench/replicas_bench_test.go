package bench_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/custody-dev/custody/client"
	"github.com/custody-dev/custody/custodylog"
	"github.com/custody-dev/custody/custodylog/awslog"
	"github.com/custody-dev/custody/internal/testenv/binaries"
	"github.com/custody-dev/custody/internal/testenv/clustertest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

const replicaEventsPerRun = 4000

// eventRate drives replicaEventsPerRun annotations from eventClients
// clients, each on its own item and connection, spread round-robin over
// the daemons, and returns events/s and the latency percentiles.
func eventRate(b *testing.B, daemons []*binaries.Daemon) (float64, time.Duration, time.Duration) {
	ctx := context.Background()
	clients := make([]*client.Client, eventClients)
	ids := make([]string, eventClients)
	for i := range clients {
		d := daemons[i%len(daemons)]
		creds, err := client.LoadCredentials(d.CredsDir("court")) // the court may annotate any item
		if err != nil {
			b.Fatal(err)
		}
		upCreds, _ := client.LoadCredentials(d.CredsDir("collector"))
		up, err := client.Dial(ctx, d.GRPCAddr, upCreds)
		if err != nil {
			b.Fatal(err)
		}
		resp, err := upload(ctx, up, "bench", []byte(fmt.Sprintf("replica bench item %d %d", i, time.Now().UnixNano())))
		up.Close()
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = resp.GetEvidence().GetEvidenceId()
		if clients[i], err = client.Dial(ctx, d.GRPCAddr, creds); err != nil {
			b.Fatal(err)
		}
		defer clients[i].Close()
	}
	var mu sync.Mutex
	var lat []time.Duration
	start := time.Now()
	var wg sync.WaitGroup
	for i := range eventClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range replicaEventsPerRun / eventClients {
				t0 := time.Now()
				if _, err := clients[i].RecordEvent(ctx, &custodyv1.RecordEventRequest{EvidenceId: ids[i], Type: custodyv1.EventType_EVENT_TYPE_ANNOTATION, Note: "bench"}); err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				lat = append(lat, time.Since(t0))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return float64(len(lat)) / time.Since(start).Seconds(), percentile(lat, 0.5), percentile(lat, 0.99)
}

// BenchmarkReplicaEvents measures custody events per second through the
// embedded single-node default (POSIX log, SQLite) and through one, two and
// three replicas sharing MariaDB, PostgreSQL and a four-drive MinIO, all
// on this machine in one run, beside raw in-process appends to a Tessera
// AWS-driver log on the same MinIO and MariaDB.
func BenchmarkReplicaEvents(b *testing.B) {
	limits := []string{"--log-level", "warn", "--rate-limit", "1e6", "--rate-burst", "1000000"}
	embedded := binaries.StartCustodyd(b, b.TempDir(), append([]string{"--checkpoint-interval", "1s"}, limits...)...)
	c := clustertest.Start(b, clustertest.Options{Replicas: 3, Args: limits})
	for b.Loop() {
		rate, p50, p99 := eventRate(b, []*binaries.Daemon{embedded})
		b.ReportMetric(rate, "embedded-events/s")
		b.ReportMetric(float64(p99.Microseconds())/1000, "embedded-p99-ms")
		for n := 1; n <= 3; n++ {
			rate, p50, p99 = eventRate(b, c.Replicas[:n])
			b.ReportMetric(rate, fmt.Sprintf("replicas%d-events/s", n))
			b.ReportMetric(float64(p50.Microseconds())/1000, fmt.Sprintf("replicas%d-p50-ms", n))
			b.ReportMetric(float64(p99.Microseconds())/1000, fmt.Sprintf("replicas%d-p99-ms", n))
		}
		raw := rawSharedRate(b, c)
		b.ReportMetric(raw, "raw-shared-tessera-events/s")
		b.ReportMetric(rate/raw, "replicas3-ratio")
	}
}

// rawSharedRate appends replicaEventsPerRun custody-sized entries to a
// fresh Tessera AWS-driver log (its own bucket and database on the
// cluster's MinIO and MariaDB) from eventClients goroutines.
func rawSharedRate(b *testing.B, c *clustertest.Cluster) float64 {
	ctx := context.Background()
	skey, vkey, _ := note.GenerateKey(rand.Reader, "bench.local/raw-shared")
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	name := fmt.Sprintf("raw%d", time.Now().UnixNano())
	backend, err := awslog.New(ctx, awslog.Config{S3Endpoint: c.MinIO.Endpoint, Insecure: true, AccessKey: c.MinIO.AccessKey, SecretKey: c.MinIO.SecretKey,
		Bucket: name, MySQLDSN: c.MariaDB.NewDatabase(b, name)})
	if err != nil {
		b.Fatal(err)
	}
	l, err := custodylog.Open(ctx, custodylog.Config{
		Backend: backend, Signer: signer, Verifier: verifier, CheckpointInterval: time.Second,
		NoHistoryMap: true, // the raw baseline: appends alone
	})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close(ctx)
	entry := make([]byte, 330)
	start := time.Now()
	var wg sync.WaitGroup
	for g := range eventClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range replicaEventsPerRun / eventClients {
				if _, err := l.Append(ctx, append([]byte(fmt.Sprintf("%d/%d ", g, n)), entry...)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return float64(replicaEventsPerRun/eventClients*eventClients) / time.Since(start).Seconds()
}
