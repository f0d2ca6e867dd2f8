package bench_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
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
	_ "github.com/jackc/pgx/v5/stdlib"
)

const replicaEventsPerRun = 4000

// eventRun is what one eventRate run measured: events/s, latency
// percentiles and each process's CPU milliseconds per event.
type eventRun struct {
	rate     float64
	p50, p99 time.Duration
	cpu      map[string]float64
	// pg is PostgreSQL's transactions and rows read (returned + fetched)
	// per event, from pg_stat_database (the replicated runs).
	pg   [2]float64
	load string
}

// eventRate drives replicaEventsPerRun annotations from eventClients
// clients, each on its own item and connection, spread round-robin over
// the daemons, and returns events/s, the latency percentiles and the CPU
// time each process spent per event (groups names the daemons).
func eventRate(b *testing.B, daemons []*binaries.Daemon, groups cpuGroups) eventRun {
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
	cpu0 := groups.sample()
	pg0 := groups.pgStats()
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
	elapsed := time.Since(start)
	r := eventRun{
		rate: float64(len(lat)) / elapsed.Seconds(), p50: percentile(lat, 0.5), p99: percentile(lat, 0.99),
		cpu: cpuPerEvent(cpu0, groups.sample(), len(lat)), load: loadAverage(),
	}
	if groups.pg != nil {
		time.Sleep(1500 * time.Millisecond) // backends report their counts at most once a second
		pg1 := groups.pgStats()
		for i := range r.pg {
			r.pg[i] = float64(pg1[i]-pg0[i]) / float64(len(lat))
		}
	}
	return r
}

// BenchmarkReplicaEvents measures custody events per second through the
// embedded single-node default (POSIX log, SQLite) and through one, two and
// three replicas sharing MariaDB, PostgreSQL and a four-drive MinIO, all
// on this machine in one run, beside raw in-process appends to a Tessera
// AWS-driver log on the same MinIO and MariaDB. Each run also reports the
// CPU milliseconds per event of every process (from /proc/<pid>/stat):
// each custodyd, postgres (all backends), mariadb, minio and the load
// client.
//
// CUSTODY_REPLICAS lists the replica counts to run (default "1,2,3").
// CUSTODY_PIN=ENGINES/REPLICAS (taskset CPU lists, e.g. "0/1") pins
// PostgreSQL, MariaDB and MinIO to the first CPUs and the custodyd
// processes and the load client to the second, so each side's capacity
// is measured on cores of its own (the scaling model in
// docs/BENCHMARKS.md).
func BenchmarkReplicaEvents(b *testing.B) {
	counts := []int{1, 2, 3}
	if v := os.Getenv("CUSTODY_REPLICAS"); v != "" {
		counts = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(f)
			if err != nil || n < 1 {
				b.Fatalf("CUSTODY_REPLICAS=%q: want a list of replica counts", v)
			}
			counts = append(counts, n)
		}
	}
	limits := []string{"--log-level", "warn", "--rate-limit", "1e6", "--rate-burst", "1000000"}
	embedded := binaries.StartCustodyd(b, b.TempDir(), append([]string{"--checkpoint-interval", "1s"}, limits...)...)
	// Pinned (the model's measurement), one replica more than any run uses
	// takes no calls: what it spends is the cost of following the log.
	started := slices.Max(counts)
	if os.Getenv("CUSTODY_PIN") != "" {
		started++
	}
	c := clustertest.Start(b, clustertest.Options{Replicas: started, Args: limits})
	groups := cpuGroups{daemons: map[int]string{embedded.Cmd.Process.Pid: "custodyd-embedded"}}
	var err error
	if groups.pg, err = sql.Open("pgx", c.Catalog); err != nil {
		b.Fatal(err)
	}
	defer groups.pg.Close()
	for i, r := range c.Replicas {
		groups.daemons[r.Cmd.Process.Pid] = fmt.Sprintf("custodyd%d", i+1)
	}
	if v := os.Getenv("CUSTODY_PIN"); v != "" {
		engines, replicas, ok := strings.Cut(v, "/")
		if !ok {
			b.Fatalf("CUSTODY_PIN=%q: want ENGINE-CPUS/REPLICA-CPUS, e.g. 0/1", v)
		}
		pin(b, engines, enginePIDs()...)
		pids := []int{os.Getpid(), embedded.Cmd.Process.Pid}
		for _, r := range c.Replicas {
			pids = append(pids, r.Cmd.Process.Pid)
		}
		pin(b, replicas, pids...)
		b.Logf("pinned: engines (postgres, mariadb, minio) on CPUs %s; custodyd and the load client on CPUs %s", engines, replicas)
	}
	report := func(name string, r eventRun) {
		b.ReportMetric(r.rate, name+"-events/s")
		b.ReportMetric(float64(r.p50.Microseconds())/1000, name+"-p50-ms")
		b.ReportMetric(float64(r.p99.Microseconds())/1000, name+"-p99-ms")
		b.Logf("%s: %.0f events/s (load %s); CPU ms/event:%s", name, r.rate, r.load, formatCPU(r.cpu))
		if r.pg != [2]float64{} {
			b.Logf("%s: PostgreSQL per event: %.2f transactions, %.1f rows read", name, r.pg[0], r.pg[1])
		}
	}
	for b.Loop() {
		// What each process spends when nothing is asked of it (MinIO's
		// scanner, the daemons' loops, the log's checkpoints).
		idle0 := groups.sample()
		time.Sleep(3 * time.Second)
		idle := cpuPerEvent(idle0, groups.sample(), 3) // ms per event -> per second
		b.Logf("idle: CPU ms per second:%s", formatCPU(idle))
		emb := eventRate(b, []*binaries.Daemon{embedded}, groups)
		report("embedded", emb)
		runs := map[int]eventRun{}
		for _, n := range counts {
			runs[n] = eventRate(b, c.Replicas[:n], groups)
			report(fmt.Sprintf("replicas%d", n), runs[n])
			if n == 1 {
				b.ReportMetric(runs[n].rate/emb.rate, "replicas1-ratio")
			}
		}
		last := runs[counts[len(counts)-1]]
		raw := rawSharedRate(b, c)
		b.ReportMetric(raw, "raw-shared-tessera-events/s")
		b.ReportMetric(last.rate/raw, fmt.Sprintf("replicas%d-raw-ratio", counts[len(counts)-1]))
		seqRate, hold := seqRowRate(b, c, 8, 30*400, 3*time.Second)
		b.ReportMetric(seqRate, "seqrow-tx/s")
		b.ReportMetric(float64(hold.Microseconds())/1000, "seqrow-hold-ms")
		b.Logf("sequencing row: %.0f transactions/s from 8 writers, row held %.2f ms each (load %s)", seqRate, float64(hold.Microseconds())/1000, loadAverage())
		logModel(b, runs, counts, len(c.Replicas), hold)
	}
}

// logModel prints the scaling model docs/BENCHMARKS.md explains, from the
// CPU milliseconds per event each process spent in the largest run:
// throughput(N) = min(N replicas' capacity, each engine's capacity on one
// core, the sequencing row's), for N = 1..8 on separate machines.
func logModel(b *testing.B, runs map[int]eventRun, counts []int, started int, hold time.Duration) {
	n := counts[len(counts)-1]
	r := runs[n]
	// A replica receiving no calls still follows the log (history map,
	// checkpoints): its CPU per event of the others' is the follow cost.
	follow := 0.0
	for _, m := range counts {
		if m < started {
			follow = runs[m].cpu[fmt.Sprintf("custodyd%d", started)]
		}
	}
	own := -float64(n) * follow
	for i := 1; i <= n; i++ {
		own += r.cpu[fmt.Sprintf("custodyd%d", i)]
	}
	age := float64(awslog.BatchMaxAge.Microseconds()) / 1000
	holdMS := float64(hold.Microseconds()) / 1000
	b.Logf("model (from the %d-replica run): replica %.3f ms/event own + %.3f ms per event of any replica (follow); postgres %.3f, mariadb %.3f, minio %.3f ms/event; sequencing row held %.2f ms per batch, a batch every %.0f ms per replica",
		n, own, follow, r.cpu["postgres"], r.cpu["mariadb"], r.cpu["minio"], holdMS, age)
	capOf := func(ms float64) float64 {
		if ms <= 0 {
			return 1e9
		}
		return 1000 / ms
	}
	for N := 1; N <= 8; N++ {
		replicas := float64(N) * 1000 / (own + float64(N)*follow)
		terms := map[string]float64{
			"replicas": replicas, "postgres": capOf(r.cpu["postgres"]), "mariadb": capOf(r.cpu["mariadb"]), "minio": capOf(r.cpu["minio"]),
		}
		limit, name := replicas, "replicas"
		for k, v := range terms {
			if v < limit {
				limit, name = v, k
			}
		}
		rowOK := float64(N)*holdMS <= age
		b.Logf("model N=%d: %.0f events/s, limited by %s (replicas %.0f, postgres %.0f, mariadb %.0f, minio %.0f per core); sequencing row %s",
			N, limit, name, replicas, terms["postgres"], terms["mariadb"], terms["minio"],
			map[bool]string{true: "keeps up", false: "saturated: batches grow past the age, latency rises"}[rowOK])
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
