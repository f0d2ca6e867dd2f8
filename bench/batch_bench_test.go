package bench_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/custody-dev/custody/internal/testenv/binaries"
)

// BenchmarkUploadFolder uploads a folder of 2,000 photos of 3 MiB with the
// real `custody upload DIR -j 8` through custodyd into MinIO, and the same
// files with raw minio-go FPutObject from 8 goroutines to the same MinIO,
// and reports files/s, MB/s and the ratio. CUSTODY_BENCH_PERF=DIR records
// perf profiles of the CLI and custodyd there.
func BenchmarkUploadFolder(b *testing.B) {
	const files, size, parallel = 2000, 3 << 20, 8
	dir := filepath.Join(b.TempDir(), "photos")
	os.MkdirAll(dir, 0o755)
	buf := make([]byte, size)
	r := rand.NewChaCha8([32]byte{3})
	var paths []string
	for i := range files {
		r.Read(buf)
		p := filepath.Join(dir, fmt.Sprintf("IMG_%05d.jpg", i))
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			b.Fatal(err)
		}
		paths = append(paths, p)
	}
	_, raw, d := setup(b)
	custody := binaries.Build(b, "custody")
	perfDir := os.Getenv("CUSTODY_BENCH_PERF")
	stop := perfAttach(b, perfDir, "custodyd-folder", d.Cmd.Process.Pid)
	defer stop()
	var ours, baseline, cliCPU time.Duration
	for i := 0; b.Loop(); i++ {
		manifest := filepath.Join(b.TempDir(), "manifest.json")
		start := time.Now()
		args := []string{"--server", d.GRPCAddr, "--creds", d.CredsDir("collector"),
			"upload", dir, "--case", fmt.Sprintf("bench-%d", i), "--kind", "photo", "-j", fmt.Sprint(parallel), "--manifest", manifest}
		name := custody
		if perfDir != "" {
			args = append([]string{"record", "-g", "-o", filepath.Join(perfDir, fmt.Sprintf("cli-folder-%d.data", i)), "--", custody}, args...)
			name = "perf"
		}
		cmd := exec.Command(name, args...)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("custody upload: %v\n%s", err, out)
		}
		ours += time.Since(start)
		cliCPU += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()

		start = time.Now()
		work := make(chan string)
		var wg sync.WaitGroup
		var failed error
		var mu sync.Mutex
		for range parallel {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for p := range work {
					if _, err := raw.FPutObject(context.Background(), "raw", fmt.Sprintf("%d/%s", i, filepath.Base(p)), p, minio.PutObjectOptions{}); err != nil {
						mu.Lock()
						failed = err
						mu.Unlock()
					}
				}
			}()
		}
		for _, p := range paths {
			work <- p
		}
		close(work)
		wg.Wait()
		if failed != nil {
			b.Fatal(failed)
		}
		baseline += time.Since(start)
	}
	n := float64(b.N * files)
	b.ReportMetric(n/ours.Seconds(), "custody-files/s")
	b.ReportMetric(n*size/ours.Seconds()/1e6, "custody-MB/s")
	b.ReportMetric(n/baseline.Seconds(), "raw-files/s")
	b.ReportMetric(baseline.Seconds()/ours.Seconds(), "ratio")
	// What the CLI costs, which the machine's load does not change much.
	b.ReportMetric(cliCPU.Seconds()/float64(b.N), "cli-CPU-s/op")
}
