package main_test

import (
	"crypto/tls"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/custody-dev/custody/bench"
	"github.com/custody-dev/custody/internal/testenv/binaries"
	"github.com/custody-dev/custody/internal/testenv/loadtest"
	"github.com/custody-dev/custody/internal/testenv/miniotest"
	"github.com/custody-dev/custody/logaudit"
)

// rssCeiling is the documented memory ceiling of custodyd under overload
// with the default admission limits and S3 storage (docs/BENCHMARKS.md).
const rssCeiling = 1 << 30

// TestOverload drives the real custodyd (MinIO storage) with 200
// concurrent clients: ghz on gRPC (custody events on one contended item,
// checkpoint reads) and the Go HTTPS load client (uploads, hand-offs,
// bundle exports, public log reads). The service must shed what it cannot
// take with UNAVAILABLE or RESOURCE_EXHAUSTED and nothing else, keep
// serving every kind of call, stay under its memory ceiling, lose no
// acknowledged upload or event, pass the log audit, and be ready right
// after.
func TestOverload(t *testing.T) {
	minio := miniotest.Start(t)
	t.Setenv("CUSTODY_S3_ACCESS_KEY", minio.AccessKey)
	t.Setenv("CUSTODY_S3_SECRET_KEY", minio.SecretKey)
	// Per-identity quotas off: this is about the service's own limits.
	d := binaries.StartCustodyd(t, t.TempDir(), "--s3-endpoint", minio.Endpoint, "--s3-bucket", "evidence", "--s3-insecure",
		"--log-level", "warn", "--rate-limit", "1e6", "--rate-burst", "1000000", "--max-streams-per-identity", "1000")
	collector := dialRole(t, d, "collector")
	hot, err := upload(t.Context(), collector, "case-overload", []byte("the contended item"))
	if err != nil {
		t.Fatal(err)
	}
	hotID := hot.GetEvidence().GetEvidenceId()
	cfg := loadtest.Config{
		HTTPAddr: d.HTTPAddr, GRPCAddr: d.GRPCAddr, CredsDir: d.CredsDir,
		Uploaders: 40, HandOffs: 30, Bundles: 30, LogReaders: 20,
		UploadSize: 256 << 10, Duration: 20 * time.Second, Custodian: custodianID,
	}
	tool := binaries.Tool(t, "ghz")
	root := binaries.RepoRoot(t)
	runs := map[string]loadtest.GhzRun{
		"event": {Tool: tool, Dir: root, Method: "custody.v1.CustodyService.RecordEvent", Role: "court", // the court may annotate any item

			Data:        fmt.Sprintf(`{"evidence_id":%q,"type":"EVENT_TYPE_ANNOTATION","note":"ghz {{.RequestNumber}}"}`, hotID),
			Concurrency: 60, Connections: 6, Duration: cfg.Duration},
		"checkpoint": {Tool: tool, Dir: root, Method: "custody.v1.LogService.GetCheckpoint", Role: "auditor", Data: `{}`,
			Concurrency: 20, Connections: 2, Duration: cfg.Duration},
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ghz := map[string]*loadtest.Ghz{}
	for name, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g, err := r.Run(t.Context(), cfg)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			ghz[name] = g
			mu.Unlock()
		}()
	}
	rep, err := loadtest.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	peak, err := bench.PeakRSS(d.Cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("HTTPS and hand-offs over %v:\n%s", rep.Elapsed.Round(time.Second), rep)
	for name, g := range ghz {
		t.Logf("ghz %-10s %6d calls %7.1f/s p50 %v p99 %v %v", name, g.Count, g.RPS, g.Percentile(50), g.Percentile(99), g.StatusCodeDistribution)
	}
	t.Logf("custodyd peak RSS %d MiB (ceiling %d MiB)", peak>>20, rssCeiling>>20)

	shed := 0
	allowed := map[string]bool{"OK": true, "ResourceExhausted": true, "Unavailable": true}
	check := func(kind string, byOutcome map[string]int, p99 time.Duration) {
		if byOutcome["OK"] == 0 {
			t.Errorf("%s: no call admitted under overload (%v)", kind, byOutcome)
		}
		for out, n := range byOutcome {
			if !allowed[out] {
				t.Errorf("%s: %d calls ended %s; overload must end in OK, ResourceExhausted or Unavailable", kind, n, out)
			}
			if out != "OK" {
				shed += n
			}
		}
		if p99 > 15*time.Second {
			t.Errorf("%s: admitted calls' p99 latency %v: admission is not bounding the queue", kind, p99)
		}
	}
	for kind, k := range rep.Kinds {
		check(kind, k.ByOutcome, k.Percentile(0.99))
	}
	for name, g := range ghz {
		// ghz cancels the calls still running when its -z time is up.
		codes := maps.Clone(g.StatusCodeDistribution)
		delete(codes, "Canceled")
		check("ghz "+name, codes, g.Percentile(99))
	}
	if len(rep.Failures) > 0 {
		t.Errorf("unexpected failures: %q", rep.Failures)
	}
	if shed == 0 {
		t.Error("nothing was shed: the load did not reach the admission limits, so this test proved nothing about overload")
	}
	if peak > rssCeiling {
		t.Errorf("custodyd peak RSS %d MiB is over the %d MiB ceiling", peak>>20, rssCeiling>>20)
	}
	if m := scrape(t, d); !strings.Contains(m, "custody_shed_calls_total{kind=") || !strings.Contains(m, "custody_inflight_calls{kind=") {
		t.Error("/metrics does not show the shed and in-flight calls")
	}
	if t.Failed() {
		return
	}

	// Ready right after, nothing acknowledged lost, the log audits.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	ready := false
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && !ready; time.Sleep(100 * time.Millisecond) {
		if resp, err := hc.Get("https://" + d.HTTPAddr + "/healthz?ready=1"); err == nil {
			ready = resp.StatusCode == http.StatusOK
			resp.Body.Close()
		}
	}
	if !ready {
		t.Fatal("custodyd not ready within 20s after the overload")
	}
	auditor := dialRole(t, d, "auditor")
	checkAcknowledged(t, auditor, rep)
	h, err := auditor.History(t.Context(), hotID)
	if err != nil {
		t.Fatal(err)
	}
	if acked := ghz["event"].StatusCodeDistribution["OK"]; len(h)-1 < acked {
		t.Fatalf("ghz got %d acknowledged events on the hot item, its history holds %d", acked, len(h)-1)
	}
	keys, err := auditor.PublicKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	verifier, _ := note.NewVerifier(keys.GetLogVerifierKey())
	audit, err := logaudit.Audit(t.Context(), httpsFetch(d.HTTPAddr), keys.GetLogOrigin(), verifier, nil)
	if err != nil {
		t.Fatalf("log audit after overload: %v", err)
	}
	t.Logf("after: ready; %d acknowledged uploads present; hot item %d events; log audit %d entries, %d chains", len(rep.Kinds["upload"].Uploaded), len(h), audit.Entries, audit.Items)
}
