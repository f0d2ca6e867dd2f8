package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody-dev/custody/client"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/servertest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
	"github.com/custody-dev/custody/server"
)

// attempt is one idle stream an attacker opened: how it ended and how long
// the service let it live.
type attempt struct {
	kind    string
	outcome string // a gRPC code or an HTTP status; "still open" if the service never ended it
	held    time.Duration
}

// TestOneIdentityCannotHoldTheStreams is the red-team attack on stream
// capacity: one collector keeps opening uploads (gRPC; raw REST over
// HTTP/1.1 and HTTP/2 with Content-Length 1 GiB) that send their metadata
// and one byte, then nothing, far more of them than the service's stream
// slots, re-opening each as soon as it ends. Throughout, another collector
// uploads and the court downloads, over gRPC and REST, and every one of
// their calls must be served at once (the client library does not retry).
// Every idle stream must be ended by the service within the idle timeout
// plus two seconds of being opened: those admitted as idle
// (DEADLINE_EXCEEDED, HTTP 408), those over the identity's share refused
// (RESOURCE_EXHAUSTED, HTTP 429) after at most the admission wait.
func TestOneIdentityCannotHoldTheStreams(t *testing.T) {
	const (
		idle   = 2 * time.Second
		grace  = 2 * time.Second
		attack = 3*idle + time.Second
	)
	env := servertest.StartT(t, servertest.Options{Limits: server.Limits{StreamIdleTimeout: idle}})
	attackerCert := env.Creds(t, identity.RoleCollector).Certificate
	attacker := env.Client(t, identity.RoleCollector)

	// The other identities: a second collector, and the court.
	ca, err := env.PKI.Authority()
	if err != nil {
		t.Fatal(err)
	}
	otherID, _ := identity.New(identity.RoleCollector, "field-team-2")
	otherCert := issue(t, ca, otherID, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	other, err := client.Dial(t.Context(), env.GRPCAddr, &client.Credentials{Certificate: otherCert, Leaf: otherCert.Leaf, RootCAs: env.RootCAs(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	otherHTTP := env.HTTPClient(t, otherCert)
	court := env.Client(t, identity.RoleCourt)
	courtHTTP := env.HTTPClient(t, env.Creds(t, identity.RoleCourt).Certificate)
	held := randomBytes(300 << 10)
	up, err := other.Upload(t.Context(), meta("case-fair", held), bytes.NewReader(held), nil)
	if err != nil {
		t.Fatal(err)
	}
	heldID := up.GetEvidence().GetEvidenceId()

	hardCap := idle + grace + 3*time.Second // give up waiting for the service to end a stream
	huge := randomBytes(64)
	hugeMeta := meta("case-idle-attack", huge)
	hugeMeta.SizeBytes = 1 << 30
	query := fmt.Sprintf("case_id=case-idle-attack&kind=document&filename=x.bin&sha256=%s", sha(huge))

	idleGRPC := func(ctx context.Context) string {
		ctx, cancel := context.WithTimeout(ctx, hardCap)
		defer cancel()
		st, err := custodyv1.NewEvidenceServiceClient(attacker.Conn()).Upload(ctx)
		if err != nil {
			return status.Code(err).String()
		}
		st.Send(&custodyv1.UploadRequest{Payload: &custodyv1.UploadRequest_Metadata{Metadata: hugeMeta}})
		st.Send(&custodyv1.UploadRequest{Payload: &custodyv1.UploadRequest_Chunk{Chunk: huge[:1]}})
		// Wait for the service's answer without ending the upload.
		err = st.RecvMsg(new(custodyv1.UploadResponse))
		if ctx.Err() != nil {
			return "still open"
		}
		return status.Code(err).String()
	}
	rootCAs := env.RootCAs(t)
	idleHTTP1 := func(ctx context.Context) string {
		d := tls.Dialer{Config: &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: rootCAs, Certificates: []tls.Certificate{attackerCert}, NextProtos: []string{"http/1.1"}}}
		conn, err := d.DialContext(ctx, "tcp", env.HTTPAddr)
		if err != nil {
			return "dial: " + err.Error()
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(hardCap))
		fmt.Fprintf(conn, "POST /v1/evidence:upload?%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\nx", query, env.HTTPAddr, 1<<30)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return "still open"
			}
			return "closed" // the service hung up: ended too
		}
		resp.Body.Close()
		return resp.Status
	}
	attackerHTTP := env.HTTPClient(t, attackerCert)
	idleHTTP2 := func(ctx context.Context) string {
		ctx, cancel := context.WithTimeout(ctx, hardCap)
		defer cancel()
		pr, pw := io.Pipe()
		defer pw.Close()
		go pw.Write([]byte("x"))
		req, _ := http.NewRequestWithContext(ctx, "POST", env.URL("/v1/evidence:upload?"+query), pr)
		req.ContentLength = 1 << 30
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := attackerHTTP.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return "still open"
			}
			return "error: " + err.Error()
		}
		resp.Body.Close()
		return resp.Status
	}

	start := time.Now()
	attackCtx, stopAttack := context.WithCancel(t.Context())
	defer stopAttack()
	var mu sync.Mutex
	var attempts []attempt
	var wg sync.WaitGroup
	worker := func(kind string, open func(context.Context) string) {
		wg.Go(func() {
			for time.Since(start) < attack {
				t0 := time.Now()
				out := open(attackCtx)
				a := attempt{kind: kind, outcome: out, held: time.Since(t0)}
				mu.Lock()
				attempts = append(attempts, a)
				mu.Unlock()
				if a.held < idle/2 {
					time.Sleep(100 * time.Millisecond) // refused: try again soon
				}
			}
		})
	}
	kinds := []struct {
		name    string
		open    func(context.Context) string
		workers int
	}{{"gRPC", idleGRPC, 12}, {"REST HTTP/1.1", idleHTTP1, 6}, {"REST HTTP/2", idleHTTP2, 6}}
	// One of each kind first, so that each kind holds a place, then the
	// flood.
	for _, k := range kinds {
		worker(k.name, k.open)
		time.Sleep(50 * time.Millisecond)
	}
	for _, k := range kinds {
		for range k.workers - 1 {
			worker(k.name, k.open)
		}
	}

	// The others, all along.
	time.Sleep(300 * time.Millisecond)
	var served, failed sync.Map
	fail := func(what string, err any) { failed.Store(fmt.Sprintf("%s: %v", what, err), true) }
	count := func(what string) {
		v, _ := served.LoadOrStore(what, new(int))
		mu.Lock()
		*v.(*int)++
		mu.Unlock()
	}
	var others sync.WaitGroup
	others.Go(func() { // gRPC
		for time.Since(start) < attack {
			data := randomBytes(64 << 10)
			if _, err := other.Upload(t.Context(), meta("case-fair", data), bytes.NewReader(data), nil); err != nil {
				fail("gRPC upload", err)
			} else {
				count("gRPC upload")
			}
			var buf bytes.Buffer
			if _, err := court.Download(t.Context(), &custodyv1.DownloadRequest{EvidenceId: heldID, Purpose: "fairness"}, &buf); err != nil || !bytes.Equal(buf.Bytes(), held) {
				fail("gRPC download", err)
			} else {
				count("gRPC download")
			}
		}
	})
	others.Go(func() { // REST
		for time.Since(start) < attack {
			data := randomBytes(64 << 10)
			req, _ := http.NewRequestWithContext(t.Context(), "POST", env.URL("/v1/evidence:upload?case_id=case-fair&kind=document&filename=s.bin&sha256="+sha(data)), bytes.NewReader(data))
			req.Header.Set("Content-Type", "application/octet-stream")
			if resp, err := otherHTTP.Do(req); err != nil {
				fail("REST upload", err)
			} else {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					fail("REST upload", fmt.Sprintf("%d %s", resp.StatusCode, b))
				} else {
					count("REST upload")
				}
			}
			if resp, err := courtHTTP.Get(env.URL("/v1/evidence/" + heldID + "/content?purpose=fairness")); err != nil {
				fail("REST download", err)
			} else {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !bytes.Equal(b, held) {
					fail("REST download", fmt.Sprintf("%d %.200s", resp.StatusCode, b))
				} else {
					count("REST download")
				}
			}
		}
	})
	others.Wait()
	wg.Wait()

	failed.Range(func(k, _ any) bool { t.Errorf("another identity was not served during the attack: %s", k); return true })
	for _, what := range []string{"gRPC upload", "gRPC download", "REST upload", "REST download"} {
		n := 0
		if v, ok := served.Load(what); ok {
			n = *v.(*int)
		}
		if n < 2 {
			t.Errorf("%s: %d served during the attack, want several", what, n)
		}
	}
	byKind := map[string]map[string]int{}
	longest := map[string]time.Duration{}
	for _, a := range attempts {
		longest[a.kind] = max(longest[a.kind], a.held)
		if byKind[a.kind] == nil {
			byKind[a.kind] = map[string]int{}
		}
		byKind[a.kind][a.outcome]++
		if a.outcome == "still open" || a.held > idle+grace {
			t.Errorf("%s idle stream lived %v (%s); the service must end it within %v", a.kind, a.held.Round(time.Millisecond), a.outcome, idle+grace)
		}
	}
	t.Logf("attacker streams by outcome: %v; longest lived: %v", byKind, longest)
	if g := byKind["gRPC"]; g[codes.DeadlineExceeded.String()] == 0 || g[codes.ResourceExhausted.String()] == 0 {
		t.Errorf("gRPC: want some idle streams admitted and ended as idle, and some refused as over the identity's share: %v", g)
	}
	for _, kind := range []string{"REST HTTP/1.1", "REST HTTP/2"} {
		if k := byKind[kind]; k["408 Request Timeout"] == 0 || k["429 Too Many Requests"] == 0 {
			t.Errorf("%s: want some idle uploads ended as idle (408) and some refused as over the identity's share (429): %v", kind, k)
		}
	}
	// Nothing is left holding a slot.
	if n := metric(t, env, `custody_inflight_calls{kind="stream"}`); n != 0 {
		t.Errorf("%v streams still in progress after the attack", n)
	}
}
