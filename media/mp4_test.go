package media_test

import (
	"bytes"
	"errors"
	"math"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/custody-dev/custody/media"
	"github.com/custody-dev/custody/media/mediatest"
)

// readBoth reads b as a file (ReadMP4At) and as a stream written in
// chunks of each size (MP4Scanner), and fails the test unless every way
// gives the same answer, which it returns.
func readBoth(t *testing.T, b []byte) *media.Capture {
	t.Helper()
	want := media.ReadMP4At(bytes.NewReader(b), int64(len(b)))
	for _, chunk := range []int{1, 3, 8, 16, 4096, len(b) + 1} {
		if got := scan(b, chunk); !reflect.DeepEqual(got, want) {
			t.Fatalf("MP4Scanner in chunks of %d = %+v, ReadMP4At = %+v", chunk, got, want)
		}
	}
	return want
}

func scan(b []byte, chunk int) *media.Capture {
	s := media.NewMP4Scanner(int64(len(b)))
	for len(b) > 0 {
		n := min(chunk, len(b))
		s.Write(b[:n])
		b = b[n:]
	}
	return s.Capture()
}

// The moov box is found wherever it sits and whatever the sizes of the
// boxes before it: where phones put it (after the media data), where
// streaming files do (first), after media data with a 64-bit size, and
// as the last box running to the end of the file (size 0).
func TestMoovAnywhere(t *testing.T) {
	when := time.Date(2023, 9, 2, 17, 30, 0, 0, time.UTC)
	moov := mediatest.Box("moov", mediatest.MVHD(when, 600, 600*42))
	ftyp := mediatest.FTYP("qt  ")
	mdat := func(n int) []byte { return mediatest.Box("mdat", make([]byte, n)) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tc := range []struct {
		name string
		file []byte
	}{
		{"moov first (faststart)", cat(ftyp, moov, mdat(300<<10))},
		{"moov after 1 MiB of media data", cat(ftyp, mediatest.Box("wide"), mdat(1<<20), moov)},
		{"moov after a 64-bit-size mdat", cat(ftyp, mediatest.LargeBox("mdat", make([]byte, 200<<10)), moov)},
		{"moov last, size 0", cat(ftyp, mdat(200<<10), mediatest.ToEndBox("moov", mediatest.MVHD(when, 600, 600*42)))},
		{"moov first, mdat last with size 0", cat(ftyp, moov, mediatest.ToEndBox("mdat", make([]byte, 1000)))},
		{"free and skip boxes between", cat(ftyp, mediatest.Box("free", make([]byte, 10)), mediatest.Box("skip"), mdat(5), moov, mediatest.Box("free"))},
		{"a 64-bit-size moov", cat(ftyp, mdat(10), mediatest.LargeBox("moov", mediatest.MVHD(when, 600, 600*42)))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := readBoth(t, tc.file)
			if c == nil || !c.CapturedAt.Equal(when) || c.Duration != 42*time.Second {
				t.Fatalf("read %+v, want %v and 42s", c, when)
			}
			if got := media.ReadMP4(tc.file); !reflect.DeepEqual(got, c) {
				t.Fatalf("ReadMP4 = %+v, ReadMP4At = %+v", got, c)
			}
		})
	}
	// The head the service once read (the first 128 KiB) misses a moov
	// box at the end: what this change is for.
	file := cat(ftyp, mdat(1<<20), moov)
	if c := media.ReadMP4(file[:128<<10]); c != nil {
		t.Fatalf("a 128 KiB head holds no moov box, yet ReadMP4 read %+v", c)
	}
}

// QuickTime metadata: user data text items (©xyz, ©mak, ©mod), Apple's
// keys in moov/meta (as iPhones write them) and in moov/udta/meta (as
// ffmpeg's use_metadata_tags writes them), and the 3GPP loci box.
func TestQuickTimeMetadata(t *testing.T) {
	mvhdAt := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	mvhd := mediatest.MVHD(mvhdAt, 1000, 2500)
	alt := 100.5
	apple := []mediatest.Key{
		{Name: "com.apple.quicktime.location.ISO6709", Value: "+50.4501+030.5234+100.5/"},
		{Name: "com.apple.quicktime.make", Value: "Apple"},
		{Name: "com.apple.quicktime.model", Value: "iPhone 15 Pro"},
		{Name: "com.apple.quicktime.software", Value: "17.4.1"},
		{Name: "com.apple.quicktime.creationdate", Value: "2024-05-01T14:59:30+0300"},
	}
	appleAt := time.Date(2024, 5, 1, 11, 59, 30, 0, time.UTC)
	// loci: version and flags, language, name "", role, then longitude,
	// latitude, altitude in 16.16 fixed point, body "earth", notes "".
	fixed := func(v float64) []byte {
		return []byte{byte(int32(v*65536) >> 24), byte(int32(v*65536) >> 16), byte(int32(v*65536) >> 8), byte(int32(v * 65536))}
	}
	loci := mediatest.Box("loci", make([]byte, 6), []byte{0, 0}, fixed(-122.25), fixed(37.5), fixed(0), []byte("earth\x00\x00"))
	for _, tc := range []struct {
		name   string
		moov   [][]byte
		at     time.Time
		device *media.Device
		pos    *media.Position
	}{
		{"user data text items", [][]byte{mvhd, mediatest.Box("udta",
			mediatest.UserText("\xa9swr", "Lavf59"), mediatest.UserText("\xa9mak", "Google"), mediatest.UserText("\xa9mod", "Pixel 8"),
			mediatest.UserText("\xa9xyz", "+37.4220-122.0841/"))},
			mvhdAt, &media.Device{Make: "Google", Model: "Pixel 8"}, &media.Position{Latitude: 37.422, Longitude: -122.0841}},
		{"Apple keys in moov/meta", [][]byte{mvhd, mediatest.Meta(apple...)},
			appleAt, &media.Device{Make: "Apple", Model: "iPhone 15 Pro", Software: "17.4.1"}, &media.Position{Latitude: 50.4501, Longitude: 30.5234, AltitudeM: &alt}},
		{"Apple keys in moov/udta/meta", [][]byte{mediatest.Box("udta", mediatest.FullMeta(apple...)), mvhd},
			appleAt, &media.Device{Make: "Apple", Model: "iPhone 15 Pro", Software: "17.4.1"}, &media.Position{Latitude: 50.4501, Longitude: 30.5234, AltitudeM: &alt}},
		{"moov/meta wins over user data", [][]byte{mvhd, mediatest.Box("udta", mediatest.UserText("\xa9mak", "Other"), mediatest.UserText("\xa9xyz", "+01.0+002.0/")), mediatest.Meta(apple...)},
			appleAt, &media.Device{Make: "Apple", Model: "iPhone 15 Pro", Software: "17.4.1"}, &media.Position{Latitude: 50.4501, Longitude: 30.5234, AltitudeM: &alt}},
		{"3GPP loci", [][]byte{mvhd, mediatest.Box("udta", loci)},
			mvhdAt, nil, &media.Position{Latitude: 37.5, Longitude: -122.25}},
		{"a creation date without a zone is not read", [][]byte{mvhd, mediatest.Meta(mediatest.Key{Name: "com.apple.quicktime.creationdate", Value: "2024-05-01T14:59:30"})},
			mvhdAt, nil, nil},
		{"keys naming no item, items naming no key", [][]byte{mvhd, mediatest.Meta(mediatest.Key{Name: "com.apple.quicktime.make"})},
			mvhdAt, &media.Device{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := readBoth(t, mediatest.MovieAtEnd(200<<10, tc.moov...))
			if c == nil || !c.CapturedAt.Equal(tc.at) || c.Duration != 2500*time.Millisecond {
				t.Fatalf("read %+v, want %v and 2.5s", c, tc.at)
			}
			if tc.device != nil && *tc.device == (media.Device{}) {
				tc.device = nil // an empty make is no device
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

func samePosition(a, b *media.Position) bool {
	if a == nil || b == nil {
		return a == b
	}
	near := func(x, y float64) bool { return math.Abs(x-y) < 1e-4 }
	if (a.AltitudeM == nil) != (b.AltitudeM == nil) || a.AltitudeM != nil && !near(*a.AltitudeM, *b.AltitudeM) {
		return false
	}
	return near(a.Latitude, b.Latitude) && near(a.Longitude, b.Longitude)
}

// A real QuickTime movie made by ffmpeg (testdata/README.md), committed so
// the unit tests read one: moov at the end, Apple's keys in udta/meta.
func TestFFmpegFixture(t *testing.T) {
	b, err := os.ReadFile("testdata/apple-keys.mov")
	if err != nil {
		t.Fatal(err)
	}
	if got := media.SniffType(b); got != "video/quicktime" {
		t.Errorf("sniffed %q, want video/quicktime", got)
	}
	c := readBoth(t, b)
	alt := 100.5
	if c == nil || !c.CapturedAt.Equal(time.Date(2024, 5, 1, 11, 59, 30, 0, time.UTC)) || c.Duration != time.Second ||
		!reflect.DeepEqual(c.Device, &media.Device{Make: "Apple", Model: "iPhone 15 Pro"}) ||
		!samePosition(c.Position, &media.Position{Latitude: 50.4501, Longitude: 30.5234, AltitudeM: &alt}) {
		t.Fatalf("read %+v (device %+v, position %+v)", c, c.Device, c.Position)
	}
}

func TestParseISO6709(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	for _, tc := range []struct {
		in   string
		want *media.Position
	}{
		{"+50.4501+030.5234/", &media.Position{Latitude: 50.4501, Longitude: 30.5234}},
		{"-33.8688+151.2093+012.5/", &media.Position{Latitude: -33.8688, Longitude: 151.2093, AltitudeM: f(12.5)}},
		{"+37.3349-122.0090+011.989/", &media.Position{Latitude: 37.3349, Longitude: -122.009, AltitudeM: f(11.989)}},
		{"+27.5916+086.5640+8850CRSWGS_84/", &media.Position{Latitude: 27.5916, Longitude: 86.564, AltitudeM: f(8850)}},
		{"+4027.0-07400.0/", &media.Position{Latitude: 40.45, Longitude: -74}},                // degrees and minutes
		{"+402630.0-0740000/", &media.Position{Latitude: 40.441667, Longitude: -74}},          // degrees, minutes, seconds
		{"+50.4501+030.5234", &media.Position{Latitude: 50.4501, Longitude: 30.5234}},         // no slash
		{"+50.4501+030.5234-999999/", &media.Position{Latitude: 50.4501, Longitude: 30.5234}}, // altitude off the Earth: dropped alone
		{"+91.0+030.0/", nil},
		{"+50.0+181.0/", nil},
		{"+4060.0+03000.0/", nil}, // 60 minutes
		{"+50.4501/", nil},
		{"50.4501+030.5234/", nil},
		{"+5a.1+030.1/", nil},
		{"+50.1+030.1+1+2/", nil},
		{"+1e1+030.0/", nil},
		{"+.5+030.0/", nil},
		{"", nil},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := media.ParseISO6709(tc.in); !samePosition(got, tc.want) {
				t.Fatalf("ParseISO6709(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

// countingReaderAt serves a file most of which is never materialised
// (its media data reads as zeros) and counts the bytes read.
type countingReaderAt struct {
	head, tail []byte
	size       int64
	read       int64
}

func (r *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= r.size {
		return 0, errors.New("EOF")
	}
	n := int(min(int64(len(p)), r.size-off))
	for i := range n {
		at := off + int64(i)
		switch {
		case at < int64(len(r.head)):
			p[i] = r.head[at]
		case at >= r.size-int64(len(r.tail)):
			p[i] = r.tail[at-(r.size-int64(len(r.tail)))]
		default:
			p[i] = 0
		}
	}
	r.read += int64(n)
	if n < len(p) {
		return n, errors.New("EOF")
	}
	return n, nil
}

// Reads are bounded: an 8 GiB movie's metadata costs a few hundred bytes
// of reads (box headers and the moov children kept), never the media
// data; a moov child over media.MaxMetaBox is skipped, not read.
func TestReadsAreBounded(t *testing.T) {
	when := time.Date(2022, 1, 2, 3, 4, 5, 0, time.UTC)
	const mdat = 8 << 30
	hdr := []byte{0, 0, 0, 1, 'm', 'd', 'a', 't', 0, 0, 0, 2, 0, 0, 0, 16} // 64-bit size 8 GiB + 16
	head := append(mediatest.FTYP("qt  "), hdr...)
	bigUdta := mediatest.Box("udta", mediatest.UserText("\xa9mak", "Canon"), make([]byte, media.MaxMetaBox))
	tail := mediatest.Box("moov", mediatest.MVHD(when, 1, 7), bigUdta)
	r := &countingReaderAt{head: head, tail: tail, size: int64(len(head)) + mdat + int64(len(tail))}
	c := media.ReadMP4At(r, r.size)
	if c == nil || !c.CapturedAt.Equal(when) || c.Duration != 7*time.Second || c.Device != nil {
		t.Fatalf("read %+v; want the header's time and duration, and no device (its udta is too large to read)", c)
	}
	if r.read > 1024 {
		t.Fatalf("read %d bytes of an 8 GiB movie to find its metadata", r.read)
	}
	// The scanner skips it too: the same answer.
	if got := readBoth(t, mediatest.MovieAtEnd(10, mediatest.MVHD(when, 1, 7), bigUdta)); got == nil || got.Device != nil {
		t.Fatalf("read %+v", got)
	}
}

// Damaged or crafted structures give nothing, never a panic: boxes that
// run past their parent, sizes below their header, too many boxes.
func TestDamagedMovies(t *testing.T) {
	when := time.Date(2022, 1, 2, 3, 4, 5, 0, time.UTC)
	good := mediatest.MovieAtEnd(100, mediatest.MVHD(when, 1, 7))
	tooMany := mediatest.FTYP("qt  ")
	for range 5000 {
		tooMany = append(tooMany, mediatest.Box("free")...)
	}
	tooMany = append(tooMany, mediatest.Box("moov", mediatest.MVHD(when, 1, 7))...)
	manyChildren := make([][]byte, 0, 5001)
	for range 5000 {
		manyChildren = append(manyChildren, mediatest.Box("free"))
	}
	for _, tc := range []struct {
		name string
		file []byte
	}{
		{"truncated moov", good[:len(good)-3]},
		{"moov claims more than the file", append(good[:len(good)-8-108], append([]byte{0, 0, 0x10, 0, 'm', 'o', 'o', 'v'}, good[len(good)-108:]...)...)},
		{"a size below the header", append(mediatest.FTYP("qt  "), 0, 0, 0, 4, 'm', 'o', 'o', 'v')},
		{"a 64-bit size below the header", append(mediatest.FTYP("qt  "), 0, 0, 0, 1, 'm', 'd', 'a', 't', 0, 0, 0, 0, 0, 0, 0, 8)},
		{"a 64-bit size header cut short", append(mediatest.FTYP("qt  "), 0, 0, 0, 1, 'm', 'd', 'a', 't', 0, 0)},
		{"no moov", mediatest.FTYP("qt  ")},
		{"more top-level boxes than walked", tooMany},
		{"more moov children than walked", mediatest.MovieAtEnd(0, append(manyChildren, mediatest.MVHD(when, 1, 7))...)},
		{"empty", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if c := readBoth(t, tc.file); c != nil {
				t.Fatalf("read %+v from a damaged movie", c)
			}
		})
	}
}

// SniffType names ISO base media files by their brands, where
// http.DetectContentType knows only mp4.
func TestSniffBrands(t *testing.T) {
	for _, tc := range []struct{ brand, want string }{
		{"qt  ", "video/quicktime"},
		{"isom", "video/mp4"},
		{"mp42", "video/mp4"},
		{"M4A ", "audio/mp4"},
		{"3gp4", "video/3gpp"},
		{"3g2a", "video/3gpp2"},
		{"heic", "image/heic"},
		{"mif1", "image/heif"},
		{"avif", "image/avif"},
	} {
		t.Run(tc.brand, func(t *testing.T) {
			head := append(mediatest.Box("ftyp", []byte(tc.brand), []byte{0, 0, 2, 0}, []byte(tc.brand), []byte("isom")), mediatest.Box("mdat", make([]byte, 64))...)
			if got := media.SniffType(head); got != tc.want {
				t.Fatalf("SniffType = %q, want %q", got, tc.want)
			}
		})
	}
	// An unknown major brand with a known compatible one.
	head := append(mediatest.Box("ftyp", []byte("zzzz"), make([]byte, 4), []byte("qt  ")), mediatest.Box("mdat")...)
	if got := media.SniffType(head); got != "video/quicktime" {
		t.Fatalf("SniffType = %q", got)
	}
}
