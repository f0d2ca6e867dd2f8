package bench_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/binaries"
	"github.com/custody-dev/custody/internal/testenv/servertest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
	"github.com/custody-dev/custody/receipt"
	"github.com/custody-dev/custody/verify"
)

// BenchmarkVerify1GiBFile runs `custody verify --bundle B --file F` on a
// real 1 GiB item's bundle and `sha256sum F` on the same file, alternating
// (the file is in the page cache for both), and reports the speed ratio.
func BenchmarkVerify1GiBFile(b *testing.B) {
	const size = 1 << 30
	dir := b.TempDir()
	path := filepath.Join(dir, "evidence.bin")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(rand.NewChaCha8([32]byte{42}), size)); err != nil {
		b.Fatal(err)
	}
	f.Close()
	env := servertest.StartT(b)
	c := env.Client(b, identity.RoleCollector)
	ctx := context.Background()
	src, _ := os.Open(path)
	up, err := c.Upload(ctx, &custodyv1.UploadMetadata{CaseId: "bench", Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_VIDEO, Sha256: hex.EncodeToString(h.Sum(nil)), SizeBytes: size}, src, nil)
	src.Close()
	if err != nil {
		b.Fatal(err)
	}
	raw, err := env.Client(b, identity.RoleCourt).Bundle(ctx, up.GetEvidence().GetEvidenceId(), 0)
	if err != nil {
		b.Fatal(err)
	}
	if err := env.Stop(); err != nil {
		b.Fatal(err)
	}
	bundlePath := filepath.Join(dir, "bundle.json")
	os.WriteFile(bundlePath, raw, 0o644)
	custody := binaries.Build(b, "custody")
	var ours, baseline time.Duration
	b.SetBytes(size)
	for b.Loop() {
		start := time.Now()
		if out, err := exec.Command("sha256sum", path).CombinedOutput(); err != nil {
			b.Fatalf("sha256sum: %v %s", err, out)
		}
		baseline += time.Since(start)
		start = time.Now()
		if out, err := exec.Command(custody, "verify", "--bundle", bundlePath, "--file", path).CombinedOutput(); err != nil {
			b.Fatalf("custody verify: %v %s", err, out)
		}
		ours += time.Since(start)
	}
	n := float64(b.N) * size / (1 << 20)
	b.ReportMetric(n/ours.Seconds(), "custody-verify-MiB/s")
	b.ReportMetric(n/baseline.Seconds(), "sha256sum-MiB/s")
	b.ReportMetric(baseline.Seconds()/ours.Seconds(), "ratio")
}

// BenchmarkVerify1000EventBundle verifies a real bundle of an item with
// 1,000 events (all checks: checkpoint, 1,000 records, inclusion proofs,
// receipts, chain, hand-offs).
func BenchmarkVerify1000EventBundle(b *testing.B) {
	env := servertest.StartT(b)
	uploader := env.Client(b, identity.RoleCollector)
	c := env.Client(b, identity.RoleCourt) // the court may annotate any item
	ctx := context.Background()
	data := []byte("an item with a long history")
	up, err := uploader.Upload(ctx, &custodyv1.UploadMetadata{CaseId: "bench", Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_DOCUMENT, Sha256: sum(data), SizeBytes: int64(len(data))}, bytes.NewReader(data), nil)
	if err != nil {
		b.Fatal(err)
	}
	id := up.GetEvidence().GetEvidenceId()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 999 / 8 {
				if _, err := c.RecordEvent(ctx, &custodyv1.RecordEventRequest{EvidenceId: id, Type: custodyv1.EventType_EVENT_TYPE_ANNOTATION, Note: "n"}); err != nil {
					b.Error(w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for range 999 - 999/8*8 {
		if _, err := c.RecordEvent(ctx, &custodyv1.RecordEventRequest{EvidenceId: id, Type: custodyv1.EventType_EVENT_TYPE_ANNOTATION, Note: "n"}); err != nil {
			b.Fatal(err)
		}
	}
	raw, err := env.Client(b, identity.RoleCourt).Bundle(ctx, id, 0)
	if err != nil {
		b.Fatal(err)
	}
	// Verification is offline: stop the service so it does not compete.
	if err := env.Stop(); err != nil {
		b.Fatal(err)
	}
	// The floor, measured in the same loop: only the 1,000 receipts'
	// ECDSA signatures, verified on every core as Verify does (not
	// counted in ns/op).
	floor := receiptFloor(b, raw)
	var ours, floors time.Duration
	for b.Loop() {
		start := time.Now()
		bundle, err := verify.Parse(raw)
		if err != nil {
			b.Fatal(err)
		}
		if len(bundle.Events) != 1000 {
			b.Fatalf("%d events", len(bundle.Events))
		}
		if r := verify.Verify(bundle, verify.Options{}); !r.OK {
			b.Fatal(r.Failures())
		}
		ours += time.Since(start)
		b.StopTimer()
		floors += floor()
		b.StartTimer()
	}
	n := float64(b.N)
	b.ReportMetric(ours.Seconds()*1e3/n, "verify-ms")
	b.ReportMetric(floors.Seconds()*1e3/n, "ecdsa-floor-ms")
	b.ReportMetric(ours.Seconds()/floors.Seconds(), "ratio")
}

// receiptFloor returns a function that verifies the bundle's receipt
// signatures alone, on GOMAXPROCS goroutines, and returns how long that
// took: the part of a verification no parsing or encoding work can save.
func receiptFloor(b *testing.B, raw []byte) func() time.Duration {
	bundle, err := verify.Parse(raw)
	if err != nil {
		b.Fatal(err)
	}
	block, _ := pem.Decode([]byte(bundle.Keys.ReceiptPublicKeyPEM))
	if block == nil {
		b.Fatal("no receipt key")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		b.Fatal(err)
	}
	return func() time.Duration {
		start := time.Now()
		work := make(chan *verify.Receipt)
		var wg sync.WaitGroup
		for range runtime.GOMAXPROCS(0) {
			wg.Go(func() {
				for r := range work {
					if err := receipt.VerifySignature(pub, []byte(r.Payload), r.Signature); err != nil {
						b.Error(err)
					}
				}
			})
		}
		for _, ev := range bundle.Events {
			work <- ev.Receipt
		}
		close(work)
		wg.Wait()
		return time.Since(start)
	}
}
