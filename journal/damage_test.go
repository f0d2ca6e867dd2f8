package journal_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/custody-dev/custody/journal"
)

// writeJournal writes n records (some over a MiB, so a search for the next
// record crosses read chunks) and returns the file's bytes and records.
func writeJournal(t *testing.T, path string, n int) ([]byte, [][]byte) {
	t.Helper()
	j, err := journal.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs [][]byte
	for i := range n {
		b := []byte(fmt.Sprintf(`{"n":%d,"pad":"%s"}`, i, strings.Repeat("x", i*7)))
		if i%10 == 5 {
			b = []byte(fmt.Sprintf(`{"n":%d,"pad":"%s"}`, i, strings.Repeat("y", 1<<20+300)))
		}
		if err := j.Append(t.Context(), b); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, b)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data, recs
}

// TestDamageStopsOpen: damage anywhere but a torn end refuses the journal
// with an error naming the file and the damaged record's offset, and
// changes nothing.
func TestDamageStopsOpen(t *testing.T) {
	const n = 40
	for _, tc := range []struct {
		name   string
		record int                       // the damaged record
		edit   func(b []byte, off int64) // off: the record's header
	}{
		{"flipped byte in a body", 20, func(b []byte, off int64) { b[off+8+5] ^= 0x01 }},
		{"flipped byte in a large body", 15, func(b []byte, off int64) { b[off+8+700000] ^= 0x80 }},
		{"flipped byte in a checksum", 20, func(b []byte, off int64) { b[off+5] ^= 0x10 }},
		{"length over the limit", 20, func(b []byte, off int64) { binary.BigEndian.PutUint32(b[off:], 0xffffffff) }},
		{"length past the end", 20, func(b []byte, off int64) { b[off+1] = 0xf0 }},
		{"length one short", 20, func(b []byte, off int64) { binary.BigEndian.PutUint32(b[off:], binary.BigEndian.Uint32(b[off:])-1) }},
		{"length one long", 20, func(b []byte, off int64) { binary.BigEndian.PutUint32(b[off:], binary.BigEndian.Uint32(b[off:])+1) }},
		{"zeroed block", 20, func(b []byte, off int64) { clear(b[off : off+64]) }},
		{"first record", 0, func(b []byte, off int64) { b[off+10] ^= 0x04 }},
		{"last but one record", n - 2, func(b []byte, off int64) { b[off+8] ^= 0x04 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "journal")
			data, _ := writeJournal(t, path, n)
			frames := parseFrames(t, data)
			off := frames[tc.record].off
			tc.edit(data, off)
			os.WriteFile(path, data, 0o600)

			_, err := journal.Open(path)
			var ce *journal.CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("Open of a damaged journal: %v, want a *CorruptError", err)
			}
			if ce.Path != path || ce.Offset != off || ce.Next <= off {
				t.Fatalf("error %+v, want path %s, offset %d, and a later valid record", ce, path, off)
			}
			for _, want := range []string{path, fmt.Sprintf("damaged at byte offset %d", off), "restore", "backup", "Nothing was changed"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not say %q: %v", want, err)
				}
			}
			if now, _ := os.ReadFile(path); !bytes.Equal(now, data) {
				t.Fatalf("Open changed the damaged journal (%d bytes, was %d)", len(now), len(data))
			}
			if _, err := scanAll(t, path); !errors.As(err, &ce) || ce.Offset != off {
				t.Fatalf("Scan of the damaged journal: %v", err)
			}
		})
	}
}

// TestTornEnd: what a crash leaves at the end is cut off, logged, and the
// journal goes on.
func TestTornEnd(t *testing.T) {
	const n = 30
	for _, tc := range []struct {
		name string
		// edit returns the file a crash left and how many records survive.
		edit func(b []byte, frames []frame) ([]byte, int)
	}{
		{"half a header", func(b []byte, f []frame) ([]byte, int) { return b[:f[n-1].off+5], n - 1 }},
		{"half a body", func(b []byte, f []frame) ([]byte, int) { return b[:f[n-1].off+8+int64(len(f[n-1].body))/2], n - 1 }},
		{"half a large body", func(b []byte, f []frame) ([]byte, int) { return b[:f[25].off+8+1000], 25 }},
		{"last record's checksum fails", func(b []byte, f []frame) ([]byte, int) { b[len(b)-2] ^= 0xff; return b, n - 1 }},
		{"partial record appended", func(b []byte, f []frame) ([]byte, int) {
			return append(b, 0, 0, 0, 100, 1, 2, 3, 4, '{', '"'), n
		}},
		{"length over the limit appended", func(b []byte, f []frame) ([]byte, int) { return append(b, 0xff, 0xff, 0xff, 0xff, 0, 0), n }},
		{"zeros appended", func(b []byte, f []frame) ([]byte, int) { return append(b, make([]byte, 8192)...), n }},
		{"garbage appended", func(b []byte, f []frame) ([]byte, int) {
			return append(b, bytes.Repeat([]byte("\x00\x00\x01\x00garbage!"), 200)...), n
		}},
		{"the last batch half written", func(b []byte, f []frame) ([]byte, int) { return b[:f[n-3].off+9], n - 3 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "journal")
			data, recs := writeJournal(t, path, n)
			torn, keep := tc.edit(bytes.Clone(data), parseFrames(t, data))
			os.WriteFile(path, torn, 0o600)
			want := int64(len(data))
			if keep < n {
				want = parseFrames(t, data)[keep].off
			}

			var logs bytes.Buffer
			j, err := journal.Open(path, logTo(&logs))
			if err != nil {
				t.Fatalf("Open of a journal with a torn end: %v", err)
			}
			if st, _ := os.Stat(path); st.Size() != want {
				t.Fatalf("after Open the journal has %d bytes, want %d", st.Size(), want)
			}
			if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), fmt.Sprintf("offset=%d bytes=%d", want, int64(len(torn))-want)) {
				t.Fatalf("the log does not say what was cut off:\n%s", logs.String())
			}
			if err := j.Append(t.Context(), []byte("after the crash")); err != nil {
				t.Fatal(err)
			}
			j.Close()
			got, err := scanAll(t, path)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != keep+1 || string(got[keep]) != "after the crash" {
				t.Fatalf("after the restart the journal holds %d records, want %d and the new one", len(got), keep+1)
			}
			for i := range keep {
				if !bytes.Equal(got[i], recs[i]) {
					t.Fatalf("record %d changed", i)
				}
			}
		})
	}
}

// TestRefusesOtherFormats: a newer version, a damaged header or a file
// that is no journal stop Open without a change.
func TestRefusesOtherFormats(t *testing.T) {
	good, err := os.ReadFile("testdata/format1.journal")
	if err != nil {
		t.Fatal(err)
	}
	newer := bytes.Clone(good)
	binary.BigEndian.PutUint32(newer[8:], 2)
	binary.BigEndian.PutUint32(newer[12:], crc32c(newer[:12]))
	for _, tc := range []struct {
		name, want string
		data       []byte
		version    bool
	}{
		{"newer version", "has format version 2; this custodyd reads version 1", newer, true},
		{"damaged version", "damaged at byte offset 0: the file header's checksum does not match", func() []byte { b := bytes.Clone(good); b[11] = 2; return b }(), false},
		{"not a journal", "damaged at byte offset 0: the file does not start with a journal header", []byte("hello, world\n"), false},
		{"torn header", "damaged at byte offset 0: the file does not start with a journal header", good[:10], false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "journal")
			os.WriteFile(path, tc.data, 0o600)
			_, err := journal.Open(path)
			var ve *journal.VersionError
			var ce *journal.CorruptError
			if tc.version && !errors.As(err, &ve) || !tc.version && !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Open: %v, want an error saying %q", err, tc.want)
			}
			if now, _ := os.ReadFile(path); !bytes.Equal(now, tc.data) {
				t.Fatal("Open changed the file")
			}
		})
	}
}

// TestScanWhileAppending: a running journal reads what it has synced while
// batches are being written, and never mistakes one for damage.
func TestScanWhileAppending(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	f, err := journal.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 25 {
				r := journal.Record{Key: fmt.Sprintf("k-%d-%d", g, i), Data: bytes.Repeat([]byte{'z'}, 1000*i)}
				if err := f.Put(t.Context(), r, i%3 != 0); err != nil {
					t.Error(err)
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for reading := true; reading; {
		select {
		case <-done:
			reading = false
		default:
		}
		if _, err := f.Get(t.Context(), []string{"k-0-1"}); err != nil {
			t.Fatalf("Get while appending: %v", err)
		}
	}
	got, err := f.Get(t.Context(), []string{"k-7-24", "k-0-0"})
	if err != nil || len(got) != 2 {
		t.Fatalf("Get after appending: %d records, %v", len(got), err)
	}
}

// TestDamageWhileRunning: a synced record that no longer reads is damage
// to a running journal too.
func TestDamageWhileRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	f, err := journal.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := range 10 {
		if err := f.Put(t.Context(), journal.Record{Key: fmt.Sprint(i), Data: []byte("data")}, true); err != nil {
			t.Fatal(err)
		}
	}
	data, _ := os.ReadFile(path)
	off := parseFrames(t, data)[4].off
	w, _ := os.OpenFile(path, os.O_WRONLY, 0)
	w.WriteAt([]byte{data[off+12] ^ 1}, off+12)
	w.Close()
	_, err = f.Get(t.Context(), []string{"9"})
	var ce *journal.CorruptError
	if !errors.As(err, &ce) || ce.Offset != off || !strings.Contains(err.Error(), fmt.Sprintf("%s is damaged at byte offset %d", path, off)) {
		t.Fatalf("Get from a journal damaged while running: %v", err)
	}
}
