package bench_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/custody-dev/custody/bench"
	"github.com/custody-dev/custody/client"
	"github.com/custody-dev/custody/internal/testenv/binaries"
	"github.com/custody-dev/custody/internal/testenv/loadtest"
	"github.com/custody-dev/custody/internal/testenv/miniotest"
)

// BenchmarkSoak runs custodyd (MinIO storage, default admission limits)
// under a steady mixed load for $CUSTODY_SOAK (default 3m): 20 uploaders
// of 256 KiB items and 10 hand-off workers (HTTPS and gRPC), 10 bundle
// exporters and 10 public log readers (HTTPS), and ghz recording custody
// events on 8 items from 24 workers (gRPC). It reports each kind's
// throughput, p50/p99 latency of admitted calls and outcome counts by
// code, and custodyd's peak RSS.
func BenchmarkSoak(b *testing.B) {
	dur := 3 * time.Minute
	if v := os.Getenv("CUSTODY_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("CUSTODY_SOAK: %v", err)
		}
		dur = d
	}
	minio := miniotest.Start(b)
	os.Setenv("CUSTODY_S3_ACCESS_KEY", minio.AccessKey)
	os.Setenv("CUSTODY_S3_SECRET_KEY", minio.SecretKey)
	d := binaries.StartCustodyd(b, b.TempDir(), "--s3-endpoint", minio.Endpoint, "--s3-bucket", "evidence", "--s3-insecure",
		"--log-level", "warn", "--rate-limit", "1e6", "--rate-burst", "1000000", "--max-streams-per-identity", "1000")
	cfg := loadtest.Config{
		HTTPAddr: d.HTTPAddr, GRPCAddr: d.GRPCAddr, CredsDir: d.CredsDir,
		Uploaders: 20, HandOffs: 10, Bundles: 10, LogReaders: 10,
		UploadSize: 256 << 10, Duration: dur, Custodian: "urn:custody:custodian:dev-custodian",
	}
	ctx := context.Background()
	for b.Loop() {
		type ghzResult struct {
			g   *loadtest.Ghz
			err error
		}
		results := make(chan ghzResult, 8)
		for i := range 8 {
			creds, err := client.LoadCredentials(d.CredsDir("collector"))
			if err != nil {
				b.Fatal(err)
			}
			up, err := client.Dial(ctx, d.GRPCAddr, creds)
			if err != nil {
				b.Fatal(err)
			}
			resp, err := upload(ctx, up, "soak", []byte(fmt.Sprintf("soak item %d %d", i, time.Now().UnixNano())))
			up.Close()
			if err != nil {
				b.Fatal(err)
			}
			run := loadtest.GhzRun{Tool: binaries.Tool(b, "ghz"), Dir: binaries.RepoRoot(b), Method: "custody.v1.CustodyService.RecordEvent", Role: "court",
				Data:        fmt.Sprintf(`{"evidence_id":%q,"type":"EVENT_TYPE_ANNOTATION","note":"soak {{.RequestNumber}}"}`, resp.GetEvidence().GetEvidenceId()),
				Concurrency: 3, Connections: 1, Duration: dur}
			go func() {
				g, err := run.Run(ctx, cfg)
				results <- ghzResult{g, err}
			}()
		}
		rep, err := loadtest.Run(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		events := map[string]int{}
		var rps float64
		var p50, p99 time.Duration
		for range 8 {
			r := <-results
			if r.err != nil {
				b.Fatal(r.err)
			}
			for code, n := range r.g.StatusCodeDistribution {
				events[code] += n
			}
			rps += r.g.RPS
			p50 = max(p50, r.g.Percentile(50))
			p99 = max(p99, r.g.Percentile(99))
		}
		peak, err := bench.PeakRSS(d.Cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("soak %v:\n%sevent (ghz) %7.1f/s  p50 ≤%v  p99 ≤%v  %v\npeak RSS %d MiB; unexpected failures: %q",
			rep.Elapsed.Round(time.Second), rep, rps, p50.Round(time.Millisecond), p99.Round(time.Millisecond), events, peak>>20, rep.Failures)
		for kind, k := range rep.Kinds {
			b.ReportMetric(float64(k.ByOutcome["OK"])/rep.Elapsed.Seconds(), kind+"/s")
			b.ReportMetric(float64(k.Percentile(0.99).Milliseconds()), kind+"-p99-ms")
		}
		b.ReportMetric(rps, "event/s")
		b.ReportMetric(float64(peak>>20), "peak-RSS-MiB")
	}
}
