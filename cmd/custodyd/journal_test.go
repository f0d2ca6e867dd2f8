package main_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/custody-dev/custody/internal/testenv/binaries"
	"github.com/custody-dev/custody/internal/testenv/freeport"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// TestJournalDamage: custodyd refuses to start on a record journal damaged
// in the middle, naming the file and the offset and changing nothing; it
// starts on one whose end a crash tore, cutting the end off, and the
// records before it rebuild the whole catalog.
func TestJournalDamage(t *testing.T) {
	dir := t.TempDir()
	d := binaries.StartCustodyd(t, dir)
	collector := dialRole(t, d, "collector")
	const items = 6
	for i := range items {
		if _, err := upload(t.Context(), collector, "case-journal", []byte(fmt.Sprintf("exhibit %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Signal(t, syscall.SIGTERM, 20*time.Second); err != nil {
		t.Fatalf("custodyd exit after SIGTERM: %v\n%s", err, d.Logs)
	}
	path := filepath.Join(d.DataDir(), "journal")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Records by the documented layout: a 16-byte header, then length,
	// checksum, body. Each upload journals its record and its receipt.
	var offs []int
	for off := 16; off < len(good); off += 8 + int(binary.BigEndian.Uint32(good[off:])) {
		offs = append(offs, off)
	}
	if !bytes.HasPrefix(good, []byte("CUSTJRNL")) || len(offs) != 2*items {
		t.Fatalf("the journal holds %d records, want %d", len(offs), 2*items)
	}

	t.Run("a flipped byte in the middle stops the start", func(t *testing.T) {
		off := offs[len(offs)/2]
		damaged := bytes.Clone(good)
		damaged[off+8+20] ^= 0x02
		if err := os.WriteFile(path, damaged, 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, binaries.Build(t, "custodyd"), "--grpc-addr", freeport.Addr(t), "--http-addr", freeport.Addr(t))
		cmd.Dir = dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Fatalf("custodyd on a damaged journal: %v, want exit status 1\n%s", err, stderr.String())
		}
		for _, want := range []string{path, fmt.Sprintf("damaged at byte offset %d", off), "restore"} {
			if !strings.Contains(stderr.String(), want) {
				t.Fatalf("custodyd's error does not say %q:\n%s", want, stderr.String())
			}
		}
		if now, _ := os.ReadFile(path); !bytes.Equal(now, damaged) {
			t.Fatal("custodyd changed the damaged journal")
		}
	})

	t.Run("a torn end is cut off", func(t *testing.T) {
		// What a crash during a write leaves: a record header and part of
		// its body.
		torn := append(bytes.Clone(good), 0, 0, 1, 0, 0xde, 0xad, 0xbe, 0xef, '{', '"', 'k', 'e', 'y')
		if err := os.WriteFile(path, torn, 0o600); err != nil {
			t.Fatal(err)
		}
		// Without a catalog, every item must come back from the log and
		// the journal.
		cat, _ := filepath.Glob(filepath.Join(d.DataDir(), "catalog.db*"))
		for _, f := range cat {
			os.Remove(f)
		}
		d2 := binaries.StartCustodyd(t, dir)
		logs := d2.Logs.String()
		if !strings.Contains(logs, "cut off a torn end") || !strings.Contains(logs, fmt.Sprintf("offset=%d bytes=13", len(good))) {
			t.Fatalf("custodyd did not log the torn end it cut off:\n%s", logs)
		}
		if !strings.Contains(logs, "replayed entries from the journal") {
			t.Fatalf("custodyd did not rebuild the catalog from the journal:\n%s", logs)
		}
		if now, _ := os.ReadFile(path); !bytes.Equal(now, good) {
			t.Fatal("custodyd did not cut the journal back to its records")
		}
		court := dialRole(t, d2, "court")
		list, err := court.ListEvidence(t.Context(), &custodyv1.ListEvidenceRequest{CaseId: "case-journal", PageSize: 100})
		if err != nil || len(list.GetEvidence()) != items {
			t.Fatalf("after the restart the case has %d items (%v), want %d\n%s", len(list.GetEvidence()), err, items, logs)
		}
	})
}
