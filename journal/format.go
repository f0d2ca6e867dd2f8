package journal

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/custody-dev/custody/internal/atomicfile"
)

// Version is the journal format this package writes (see the package
// documentation). It reads format 0 only to upgrade it.
const Version = 1

// magic opens every journal file of format 1 and later. Its first byte can
// never start a format 0 journal, whose first byte (of a record length up
// to MaxRecord) is 0x00 or 0x01.
const magic = "CUSTJRNL"

const (
	fileHeaderLen = 16 // magic, version, CRC32C of both
	recordHdrLen  = 8  // length, CRC32C
	v0RecordHdr   = 4  // format 0: length only
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// fileHeader returns the 16 bytes that open a journal of format Version.
func fileHeader() []byte {
	h := make([]byte, fileHeaderLen)
	copy(h, magic)
	binary.BigEndian.PutUint32(h[8:], Version)
	binary.BigEndian.PutUint32(h[12:], crc32.Checksum(h[:12], castagnoli))
	return h
}

// recordCRC is the checksum of a record: CRC32C of its 4 length bytes
// followed by its body, so a damaged length is caught like a damaged body.
func recordCRC(data []byte) uint32 {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(data)))
	return crc32.Update(crc32.Checksum(n[:], castagnoli), castagnoli, data)
}

// CorruptError says a journal file is damaged somewhere other than a torn
// end: Open refuses it and changes nothing.
type CorruptError struct {
	Path   string
	Offset int64  // where the first unreadable record (or the header) starts
	Reason string // what is wrong there
	// Next is where a valid record follows (it proves the damage is not a
	// torn end), or -1 when the damage is in the file header or was found
	// below the journal's written end by a running process.
	Next   int64
	Format int // the file's format
}

func (e *CorruptError) Error() string {
	var where string
	switch {
	case e.Next >= 0:
		where = fmt.Sprintf("; a valid record follows at byte offset %d, so this is not the torn end a crash leaves (that is cut off at start by itself)", e.Next)
	case e.Offset > 0:
		where = "; the record had been written and synced"
	}
	if e.Format == 0 {
		where += " (found while upgrading this journal from format 0, which has no checksums)"
	}
	return fmt.Sprintf("record journal %s is damaged at byte offset %d: %s%s. Nothing was changed. "+
		"Copy the file aside, restore %s from your newest backup and start again: the catalog catches up from the log and the journal "+
		"(docs/DEPLOYMENT.md, \"A damaged record journal\")",
		e.Path, e.Offset, e.Reason, where, e.Path)
}

// VersionError says a journal file is of a format this build cannot read.
type VersionError struct {
	Path    string
	Version uint32
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("record journal %s has format version %d; this custodyd reads version %d (and upgrades format 0): "+
		"it was written by a newer custodyd, so run that version or a newer one (a journal is never downgraded). Nothing was changed",
		e.Path, e.Version, Version)
}

// detect returns the format of the journal at f (size bytes): -1 for an
// empty file, 0 or Version.
func detect(f io.ReaderAt, path string, size int64) (int, error) {
	if size == 0 {
		return -1, nil
	}
	h := make([]byte, min(size, fileHeaderLen))
	if _, err := f.ReadAt(h, 0); err != nil {
		return 0, err
	}
	if h[0] <= byte(MaxRecord>>24) {
		return 0, nil // a format 0 record length (up to 16 MiB)
	}
	if len(h) < fileHeaderLen || string(h[:8]) != magic {
		return 0, &CorruptError{Path: path, Offset: 0, Next: -1, Format: Version,
			Reason: fmt.Sprintf("the file does not start with a journal header (%q)", magic)}
	}
	if crc32.Checksum(h[:12], castagnoli) != binary.BigEndian.Uint32(h[12:]) {
		return 0, &CorruptError{Path: path, Offset: 0, Next: -1, Format: Version, Reason: "the file header's checksum does not match"}
	}
	if v := binary.BigEndian.Uint32(h[8:]); v != Version {
		return 0, &VersionError{Path: path, Version: v}
	}
	return Version, nil
}

// headerLen is the size of a record header in format.
func headerLen(format int) int64 {
	if format == 0 {
		return v0RecordHdr
	}
	return recordHdrLen
}

// valid reports whether a record with header hdr and body is intact: its
// checksum matches (format 1), or, in format 0 which has none, its body is
// a JSON object (format 0 journals were only written by the file store,
// whose records are JSON objects).
func valid(format int, hdr, body []byte) bool {
	if format == 0 {
		return len(body) > 0 && body[0] == '{' && json.Valid(body)
	}
	return crc32.Update(crc32.Checksum(hdr[:4], castagnoli), castagnoli, body) == binary.BigEndian.Uint32(hdr[4:8])
}

// scanRecords reads the records of f (of format) from start to size,
// calling fn (if set) with each. It returns the end of the last valid
// record before the first one that does not read (size if all do). If
// such a record is followed anywhere by a valid record, or strict is set
// (the bytes up to size were all written and synced), the file is damaged
// there: scanRecords returns a *CorruptError. Otherwise the rest is a torn
// end and the caller may cut it off.
func scanRecords(f io.ReaderAt, path string, format int, start, size int64, strict bool, fn func([]byte) error) (int64, error) {
	hl := headerLen(format)
	r := bufio.NewReaderSize(io.NewSectionReader(f, start, size-start), 1<<20)
	hdr := make([]byte, hl)
	off := start
	for off < size {
		reason := ""
		var data []byte
		if size-off < hl {
			reason = fmt.Sprintf("an incomplete record header (%d of %d bytes)", size-off, hl)
		} else if _, err := io.ReadFull(r, hdr); err != nil {
			return off, err
		} else if n := int64(binary.BigEndian.Uint32(hdr)); n > MaxRecord {
			reason = fmt.Sprintf("a record length of %d bytes, over the %d-byte limit", n, MaxRecord)
		} else if off+hl+n > size {
			reason = fmt.Sprintf("a record length of %d bytes, past the end of the file (%d bytes left)", n, size-off-hl)
		} else {
			data = make([]byte, n)
			if _, err := io.ReadFull(r, data); err != nil {
				return off, err
			}
			if !valid(format, hdr, data) {
				reason = "a record whose checksum does not match"
				if format == 0 {
					reason = "a record that is not a JSON object"
				}
			}
		}
		if reason != "" && strict {
			return off, &CorruptError{Path: path, Offset: off, Reason: reason, Next: -1, Format: format}
		}
		if reason != "" {
			next, err := findValid(f, format, off+1, size)
			if err != nil {
				return off, err
			}
			if next >= 0 {
				return off, &CorruptError{Path: path, Offset: off, Reason: reason, Next: next, Format: format}
			}
			return off, nil
		}
		if fn != nil {
			if err := fn(data); err != nil {
				return off, err
			}
		}
		off += hl + int64(len(data))
	}
	return off, nil
}

// findValid returns the first offset in [from, size) where a valid record
// starts, or -1: every offset is tried, since a damaged length loses track
// of where records start.
func findValid(f io.ReaderAt, format int, from, size int64) (int64, error) {
	hl := headerLen(format)
	const chunk = 1 << 20
	buf := make([]byte, chunk+hl)
	var body, scratch []byte
	for base := from; base+hl <= size; base += chunk {
		m, err := f.ReadAt(buf[:min(int64(len(buf)), size-base)], base)
		if err != nil && !errors.Is(err, io.EOF) {
			return -1, err
		}
		for p := 0; p < chunk && int64(p)+hl <= int64(m); p++ {
			n := int64(binary.BigEndian.Uint32(buf[p:]))
			off := base + int64(p)
			if n > MaxRecord || off+hl+n > size {
				continue
			}
			if b := int64(p) + hl; b+n <= int64(m) {
				body = buf[b : b+n]
			} else {
				if int64(cap(scratch)) < n {
					scratch = make([]byte, n)
				}
				body = scratch[:n]
				if _, err := f.ReadAt(body, off+hl); err != nil {
					return -1, err
				}
			}
			if valid(format, buf[p:int64(p)+hl], body) {
				return off, nil
			}
		}
	}
	return -1, nil
}

// create makes an empty journal of format Version at path: the header is
// written to a temporary file, synced and renamed into place, so a crash
// never leaves a torn header.
func create(path string) error {
	tmp := path + ".new"
	os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(fileHeader()); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	return commitTemp(f, tmp, path)
}

// commitTemp syncs and closes f (written at tmp), renames it to path and
// syncs the folder.
func commitTemp(f *os.File, tmp, path string) error {
	err := f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return atomicfile.SyncDir(filepath.Dir(path))
}

// upgrade rewrites the format 0 journal at path in format Version: every
// record is copied, with its checksum, to a temporary file, which is
// synced and renamed over path. The old file stays beside it as
// <path>.format0. A torn end is not copied. It returns the number of
// records and the bytes of torn end left out.
func upgrade(path string) (records int, torn int64, old string, err error) {
	src, err := os.Open(path)
	if err != nil {
		return 0, 0, "", err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return 0, 0, "", err
	}
	// Check the whole file before writing anything.
	end, err := scanRecords(src, path, 0, 0, st.Size(), false, nil)
	if err != nil {
		return 0, 0, "", err
	}
	old = path + ".format0"
	if ost, err := os.Stat(old); err == nil && !os.SameFile(st, ost) {
		return 0, 0, "", fmt.Errorf("upgrading record journal %s to format %d: %s exists and is not this journal (a copy from an earlier upgrade?): move it away and start again", path, Version, old)
	}
	tmp := path + ".upgrade"
	os.Remove(tmp)
	dst, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, 0, "", err
	}
	w := bufio.NewWriterSize(dst, 1<<20)
	w.Write(fileHeader())
	var hdr [recordHdrLen]byte
	_, err = scanRecords(src, path, 0, 0, end, true, func(data []byte) error {
		binary.BigEndian.PutUint32(hdr[:4], uint32(len(data)))
		binary.BigEndian.PutUint32(hdr[4:], recordCRC(data))
		w.Write(hdr[:])
		_, err := w.Write(data)
		records++
		return err
	})
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		dst.Close()
		os.Remove(tmp)
		return 0, 0, "", fmt.Errorf("upgrading record journal %s to format %d: %w", path, Version, err)
	}
	if err := os.Link(path, old); err != nil && !errors.Is(err, os.ErrExist) {
		dst.Close()
		os.Remove(tmp)
		return 0, 0, "", fmt.Errorf("upgrading record journal %s to format %d: keeping the old file: %w", path, Version, err)
	}
	if err := commitTemp(dst, tmp, path); err != nil {
		return 0, 0, "", fmt.Errorf("upgrading record journal %s to format %d: %w", path, Version, err)
	}
	return records, st.Size() - end, old, nil
}
