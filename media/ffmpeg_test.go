package media_test

import (
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/custody-dev/custody/media"
	"github.com/custody-dev/custody/media/mediatest"
)

// Movies as ffmpeg writes them, with the moov box at the end (as phones
// and cameras do) and at the start (-movflags +faststart), in QuickTime and
// MP4 containers, with ffmpeg's own metadata layout and with Apple's keys
// (-movflags use_metadata_tags): each is read whole, by seeking in the file
// and by scanning it as a stream, and a moov box at the end lies past the
// first 128 KiB the service once read. Full suite: it runs ffmpeg.
func TestFFmpegMovies(t *testing.T) {
	created := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	appleAt := time.Date(2024, 5, 1, 11, 59, 30, 0, time.UTC)
	alt := 100.5
	plain := []string{
		"-metadata", "creation_time=2024-05-01T12:00:00Z",
		"-metadata", "location=+50.4501+030.5234/",
		"-metadata", "make=Apple", "-metadata", "model=iPhone 15",
	}
	apple := []string{
		"-metadata", "creation_time=2024-05-01T12:00:00Z",
		"-metadata", "com.apple.quicktime.location.ISO6709=+50.4501+030.5234+100.5/",
		"-metadata", "com.apple.quicktime.make=Apple",
		"-metadata", "com.apple.quicktime.model=iPhone 15 Pro",
		"-metadata", "com.apple.quicktime.creationdate=2024-05-01T14:59:30+0300",
	}
	kyiv := &media.Position{Latitude: 50.4501, Longitude: 30.5234}
	kyivUp := &media.Position{Latitude: 50.4501, Longitude: 30.5234, AltitudeM: &alt}
	for _, tc := range []struct {
		name      string
		file      string
		faststart bool
		appleKeys bool
		at        time.Time
		device    *media.Device
		pos       *media.Position
		mediaType string
	}{
		// QuickTime user data: ©mak, ©mod, ©xyz.
		{"mov", "v.mov", false, false, created, &media.Device{Make: "Apple", Model: "iPhone 15"}, kyiv, "video/quicktime"},
		{"mov faststart", "v.mov", true, false, created, &media.Device{Make: "Apple", Model: "iPhone 15"}, kyiv, "video/quicktime"},
		// MP4: ffmpeg writes the place as a 3GPP loci box, and no make or
		// model.
		{"mp4", "v.mp4", false, false, created, nil, kyiv, "video/mp4"},
		{"mp4 faststart", "v.mp4", true, false, created, nil, kyiv, "video/mp4"},
		// Apple's keys in udta/meta: the creation date stated there wins.
		{"mov Apple keys", "v.mov", false, true, appleAt, &media.Device{Make: "Apple", Model: "iPhone 15 Pro"}, kyivUp, "video/quicktime"},
		{"mov Apple keys faststart", "v.mov", true, true, appleAt, &media.Device{Make: "Apple", Model: "iPhone 15 Pro"}, kyivUp, "video/quicktime"},
		{"mp4 Apple keys", "v.mp4", false, true, appleAt, &media.Device{Make: "Apple", Model: "iPhone 15 Pro"}, kyivUp, "video/mp4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args, flags := plain, ""
			if tc.appleKeys {
				args, flags = apple, "use_metadata_tags"
			}
			if tc.faststart {
				flags += "+faststart"
			}
			if flags != "" {
				args = append(append([]string{}, args...), "-movflags", flags)
			}
			path := mediatest.FFmpeg(t, tc.file, args...)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			head := b[:min(len(b), 128<<10)]
			if got := media.SniffType(head); got != tc.mediaType {
				t.Errorf("sniffed %q, want %q", got, tc.mediaType)
			}
			// The test means something: the moov box is where it should be.
			if inHead := media.ReadMP4(head) != nil; inHead != tc.faststart || len(b) <= 128<<10 {
				t.Fatalf("%d bytes; moov box within the first 128 KiB: %v, want %v", len(b), inHead, tc.faststart)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			c := media.ReadMP4At(f, int64(len(b)))
			if got := readBoth(t, b); !reflect.DeepEqual(got, c) {
				t.Fatalf("read from the file %+v, from its bytes %+v", c, got)
			}
			if c == nil || !c.CapturedAt.Equal(tc.at) || c.Duration != 2*time.Second {
				t.Fatalf("read %+v, want %v and 2s", c, tc.at)
			}
			if !reflect.DeepEqual(c.Device, tc.device) {
				t.Errorf("device %+v, want %+v", c.Device, tc.device)
			}
			if !samePosition(c.Position, tc.pos) {
				t.Errorf("position %+v, want %+v", c.Position, tc.pos)
			}
		})
	}
}
