package bench_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/custody-dev/custody/bench"
	"github.com/custody-dev/custody/internal/testenv/binaries"
)

// BenchmarkCLIUpload1GiB uploads a 1 GiB file with the real `custody upload
// FILE` (as the README shows it: a fresh process, mutual TLS, the
// manifest) through custodyd, alternating in the same run with the raw
// baseline of the same file:
//
//   - minio: custodyd on MinIO; the baseline is a tuned minio-go
//     PutObject (unsigned payload, 16 MiB parts, 4 in parallel) to the same
//     MinIO.
//   - disk: custodyd on its local-disk store; the baseline is copying the
//     file into the same file system and fsyncing it.
//
// Each iteration changes the file's first bytes, so custodyd never finds
// the content already stored. It reports both rates (MB/s, 10^6 bytes),
// their ratio and custodyd's peak RSS. With CUSTODY_BENCH_PERF=DIR set, it
// records perf profiles of the CLI (DIR/cli-N.data) and of custodyd
// (DIR/custodyd.data).
func BenchmarkCLIUpload1GiB(b *testing.B) {
	const size = 1 << 30
	file := filepath.Join(b.TempDir(), "video.mp4")
	writeRandomFile(b, file, size)
	custody := binaries.Build(b, "custody")
	perfDir := os.Getenv("CUSTODY_BENCH_PERF")

	b.Run("minio", func(b *testing.B) {
		_, raw, d := setup(b)
		stop := perfAttach(b, perfDir, "custodyd-minio", d.Cmd.Process.Pid)
		var ours, baseline, cpu time.Duration
		for i := 0; b.Loop(); i++ {
			freshContent(b, file, i)
			ours += cliUpload(b, custody, d, file, fmt.Sprintf("bench-%d", i), perfDir, fmt.Sprintf("cli-minio-%d", i), &cpu)
			start := time.Now()
			putTuned(b, raw, file, fmt.Sprintf("video-%d.mp4", i), size)
			baseline += time.Since(start)
		}
		stop()
		reportRates(b, d, size, ours, baseline, "raw-PutObject-MB/s")
		b.ReportMetric(cpu.Seconds()/float64(b.N), "cli-CPU-s/op")
	})

	b.Run("disk", func(b *testing.B) {
		dir := b.TempDir()
		d := binaries.StartCustodyd(b, dir, "--retention", "1h", "--log-level", "warn")
		stop := perfAttach(b, perfDir, "custodyd-disk", d.Cmd.Process.Pid)
		var ours, baseline, cpu time.Duration
		for i := 0; b.Loop(); i++ {
			freshContent(b, file, i)
			ours += cliUpload(b, custody, d, file, fmt.Sprintf("bench-%d", i), perfDir, fmt.Sprintf("cli-disk-%d", i), &cpu)
			start := time.Now()
			copyFsync(b, file, filepath.Join(dir, fmt.Sprintf("copy-%d.mp4", i)))
			baseline += time.Since(start)
			os.Remove(filepath.Join(dir, fmt.Sprintf("copy-%d.mp4", i)))
		}
		stop()
		reportRates(b, d, size, ours, baseline, "raw-write-fsync-MB/s")
		b.ReportMetric(cpu.Seconds()/float64(b.N), "cli-CPU-s/op")
	})
}

// cliUpload runs `custody upload FILE` into caseID and returns how long it
// took, process start to exit; it adds the CPU time it used to cpu.
func cliUpload(b *testing.B, custody string, d *binaries.Daemon, file, caseID, perfDir, perfName string, cpu *time.Duration) time.Duration {
	b.Helper()
	args := []string{"--server", d.GRPCAddr, "--creds", d.CredsDir("collector"),
		"upload", file, "--case", caseID, "--kind", "video", "--manifest", filepath.Join(b.TempDir(), "manifest.json")}
	name := custody
	if perfDir != "" {
		args = append([]string{"record", "-g", "-o", filepath.Join(perfDir, perfName+".data"), "--", custody}, args...)
		name = "perf"
	}
	start := time.Now()
	cmd := exec.Command(name, args...)
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		b.Fatalf("custody upload: %v\n%s", err, out)
	}
	*cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return took
}

// perfAttach records a perf profile of pid into perfDir/name.data until
// the returned function is called; without perfDir it does nothing.
func perfAttach(b *testing.B, perfDir, name string, pid int) func() {
	if perfDir == "" {
		return func() {}
	}
	cmd := exec.Command("perf", "record", "-g", "-o", filepath.Join(perfDir, name+".data"), "-p", fmt.Sprint(pid))
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	return func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}
}

func reportRates(b *testing.B, d *binaries.Daemon, size int64, ours, baseline time.Duration, baselineUnit string) {
	n := float64(b.N) * float64(size)
	b.ReportMetric(n/ours.Seconds()/1e6, "custody-MB/s")
	b.ReportMetric(n/baseline.Seconds()/1e6, baselineUnit)
	b.ReportMetric(baseline.Seconds()/ours.Seconds(), "ratio")
	rss, err := bench.PeakRSS(d.Cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(rss)/(1<<20), "custodyd-peak-RSS-MiB")
}

// writeRandomFile writes size random bytes to path.
func writeRandomFile(b *testing.B, path string, size int64) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(f, io.LimitReader(rand.NewChaCha8([32]byte{17}), size)); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// freshContent writes iteration i into the file's first bytes: new content
// for every upload, so nothing is deduplicated.
func freshContent(b *testing.B, path string, i int) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	var stamp [16]byte
	binary.BigEndian.PutUint64(stamp[:], uint64(time.Now().UnixNano()))
	binary.BigEndian.PutUint64(stamp[8:], uint64(i))
	if _, err := f.WriteAt(stamp[:], 0); err != nil {
		b.Fatal(err)
	}
	f.Close()
}

// copyFsync copies src to a new file dst and fsyncs it: the local-disk
// baseline.
// putTuned is the raw S3 baseline: minio-go PutObject of the file at path
// tuned for throughput (16 MiB parts, 4 in parallel, no payload signing).
func putTuned(b *testing.B, raw *minio.Client, path, key string, size int64) {
	b.Helper()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	_, err = raw.PutObject(context.Background(), "raw", key, f, size,
		minio.PutObjectOptions{PartSize: 16 << 20, NumThreads: 4, DisableContentSha256: true})
	if err != nil {
		b.Fatal(err)
	}
}

// copyFsync is the raw disk baseline: the file copied to dst and fsynced.
func copyFsync(b *testing.B, src, dst string) {
	in, err := os.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		b.Fatal(err)
	}
	if err := out.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
}
