package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/servertest"
	"github.com/custody-dev/custody/media/mediatest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// A phone-style movie (ffmpeg's, its moov box after the media data) over
// both APIs: without a kind it is recorded as a video, with its creation
// time, duration, device and place read from the moov box and kept beside
// what the collector stated; with a kind it contradicts (photo) it is
// refused, naming both, over REST (400) and gRPC (InvalidArgument); the
// raw route records only an explicit media type declaration.
func TestUploadPhoneMovie(t *testing.T) {
	path := mediatest.FFmpeg(t, "IMG_0042.MOV",
		"-metadata", "creation_time=2024-05-01T12:00:00Z", "-metadata", "location=+50.4501+030.5234/",
		"-metadata", "make=Apple", "-metadata", "model=iPhone 15")
	movie, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := servertest.StartT(t)
	hc := env.HTTPClient(t, env.Creds(t, identity.RoleCollector).Certificate)
	post := func(query, contentType string) (int, []byte) {
		req, _ := http.NewRequestWithContext(t.Context(), "POST", env.URL("/v1/evidence:upload?"+query), bytes.NewReader(movie))
		req.Header.Set("Content-Type", contentType)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	type item struct {
		Kind              string `json:"kind"`
		MediaType         string `json:"media_type"`
		DeclaredMediaType string `json:"declared_media_type"`
		Capture           struct {
			CapturedAt string `json:"captured_at"`
		} `json:"capture"`
		Embedded struct {
			CapturedAt string `json:"captured_at"`
			Duration   string `json:"duration"`
			Device     struct{ Make, Model string }
			Point      struct{ Latitude, Longitude float64 }
		} `json:"embedded"`
	}
	q := "case_id=case-movie&filename=IMG_0042.MOV&sha256=" + sha(movie)
	code, body := post(q+"&captured_at=2024-05-01T09:00:00Z", "application/octet-stream")
	var up struct{ Evidence item }
	if err := json.Unmarshal(body, &up); code != http.StatusCreated || err != nil {
		t.Fatalf("upload: %d %s", code, body)
	}
	e := up.Evidence
	if e.Kind != "EVIDENCE_KIND_VIDEO" || e.MediaType != "video/quicktime" || e.DeclaredMediaType != "" {
		t.Fatalf("kind %q, media type %q, declared %q; want a video, sniffed, nothing declared (octet-stream declares nothing)", e.Kind, e.MediaType, e.DeclaredMediaType)
	}
	if e.Capture.CapturedAt != "2024-05-01T09:00:00Z" || e.Embedded.CapturedAt != "2024-05-01T12:00:00Z" || e.Embedded.Duration != "2s" ||
		e.Embedded.Device.Make != "Apple" || e.Embedded.Device.Model != "iPhone 15" ||
		e.Embedded.Point.Latitude != 50.4501 || e.Embedded.Point.Longitude != 30.5234 {
		t.Fatalf("stated and embedded metadata: %s", body)
	}

	for _, tc := range []struct {
		name, query, contentType string
		code                     int
		want                     string // in the body
		declared                 string
	}{
		{"photo", q + "&kind=photo", "application/octet-stream", 400, "kind photo contradicts the file: its bytes are video/quicktime", ""},
		{"declared by Content-Type", q + "&kind=video", "Video/QuickTime", 201, "", "video/quicktime"},
		{"declared by the parameter", q + "&declared_media_type=video/mp4", "application/octet-stream", 201, "", "video/mp4"},
		{"declared twice, differently", q + "&declared_media_type=video/mp4", "video/quicktime", 400, "declared_media_type video/mp4 and Content-Type video/quicktime differ", ""},
		{"a parameter that is no media type", q + "&declared_media_type=movie", "application/octet-stream", 400, "not a media type", ""},
	} {
		t.Run("REST "+tc.name, func(t *testing.T) {
			code, body := post(tc.query, tc.contentType)
			if code != tc.code || !strings.Contains(string(body), tc.want) {
				t.Fatalf("%d %s, want %d mentioning %q", code, body, tc.code, tc.want)
			}
			var up struct{ Evidence item }
			if code == 201 && (json.Unmarshal(body, &up) != nil || up.Evidence.DeclaredMediaType != tc.declared || up.Evidence.MediaType != "video/quicktime") {
				t.Fatalf("declared %q, want %q: %s", up.Evidence.DeclaredMediaType, tc.declared, body)
			}
		})
	}

	c := env.Client(t, identity.RoleCollector)
	md := func(k custodyv1.EvidenceKind) *custodyv1.UploadMetadata {
		return &custodyv1.UploadMetadata{CaseId: "case-movie-grpc", Kind: k, Sha256: sha(movie), SizeBytes: int64(len(movie))}
	}
	_, err = c.Upload(t.Context(), md(custodyv1.EvidenceKind_EVIDENCE_KIND_PHOTO), bytes.NewReader(movie), nil)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "kind photo contradicts the file: its bytes are video/quicktime") {
		t.Fatalf("gRPC upload as a photo: %v", err)
	}
	resp, err := c.Upload(t.Context(), md(custodyv1.EvidenceKind_EVIDENCE_KIND_UNSPECIFIED), bytes.NewReader(movie), nil)
	if err != nil {
		t.Fatal(err)
	}
	if ev := resp.GetEvidence(); ev.GetKind() != custodyv1.EvidenceKind_EVIDENCE_KIND_VIDEO || ev.GetEmbedded().GetDevice().GetModel() != "iPhone 15" {
		t.Fatalf("gRPC upload without a kind: %v", ev)
	}
}
