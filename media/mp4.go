package media

import (
	"bytes"
	"encoding/binary"
	"io"
	"time"
)

// The ISO base media file reader (MP4, MOV, 3GP): creation time and
// duration from the movie header (moov/mvhd), and capture device, place and
// time from QuickTime metadata (moov/udta, moov/meta and moov/udta/meta).
//
// Phones and cameras write the moov box when recording ends, after the media
// data, so it is usually at the end of the file; files prepared for
// streaming ("faststart") have it first. The reader finds it wherever it
// sits by walking the top-level boxes by their sizes (32-bit, 64-bit, or 0
// for "to the end of the file"), skipping the media data without reading
// it, then walks the moov box's children the same way and reads only the
// three that carry what Custody keeps: mvhd, udta and meta, each at most
// MaxMetaBox bytes (a larger one is skipped). So what it reads of a file is
// bounded whatever the file's size: at most maxTopBoxes+maxMoovChildren box
// headers and three bounded payloads.
//
// Three entry points share this walk and give the same answer for the same
// bytes: ReadMP4At seeks in a file (io.ReaderAt), ReadMP4 reads a buffer,
// and MP4Scanner watches a stream go by (an io.Writer) for callers that
// see the bytes once, in order, as an upload does.

// Bounds of the box walk.
const (
	// MaxMetaBox is the largest moov child (mvhd, udta, meta) read; larger
	// ones are skipped. Phones write a few KiB.
	MaxMetaBox = 1 << 20
	// maxTopBoxes is how many top-level boxes are walked looking for moov.
	maxTopBoxes = 1 << 12
	// maxMoovChildren is how many of moov's children are walked.
	maxMoovChildren = 1 << 12
	// maxInnerBoxes bounds every walk inside a box read into memory.
	maxInnerBoxes = 1 << 12
)

// mp4Epoch is 1970-01-01 in seconds since 1904-01-01, the ISO BMFF epoch.
const mp4Epoch = 2082844800

// boxHeader is one box's type and extent within its parent.
type boxHeader struct {
	typ   string
	start int64 // offset of the header
	hdr   int64 // header length: 8, or 16 with a 64-bit size
	end   int64 // offset just past the box
}

// parseBoxHeader reads the header of the box at start from b, which holds
// the first 8 (or, for a 64-bit size, 16) bytes of the box; parentEnd is
// where the enclosing box (or the file) ends, and a size of 0 means the box
// runs to it. ok is false for a header that does not fit: cut short, a
// size below the header's, or a box running past its parent.
func parseBoxHeader(b []byte, start, parentEnd int64) (h boxHeader, ok bool) {
	if len(b) < 8 {
		return h, false
	}
	size := uint64(binary.BigEndian.Uint32(b))
	h = boxHeader{typ: string(b[4:8]), start: start, hdr: 8}
	if size == 1 {
		if len(b) < 16 {
			return h, false
		}
		size, h.hdr = binary.BigEndian.Uint64(b[8:]), 16
	}
	if size == 0 {
		size = uint64(parentEnd - start)
	}
	if size < uint64(h.hdr) || size > uint64(parentEnd-start) {
		return h, false
	}
	h.end = start + int64(size)
	return h, true
}

// movie holds the moov children the reader keeps: each the payload of the
// first such child, nil if absent or too large.
type movie struct {
	mvhd, udta, meta []byte
}

// wantChild reports whether a moov child of type typ and payload length n
// is read into m.
func (m *movie) wantChild(typ string, n int64) bool {
	if n > MaxMetaBox {
		return false
	}
	switch typ {
	case "mvhd":
		return m.mvhd == nil
	case "udta":
		return m.udta == nil
	case "meta":
		return m.meta == nil
	}
	return false
}

func (m *movie) keep(typ string, payload []byte) {
	if payload == nil {
		payload = []byte{}
	}
	switch typ {
	case "mvhd":
		m.mvhd = payload
	case "udta":
		m.udta = payload
	case "meta":
		m.meta = payload
	}
}

// ReadMP4 reads an ISO base media file held in b (a whole file, or a head
// that holds the moov box entirely). Any inconsistency means nothing found:
// it returns nil.
func ReadMP4(b []byte) *Capture {
	return ReadMP4At(bytes.NewReader(b), int64(len(b)))
}

// ReadMP4At reads an ISO base media file of size bytes through r, with
// bounded reads at the boxes' offsets: it finds the moov box wherever it
// sits and reads what Custody keeps from it. It returns nil when there is
// no moov box, the walk meets an inconsistency (a box running past its
// parent, a read failing), or the movie says nothing usable.
func ReadMP4At(r io.ReaderAt, size int64) *Capture {
	if size < 0 {
		return nil
	}
	var hdr [16]byte
	readHeader := func(start, parentEnd int64) (boxHeader, bool) {
		n := int64(len(hdr))
		if parentEnd-start < n {
			n = parentEnd - start
		}
		if n < 8 {
			return boxHeader{}, false
		}
		if k, err := r.ReadAt(hdr[:n], start); int64(k) < n && err != nil {
			return boxHeader{}, false
		}
		h, ok := parseBoxHeader(hdr[:n], start, parentEnd)
		return h, ok
	}
	off := int64(0)
	for i := 0; off < size; i++ {
		if i == maxTopBoxes {
			return nil
		}
		h, ok := readHeader(off, size)
		if !ok {
			return nil
		}
		if h.typ != "moov" {
			off = h.end
			continue
		}
		var m movie
		at := h.start + h.hdr
		for i := 0; at < h.end; i++ {
			if i == maxMoovChildren {
				return nil
			}
			c, ok := readHeader(at, h.end)
			if !ok {
				return nil
			}
			if n := c.end - c.start - c.hdr; m.wantChild(c.typ, n) {
				payload := make([]byte, n)
				if k, err := r.ReadAt(payload, c.start+c.hdr); int64(k) < n && err != nil {
					return nil
				}
				m.keep(c.typ, payload)
			}
			at = c.end
		}
		return m.capture()
	}
	return nil
}

// MP4Scanner finds what ReadMP4At finds in a stream seen once, in order: it
// is written every byte of the file (it never fails a write) and keeps at
// most the moov children ReadMP4At reads, so its memory is bounded whatever
// the stream's size. Capture gives the result once the stream is written.
type MP4Scanner struct {
	size  int64 // the stream's declared length
	off   int64 // bytes written so far
	state scanState
	// hdr gathers the header of the box starting at hdrAt.
	hdr   [16]byte
	nhdr  int
	hdrAt int64
	// skipTo is where the box being skipped ends.
	skipTo int64
	boxes  int   // headers parsed at the current level
	moov   int64 // end of the moov box, once in it
	// child is the moov child being read into buf.
	child string
	buf   []byte
	m     movie
}

type scanState int

const (
	scanTop   scanState = iota // between top-level boxes
	scanMoov                   // between moov's children
	scanSkip                   // skipping to skipTo, then back to the level
	scanChild                  // reading a moov child into buf
	scanFound                  // moov read entirely
	scanNone                   // no usable moov: nothing more to find
)

// NewMP4Scanner returns a scanner for a stream of size bytes.
func NewMP4Scanner(size int64) *MP4Scanner {
	s := &MP4Scanner{size: size}
	if size < 0 {
		s.state = scanNone
	}
	return s
}

// Write takes the stream's next bytes. It always consumes all of p.
func (s *MP4Scanner) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && s.state != scanFound && s.state != scanNone {
		switch s.state {
		case scanSkip:
			k := int(min(int64(len(p)), s.skipTo-s.off))
			p, s.off = p[k:], s.off+int64(k)
			if s.off == s.skipTo {
				s.toLevel()
			}
		case scanChild:
			k := int(min(int64(len(p)), int64(cap(s.buf)-len(s.buf))))
			s.buf = append(s.buf, p[:k]...)
			p, s.off = p[k:], s.off+int64(k)
			if len(s.buf) == cap(s.buf) {
				s.m.keep(s.child, s.buf)
				s.buf = nil
				s.state = scanMoov
				s.afterBox()
			}
		default: // scanTop, scanMoov: gather a header
			if s.nhdr == 0 {
				s.hdrAt = s.off
			}
			parentEnd := s.size
			if s.state == scanMoov {
				parentEnd = s.moov
			}
			want := 8
			if s.nhdr >= 8 && binary.BigEndian.Uint32(s.hdr[:]) == 1 {
				want = 16
			}
			k := min(len(p), want-s.nhdr)
			copy(s.hdr[s.nhdr:], p[:k])
			s.nhdr += k
			p, s.off = p[k:], s.off+int64(k)
			if s.nhdr < want {
				continue
			}
			if want == 8 && binary.BigEndian.Uint32(s.hdr[:]) == 1 {
				continue // the 64-bit size follows
			}
			h, ok := parseBoxHeader(s.hdr[:s.nhdr], s.hdrAt, parentEnd)
			s.nhdr = 0
			if !ok {
				s.state = scanNone
				break
			}
			s.enter(h)
		}
	}
	return n, nil
}

// enter acts on a box header just read whole.
func (s *MP4Scanner) enter(h boxHeader) {
	s.boxes++
	payload := h.end - h.start - h.hdr
	switch {
	case s.state == scanTop && h.typ == "moov":
		s.state, s.moov, s.boxes = scanMoov, h.end, 0
		s.afterBox()
		return
	case s.state == scanMoov && s.m.wantChild(h.typ, payload):
		s.child, s.buf = h.typ, make([]byte, 0, payload)
		s.state = scanChild
		if payload == 0 {
			s.m.keep(h.typ, s.buf)
			s.state = scanMoov
			s.afterBox()
		}
		return
	}
	s.skipTo = h.end
	s.state = scanSkip
	if s.off == s.skipTo {
		s.toLevel()
	}
}

// toLevel returns to the state between boxes at the current depth, once
// a skipped box ends.
func (s *MP4Scanner) toLevel() {
	if s.moov == 0 {
		s.state = scanTop
	} else {
		s.state = scanMoov
	}
	s.afterBox()
}

// afterBox checks the walk's bounds once a box has been passed: the moov
// box read to its end, or too many boxes at this level.
func (s *MP4Scanner) afterBox() {
	switch {
	case s.state == scanMoov && s.off == s.moov:
		s.state = scanFound
	case s.state == scanTop && s.boxes >= maxTopBoxes, s.state == scanMoov && s.boxes >= maxMoovChildren:
		s.state = scanNone
	case s.state == scanTop && s.off == s.size:
		s.state = scanNone // the end, and no moov
	}
}

// Capture is what the stream's moov box says, as ReadMP4At would return
// for the same bytes: nil until the moov box has been written whole, and
// nil if there is none or it says nothing usable.
func (s *MP4Scanner) Capture() *Capture {
	if s.state != scanFound {
		return nil
	}
	return s.m.capture()
}

// capture reads the kept children: creation time and duration from mvhd;
// device, place and capture time from QuickTime user data and metadata
// (a creation date stated there, with its zone, is preferred to the movie
// header's, which is when the file was written).
func (m *movie) capture() *Capture {
	out := &Capture{}
	if m.mvhd != nil {
		out.CapturedAt, out.Duration = readMVHD(m.mvhd)
	}
	var md quickTimeMeta
	if m.meta != nil {
		md.readMeta(m.meta)
	}
	if m.udta != nil {
		md.readUdta(m.udta)
	}
	if !md.created.IsZero() {
		out.CapturedAt = md.created
	}
	if md.make != "" || md.model != "" || md.software != "" {
		out.Device = &Device{Make: md.make, Model: md.model, Software: md.software}
	}
	out.Position = md.position
	if out.CapturedAt.IsZero() && out.Duration == 0 && out.Device == nil && out.Position == nil {
		return nil
	}
	return out
}

// readMVHD reads a movie header's creation time (if plausible) and
// duration.
func readMVHD(mvhd []byte) (created time.Time, d time.Duration) {
	if len(mvhd) < 4 {
		return
	}
	var secs, timescale, duration uint64
	switch mvhd[0] { // version
	case 0:
		if len(mvhd) < 20 {
			return
		}
		secs = uint64(binary.BigEndian.Uint32(mvhd[4:]))
		timescale = uint64(binary.BigEndian.Uint32(mvhd[12:]))
		duration = uint64(binary.BigEndian.Uint32(mvhd[16:]))
	case 1:
		if len(mvhd) < 32 {
			return
		}
		secs = binary.BigEndian.Uint64(mvhd[4:])
		timescale = uint64(binary.BigEndian.Uint32(mvhd[20:]))
		duration = binary.BigEndian.Uint64(mvhd[24:])
	default:
		return
	}
	// Seconds since 1904-01-01 UTC; 0 means unset. Converted in seconds
	// (time.Duration overflows past 292 years: 2^40 s once read as 1672),
	// and kept only from 1970 to a day from now: earlier is an unset or
	// wrapped clock, later is no capture yet.
	if secs > mp4Epoch && secs-mp4Epoch < 1<<40 {
		created = plausible(time.Unix(int64(secs-mp4Epoch), 0).UTC())
	}
	if timescale > 0 && duration > 0 && duration/timescale < 1<<30 {
		whole, rest := duration/timescale, duration%timescale
		d = time.Duration(whole)*time.Second + time.Duration(rest*uint64(time.Second)/timescale)
	}
	return
}

// children walks the boxes in b (a box's payload held in memory), calling
// f with each one's type and payload until f returns false. A box that does
// not fit ends the walk.
func children(b []byte, f func(typ string, payload []byte) bool) {
	off := int64(0)
	for range maxInnerBoxes {
		h, ok := parseBoxHeader(b[off:], off, int64(len(b)))
		if !ok || !f(h.typ, b[h.start+h.hdr:h.end]) {
			return
		}
		off = h.end
	}
}
