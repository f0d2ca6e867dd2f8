package server_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/servertest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
	"github.com/custody-dev/custody/server"
)

func TestLimits(t *testing.T) {
	t.Run("rate per identity", func(t *testing.T) {
		env := servertest.StartT(t, servertest.Options{Limits: server.Limits{RatePerSecond: 2, Burst: 5}})
		court := env.Client(t, identity.RoleCourt)
		refused := 0
		for range 20 {
			_, err := court.WhoAmI(t.Context())
			if status.Code(err) == codes.ResourceExhausted && strings.Contains(status.Convert(err).Message(), "rate limit exceeded") {
				refused++
			} else if err != nil {
				t.Fatal(err)
			}
		}
		if refused < 10 {
			t.Fatalf("%d of 20 quick calls refused with a burst of 5", refused)
		}
		if _, err := env.Client(t, identity.RoleAuditor).WhoAmI(t.Context()); err != nil {
			t.Fatalf("another identity is limited too: %v", err)
		}
		// Over REST the same limit is HTTP 429.
		hc := env.HTTPClient(t, env.Creds(t, identity.RoleCourt).Certificate)
		if code, body := get(t, hc, env.URL("/v1/whoami")); code != 429 {
			t.Fatalf("REST over the limit: %d %s", code, body)
		}
	})

	t.Run("concurrent streams per identity", func(t *testing.T) {
		env := servertest.StartT(t, servertest.Options{Limits: server.Limits{StreamsPerIdentity: 2}})
		c := env.Client(t, identity.RoleCollector)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		data := randomBytes(1 << 20)
		var open []custodyv1.EvidenceService_UploadClient
		for range 2 {
			st, err := custodyv1.NewEvidenceServiceClient(c.Conn()).Upload(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Send(&custodyv1.UploadRequest{Payload: &custodyv1.UploadRequest_Metadata{Metadata: meta("case-limits", data)}}); err != nil {
				t.Fatal(err)
			}
			open = append(open, st)
		}
		time.Sleep(200 * time.Millisecond) // both are in the server's hands
		err := rawUpload(t.Context(), c, meta("case-limits", data), data)
		wantCode(t, err, codes.ResourceExhausted, "too many concurrent streams")
		cancel()
		// Once they end, uploads go through again.
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, err := c.Upload(t.Context(), meta("case-limits", data), bytes.NewReader(data), nil)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("uploads still refused after the streams ended: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("stream idle timeout", func(t *testing.T) {
		env := servertest.StartT(t, servertest.Options{Limits: server.Limits{StreamIdleTimeout: 300 * time.Millisecond}})
		c := env.Client(t, identity.RoleCollector)
		data := randomBytes(1 << 20)
		st, err := custodyv1.NewEvidenceServiceClient(c.Conn()).Upload(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		st.Send(&custodyv1.UploadRequest{Payload: &custodyv1.UploadRequest_Metadata{Metadata: meta("case-idle", data)}})
		st.Send(&custodyv1.UploadRequest{Payload: &custodyv1.UploadRequest_Chunk{Chunk: data[:1000]}})
		time.Sleep(time.Second) // the client stalls
		_, err = st.CloseAndRecv()
		wantCode(t, err, codes.DeadlineExceeded, "idle for more than 300ms")
		list, err := c.ListEvidence(t.Context(), &custodyv1.ListEvidenceRequest{CaseId: "case-idle"})
		if err != nil || len(list.GetEvidence()) != 0 {
			t.Fatalf("an idle upload left %v (%v)", list.GetEvidence(), err)
		}
	})
}
