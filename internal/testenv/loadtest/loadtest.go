// Package loadtest drives a running custodyd with a mixed load over real
// mutual-TLS HTTPS and gRPC, as field teams, labs, courts and log mirrors
// would at once: raw uploads (HTTPS), hand-offs (release then accept, gRPC
// through the client library), bundle exports (HTTPS) and public log reads
// (HTTPS /log/). It records every call's outcome and latency; the overload
// test and the soak benchmark read the report. gRPC load from ghz runs
// beside it (see RunGhz).
package loadtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/transparency-dev/tessera/api/layout"
	"google.golang.org/grpc/status"

	"github.com/custody-dev/custody/client"
)

// Config says whom to load and how hard.
type Config struct {
	HTTPAddr, GRPCAddr string
	// CredsDir returns a role's credential folder.
	CredsDir func(role string) string
	// Workers per kind of work, each a loop of calls until the end.
	Uploaders, HandOffs, Bundles, LogReaders int
	// UploadSize is the size of each uploaded item.
	UploadSize int
	Duration   time.Duration
	// Custodian is the identity hand-offs release to.
	Custodian string
}

// Outcome names a call's result: "OK" or a gRPC code name (HTTP statuses
// are mapped back: 429 ResourceExhausted, 503 Unavailable, …).
type Outcome = string

// Kind is what the calls of one kind did.
type Kind struct {
	ByOutcome map[Outcome]int
	// Latencies of admitted (OK) calls.
	Latencies []time.Duration
	// Uploaded are the ids of acknowledged uploads; for hand-offs, the
	// items whose release and accept were both acknowledged.
	Uploaded []string
}

// Report is a run's result by kind of call.
type Report struct {
	mu       sync.Mutex
	Kinds    map[string]*Kind
	Elapsed  time.Duration
	Failures []string // the first few unexpected failures, for the log
}

func (r *Report) record(kind string, out Outcome, lat time.Duration, detail string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := r.Kinds[kind]
	if k == nil {
		k = &Kind{ByOutcome: map[Outcome]int{}}
		r.Kinds[kind] = k
	}
	k.ByOutcome[out]++
	if out == "OK" {
		k.Latencies = append(k.Latencies, lat)
	} else if len(r.Failures) < 20 && out != "ResourceExhausted" && out != "Unavailable" {
		if len(detail) > 300 {
			detail = detail[:300] + "…"
		}
		r.Failures = append(r.Failures, kind+": "+out+": "+detail)
	}
}

// Percentile of the admitted calls of a kind (0 if none).
func (k *Kind) Percentile(p float64) time.Duration {
	if len(k.Latencies) == 0 {
		return 0
	}
	l := slices.Clone(k.Latencies)
	slices.Sort(l)
	return l[int(float64(len(l)-1)*p)]
}

// Calls is how many calls of the kind were made.
func (k *Kind) Calls() int {
	n := 0
	for _, c := range k.ByOutcome {
		n += c
	}
	return n
}

// String summarises the report, one line per kind.
func (r *Report) String() string {
	var names []string
	for n := range r.Kinds {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		k := r.Kinds[n]
		fmt.Fprintf(&b, "%-10s %6d calls %7.1f/s  p50 %v  p99 %v  %v\n", n, k.Calls(), float64(k.ByOutcome["OK"])/r.Elapsed.Seconds(),
			k.Percentile(0.5).Round(time.Millisecond), k.Percentile(0.99).Round(time.Millisecond), k.ByOutcome)
	}
	return b.String()
}

func httpOutcome(code int) Outcome {
	switch code {
	case http.StatusOK, http.StatusCreated:
		return "OK"
	case http.StatusTooManyRequests:
		return "ResourceExhausted"
	case http.StatusServiceUnavailable:
		return "Unavailable"
	case http.StatusGatewayTimeout:
		return "DeadlineExceeded"
	case http.StatusBadRequest:
		return "InvalidArgument"
	case http.StatusForbidden:
		return "PermissionDenied"
	case http.StatusNotFound:
		return "NotFound"
	case http.StatusConflict:
		return "Aborted"
	}
	return fmt.Sprintf("HTTP%d", code)
}

func grpcOutcome(err error) Outcome {
	if err == nil {
		return "OK"
	}
	return status.Code(err).String()
}

func httpsClient(cfg Config, role string) (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS13}
	if role != "" {
		creds, err := client.LoadCredentials(cfg.CredsDir(role))
		if err != nil {
			return nil, err
		}
		tc = creds.TLSConfig("")
	} else {
		creds, err := client.LoadCredentials(cfg.CredsDir("auditor"))
		if err != nil {
			return nil, err
		}
		tc.RootCAs = creds.RootCAs
	}
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 64}}, nil
}

// Run drives the load until cfg.Duration has passed or ctx ends.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	rep := &Report{Kinds: map[string]*Kind{}}
	uploads, err := httpsClient(cfg, "collector")
	if err != nil {
		return nil, err
	}
	courts, err := httpsClient(cfg, "court")
	if err != nil {
		return nil, err
	}
	public, err := httpsClient(cfg, "")
	if err != nil {
		return nil, err
	}
	dial := func(role string) (*client.Client, error) {
		creds, err := client.LoadCredentials(cfg.CredsDir(role))
		if err != nil {
			return nil, err
		}
		return client.Dial(ctx, cfg.GRPCAddr, creds)
	}
	collector, err := dial("collector")
	if err != nil {
		return nil, err
	}
	defer collector.Close()
	custodian, err := dial("custodian")
	if err != nil {
		return nil, err
	}
	defer custodian.Close()

	base := "https://" + cfg.HTTPAddr
	var idsMu sync.Mutex
	var ids []string // acknowledged uploads, for bundles and hand-offs
	pick := func(n int) string {
		idsMu.Lock()
		defer idsMu.Unlock()
		if len(ids) == 0 {
			return ""
		}
		return ids[n%len(ids)]
	}
	upload := func(n int) (string, Outcome, string) {
		data := make([]byte, cfg.UploadSize)
		rand.Read(data)
		sum := sha256.Sum256(data)
		url := fmt.Sprintf("%s/v1/evidence:upload?case_id=load&kind=document&sha256=%s&filename=load-%d.bin", base, hex.EncodeToString(sum[:]), n)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(data))
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := uploads.Do(req)
		if err != nil {
			return "", "Transport", err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if out := httpOutcome(resp.StatusCode); out != "OK" {
			return "", out, string(body)
		}
		// The id is in the JSON answer: "evidenceId":"ev-…".
		i := bytes.Index(body, []byte(`"ev-`))
		if i < 0 {
			return "", "Malformed", string(body)
		}
		return string(body[i+1 : i+30]), "OK", ""
	}

	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	// ended reports the run's end. A call cut off by it is not counted:
	// the deadline may have passed (gRPC then reports DeadlineExceeded)
	// a moment before ctx.Err() says so.
	deadline, _ := ctx.Deadline()
	ended := func() bool { return ctx.Err() != nil || !time.Now().Before(deadline) }
	start := time.Now()
	var wg sync.WaitGroup
	loop := func(n int, f func(n, i int)) {
		for w := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; !ended(); i++ {
					f(w, i)
				}
			}()
		}
	}
	loop(cfg.Uploaders, func(w, i int) {
		t0 := time.Now()
		id, out, detail := upload(w*1_000_000 + i)
		if ended() && out != "OK" {
			return
		}
		rep.record("upload", out, time.Since(t0), detail)
		if out == "OK" {
			idsMu.Lock()
			ids = append(ids, id)
			idsMu.Unlock()
			rep.mu.Lock()
			rep.Kinds["upload"].Uploaded = append(rep.Kinds["upload"].Uploaded, id)
			rep.mu.Unlock()
		}
	})
	loop(cfg.HandOffs, func(w, i int) {
		// Each hand-off worker moves its own fresh items: upload, release
		// to the custodian, accept.
		id, out, detail := upload(-(w*1_000_000 + i + 1))
		if out != "OK" {
			if !ended() {
				rep.record("handoff", out, 0, "upload: "+detail)
			}
			return
		}
		t0 := time.Now()
		_, err := collector.Release(ctx, id, cfg.Custodian, "load test")
		if err == nil {
			_, err = custodian.Accept(ctx, id)
		}
		if ended() && err != nil {
			return
		}
		rep.record("handoff", grpcOutcome(err), time.Since(t0), fmt.Sprint(err))
		if err == nil {
			rep.mu.Lock()
			rep.Kinds["handoff"].Uploaded = append(rep.Kinds["handoff"].Uploaded, id)
			rep.mu.Unlock()
		}
	})
	loop(cfg.Bundles, func(w, i int) {
		id := pick(w*7919 + i)
		if id == "" {
			time.Sleep(20 * time.Millisecond)
			return
		}
		t0 := time.Now()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/evidence/"+id+"/bundle", nil)
		resp, err := courts.Do(req)
		if err != nil {
			if !ended() {
				rep.record("bundle", "Transport", 0, err.Error())
			}
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		rep.record("bundle", httpOutcome(resp.StatusCode), time.Since(t0), string(body))
	})
	// Log readers alternate the checkpoint and the first level-0 tile of the
	// tree it names (partial until 256 entries), as a mirror would.
	var treeSize atomic.Uint64
	loop(cfg.LogReaders, func(w, i int) {
		t0 := time.Now()
		path := "/log/checkpoint"
		if n := treeSize.Load(); i%2 == 1 && n > 0 {
			path = "/log/" + layout.TilePath(0, 0, layout.PartialTileSize(0, 0, n))
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		resp, err := public.Do(req)
		if err != nil {
			if !ended() {
				rep.record("logread", "Transport", 0, err.Error())
			}
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out := httpOutcome(resp.StatusCode)
		if path == "/log/checkpoint" && out == "OK" {
			// origin, size, root hash, signature lines.
			if lines := strings.SplitN(string(body), "\n", 3); len(lines) == 3 {
				if n, err := strconv.ParseUint(lines[1], 10, 64); err == nil && n > treeSize.Load() {
					treeSize.Store(n)
				}
			}
		}
		rep.record("logread", out, time.Since(t0), path)
	})
	wg.Wait()
	rep.Elapsed = time.Since(start)
	return rep, nil
}
