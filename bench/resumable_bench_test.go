package bench_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/custody-dev/custody/bench"
	"github.com/custody-dev/custody/client"
	"github.com/custody-dev/custody/internal/testenv/binaries"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// writeItem writes size fresh bytes (seeded) to a file in dir and returns
// its path and SHA-256.
func writeItem(b *testing.B, dir string, size int64, seed uint64) (string, string) {
	b.Helper()
	path := filepath.Join(dir, fmt.Sprintf("item-%d.bin", seed))
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	var s [32]byte
	s[0], s[1], s[2] = byte(seed), byte(seed>>8), 0x17
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(rand.NewChaCha8(s), size)); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return path, hex.EncodeToString(h.Sum(nil))
}

// uploadFile is the library's upload of a file whose digest the caller
// has (computed at capture): from 32 MiB, client.UploadResumable.
func uploadFile(c *client.Client, path, sha string, size int64) error {
	md := &custodyv1.UploadMetadata{CaseId: "bench", Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_VIDEO, Sha256: sha, SizeBytes: size}
	_, err := c.UploadFile(context.Background(), path, md, nil)
	return err
}

// BenchmarkResumable1GiB uploads a fresh 1 GiB file with the library's
// resumable upload (client.UploadFile, which takes client.UploadResumable
// from 32 MiB), alternating in the same loop with the raw baseline: on
// MinIO, a tuned minio-go PutObject of the same file (unsigned payload,
// 16 MiB parts, 4 in parallel) to the same MinIO; on the disk store,
// writing the same file to the same file system with one fsync. It
// reports both rates, their ratio and custodyd's peak RSS.
func BenchmarkResumable1GiB(b *testing.B) {
	const size = 1 << 30
	b.Run("s3", func(b *testing.B) {
		c, raw, d := setup(b)
		dir := b.TempDir()
		runResumable(b, c, d, size, dir, func(path string, i int) {
			putTuned(b, raw, path, fmt.Sprintf("file-%d", i), size)
		})
	})
	b.Run("disk", func(b *testing.B) {
		data := b.TempDir()
		d := binaries.StartCustodyd(b, data, "--retention", "1h", "--log-level", "warn")
		creds, err := client.LoadCredentials(d.CredsDir("collector"))
		if err != nil {
			b.Fatal(err)
		}
		c, err := client.Dial(context.Background(), d.GRPCAddr, creds)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		dir := b.TempDir()
		runResumable(b, c, d, size, dir, func(path string, i int) {
			dst := filepath.Join(data, fmt.Sprintf("raw-%d", i))
			copyFsync(b, path, dst)
			os.Remove(dst)
		})
	})
}

func runResumable(b *testing.B, c *client.Client, d *binaries.Daemon, size int64, dir string, baseline func(path string, i int)) {
	var custodyTime, rawTime time.Duration
	b.StopTimer() // the rates below are the measure: file writes are not timed
	for i := 0; i < b.N; i++ {
		path, sha := writeItem(b, dir, size, uint64(i)+1) // fresh content: no deduplication
		start := time.Now()
		if err := uploadFile(c, path, sha, size); err != nil {
			b.Fatal(err)
		}
		custodyTime += time.Since(start)
		start = time.Now()
		baseline(path, i)
		rawTime += time.Since(start)
		os.Remove(path)
	}
	reportMiBRates(b, d, size, custodyTime, rawTime, "raw-MiB/s")
}

// BenchmarkFourConcurrentResumable1GiB runs four resumable 1 GiB uploads
// at once through custodyd on MinIO and reports the aggregate rate and
// custodyd's peak RSS (VmHWM): memory must not grow with item size or
// with the parts in flight.
func BenchmarkFourConcurrentResumable1GiB(b *testing.B) {
	const size = 1 << 30
	c, _, d := setup(b)
	dir := b.TempDir()
	var elapsed time.Duration
	b.StopTimer() // the rate below is the measure: file writes are not timed
	for i := 0; i < b.N; i++ {
		var paths, sums [4]string
		for j := range 4 {
			paths[j], sums[j] = writeItem(b, dir, size, uint64(100*i+j+1))
		}
		start := time.Now()
		var wg sync.WaitGroup
		var errs [4]error
		for j := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[j] = uploadFile(c, paths[j], sums[j], size)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		elapsed += time.Since(start)
		for _, p := range paths {
			os.Remove(p)
		}
	}
	b.ReportMetric(float64(b.N)*4*size/elapsed.Seconds()/1e6, "aggregate-MB/s")
	rss, err := bench.PeakRSS(d.Cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(rss)/(1<<20), "custodyd-peak-RSS-MiB")
}
