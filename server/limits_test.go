package server_test

import (
	"bytes"
	"context"
	"strings"
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

func TestLimits(t *testing.T) {
	t.Run("rate per identity", func(t *testing.T) {
		env := servertest.StartT(t, servertest.Options{Limits: server.Limits{RatePerSecond: 2, Burst: 5}})
		court := env.Client(t, identity.RoleCourt)
		refused := 0
		for range 20 {
			_, err := court.WhoAmI(t.Context())
			if status.Code(err) == codes.ResourceExhausted && strings.Contains(status.Convert(err).Message(), "rate limit exceeded") {
				if r := client.ErrorReason(err); r != custodyv1.ErrorReason_ERROR_REASON_BUSY || !client.Busy(err) {
					t.Fatalf("a refusal over the rate has reason %v; want ERROR_REASON_BUSY", r)
				}
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
		if r := client.ErrorReason(err); r != custodyv1.ErrorReason_ERROR_REASON_BUSY {
			t.Fatalf("a stream over the identity's share has reason %v; want ERROR_REASON_BUSY", r)
		}
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

// TestReadPolicies: an operator that requires an authority for every
// content read, and one that grants special-category reads to no role
// (custodians only).
func TestReadPolicies(t *testing.T) {
	t.Run("authority required", func(t *testing.T) {
		env := servertest.StartT(t, servertest.Options{RequireAuthority: true})
		data := randomBytes(4000)
		up, err := env.Client(t, identity.RoleCollector).Upload(t.Context(), meta("case-auth", data), bytes.NewReader(data), nil)
		if err != nil {
			t.Fatal(err)
		}
		court := env.Client(t, identity.RoleCourt)
		id := up.GetEvidence().GetEvidenceId()
		var buf bytes.Buffer
		_, err = court.Download(t.Context(), &custodyv1.DownloadRequest{EvidenceId: id, Purpose: "review"}, &buf)
		wantCode(t, err, codes.InvalidArgument, "requires an authority")
		_, err = court.Download(t.Context(), &custodyv1.DownloadRequest{EvidenceId: id, Purpose: "review",
			Authority: &custodyv1.Authority{Type: "court-order", Identifier: "ICC-01/22-123"}}, &buf)
		wantCode(t, err, codes.InvalidArgument, "authority.issued_by is missing")
		_, err = court.Download(t.Context(), &custodyv1.DownloadRequest{EvidenceId: id, Purpose: "review", Authority: validAuthority()}, &buf)
		if err != nil || !bytes.Equal(buf.Bytes(), data) {
			t.Fatalf("download with an authority: %v", err)
		}
		hist := checkChain(t, court, id, []custodyv1.EventType{custodyv1.EventType_EVENT_TYPE_INGEST, custodyv1.EventType_EVENT_TYPE_ACCESS})
		if hist[1].GetPurpose() != "review" {
			t.Fatalf("access event %v", hist[1])
		}
	})
	t.Run("special-category reads for custodians only", func(t *testing.T) {
		env := servertest.StartT(t, servertest.Options{SpecialReaders: []identity.Role{}})
		collector := env.Client(t, identity.RoleCollector)
		custodian := env.Client(t, identity.RoleCustodian)
		court := env.Client(t, identity.RoleCourt)
		data := randomBytes(4000)
		md := meta("case-bio", data)
		md.SpecialCategory = true
		up, err := collector.Upload(t.Context(), md, bytes.NewReader(data), nil)
		if err != nil {
			t.Fatal(err)
		}
		id := up.GetEvidence().GetEvidenceId()
		var buf bytes.Buffer
		_, err = court.Download(t.Context(), &custodyv1.DownloadRequest{EvidenceId: id, Purpose: "trial"}, &buf)
		wantCode(t, err, codes.PermissionDenied, "special-category")
		if _, err := collector.Release(t.Context(), id, custodianID, "to the lab"); err != nil {
			t.Fatal(err)
		}
		if _, err := custodian.Accept(t.Context(), id); err != nil {
			t.Fatal(err)
		}
		if _, err := custodian.Download(t.Context(), &custodyv1.DownloadRequest{EvidenceId: id, Purpose: "analysis"}, &buf); err != nil || !bytes.Equal(buf.Bytes(), data) {
			t.Fatalf("the custodian cannot read what it holds: %v", err)
		}
	})
}
