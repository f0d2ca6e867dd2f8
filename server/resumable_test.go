package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody-dev/custody/client"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/servertest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
	"github.com/custody-dev/custody/verify"
)

// sendPart starts or continues a resumable upload with some bytes, then
// cuts the connection (cancels) without finishing.
func sendPart(t *testing.T, c *client.Client, md *custodyv1.UploadMetadata, part []byte) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	st, err := custodyv1.NewEvidenceServiceClient(c.Conn()).Upload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.Send(&custodyv1.UploadRequest{Payload: &custodyv1.UploadRequest_Metadata{Metadata: md}})
	for off := 0; off < len(part); off += 256 << 10 {
		st.Send(&custodyv1.UploadRequest{Payload: &custodyv1.UploadRequest_Chunk{Chunk: part[off:min(off+256<<10, len(part))]}})
	}
	time.Sleep(200 * time.Millisecond) // let the server take them
	cancel()
}

func waitReceived(t *testing.T, c *client.Client, id string, want int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := c.Evidence().GetUploadStatus(t.Context(), &custodyv1.GetUploadStatusRequest{UploadId: id})
		if err == nil && st.GetReceivedBytes() == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("upload %s: status %v, %v; want %d bytes received", id, st, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestResumableUpload(t *testing.T) {
	env := servertest.StartT(t)
	c := env.Client(t, identity.RoleCollector)
	court := env.Client(t, identity.RoleCourt)

	t.Run("cut connection resumes to a byte-exact item and one ingest", func(t *testing.T) {
		data := randomBytes(10 << 20)
		md := meta("case-resume", data)
		md.UploadId = "resume-test-1"
		if err := c.SignCapture(md); err != nil {
			t.Fatal(err)
		}
		sendPart(t, c, md, data[:3<<20])
		waitReceived(t, c, md.UploadId, 3<<20)
		// A restarted client signs the capture statement again, at
		// another time: the session must still resume.
		time.Sleep(1100 * time.Millisecond)
		if err := c.SignCapture(md); err != nil {
			t.Fatal(err)
		}
		var last int64
		resp, err := c.UploadResumable(t.Context(), md, bytes.NewReader(data), client.DefaultRetry, func(n int64) { last = n })
		if err != nil {
			t.Fatal(err)
		}
		if last != int64(len(data)) {
			t.Errorf("progress ended at %d", last)
		}
		id := resp.GetEvidence().GetEvidenceId()
		if !bytes.Equal(download(t, court, id), data) {
			t.Fatal("the resumed item differs")
		}
		checkChain(t, court, id, []custodyv1.EventType{custodyv1.EventType_EVENT_TYPE_INGEST, custodyv1.EventType_EVENT_TYPE_ACCESS})
		list, _ := c.ListEvidence(t.Context(), &custodyv1.ListEvidenceRequest{CaseId: "case-resume"})
		if len(list.GetEvidence()) != 1 {
			t.Fatalf("%d items for one resumed upload", len(list.GetEvidence()))
		}
		_, err = c.Evidence().GetUploadStatus(t.Context(), &custodyv1.GetUploadStatusRequest{UploadId: md.UploadId})
		wantCode(t, err, codes.NotFound, "no upload session")
	})

	t.Run("resumed bytes that differ are refused", func(t *testing.T) {
		data := randomBytes(6 << 20)
		other := randomBytes(6 << 20)
		md := meta("case-resume-bad", data)
		md.UploadId = "resume-test-2"
		sendPart(t, c, md, data[:2<<20])
		waitReceived(t, c, md.UploadId, 2<<20)
		_, err := c.UploadResumable(t.Context(), md, bytes.NewReader(other), client.DefaultRetry, nil)
		wantCode(t, err, codes.InvalidArgument, "hash to")
		list, _ := c.ListEvidence(t.Context(), &custodyv1.ListEvidenceRequest{CaseId: "case-resume-bad"})
		if len(list.GetEvidence()) != 0 {
			t.Fatal("a mismatched resumed upload was kept")
		}
		_, err = c.Evidence().GetUploadStatus(t.Context(), &custodyv1.GetUploadStatusRequest{UploadId: md.UploadId})
		wantCode(t, err, codes.NotFound, "no upload session")
	})

	t.Run("special-category data is never staged", func(t *testing.T) {
		data := randomBytes(1 << 20)
		md := meta("case-resume-bio", data)
		md.UploadId = "resume-test-bio"
		md.SpecialCategory = true
		_, err := c.UploadResumable(t.Context(), md, bytes.NewReader(data), client.DefaultRetry, nil)
		wantCode(t, err, codes.InvalidArgument, "not as resumable sessions")
		_, err = c.Evidence().GetUploadStatus(t.Context(), &custodyv1.GetUploadStatusRequest{UploadId: md.UploadId})
		wantCode(t, err, codes.NotFound, "no upload session")
		// Nothing of it was staged: a session's pieces live in a folder
		// named after the owner and upload id; a normal session staged
		// beside it shows where they would be.
		me, err := c.WhoAmI(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		pieceDir := func(id string) string {
			return fmt.Sprintf("%x", sha256.Sum256([]byte(me.GetIdentity()+"\x00"+id)))
		}
		control := meta("case-resume-control", data)
		control.UploadId = "resume-test-control"
		sendPart(t, c, control, data[:512<<10])
		waitReceived(t, c, control.UploadId, 512<<10)
		found := map[string]bool{}
		filepath.WalkDir(env.DataDir, func(path string, d fs.DirEntry, err error) error {
			for _, id := range []string{md.UploadId, control.UploadId} {
				if err == nil && strings.Contains(path, pieceDir(id)) {
					found[id] = true
				}
			}
			return nil
		})
		if !found[control.UploadId] {
			t.Fatal("the control session's pieces are not where this test looks")
		}
		if found[md.UploadId] {
			t.Fatal("pieces were staged for a special-category upload")
		}
	})

	t.Run("another identity cannot resume it", func(t *testing.T) {
		data := randomBytes(2 << 20)
		md := meta("case-resume-other", data)
		md.UploadId = "resume-test-3"
		sendPart(t, c, md, data[:1<<20])
		waitReceived(t, c, md.UploadId, 1<<20)
		custodian := env.Client(t, identity.RoleCustodian)
		// Upload ids are per identity: the custodian has no such session,
		// and is not told that someone else has.
		_, err := custodian.Evidence().GetUploadStatus(t.Context(), &custodyv1.GetUploadStatusRequest{UploadId: md.UploadId})
		wantCode(t, err, codes.NotFound, "you have no upload session resume-test-3")
	})

	t.Run("over REST", func(t *testing.T) {
		hc := env.HTTPClient(t, env.Creds(t, identity.RoleCollector).Certificate)
		data := randomBytes(3 << 20)
		q := fmt.Sprintf("case_id=case-rest-resume&kind=video&sha256=%s&upload_id=rest-resume-1&size_bytes=%d", sha(data), len(data))
		post := func(query string, body []byte) (int, []byte) {
			resp, err := hc.Post(env.URL("/v1/evidence:upload?"+query), "video/mp4", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, b
		}
		// The first part only: the server keeps it and says where to resume.
		first := data[:1<<20]
		code, body := post(q+"&resume_offset=0", first)
		if code != http.StatusConflict || !bytes.Contains(body, []byte("resume from offset 1048576")) {
			t.Fatalf("first part: %d %s", code, body)
		}
		_, status := get(t, hc, env.URL("/v1/uploads/rest-resume-1"))
		var st struct {
			Received string `json:"received_bytes"`
		}
		json.Unmarshal(status, &st)
		if st.Received != "1048576" {
			t.Fatalf("status %s", status)
		}
		code, body = post(q+"&resume_offset=1048576", data[1<<20:])
		if code != http.StatusCreated {
			t.Fatalf("rest of it: %d %s", code, body)
		}
	})
}

// TestCollectorSignatureAtCapture: the collector's signature made at capture
// is checked against its certificate, kept in the ingest record, and
// verified again by the offline verifier; a bad one is refused.
func TestCollectorSignatureAtCapture(t *testing.T) {
	env := servertest.StartT(t)
	c := env.Client(t, identity.RoleCollector)
	court := env.Client(t, identity.RoleCourt)
	data := randomBytes(5000)
	md := meta("case-signed", data)
	md.Capture = &custodyv1.Capture{CapturedAt: timestamppb.New(time.Now().Add(-48 * time.Hour))}
	if err := c.SignCapture(md); err != nil {
		t.Fatal(err)
	}
	up, err := c.Upload(t.Context(), md, bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := court.Bundle(t.Context(), up.GetEvidence().GetEvidenceId(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(`custody.capture`)) {
		t.Fatal("the bundle lacks the collector's capture statement")
	}
	b, err := verify.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if r := verify.Verify(b, verify.Options{Roots: env.RootCAs(t)}); !r.OK {
		t.Fatalf("bundle with a capture signature: %v", r.Failures())
	}

	// Signed over other bytes, or by someone else: refused, nothing kept.
	bad := meta("case-signed-bad", data)
	other := meta("case-signed-bad", randomBytes(5000))
	if err := c.SignCapture(other); err != nil {
		t.Fatal(err)
	}
	bad.CollectorSignature = other.CollectorSignature
	_, err = c.Upload(t.Context(), bad, bytes.NewReader(data), nil)
	wantCode(t, err, codes.InvalidArgument, "collector signature")
	custodian := env.Client(t, identity.RoleCustodian)
	theirs := meta("case-signed-bad", data)
	if err := custodian.SignCapture(theirs); err != nil {
		t.Fatal(err)
	}
	bad.CollectorSignature = theirs.CollectorSignature
	_, err = c.Upload(t.Context(), bad, bytes.NewReader(data), nil)
	wantCode(t, err, codes.InvalidArgument, "not the one you connected with")
}
