package evidence

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/custody-dev/custody/failure"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/media/mediatest"
)

// phoneMovie is a QuickTime movie laid out as an iPhone writes it: 1 MiB
// of media data, then the moov box with Apple's metadata keys.
func phoneMovie() []byte {
	return mediatest.MovieAtEnd(1<<20,
		mediatest.MVHD(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), 600, 600*95),
		mediatest.Meta(
			mediatest.Key{Name: "com.apple.quicktime.location.ISO6709", Value: "+50.4501+030.5234+100.5/"},
			mediatest.Key{Name: "com.apple.quicktime.make", Value: "Apple"},
			mediatest.Key{Name: "com.apple.quicktime.model", Value: "iPhone 15 Pro"},
			mediatest.Key{Name: "com.apple.quicktime.creationdate", Value: "2024-05-01T14:59:30+0300"},
		))
}

// checkPhoneMovie fails unless md keeps what the collector stated and,
// beside it, what phoneMovie's moov box says.
func checkPhoneMovie(t *testing.T, md Metadata, stated Capture) {
	t.Helper()
	e := md.Embedded
	if e == nil || !e.CapturedAt.Equal(time.Date(2024, 5, 1, 11, 59, 30, 0, time.UTC)) || e.Duration != 95*time.Second {
		t.Fatalf("embedded %+v, want the movie's creation date and 95s", e)
	}
	if e.Device == nil || *e.Device != (Device{Make: "Apple", Model: "iPhone 15 Pro"}) {
		t.Fatalf("embedded device %+v", e.Device)
	}
	if l := e.Location; l == nil || l.Point == nil || math.Abs(l.Point.Latitude-50.4501) > 1e-9 || math.Abs(l.Point.Longitude-30.5234) > 1e-9 ||
		l.Point.AltitudeM == nil || *l.Point.AltitudeM != 100.5 || l.Description != "" {
		t.Fatalf("embedded location %+v", e.Location)
	}
	// The collector's statement is kept as stated, never overwritten.
	if !md.Capture.CapturedAt.Equal(stated.CapturedAt) || md.Capture.Location == nil || md.Capture.Location.Description != stated.Location.Description ||
		md.Capture.Location.Point != nil || md.Capture.Device == nil || *md.Capture.Device != *stated.Device || md.Capture.Duration != 0 {
		t.Fatalf("stated capture %+v (location %+v, device %+v), want %+v", md.Capture, md.Capture.Location, md.Capture.Device, stated)
	}
}

// A movie's moov box at the end, a megabyte past the head, is read in
// every ingest path: plain, encrypted, content the service already holds,
// and a resumed upload. What it says is kept beside what the collector
// stated.
func TestIngestReadsTheMoovBoxAtTheEnd(t *testing.T) {
	movie := phoneMovie()
	stated := Capture{
		CapturedAt: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC),
		Location:   &Location{Description: "Khreshchatyk street, as the witness says"},
		Device:     &Device{Model: "the witness's phone"},
	}
	meta := docMeta("case-movie", movie)
	meta.Kind, meta.Capture = KindVideo, stated
	collector := mustIdentity(t, identity.RoleCollector, "c")
	for _, tc := range []struct {
		name   string
		ingest func(t *testing.T, s *Service) (Item, error)
	}{
		{"plain", func(t *testing.T, s *Service) (Item, error) {
			item, _, err := s.Ingest(t.Context(), collector, meta, bytes.NewReader(movie))
			return item, err
		}},
		{"encrypted", func(t *testing.T, s *Service) (Item, error) {
			m := meta
			m.Special = true
			item, _, err := s.Ingest(t.Context(), collector, m, bytes.NewReader(movie))
			return item, err
		}},
		{"already held", func(t *testing.T, s *Service) (Item, error) {
			first := docMeta("case-first", movie)
			first.Kind = ""
			if _, _, err := s.Ingest(t.Context(), collector, first, bytes.NewReader(movie)); err != nil {
				t.Fatal(err)
			}
			item, _, err := s.Ingest(t.Context(), collector, meta, bytes.NewReader(movie))
			return item, err
		}},
		{"resumed", func(t *testing.T, s *Service) (Item, error) {
			const id = "u-movie-0123456789"
			half := len(movie) / 2
			if _, _, err := s.IngestResumable(t.Context(), collector, id, meta, 0, bytes.NewReader(movie[:half])); err == nil {
				t.Fatal("half an upload was ingested")
			}
			item, _, err := s.IngestResumable(t.Context(), collector, id, meta, int64(half), bytes.NewReader(movie[half:]))
			return item, err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, _ := newTestService(t)
			item, err := tc.ingest(t, s)
			if err != nil {
				t.Fatal(err)
			}
			if item.MediaType != "video/quicktime" || item.Kind != KindVideo {
				t.Fatalf("media type %q, kind %q", item.MediaType, item.Kind)
			}
			checkPhoneMovie(t, item.Meta, stated)
			if item.Special {
				return // its metadata is read back only with an access event
			}
			got, err := s.Get(t.Context(), collector, item.ID)
			if err != nil {
				t.Fatal(err)
			}
			checkPhoneMovie(t, got.Meta, stated)
		})
	}
}

// The kind: a stated kind the sniffed media type contradicts is refused,
// naming both, and nothing is kept; no kind is inferred from the media
// type; other and document take what they sensibly may.
func TestKindAgainstTheBytes(t *testing.T) {
	movie := phoneMovie()
	mp4 := mediatest.MP4(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), 600, 6000)
	m4a := append(mediatest.FTYP("M4A "), mediatest.Box("mdat", make([]byte, 64))...)
	jpeg := mediatest.JPEG("Canon", "R5")
	gif := []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;")
	pdf := []byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n")
	text := []byte("witness statement, typed on site\n")
	raw := []byte("\x00\x01\x02\x03 camera raw, unknown to the sniffer")
	for _, tc := range []struct {
		name   string
		body   []byte
		stated Kind
		want   Kind   // the kind recorded, if accepted
		refuse string // else what the refusal names
	}{
		{"video as photo", movie, KindPhoto, "", "kind photo contradicts the file: its bytes are video/quicktime"},
		{"mp4 as photo", mp4, KindPhoto, "", "kind photo contradicts the file: its bytes are video/mp4"},
		{"photo as video", jpeg, KindVideo, "", "kind video contradicts the file: its bytes are image/jpeg"},
		{"audio as video", m4a, KindVideo, "", "kind video contradicts the file: its bytes are audio/mp4"},
		{"photo as audio", jpeg, KindAudio, "", "kind audio contradicts the file: its bytes are image/jpeg"},
		{"video as document", movie, KindDocument, "", "kind document contradicts the file: its bytes are video/quicktime"},
		{"video, no kind", movie, "", KindVideo, ""},
		{"mp4, no kind", mp4, "", KindVideo, ""},
		{"m4a, no kind", m4a, "", KindAudio, ""},
		{"photo, no kind", jpeg, "", KindPhoto, ""},
		{"pdf, no kind", pdf, "", KindDocument, ""},
		{"text, no kind", text, "", KindDocument, ""},
		{"unknown bytes, no kind", raw, "", KindOther, ""},
		{"video as video", movie, KindVideo, KindVideo, ""},
		{"a video container as audio", mp4, KindAudio, KindAudio, ""},
		{"an animated image as video", gif, KindVideo, KindVideo, ""},
		{"a scan as document", jpeg, KindDocument, KindDocument, ""},
		{"video as other", movie, KindOther, KindOther, ""},
		{"unknown bytes as photo", raw, KindPhoto, KindPhoto, ""},
		{"pdf as other", pdf, KindOther, KindOther, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, _, _ := newTestServiceIn(t, dir)
			who := mustIdentity(t, identity.RoleCollector, "c")
			meta := docMeta("case-kind", tc.body)
			meta.Kind = tc.stated
			item, _, err := s.Ingest(t.Context(), who, meta, bytes.NewReader(tc.body))
			if tc.refuse != "" {
				if failure.KindOf(err) != failure.Invalid || !strings.Contains(err.Error(), tc.refuse) {
					t.Fatalf("Ingest = %v, want invalid naming %q", err, tc.refuse)
				}
				if n := blobFiles(t, dir); n != 0 {
					t.Fatalf("a refused upload left %d files in storage", n)
				}
				if items, _, err := s.List(t.Context(), who, "case-kind", "", 10); err != nil || len(items) != 0 {
					t.Fatalf("a refused upload is listed: %v, %v", items, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Get(t.Context(), who, item.ID)
			if err != nil || item.Kind != tc.want || got.Kind != tc.want {
				t.Fatalf("kind %q (read back %q, %v), want %q", item.Kind, got.Kind, err, tc.want)
			}
		})
	}
}

// A movie ffmpeg wrote, its moov box at the end, uploaded without a kind:
// it is a video, and its metadata is read. Full suite: it runs ffmpeg.
func TestIngestFFmpegMovie(t *testing.T) {
	path := mediatest.FFmpeg(t, "clip.mov", "-metadata", "creation_time=2024-05-01T12:00:00Z",
		"-metadata", "location=+50.4501+030.5234/", "-metadata", "make=Apple", "-metadata", "model=iPhone 15")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		t.Fatal(err)
	}
	f.Seek(0, io.SeekStart)
	s, _, _ := newTestService(t)
	who := mustIdentity(t, identity.RoleCollector, "c")
	item, _, err := s.Ingest(t.Context(), who, UploadMeta{CaseID: "case-ffmpeg", SHA256: hex.EncodeToString(h.Sum(nil)), Size: size}, f)
	if err != nil {
		t.Fatal(err)
	}
	e := item.Meta.Embedded
	if item.Kind != KindVideo || item.MediaType != "video/quicktime" || e == nil ||
		!e.CapturedAt.Equal(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)) || e.Duration != 2*time.Second ||
		e.Device == nil || *e.Device != (Device{Make: "Apple", Model: "iPhone 15"}) ||
		e.Location == nil || e.Location.Point == nil || math.Abs(e.Location.Point.Latitude-50.4501) > 1e-9 {
		t.Fatalf("kind %q, media type %q, embedded %+v", item.Kind, item.MediaType, e)
	}
}
