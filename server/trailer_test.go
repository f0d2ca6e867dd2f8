package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/custody-dev/custody/client"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/servertest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// trailerUpload sends an upload stream message by message: the metadata, the
// bytes in 256 KiB chunks, then trailer if not nil; and returns the answer.
func trailerUpload(ctx context.Context, c *client.Client, md *custodyv1.UploadMetadata, data []byte, trailer *custodyv1.UploadTrailer, extra ...*custodyv1.UploadRequest) (*custodyv1.UploadResponse, error) {
	st, err := custodyv1.NewEvidenceServiceClient(c.Conn()).Upload(ctx)
	if err != nil {
		return nil, err
	}
	send := func(m *custodyv1.UploadRequest) error {
		if err := st.Send(m); err != nil && err != io.EOF {
			return err
		}
		return nil
	}
	send(&custodyv1.UploadRequest{Payload: &custodyv1.UploadRequest_Metadata{Metadata: md}})
	for off := 0; off < len(data); off += 256 << 10 {
		send(&custodyv1.UploadRequest{Payload: &custodyv1.UploadRequest_Chunk{Chunk: data[off:min(off+256<<10, len(data))]}})
	}
	if trailer != nil {
		send(&custodyv1.UploadRequest{Payload: &custodyv1.UploadRequest_Trailer{Trailer: trailer}})
	}
	for _, m := range extra {
		send(m)
	}
	return st.CloseAndRecv()
}

// TestUploadTrailer: a resumable upload may leave sha256 out of its
// metadata and send it, with the collector signature, in a trailer after
// its last chunk (proto: UploadTrailer); every misuse is InvalidArgument
// naming it, and the bytes that arrived stay in the session.
func TestUploadTrailer(t *testing.T) {
	env := servertest.StartT(t)
	c := env.Client(t, identity.RoleCollector)
	court := env.Client(t, identity.RoleCourt)

	t.Run("digest and signature in the trailer, across a resume", func(t *testing.T) {
		data := randomBytes(9<<20 + 123)
		md := meta("case-trailer", data)
		if err := c.SignCapture(md); err != nil {
			t.Fatal(err)
		}
		trailer := &custodyv1.UploadTrailer{Sha256: md.Sha256, CollectorSignature: md.CollectorSignature}
		md.Sha256, md.CollectorSignature, md.UploadId = "", nil, "trailer-test-1"
		sendPart(t, c, md, data[:3<<20])
		waitReceived(t, c, md.UploadId, 3<<20)
		md.ResumeOffset = 3 << 20
		resp, err := trailerUpload(t.Context(), c, md, data[3<<20:], trailer)
		if err != nil {
			t.Fatal(err)
		}
		ev := resp.GetEvidence()
		if ev.GetSha256() != trailer.Sha256 || ev.GetSizeBytes() != int64(len(data)) {
			t.Fatalf("item %v", ev)
		}
		if !bytes.Equal(download(t, court, ev.GetEvidenceId()), data) {
			t.Fatal("the item differs")
		}
		raw, err := court.Bundle(t.Context(), ev.GetEvidenceId(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(raw, []byte(`custody.capture`)) {
			t.Fatal("the trailer's collector signature is not in the record")
		}
	})

	t.Run("wrong digest in the trailer discards the session", func(t *testing.T) {
		data := randomBytes(1 << 20)
		md := meta("case-trailer-bad", data)
		md.Sha256, md.UploadId = "", "trailer-test-2"
		_, err := trailerUpload(t.Context(), c, md, data, &custodyv1.UploadTrailer{Sha256: sha([]byte("other"))})
		wantCode(t, err, codes.InvalidArgument, "hash to")
		_, err = c.Evidence().GetUploadStatus(t.Context(), &custodyv1.GetUploadStatusRequest{UploadId: md.UploadId})
		wantCode(t, err, codes.NotFound, "no upload session")
	})

	t.Run("misuse is InvalidArgument naming it", func(t *testing.T) {
		data := randomBytes(100 << 10)
		for i, tc := range []struct {
			name    string
			edit    func(md *custodyv1.UploadMetadata)
			trailer *custodyv1.UploadTrailer
			extra   []*custodyv1.UploadRequest
			send    int
			want    string
			kept    int64 // bytes the session keeps; -1: no session
		}{
			{name: "one-shot without sha256", edit: func(md *custodyv1.UploadMetadata) { md.Sha256, md.UploadId = "", "" },
				want: "sha256 is required", kept: -1},
			{name: "one-shot with a trailer", edit: func(md *custodyv1.UploadMetadata) { md.Sha256, md.UploadId = "", "" },
				trailer: &custodyv1.UploadTrailer{Sha256: sha(data)}, want: "sha256 is required", kept: -1},
			{name: "one-shot stating sha256 with a trailer", edit: func(md *custodyv1.UploadMetadata) { md.UploadId = "" },
				trailer: &custodyv1.UploadTrailer{Sha256: sha(data)}, want: "trailer ends only a resumable upload", kept: -1},
			{name: "stated sha256 and a trailer", trailer: &custodyv1.UploadTrailer{Sha256: sha(data)},
				want: "trailer ends only a resumable upload", kept: int64(len(data))},
			{name: "missing trailer", edit: func(md *custodyv1.UploadMetadata) { md.Sha256 = "" },
				want: "no trailer followed", kept: int64(len(data))},
			{name: "malformed trailer digest", edit: func(md *custodyv1.UploadMetadata) { md.Sha256 = "" },
				trailer: &custodyv1.UploadTrailer{Sha256: "xyz"}, want: "the trailer's sha256 must be 64 hex", kept: int64(len(data))},
			{name: "empty trailer", edit: func(md *custodyv1.UploadMetadata) { md.Sha256 = "" },
				trailer: &custodyv1.UploadTrailer{}, want: "the trailer's sha256 must be 64 hex", kept: int64(len(data))},
			{name: "trailer before the last byte", edit: func(md *custodyv1.UploadMetadata) { md.Sha256 = "" },
				send: 50 << 10, trailer: &custodyv1.UploadTrailer{Sha256: sha(data)}, want: "trailer follows the last byte only", kept: 50 << 10},
			{name: "chunk after the trailer", edit: func(md *custodyv1.UploadMetadata) { md.Sha256 = "" },
				trailer: &custodyv1.UploadTrailer{Sha256: sha(data)}, extra: []*custodyv1.UploadRequest{{Payload: &custodyv1.UploadRequest_Chunk{Chunk: []byte("x")}}},
				want: "trailer must be the stream's last message", kept: int64(len(data))},
		} {
			t.Run(tc.name, func(t *testing.T) {
				md := meta("case-trailer-misuse", data)
				md.UploadId = fmt.Sprintf("trailer-misuse-%d", i)
				if tc.edit != nil {
					tc.edit(md)
				}
				send := data
				if tc.send > 0 {
					send = data[:tc.send]
				}
				_, err := trailerUpload(t.Context(), c, md, send, tc.trailer, tc.extra...)
				wantCode(t, err, codes.InvalidArgument, tc.want)
				if md.UploadId == "" {
					return
				}
				st, err := c.Evidence().GetUploadStatus(t.Context(), &custodyv1.GetUploadStatusRequest{UploadId: md.UploadId})
				if tc.kept < 0 {
					wantCode(t, err, codes.NotFound, "no upload session")
					return
				}
				if err != nil || st.GetReceivedBytes() != tc.kept {
					t.Fatalf("status %v, %v; want %d bytes kept", st, err, tc.kept)
				}
			})
		}
		list, _ := c.ListEvidence(t.Context(), &custodyv1.ListEvidenceRequest{CaseId: "case-trailer-misuse"})
		if len(list.GetEvidence()) != 0 {
			t.Fatalf("%d items kept from refused uploads", len(list.GetEvidence()))
		}
	})

	t.Run("missing trailer then resumed with one at the end", func(t *testing.T) {
		data := randomBytes(300 << 10)
		md := meta("case-trailer-late", data)
		md.Sha256, md.UploadId = "", "trailer-test-late"
		_, err := trailerUpload(t.Context(), c, md, data, nil)
		wantCode(t, err, codes.InvalidArgument, "no trailer followed")
		md.ResumeOffset = int64(len(data))
		resp, err := trailerUpload(t.Context(), c, md, nil, &custodyv1.UploadTrailer{Sha256: sha(data)})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(download(t, court, resp.GetEvidence().GetEvidenceId()), data) {
			t.Fatal("the item differs")
		}
	})

	t.Run("through the REST gateway", func(t *testing.T) {
		// The raw-body route has no trailer: a resumable upload there
		// states sha256, or its last part is refused.
		hc := env.HTTPClient(t, env.Creds(t, identity.RoleCollector).Certificate)
		data := randomBytes(64 << 10)
		resp, err := hc.Post(env.URL(fmt.Sprintf("/v1/evidence:upload?case_id=case-trailer-rest&upload_id=trailer-rest-1&size_bytes=%d", len(data))), "application/octet-stream", bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte("no trailer followed")) {
			t.Fatalf("REST resumable without sha256: %d %s", resp.StatusCode, body)
		}
		resp, err = hc.Post(env.URL(fmt.Sprintf("/v1/evidence:upload?case_id=case-trailer-rest&size_bytes=%d", len(data))), "application/octet-stream", bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte("sha256 is required")) {
			t.Fatalf("REST one-shot without sha256: %d %s", resp.StatusCode, body)
		}
	})
}
