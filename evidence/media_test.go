package evidence

import (
	"encoding/binary"
	"math"
	"os"
	"testing"
	"time"
)

func box(typ string, payload ...[]byte) []byte {
	n := 8
	for _, p := range payload {
		n += len(p)
	}
	b := make([]byte, 8, n)
	binary.BigEndian.PutUint32(b, uint32(n))
	copy(b[4:], typ)
	for _, p := range payload {
		b = append(b, p...)
	}
	return b
}

// mp4 builds a minimal MP4 head: ftyp, then moov with a version-0 mvhd.
func mp4(created time.Time, timescale, duration uint32) []byte {
	mvhd := make([]byte, 100)
	secs := uint32(created.Sub(time.Date(1904, 1, 1, 0, 0, 0, 0, time.UTC)) / time.Second)
	binary.BigEndian.PutUint32(mvhd[4:], secs)
	binary.BigEndian.PutUint32(mvhd[8:], secs)
	binary.BigEndian.PutUint32(mvhd[12:], timescale)
	binary.BigEndian.PutUint32(mvhd[16:], duration)
	return append(box("ftyp", []byte("isom\x00\x00\x02\x00isomiso2mp41")), box("moov", box("mvhd", mvhd))...)
}

func TestReadMP4(t *testing.T) {
	when := time.Date(2022, 3, 16, 10, 5, 0, 0, time.UTC)
	c := readMP4(mp4(when, 600, 600*95))
	if c == nil || !c.CapturedAt.Equal(when) || c.Duration != 95*time.Second {
		t.Fatalf("readMP4 = %+v, want %v and 95s", c, when)
	}
	head := mp4(when, 600, 600*95)
	for _, bad := range [][]byte{nil, head[:20], head[:len(head)-50], append([]byte{0, 0, 0, 1}, head[4:]...)} {
		if c := readMP4(bad); c != nil {
			t.Errorf("readMP4 of a damaged head = %+v", c)
		}
	}
	if got := sniffMediaType(head); got != "video/mp4" {
		t.Errorf("sniffed %q", got)
	}
}

// FuzzReadMedia: the EXIF and MP4 readers take attacker-controlled bytes
// and must never panic or hang; they may only return nothing.
func FuzzReadMedia(f *testing.F) {
	if b, err := os.ReadFile("testdata/gps.jpg"); err == nil {
		f.Add(b[:min(len(b), 4096)])
	}
	f.Add(mp4(time.Now(), 1000, 5000))
	f.Fuzz(func(t *testing.T, b []byte) {
		readEXIF(b)
		readMP4(b)
	})
}

func TestReadEXIF(t *testing.T) {
	photo, err := os.ReadFile("testdata/gps.jpg")
	if err != nil {
		t.Fatal(err)
	}
	c := readEXIF(photo)
	if c == nil || c.Location == nil {
		t.Fatalf("readEXIF = %+v", c)
	}
	if lat, lon := c.Location.Point.Latitude, c.Location.Point.Longitude; math.Abs(lat+38.405194783) > 1e-6 || math.Abs(lon-144.188958) > 1e-6 {
		t.Fatalf("position (%v, %v), want (-38.405194783, 144.188958)", lat, lon)
	}
	if c.Device == nil || c.Device.Software != "Perfectly Clear Complete v3 3.6.3.1351" {
		t.Fatalf("device %+v", c.Device)
	}
	// Damaged heads give nothing, never a panic.
	for _, n := range []int{0, 3, 20, 100, 400} {
		readEXIF(photo[:min(n, len(photo))])
	}
}
