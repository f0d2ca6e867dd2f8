package server_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/servertest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
	"github.com/custody-dev/custody/server"
)

// TestStalledDownloadsEnd: a court that starts downloading a large item,
// over gRPC or raw REST, and then stops reading, holds a stream only until
// the idle timeout (plus two seconds): the service's sends block on flow
// control, and the stream must end anyway, giving its place back.
func TestStalledDownloadsEnd(t *testing.T) {
	const idle = 2 * time.Second
	const grace = 2 * time.Second
	env := servertest.StartT(t, servertest.Options{Limits: server.Limits{StreamIdleTimeout: idle}})
	data := randomBytes(64 << 20) // far more than every window and socket buffer on the way
	up, err := env.Client(t, identity.RoleCollector).Upload(t.Context(), meta("case-stall", data), bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	id := up.GetEvidence().GetEvidenceId()
	court := env.Client(t, identity.RoleCourt)

	streamsEnd := func(t *testing.T, since time.Time) {
		t.Helper()
		for metric(t, env, `custody_inflight_calls{kind="stream"}`) != 0 {
			if time.Since(since) > idle+grace {
				t.Fatalf("the stalled download still holds its stream %v after the caller stopped reading", time.Since(since).Round(time.Millisecond))
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("the stream ended %v after the caller stopped reading", time.Since(since).Round(time.Millisecond))
	}

	t.Run("gRPC", func(t *testing.T) {
		st, err := custodyv1.NewEvidenceServiceClient(court.Conn()).Download(t.Context(), &custodyv1.DownloadRequest{EvidenceId: id, Purpose: "stall"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Recv(); err != nil {
			t.Fatal(err)
		}
		stopped := time.Now()
		time.Sleep(200 * time.Millisecond)
		if metric(t, env, `custody_inflight_calls{kind="stream"}`) != 1 {
			t.Fatal("the download is not in progress")
		}
		streamsEnd(t, stopped)
		var got int
		for {
			msg, err := st.Recv()
			if err != nil {
				wantCode(t, err, codes.DeadlineExceeded, "idle")
				break
			}
			got += len(msg.GetChunk())
		}
		if got >= len(data) {
			t.Fatalf("the whole item arrived (%d bytes)", got)
		}
	})

	t.Run("REST", func(t *testing.T) {
		cfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: env.RootCAs(t),
			Certificates: []tls.Certificate{env.Creds(t, identity.RoleCourt).Certificate}, NextProtos: []string{"http/1.1"}}
		conn, err := tls.Dial("tcp", env.HTTPAddr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET /v1/evidence/%s/content?purpose=stall HTTP/1.1\r\nHost: %s\r\n\r\n", id, env.HTTPAddr)
		br := bufio.NewReaderSize(conn, 4096)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("content: %v %v", resp, err)
		}
		stopped := time.Now()
		streamsEnd(t, stopped)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := io.Copy(io.Discard, resp.Body)
		if err == nil || n >= int64(len(data)) {
			t.Fatalf("after the stall the body went on: %d of %d bytes, %v", n, len(data), err)
		}
	})
}
