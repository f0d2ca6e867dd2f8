// Package mediatest makes crafted file heads for tests of code that reads
// media (package media, and the ingest paths that call it).
package mediatest

import (
	"bytes"
	"encoding/binary"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/custody-dev/custody/internal/testenv"
)

// JPEG is a JPEG whose EXIF block (IFD0) has the given Make and Model,
// taken byte for byte as ASCII entries, and no other tag.
func JPEG(mk, model string) []byte {
	le := binary.LittleEndian
	const ifdAt = 8
	dataAt := uint32(ifdAt + 2 + 2*12 + 4)
	var tiff []byte
	tiff = append(tiff, "II*\x00"...)
	tiff = le.AppendUint32(tiff, ifdAt)
	tiff = le.AppendUint16(tiff, 2)
	var data []byte
	for _, e := range []struct {
		tag uint16
		v   string
	}{{0x010F, mk}, {0x0110, model}} { // Make, Model
		v := e.v + "\x00"
		tiff = le.AppendUint16(tiff, e.tag)
		tiff = le.AppendUint16(tiff, 2) // ASCII
		tiff = le.AppendUint32(tiff, uint32(len(v)))
		tiff = le.AppendUint32(tiff, dataAt+uint32(len(data)))
		data = append(data, v...)
	}
	tiff = le.AppendUint32(tiff, 0)
	tiff = append(tiff, data...)
	seg := append([]byte("Exif\x00\x00"), tiff...)
	out := []byte{0xFF, 0xD8, 0xFF, 0xE1}
	out = binary.BigEndian.AppendUint16(out, uint16(2+len(seg)))
	out = append(out, seg...)
	out = append(out, 0xFF, 0xDA, 0x00, 0x02)
	out = append(out, bytes.Repeat([]byte{0x55}, 512)...)
	return append(out, 0xFF, 0xD9)
}

// MP4 is a minimal MP4 head: ftyp, then moov with a version-0 movie header
// (32-bit times) created at created.
func MP4(created time.Time, timescale, duration uint32) []byte {
	mvhd := make([]byte, 100)
	secs := uint32(created.Sub(time.Date(1904, 1, 1, 0, 0, 0, 0, time.UTC)) / time.Second)
	binary.BigEndian.PutUint32(mvhd[4:], secs)
	binary.BigEndian.PutUint32(mvhd[8:], secs)
	binary.BigEndian.PutUint32(mvhd[12:], timescale)
	binary.BigEndian.PutUint32(mvhd[16:], duration)
	return append(box("ftyp", []byte("isom\x00\x00\x02\x00isomiso2mp41")), box("moov", box("mvhd", mvhd))...)
}

// MP4Version1 is an MP4 head whose movie header is version 1 (64-bit
// times), created created seconds after 1904-01-01.
func MP4Version1(created uint64, timescale uint32, duration uint64) []byte {
	mvhd := make([]byte, 112)
	mvhd[0] = 1
	binary.BigEndian.PutUint64(mvhd[4:], created)
	binary.BigEndian.PutUint64(mvhd[12:], created)
	binary.BigEndian.PutUint32(mvhd[20:], timescale)
	binary.BigEndian.PutUint64(mvhd[24:], duration)
	return append(box("ftyp", []byte("isom\x00\x00\x02\x00isomiso2mp41")), box("moov", box("mvhd", mvhd))...)
}

// box is an ISO BMFF box of type typ holding payload.
func box(typ string, payload ...[]byte) []byte { return Box(typ, payload...) }

// Box is an ISO BMFF box of type typ holding payload, with a 32-bit size.
func Box(typ string, payload ...[]byte) []byte {
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

// LargeBox is a box with a 64-bit size (size field 1, then the size).
func LargeBox(typ string, payload ...[]byte) []byte {
	n := 16
	for _, p := range payload {
		n += len(p)
	}
	b := binary.BigEndian.AppendUint32(nil, 1)
	b = append(b, typ...)
	b = binary.BigEndian.AppendUint64(b, uint64(n))
	for _, p := range payload {
		b = append(b, p...)
	}
	return b
}

// ToEndBox is a box of size 0: it runs to the end of the file, so it must
// come last.
func ToEndBox(typ string, payload ...[]byte) []byte {
	b := append(make([]byte, 4), typ...)
	for _, p := range payload {
		b = append(b, p...)
	}
	return b
}

// FTYP is a file type box naming the brand major (e.g. "qt  ", "isom").
func FTYP(major string) []byte {
	return Box("ftyp", []byte(major), []byte{0, 0, 2, 0}, []byte(major))
}

// MVHD is a version-0 movie header box created at created, its duration
// duration/timescale seconds.
func MVHD(created time.Time, timescale, duration uint32) []byte {
	mvhd := make([]byte, 100)
	secs := uint32(created.Sub(time.Date(1904, 1, 1, 0, 0, 0, 0, time.UTC)) / time.Second)
	binary.BigEndian.PutUint32(mvhd[4:], secs)
	binary.BigEndian.PutUint32(mvhd[8:], secs)
	binary.BigEndian.PutUint32(mvhd[12:], timescale)
	binary.BigEndian.PutUint32(mvhd[16:], duration)
	return Box("mvhd", mvhd)
}

// UserText is a QuickTime user-data text item (as in moov/udta), e.g.
// UserText("\xa9xyz", "+50.4501+030.5234/"): 16-bit length, 16-bit
// language code, text.
func UserText(typ, text string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(text)))
	b = binary.BigEndian.AppendUint16(b, 0x15c7)
	return Box(typ, b, []byte(text))
}

// Key is one metadata item: a key of the mdta namespace and its UTF-8
// value.
type Key struct{ Name, Value string }

// Meta is a QuickTime metadata box (moov/meta as Apple devices write it:
// no version and flags) with an mdta handler, a keys box and an ilst box
// holding keys' values. FullMeta is the ISO form (version and flags first),
// as ffmpeg writes it in moov/udta.
func Meta(keys ...Key) []byte { return Box("meta", metaBody(keys)) }

// FullMeta is Meta's ISO form.
func FullMeta(keys ...Key) []byte { return Box("meta", make([]byte, 4), metaBody(keys)) }

func metaBody(keys []Key) []byte {
	hdlr := Box("hdlr", make([]byte, 8), []byte("mdta"), make([]byte, 13))
	k := binary.BigEndian.AppendUint32(make([]byte, 4), uint32(len(keys)))
	var ilst []byte
	for i, key := range keys {
		k = binary.BigEndian.AppendUint32(k, uint32(8+len(key.Name)))
		k = append(k, "mdta"...)
		k = append(k, key.Name...)
		data := Box("data", binary.BigEndian.AppendUint32(nil, 1), make([]byte, 4), []byte(key.Value))
		ilst = append(ilst, Box(string(binary.BigEndian.AppendUint32(nil, uint32(i+1))), data)...)
	}
	return append(append(hdlr, Box("keys", k)...), Box("ilst", ilst)...)
}

// MovieAtEnd is a QuickTime movie as phones write it: ftyp, then pad bytes
// of media data (mdat), then the moov box holding moovChildren (e.g. MVHD,
// a udta Box of UserText items, Meta).
func MovieAtEnd(pad int, moovChildren ...[]byte) []byte {
	out := FTYP("qt  ")
	out = append(out, Box("wide")...)
	out = append(out, Box("mdat", make([]byte, pad))...)
	return append(out, Box("moov", moovChildren...)...)
}

// FFmpeg makes a movie with Debian's ffmpeg and returns its path, in a
// temporary folder: two seconds of 160x120 noise at 10 frames a second
// encoded as MPEG-4 part 2 at the best quality, about 470 KiB, so a moov
// box written after the media data lies well past any head a reader
// might buffer. args are ffmpeg's output options (-movflags, -metadata…);
// name's extension picks the container (.mov, .mp4, .3gp). It runs only in
// the full suite, and fails the test if ffmpeg is missing there
// (scripts/test installs it).
func FFmpeg(t testing.TB, name string, args ...string) string {
	t.Helper()
	testenv.RequireFull(t, "ffmpeg")
	bin, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatalf("no ffmpeg: apt-get install ffmpeg (scripts/test does): %v", err)
	}
	out := filepath.Join(t.TempDir(), name)
	cmd := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y",
		"-f", "lavfi", "-i", "nullsrc=s=160x120:r=10:d=2,geq=random(1)*255:128:128",
		"-c:v", "mpeg4", "-q:v", "1"}
	cmd = append(append(cmd, args...), out)
	if b, err := exec.CommandContext(t.Context(), bin, cmd...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", cmd, err, b)
	}
	return out
}
