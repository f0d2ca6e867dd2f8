// Package journal is the service's durable record store: an append-only
// file of checksummed, length-prefixed records, written with group commit
// (one write and one fsync for every record that arrived while the
// previous fsync ran). The service journals every event record before it
// appends the record's commitment to the log, so the catalog can always be
// rebuilt from the log and the journal.
//
// # File format (version 1)
//
// The file opens with a 16-byte header:
//
//	bytes 0-7    "CUSTJRNL" (ASCII magic)
//	bytes 8-11   format version, big-endian uint32 (1)
//	bytes 12-15  CRC32C (Castagnoli) of bytes 0-11, big-endian
//
// Records follow, back to back, each:
//
//	4 bytes  length n of the body, big-endian uint32 (at most MaxRecord)
//	4 bytes  CRC32C (Castagnoli) of the 4 length bytes followed by the body, big-endian
//	n bytes  body
//
// A new journal is created by writing its header to <path>.new, syncing it
// and renaming it into place, so the header is never torn. A file of
// another version is refused with a *VersionError; nothing is changed.
//
// # Torn end or damage
//
// Open reads every record. A crash can only tear the last write batch: the
// records of a batch are written, then synced once, and the next batch is
// written only after that sync returned (a batch whose write or sync fails
// is cut off again before the next one). So at the first record at byte
// offset X that does not read — an incomplete header, a length over
// MaxRecord, a body past the end of the file, or a checksum mismatch —
// Open tries every later offset for a valid record (a plausible length
// that fits in the file and a matching checksum):
//
//   - none: the bytes from X to the end are a torn end; no record there
//     was acknowledged. Open cuts the file at X and logs a warning with the
//     offset and the number of bytes cut.
//   - one: the file is damaged at X (a flipped bit, a damaged length, a
//     lost block). Open returns a *CorruptError naming the file, X and the
//     offset of the valid record, and changes nothing: the operator
//     restores the journal from a backup (see docs/LOG_FORMAT.md,
//     "Durability and the catalog").
//
// A running journal reads (Scan) only records it has synced; one of those
// that does not read is damage too.
//
// # Format 0
//
// Journals written before version 1 have no header and no checksums: each
// record is a 4-byte big-endian length and the body. Open upgrades such a
// file in place: it reads it with the same rule (a format 0 record is valid
// when its body is a JSON object, as every record the file store wrote
// is), refuses it with a *CorruptError if it is damaged, else copies every
// record with its checksum to <path>.upgrade, syncs it, keeps the old file
// as <path>.format0 (a hard link) and renames the new one over <path>. A
// torn end is not copied. A crash during the upgrade leaves the old file in
// place, and the next start upgrades again.
package journal

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
)

// MaxRecord bounds one record.
const MaxRecord = 16 << 20

// Journal is an open journal file. Safe for concurrent use.
type Journal struct {
	f    *os.File
	path string

	mu      sync.Mutex
	pending []request
	end     int64 // end of the last synced batch
	broken  error // set when a failed write could not be undone
	closed  bool
	wake    chan struct{}
	done    chan struct{}
}

type request struct {
	data []byte
	crc  uint32
	done chan error
}

// Option configures Open.
type Option func(*options)

type options struct{ log *slog.Logger }

// WithLogger sends what Open notices (a torn end cut off, an upgrade) to
// log instead of slog.Default().
func WithLogger(log *slog.Logger) Option { return func(o *options) { o.log = log } }

// Open opens (creating) the journal at path: it upgrades a format 0 file,
// cuts off a torn end left by a crash mid-write (it was never
// acknowledged), and refuses a damaged file (*CorruptError) or one of
// another version (*VersionError); see the package documentation.
func Open(path string, opts ...Option) (*Journal, error) {
	o := options{log: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.Default()
	}
	// Errors and logs name the file for an operator, wherever they run.
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	for range 3 {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if errors.Is(err, os.ErrNotExist) {
			if err := create(path); err != nil {
				return nil, fmt.Errorf("creating record journal %s: %w", path, err)
			}
			o.log.Info("record journal created", "file", path, "format", Version)
			continue
		}
		if err != nil {
			return nil, err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		format, err := detect(f, path, st.Size())
		if err != nil {
			f.Close()
			return nil, err
		}
		switch format {
		case -1: // an empty file (format 0, nothing written yet)
			f.Close()
			if err := create(path); err != nil {
				return nil, fmt.Errorf("creating record journal %s: %w", path, err)
			}
			o.log.Info("record journal created", "file", path, "format", Version)
			continue
		case 0:
			f.Close()
			records, torn, old, err := upgrade(path)
			if err != nil {
				return nil, err
			}
			if torn > 0 {
				o.log.Warn("record journal: left out a torn end (an incomplete record a crash left while it was written; it was never acknowledged)",
					"file", path, "offset", st.Size()-torn, "bytes", torn)
			}
			o.log.Info("record journal upgraded to format 1 (checksummed records); the old file is kept beside it, and can be deleted once the upgraded journal is backed up",
				"file", path, "format", Version, "records", records, "old_file", old)
			continue
		}
		j, err := start(f, path, st.Size(), o.log)
		if err != nil {
			f.Close()
			return nil, err
		}
		return j, nil
	}
	return nil, fmt.Errorf("record journal %s: cannot be opened: it changes while it is opened", path)
}

// start reads the journal f of format Version, cuts off a torn end and
// starts the writer.
func start(f *os.File, path string, size int64, log *slog.Logger) (*Journal, error) {
	end, err := scanRecords(f, path, Version, fileHeaderLen, size, false, nil)
	if err != nil {
		return nil, err
	}
	if end < size {
		log.Warn("record journal: cut off a torn end (an incomplete record a crash left while it was written; it was never acknowledged)",
			"file", path, "offset", end, "bytes", size-end)
		if err := f.Truncate(end); err != nil {
			return nil, err
		}
		if err := f.Sync(); err != nil {
			return nil, err
		}
	}
	if _, err := f.Seek(end, io.SeekStart); err != nil {
		return nil, err
	}
	j := &Journal{f: f, path: path, end: end, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go j.writer()
	return j, nil
}

// Append writes a record and returns once it is on stable storage.
func (j *Journal) Append(ctx context.Context, data []byte) error {
	done, err := j.Start(data)
	if err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		// The record may still be written; it is harmless: replay only
		// uses records the log refers to.
		return ctx.Err()
	}
}

// Start writes a record with the next group and returns at once: the
// channel yields the write's outcome (nil once the record is on stable
// storage) when its group is synced.
func (j *Journal) Start(data []byte) (<-chan error, error) {
	if len(data) > MaxRecord {
		return nil, fmt.Errorf("journal record of %d bytes is over %d", len(data), MaxRecord)
	}
	r := request{data: data, crc: recordCRC(data), done: make(chan error, 1)}
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil, errors.New("journal closed")
	}
	j.pending = append(j.pending, r)
	j.mu.Unlock()
	select {
	case j.wake <- struct{}{}:
	default:
	}
	return r.done, nil
}

// Enqueue writes a record with the next group but does not wait for it:
// for records that can be recreated if a crash loses them.
func (j *Journal) Enqueue(data []byte) error {
	_, err := j.Start(data)
	return err
}

func (j *Journal) writer() {
	defer close(j.done)
	w := bufio.NewWriterSize(j.f, 1<<20)
	for range j.wake {
		j.mu.Lock()
		batch := j.pending
		j.pending = nil
		closed := j.closed
		err := j.broken
		j.mu.Unlock()
		if len(batch) > 0 {
			if err == nil {
				err = j.write(w, batch)
			}
			for _, r := range batch {
				r.done <- err
			}
		}
		if closed {
			return
		}
	}
}

// write writes a batch at the end of the journal and syncs it. If that
// fails (a full disk), it cuts the file back to where the batch started,
// so that what the batch left is never followed by later records: only the
// end of the file can be torn.
func (j *Journal) write(w *bufio.Writer, batch []request) error {
	var hdr [recordHdrLen]byte
	var n int64
	var err error
	for _, r := range batch {
		binary.BigEndian.PutUint32(hdr[:4], uint32(len(r.data)))
		binary.BigEndian.PutUint32(hdr[4:], r.crc)
		if _, err = w.Write(hdr[:]); err != nil {
			break
		}
		if _, err = w.Write(r.data); err != nil {
			break
		}
		n += recordHdrLen + int64(len(r.data))
	}
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = j.f.Sync()
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if err == nil {
		j.end += n
		return nil
	}
	w.Reset(j.f)
	terr := j.f.Truncate(j.end)
	if terr == nil {
		_, terr = j.f.Seek(j.end, io.SeekStart)
	}
	if terr != nil {
		j.broken = fmt.Errorf("record journal %s: a failed write (%v) could not be undone (%v): restart custodyd, which cuts off the incomplete end", j.path, err, terr)
	}
	return err
}

// Close flushes and closes the journal.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	j.mu.Unlock()
	j.wake <- struct{}{}
	<-j.done
	return j.f.Close()
}

// Scan calls fn with every record the journal has synced, in order (not
// those of a batch still being written). A record there that does not read
// is damage: Scan returns a *CorruptError.
func (j *Journal) Scan(fn func([]byte) error) error {
	j.mu.Lock()
	end := j.end
	j.mu.Unlock()
	_, err := scanRecords(j.f, j.path, Version, fileHeaderLen, end, true, fn)
	return err
}

// Scan calls fn with every complete record of the (closed) journal at
// path, in order, without changing the file: a torn end is skipped, damage
// is a *CorruptError, a file of another version a *VersionError. It reads
// format 0 too.
func Scan(path string, fn func([]byte) error) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	format, err := detect(f, path, st.Size())
	if err != nil || format < 0 {
		return err
	}
	start := int64(fileHeaderLen)
	if format == 0 {
		start = 0
	}
	_, err = scanRecords(f, path, format, start, st.Size(), false, fn)
	return err
}
