package bench_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/custody-dev/custody/bench"
	"github.com/custody-dev/custody/client"
	"github.com/custody-dev/custody/internal/testenv/binaries"
	"github.com/custody-dev/custody/internal/testenv/miniotest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
	"github.com/custody-dev/custody/storage/s3"
)

// setup starts MinIO and custodyd (the real binary, storing in MinIO) and
// returns a client, a raw minio-go client and the daemon.
func setup(b *testing.B) (*client.Client, *minio.Client, *binaries.Daemon) {
	b.Helper()
	srv := miniotest.Start(b)
	dir := b.TempDir()
	os.Setenv("CUSTODY_S3_ACCESS_KEY", srv.AccessKey)
	os.Setenv("CUSTODY_S3_SECRET_KEY", srv.SecretKey)
	d := binaries.StartCustodyd(b, dir, "--s3-endpoint", srv.Endpoint, "--s3-bucket", "evidence", "--s3-insecure",
		"--retention", "1h", "--log-level", "warn")
	creds, err := client.LoadCredentials(d.CredsDir("collector"))
	if err != nil {
		b.Fatal(err)
	}
	c, err := client.Dial(context.Background(), d.GRPCAddr, creds)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	raw, err := minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, "")})
	if err != nil {
		b.Fatal(err)
	}
	if err := raw.MakeBucket(context.Background(), "raw", minio.MakeBucketOptions{}); err != nil {
		b.Fatal(err)
	}
	return c, raw, d
}

func randomData(n int, seed uint64) []byte {
	data := make([]byte, n)
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	rand.NewChaCha8(s).Read(data)
	return data
}

// upload sends one small item.
func upload(ctx context.Context, c *client.Client, caseID string, data []byte) (*custodyv1.UploadResponse, error) {
	md := &custodyv1.UploadMetadata{CaseId: caseID, Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_DOCUMENT, Sha256: sum(data), SizeBytes: int64(len(data))}
	return c.Upload(ctx, md, bytes.NewReader(data), nil)
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// BenchmarkIngest256MiB uploads the same 256 MiB through custodyd (mutual
// TLS gRPC, hashing, sealing with retention, log entry, signed receipt,
// catalog) and with a raw minio-go PutObject (same part size) to the same
// MinIO, alternating, and reports both rates, their ratio and custodyd's
// peak RSS.
func BenchmarkIngest256MiB(b *testing.B) {
	const size = 256 << 20
	c, raw, d := setup(b)
	var custodyTime, rawTime time.Duration
	b.SetBytes(size)
	for i := 0; b.Loop(); i++ {
		data := randomData(size, uint64(i)+1) // fresh content: no deduplication
		md := &custodyv1.UploadMetadata{CaseId: "bench", Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_VIDEO, Sha256: sum(data), SizeBytes: size}
		start := time.Now()
		if _, err := c.Upload(context.Background(), md, bytes.NewReader(data), nil); err != nil {
			b.Fatal(err)
		}
		custodyTime += time.Since(start)

		start = time.Now()
		_, err := raw.PutObject(context.Background(), "raw", fmt.Sprintf("obj-%d", i), bytes.NewReader(data), size,
			minio.PutObjectOptions{PartSize: s3.DefaultPartSize, DisableContentSha256: true})
		if err != nil {
			b.Fatal(err)
		}
		rawTime += time.Since(start)
	}
	reportMiBRates(b, d, size, custodyTime, rawTime, "raw-PutObject-MiB/s")
}

// reportMiBRates reports custodyd's rate and the raw baseline's (MiB/s,
// under rawUnit) over b.N items of size bytes, their ratio and custodyd's
// peak RSS.
func reportMiBRates(b *testing.B, d *binaries.Daemon, size int64, custodyTime, rawTime time.Duration, rawUnit string) {
	n := float64(b.N) * float64(size)
	custodyRate := n / custodyTime.Seconds() / (1 << 20)
	rawRate := n / rawTime.Seconds() / (1 << 20)
	b.ReportMetric(custodyRate, "custodyd-MiB/s")
	b.ReportMetric(rawRate, rawUnit)
	b.ReportMetric(custodyRate/rawRate, "ratio")
	rss, err := bench.PeakRSS(d.Cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(rss)/(1<<20), "custodyd-peak-RSS-MiB")
}

// BenchmarkFourConcurrent1GiB runs four 1 GiB uploads at once through
// custodyd and reports its peak RSS: memory must not grow with item size.
func BenchmarkFourConcurrent1GiB(b *testing.B) {
	const size = 1 << 30
	c, _, d := setup(b)
	b.SetBytes(4 * size)
	for i := 0; b.Loop(); i++ {
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for j := range 4 {
			seed := [32]byte{byte(i), byte(j), 0xbe}
			h := sha256.New()
			io.Copy(h, io.LimitReader(rand.NewChaCha8(seed), size))
			md := &custodyv1.UploadMetadata{CaseId: "bench", Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_VIDEO, Sha256: hex.EncodeToString(h.Sum(nil)), SizeBytes: size}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := c.Upload(context.Background(), md, io.LimitReader(rand.NewChaCha8(seed), size), nil)
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	rss, err := bench.PeakRSS(d.Cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(rss)/(1<<20), "custodyd-peak-RSS-MiB")
}
