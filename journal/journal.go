// Package journal is the service's durable record store: an append-only
// file of length-prefixed records, written with group commit (one fsync
// for every record that arrived while the previous fsync ran). The service
// journals every event record before it appends the record's commitment to
// the log, so the catalog can always be rebuilt from the log and the
// journal.
package journal

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// MaxRecord bounds one record.
const MaxRecord = 16 << 20

// Journal is an open journal file. Safe for concurrent use.
type Journal struct {
	f       *os.File
	mu      sync.Mutex
	pending []request
	wake    chan struct{}
	done    chan struct{}
	closed  bool
}

type request struct {
	data []byte
	done chan error
}

// Open opens (creating) the journal at path. A torn record at the end,
// left by a crash mid-write, is cut off: it was never acknowledged.
func Open(path string) (*Journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	good, err := scan(f, func([]byte) error { return nil })
	if err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Truncate(good); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	j := &Journal{f: f, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go j.writer()
	return j, nil
}

// Append writes a record and returns once it is on stable storage.
func (j *Journal) Append(ctx context.Context, data []byte) error {
	if len(data) > MaxRecord {
		return fmt.Errorf("journal record of %d bytes is over %d", len(data), MaxRecord)
	}
	r := request{data: data, done: make(chan error, 1)}
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return errors.New("journal closed")
	}
	j.pending = append(j.pending, r)
	j.mu.Unlock()
	select {
	case j.wake <- struct{}{}:
	default:
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		// The record may still be written; it is harmless: replay only
		// uses records the log refers to.
		return ctx.Err()
	}
}

// Enqueue writes a record with the next group but does not wait for it:
// for records that can be recreated if a crash loses them.
func (j *Journal) Enqueue(data []byte) error {
	if len(data) > MaxRecord {
		return fmt.Errorf("journal record of %d bytes is over %d", len(data), MaxRecord)
	}
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return errors.New("journal closed")
	}
	j.pending = append(j.pending, request{data: data, done: make(chan error, 1)})
	j.mu.Unlock()
	select {
	case j.wake <- struct{}{}:
	default:
	}
	return nil
}

func (j *Journal) writer() {
	defer close(j.done)
	w := bufio.NewWriterSize(j.f, 1<<20)
	for range j.wake {
		j.mu.Lock()
		batch := j.pending
		j.pending = nil
		closed := j.closed
		j.mu.Unlock()
		if len(batch) > 0 {
			var err error
			var hdr [4]byte
			for _, r := range batch {
				binary.BigEndian.PutUint32(hdr[:], uint32(len(r.data)))
				if _, err = w.Write(hdr[:]); err != nil {
					break
				}
				if _, err = w.Write(r.data); err != nil {
					break
				}
			}
			if err == nil {
				err = w.Flush()
			}
			if err == nil {
				err = j.f.Sync()
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

// Scan calls fn with every complete record of the journal at path, in
// order.
func Scan(path string, fn func([]byte) error) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = scan(f, fn)
	return err
}

// scan reads records from the start of f and returns the offset after the
// last complete one.
func scan(f *os.File, fn func([]byte) error) (int64, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	r := bufio.NewReaderSize(f, 1<<20)
	var off int64
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return off, nil // EOF or a torn header
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n > MaxRecord {
			return off, nil
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(r, data); err != nil {
			return off, nil // torn record
		}
		if err := fn(data); err != nil {
			return off, err
		}
		off += 4 + int64(n)
	}
}
