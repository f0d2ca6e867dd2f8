package evidence

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/custody-dev/custody/media"
)

// headSize is how much of an item's start is kept for media-type sniffing
// and EXIF (a JPEG's EXIF segment is at most 64 KiB and comes first).
const headSize = 128 << 10

// ingestReader passes exactly size bytes from src, hashing them, keeps the
// first headSize bytes, and shows every byte to an MP4 scanner, which finds
// a movie's moov box wherever it sits (phones write it at the end) keeping
// only its bounded metadata (media.MP4Scanner: at most three boxes of
// media.MaxMetaBox each). When the last byte arrives it checks the digest
// before handing that read on: bytes that do not match never complete a
// write, so storage is left with nothing.
//
// Reading the movie box as the bytes stream by, rather than from storage
// once they are stored, costs no second read: the store offers whole
// objects only, so a moov box at the end of a stored item would mean
// reading (and, for encrypted items, decrypting) all of it again, or
// spooling it, to reach the box. The scanner sees exactly the bytes that
// are hashed and stored, in every ingest path: plain, encrypted, already
// held (drain) and resumed (the session's pieces read back in order).
type ingestReader struct {
	src      io.Reader
	want     string
	size     int64
	n        int64
	h        hash.Hash
	head     []byte
	movie    *media.MP4Scanner
	err      error
	verified bool
}

func newIngestReader(src io.Reader, wantSHA256 string, size int64) *ingestReader {
	return &ingestReader{src: src, want: wantSHA256, size: size, h: sha256.New(), movie: media.NewMP4Scanner(size)}
}

func (r *ingestReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.n == r.size {
		if err := r.verify(); err != nil {
			return 0, err
		}
		return 0, io.EOF
	}
	if remaining := r.size - r.n; int64(len(p)) > remaining {
		p = p[:remaining]
	}
	k, err := r.src.Read(p)
	if k > 0 {
		r.h.Write(p[:k])
		r.movie.Write(p[:k])
		if len(r.head) < headSize {
			r.head = append(r.head, p[:min(k, headSize-len(r.head))]...)
		}
		r.n += int64(k)
		if r.n == r.size {
			if verr := r.verify(); verr != nil {
				return 0, verr // withhold the final bytes
			}
			return k, nil
		}
	}
	switch {
	case errors.Is(err, io.EOF):
		r.err = fmt.Errorf("%w: received %d of the %d bytes declared", ErrTruncated, r.n, r.size)
		return 0, r.err
	case err != nil:
		r.err = err
		return 0, err
	}
	return k, nil
}

func (r *ingestReader) verify() error {
	if r.verified {
		return nil
	}
	got := hex.EncodeToString(r.h.Sum(nil))
	if got != r.want {
		r.err = fmt.Errorf("%w: declared %s, received bytes hash to %s", ErrDigestMismatch, r.want, got)
		return r.err
	}
	r.verified = true
	return nil
}

// finish confirms all size bytes arrived and hash right (a store may stop
// reading at the declared size without another Read), and that nothing
// follows them.
func (r *ingestReader) finish() error {
	if r.err != nil {
		return r.err
	}
	if r.n != r.size {
		return fmt.Errorf("%w: received %d of the %d bytes declared", ErrTruncated, r.n, r.size)
	}
	if err := r.verify(); err != nil {
		return err
	}
	return r.checkEnd()
}

// checkEnd confirms the source has nothing past the declared size.
func (r *ingestReader) checkEnd() error {
	var b [1]byte
	for {
		n, err := r.src.Read(b[:])
		if n > 0 {
			return fmt.Errorf("%w: the stream carries more than the %d bytes declared", ErrTooLarge, r.size)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// drain reads and checks everything, for content the service already holds.
func (r *ingestReader) drain() error {
	buf := make([]byte, 256<<10)
	for {
		_, err := r.Read(buf)
		if errors.Is(err, io.EOF) {
			return r.finish()
		}
		if err != nil {
			return err
		}
	}
}

// verifyingReader re-hashes stored bytes as they are read and fails with
// ErrCorrupt instead of EOF when they no longer match. It holds back the
// last block until the digest is checked, so a reader never receives the
// complete bytes of a corrupted item.
type verifyingReader struct {
	src     io.ReadCloser
	want    string
	size    int64
	n       int64
	h       hash.Hash
	pending []byte // read but not yet released
	buf     []byte
	out     []byte // released, not yet copied out
	err     error
}

const holdBack = 64 << 10

func newVerifyingReader(src io.ReadCloser, wantSHA256 string, size int64) *verifyingReader {
	return &verifyingReader{src: src, want: wantSHA256, size: size, h: sha256.New(), buf: make([]byte, holdBack)}
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	for len(v.out) == 0 {
		if v.err != nil {
			return 0, v.err
		}
		k, err := io.ReadFull(v.src, v.buf)
		if k > 0 {
			v.h.Write(v.buf[:k])
			v.n += int64(k)
			// Release what was held; hold the new block.
			v.out = append(v.out[:0], v.pending...)
			v.pending = append(v.pending[:0], v.buf[:k]...)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			got := hex.EncodeToString(v.h.Sum(nil))
			if got != v.want || v.n != v.size {
				v.err = fmt.Errorf("%w: recorded %s (%d bytes), stored bytes hash to %s (%d bytes)", ErrCorrupt, v.want, v.size, got, v.n)
				v.out = nil
				return 0, v.err
			}
			v.out = append(v.out, v.pending...)
			v.pending = nil
			v.err = io.EOF
		} else if err != nil {
			// Storage failing mid-read (a reset link) is unavailability.
			v.err = classifyStorage(err)
			v.out = nil
			return 0, v.err
		}
	}
	n := copy(p, v.out)
	v.out = v.out[n:]
	return n, nil
}

func (v *verifyingReader) Close() error { return v.src.Close() }
