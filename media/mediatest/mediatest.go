// Package mediatest makes crafted file heads for tests of code that reads
// media (package media, and the ingest paths that call it).
package mediatest

import (
	"bytes"
	"encoding/binary"
	"time"
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
