package main_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody-dev/custody/bench"
	"github.com/custody-dev/custody/internal/testenv/binaries"
	"github.com/custody-dev/custody/internal/testenv/faultproxy"
	"github.com/custody-dev/custody/internal/testenv/miniotest"
	"github.com/custody-dev/custody/internal/testenv/netshape"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// TestWaitsForStorageAtStart: custodyd started while its S3 server is
// down for longer than minio-go's own retries last waits for it (logging
// why) instead of exiting, and serves once it answers.
func TestWaitsForStorageAtStart(t *testing.T) {
	minio := miniotest.Start(t)
	minio.Stop(t)
	t.Setenv("CUSTODY_S3_ACCESS_KEY", minio.AccessKey)
	t.Setenv("CUSTODY_S3_SECRET_KEY", minio.SecretKey)
	go func() {
		time.Sleep(15 * time.Second)
		minio.Restart(t)
	}()
	d := binaries.StartCustodyd(t, t.TempDir(), "--s3-endpoint", minio.Endpoint, "--s3-bucket", "evidence", "--s3-insecure")
	if !strings.Contains(d.Logs.String(), "evidence storage is not answering yet; waiting") {
		t.Fatalf("custodyd did not say it was waiting for storage:\n%s", d.Logs)
	}
	if _, err := upload(t.Context(), dialRole(t, d, "collector"), "case-wait", []byte("after the wait")); err != nil {
		t.Fatal(err)
	}
}

// TestSlowLossyStorageLink puts a faulty link between custodyd and MinIO
// (a TCP proxy: the kernel here has no netem): first slow and lossy
// (30 ms per chunk each way, 1 % of chunks reset their connection), then
// stalled (a partition: connections stay open, nothing moves), then
// healed. Uploads and downloads must end OK or UNAVAILABLE — never hang
// past the S3 idle timeout, never another code — and after the link heals
// service resumes without a restart, every acknowledged item reads back
// byte-exact, and memory stayed bounded.
func TestSlowLossyStorageLink(t *testing.T) {
	minio := miniotest.Start(t)
	proxy, err := faultproxy.Start(minio.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	t.Setenv("CUSTODY_S3_ACCESS_KEY", minio.AccessKey)
	t.Setenv("CUSTODY_S3_SECRET_KEY", minio.SecretKey)
	const idle = 3 * time.Second
	d := binaries.StartCustodyd(t, t.TempDir(), "--s3-endpoint", proxy.Addr, "--s3-bucket", "evidence", "--s3-insecure",
		"--s3-timeout", idle.String(), "--log-level", "warn",
		// Many uploads of one identity at once, on purpose: this test is
		// about the link, not the per-identity share.
		"--max-streams", "64", "--max-streams-per-identity", "64")
	collector := dialRole(t, d, "collector")
	court := dialRole(t, d, "court")

	var mu sync.Mutex
	acked := map[string][]byte{}
	outcomes := map[string]map[codes.Code]int{}
	var slowest time.Duration
	note := func(phase string, start time.Time, err error) {
		mu.Lock()
		defer mu.Unlock()
		if outcomes[phase] == nil {
			outcomes[phase] = map[codes.Code]int{}
		}
		c := status.Code(err)
		outcomes[phase][c]++
		if c != codes.OK && c != codes.Unavailable {
			t.Errorf("%s: %v; a bad link must give OK or UNAVAILABLE", phase, err)
		}
		if d := time.Since(start); d > slowest {
			slowest = d
		}
	}
	run := func(phase string, dur time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), dur)
		defer cancel()
		var wg sync.WaitGroup
		for w := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; ctx.Err() == nil; n++ {
					data := bytes.Repeat([]byte(fmt.Sprintf("%s %d %d %d|", phase, w, n, time.Now().UnixNano())), 20000) // ~0.6 MiB
					start := time.Now()
					// Each call has its own generous deadline: the service
					// must answer well before it.
					callCtx, cancelCall := context.WithTimeout(context.Background(), 60*time.Second)
					resp, err := upload(callCtx, collector, "case-link", data)
					cancelCall()
					note(phase+" upload", start, err)
					if err == nil {
						mu.Lock()
						acked[resp.GetEvidence().GetEvidenceId()] = data
						mu.Unlock()
					}
					if w%2 == 0 && err == nil {
						start = time.Now()
						callCtx, cancelCall := context.WithTimeout(context.Background(), 60*time.Second)
						var got bytes.Buffer
						_, err := court.Download(callCtx, &custodyv1.DownloadRequest{EvidenceId: resp.GetEvidence().GetEvidenceId(), Purpose: "link check"}, &got)
						cancelCall()
						note(phase+" download", start, err)
						if err == nil && !bytes.Equal(got.Bytes(), data) {
							t.Errorf("%s: downloaded bytes differ", phase)
						}
					}
				}
			}()
		}
		wg.Wait()
	}

	defer func() {
		if t.Failed() {
			for _, l := range strings.Split(d.Logs.String(), "\n") {
				if strings.Contains(l, "level=ERROR") {
					t.Log(l)
				}
			}
		}
	}()
	proxy.Set(faultproxy.Faults{Delay: 30 * time.Millisecond, ResetRate: 0.01})
	run("slow-lossy", 8*time.Second)
	proxy.Set(faultproxy.Faults{Stall: true})
	run("stalled", 2*idle)
	proxy.Set(faultproxy.Faults{})
	time.Sleep(idle) // calls stuck on stalled connections fail and clear
	run("healed", 4*time.Second)

	// An operator sees it: storage errors and the log backlog in /metrics.
	metrics := scrape(t, d)
	for _, want := range []string{`custody_storage_errors_total{kind="unavailable",op="put"}`, "custody_log_backlog_entries ", `custody_dependency_up{dependency="storage"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	peak, err := bench.PeakRSS(d.Cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("outcomes %v; %d connections reset on purpose; slowest call %v; peak RSS %d MiB", outcomes, proxy.Resets.Load(), slowest.Round(time.Millisecond), peak>>20)
	if outcomes["slow-lossy upload"][codes.OK] == 0 || outcomes["healed upload"][codes.OK] == 0 {
		t.Fatalf("no upload got through on the slow link or after healing: %v", outcomes)
	}
	if outcomes["stalled upload"][codes.Unavailable] == 0 {
		t.Fatalf("no upload was refused while the link was stalled: %v", outcomes)
	}
	if slowest > 4*idle+20*time.Second {
		t.Fatalf("a call took %v; a stalled link must fail calls after about the %v idle timeout", slowest, idle)
	}
	if peak > 512<<20 {
		t.Fatalf("custodyd peak RSS %d MiB over 512 MiB", peak>>20)
	}
	for id, data := range acked {
		var got bytes.Buffer
		if _, err := court.Download(t.Context(), &custodyv1.DownloadRequest{EvidenceId: id, Purpose: "after the link healed"}, &got); err != nil {
			t.Fatalf("acknowledged %s: %v", id, err)
		}
		if !bytes.Equal(got.Bytes(), data) {
			t.Fatalf("acknowledged %s reads back different bytes", id)
		}
	}
	audit := auditLog(t, d, len(acked))
	t.Logf("%d acknowledged uploads read back byte-exact after the link healed; log audit %d entries", len(acked), audit.Entries)
}

// scrape returns custodyd's /metrics, as the admin (without
// --public-metrics it needs an admin client certificate).
func scrape(t *testing.T, d *binaries.Daemon) string {
	t.Helper()
	creds := d.CredsDir("admin")
	cert, err := tls.LoadX509KeyPair(filepath.Join(creds, "cert.pem"), filepath.Join(creds, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}}}}
	resp, err := hc.Get("https://" + d.HTTPAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestShapedStorageLink runs MinIO behind a real kernel-shaped link
// (a network namespace joined by veth, tc tbf at 16 Mbit/s each way):
// uploads and downloads over a link slower than the disk are slow but
// never fail — no timeout mistakes a slow, moving link for a dead one —
// memory stays bounded, and everything acknowledged reads back.
func TestShapedStorageLink(t *testing.T) {
	link := netshape.New(t, "16mbit")
	minio := miniotest.StartWith(t, miniotest.Options{Netns: link.Netns, Host: link.NetnsAddr})
	t.Setenv("CUSTODY_S3_ACCESS_KEY", minio.AccessKey)
	t.Setenv("CUSTODY_S3_SECRET_KEY", minio.SecretKey)
	d := binaries.StartCustodyd(t, t.TempDir(), "--s3-endpoint", minio.Endpoint, "--s3-bucket", "evidence", "--s3-insecure", "--log-level", "warn",
		"--max-streams", "64", "--max-streams-per-identity", "64") // the link, not the share, is under test
	collector := dialRole(t, d, "collector")
	court := dialRole(t, d, "court")
	var mu sync.Mutex
	acked := map[string][]byte{}
	var sent int64
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Second)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				data := bytes.Repeat([]byte(fmt.Sprintf("shaped %d %d %d|", w, n, time.Now().UnixNano())), 40000) // ~1.2 MiB
				resp, err := upload(context.Background(), collector, "case-shaped", data)
				if err != nil {
					t.Errorf("upload over a slow link: %v", err)
					return
				}
				mu.Lock()
				acked[resp.GetEvidence().GetEvidenceId()] = data
				sent += int64(len(data))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if t.Failed() {
		return
	}
	for id, data := range acked {
		var got bytes.Buffer
		if _, err := court.Download(t.Context(), &custodyv1.DownloadRequest{EvidenceId: id, Purpose: "shaped link"}, &got); err != nil {
			t.Fatalf("download over a slow link: %v", err)
		}
		if !bytes.Equal(got.Bytes(), data) {
			t.Fatalf("%s reads back different bytes", id)
		}
	}
	peak, err := bench.PeakRSS(d.Cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if peak > 512<<20 {
		t.Fatalf("custodyd peak RSS %d MiB over 512 MiB", peak>>20)
	}
	audit := auditLog(t, d, 2*len(acked))
	t.Logf("%d uploads over a 16 Mbit/s link in %v (%.2f MB/s, the link carries 2 MB/s), all read back; peak RSS %d MiB; log audit %d entries",
		len(acked), elapsed.Round(time.Second), float64(sent)/elapsed.Seconds()/1e6, peak>>20, audit.Entries)
}
