package journal_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custody-dev/custody/journal"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// frame is one record as the documented layout has it.
type frame struct {
	off  int64 // of its header
	body []byte
}

// parseFrames reads a format 1 journal by the documented layout alone.
func parseFrames(t *testing.T, b []byte) []frame {
	t.Helper()
	if len(b) < 16 || string(b[:8]) != "CUSTJRNL" || binary.BigEndian.Uint32(b[8:]) != 1 ||
		binary.BigEndian.Uint32(b[12:]) != crc32.Checksum(b[:12], crc32.MakeTable(crc32.Castagnoli)) {
		t.Fatalf("no format 1 header: % x", b[:min(len(b), 16)])
	}
	var out []frame
	for off := 16; off < len(b); {
		n := int(binary.BigEndian.Uint32(b[off:]))
		sum := crc32.Update(crc32.Checksum(b[off:off+4], crc32.MakeTable(crc32.Castagnoli)), crc32.MakeTable(crc32.Castagnoli), b[off+8:off+8+n])
		if sum != binary.BigEndian.Uint32(b[off+4:]) {
			t.Fatalf("record at %d: checksum mismatch", off)
		}
		out = append(out, frame{int64(off), b[off+8 : off+8+n]})
		off += 8 + n
	}
	return out
}

// scanAll returns the bodies Scan reads at path.
func scanAll(t *testing.T, path string) ([][]byte, error) {
	t.Helper()
	var out [][]byte
	err := journal.Scan(path, func(b []byte) error { out = append(out, b); return nil })
	return out, err
}

// format0Bodies are the records of the golden format 0 journal.
func format0Bodies(t *testing.T) [][]byte {
	t.Helper()
	bodies, err := scanAll(t, "testdata/format0.journal")
	if err != nil || len(bodies) != 5 {
		t.Fatalf("testdata/format0.journal: %d records, %v", len(bodies), err)
	}
	return bodies
}

func logTo(buf *bytes.Buffer) journal.Option {
	return journal.WithLogger(slog.New(slog.NewTextHandler(buf, nil)))
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestGoldenFormat1: the records of the golden format 0 journal, appended
// to a new journal, are exactly testdata/format1.journal.
func TestGoldenFormat1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	j, err := journal.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range format0Bodies(t) {
		if err := j.Append(t.Context(), b); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	got, _ := os.ReadFile(path)
	if *update {
		os.WriteFile("testdata/format1.journal", got, 0o644)
	}
	want, err := os.ReadFile("testdata/format1.journal")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the journal's bytes differ from testdata/format1.journal (run with -update only for an intended format change, with a new version)")
	}
	if !bytes.HasPrefix(want, []byte("CUSTJRNL\x00\x00\x00\x01")) {
		t.Fatalf("header % x", want[:16])
	}
	frames := parseFrames(t, want)
	for i, b := range format0Bodies(t) {
		if !bytes.Equal(frames[i].body, b) {
			t.Fatalf("record %d differs", i)
		}
	}
}

// TestGoldenRecord: journal.Record as the file store encodes it; and every
// record the format 0 golden file holds (written by the code before
// explicit tags were checked) decodes and encodes back to the same bytes.
func TestGoldenRecord(t *testing.T) {
	r := journal.Record{Key: "ef2d127de37b942baad06145e54b0c619a1f22327b2ebbcfbec78f5564afe39d", EvidenceID: "ev-abcdefghijklmnopqrstuvwxyz", Seq: 7, Data: []byte(`{"kind":"event"}`)}
	got, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if *update {
		os.WriteFile("testdata/record.json", got, 0o644)
	}
	want, err := os.ReadFile("testdata/record.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encoded record\n%s\nwant (testdata/record.json)\n%s", got, want)
	}
	var back journal.Record
	if err := json.Unmarshal(want, &back); err != nil || back.Key != r.Key || back.EvidenceID != r.EvidenceID || back.Seq != r.Seq || !bytes.Equal(back.Data, r.Data) {
		t.Fatalf("decoded golden record %+v (%v), want %+v", back, err, r)
	}
	for i, b := range format0Bodies(t) {
		var r journal.Record
		if err := json.Unmarshal(b, &r); err != nil || r.Key == "" || len(r.Data) == 0 {
			t.Fatalf("format 0 record %d: %+v %v", i, r, err)
		}
		if again, _ := json.Marshal(r); !bytes.Equal(again, b) {
			t.Fatalf("format 0 record %d encodes differently now:\n%s\nwas\n%s", i, again, b)
		}
	}
}

// TestUpgradeFormat0 opens journals written before checksums.
func TestUpgradeFormat0(t *testing.T) {
	old, err := os.ReadFile("testdata/format0.journal")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/format1.journal")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		data   []byte
		trimOK int // bytes of torn end left out
	}{
		{"clean", old, 0},
		{"torn length", append(bytes.Clone(old), 0, 0), 2},
		{"torn body", append(bytes.Clone(old), 0, 0, 0, 40, '{', '"', 'k'), 7},
		{"empty", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "journal")
			os.WriteFile(path, tc.data, 0o600)
			var logs bytes.Buffer
			f, err := journal.OpenFile(path, logTo(&logs))
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.Get(t.Context(), []string{"receipt:2020202020202020202020202020202020202020202020202020202020202020", "4b227777d4dd1fc61c6f884f48641d02b4d121d3fd328cb08b5531fcacdabf8a"})
			if err != nil {
				t.Fatal(err)
			}
			f.Close()
			onDisk, _ := os.ReadFile(path)
			if tc.data == nil {
				if len(got) != 0 || len(onDisk) != 16 {
					t.Fatalf("empty journal: %d records, %d bytes", len(got), len(onDisk))
				}
				return
			}
			if len(got) != 2 {
				t.Fatalf("Get after the upgrade found %d of 2 records", len(got))
			}
			if !bytes.Equal(onDisk, want) {
				t.Fatalf("the upgraded journal differs from testdata/format1.journal")
			}
			if kept, _ := os.ReadFile(path + ".format0"); !bytes.Equal(kept, tc.data) {
				t.Fatalf("the old file was not kept as journal.format0")
			}
			if !strings.Contains(logs.String(), "upgraded to format 1") || !strings.Contains(logs.String(), "records=5") {
				t.Fatalf("no upgrade in the log:\n%s", logs.String())
			}
			if tc.trimOK > 0 && !strings.Contains(logs.String(), fmt.Sprintf("offset=%d bytes=%d", len(old), tc.trimOK)) {
				t.Fatalf("the log does not say what was left out:\n%s", logs.String())
			}
			// Opening again changes nothing.
			j, err := journal.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			j.Close()
			if again, _ := os.ReadFile(path); !bytes.Equal(again, want) {
				t.Fatal("a second open changed the upgraded journal")
			}
		})
	}
	t.Run("damaged", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			edit func(b []byte)
		}{
			{"length over the limit", func(b []byte) { b[0x4ca] = 0x7f }},
			{"length past the end", func(b []byte) { b[0x4cb] = 0x20 }},
			{"length one short", func(b []byte) { b[0x4cd]-- }},
			{"body not JSON", func(b []byte) { b[0x4ce] = 0 }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "journal")
				data := bytes.Clone(old)
				// The second record starts at 0x4ca (after 4 + 0x4c6 bytes).
				if binary.BigEndian.Uint32(data) != 0x4c6 {
					t.Fatal("golden file changed")
				}
				tc.edit(data)
				os.WriteFile(path, data, 0o600)
				_, err := journal.Open(path)
				var ce *journal.CorruptError
				if !errors.As(err, &ce) || ce.Offset != 0x4ca || ce.Path != path || !strings.Contains(err.Error(), "byte offset 1226") {
					t.Fatalf("Open of a damaged format 0 journal: %v", err)
				}
				if now, _ := os.ReadFile(path); !bytes.Equal(now, data) {
					t.Fatal("the damaged journal was changed")
				}
				if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
					t.Fatalf("files left beside the journal: %v", ents)
				}
			})
		}
	})
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }
