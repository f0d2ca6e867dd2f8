package logaudit_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"

	"github.com/custody-dev/custody/custodylog"
	"github.com/custody-dev/custody/custodylog/posixlog"
	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/logaudit"
)

const origin = "custody.test/audit"

// build writes a POSIX log of items with an ingest and n-1 later events
// each, then a damaged last entry for item 0 if damage says so ("fork": a
// second event 1; "badlink": the next event linked to the wrong leaf), and
// returns its folder, verifier and the checkpoint after the first half.
func build(t *testing.T, items, n int, damage string) (string, note.Verifier, *log.Checkpoint) {
	t.Helper()
	skey, vkey, _ := note.GenerateKey(rand.Reader, origin)
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	dir := t.TempDir()
	backend, err := posixlog.New(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	l, err := custodylog.Open(t.Context(), custodylog.Config{Backend: backend, Signer: signer, Verifier: verifier, CheckpointInterval: 100 * time.Millisecond,
		// Damage is made at exact indexes: the log holds the custody
		// entries alone (TestAuditHistoryMaps and the server's tests audit
		// logs with commitments).
		NoHistoryMap: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(context.Background())
	type head struct {
		index uint64
		leaf  [32]byte
	}
	heads := map[string]head{}
	var half *log.Checkpoint
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	for seq := range n {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range items {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("ev-%026d", i)
				rec := events.Record{EvidenceID: id, Sequence: uint64(seq), Type: events.Annotation, RecordedAt: now, Performer: "urn:custody:custodian:c", Salt: events.NewSalt()}
				if seq == 0 {
					rec.Type, rec.ContentSHA256 = events.Ingest, strings.Repeat("ab", 32)
				} else {
					mu.Lock()
					rec.Previous = &events.Link{Index: heads[id].index, LeafHash: heads[id].leaf}
					mu.Unlock()
				}
				entry, err := rec.Entry()
				if err != nil {
					t.Error(err)
					return
				}
				a, err := l.Append(t.Context(), entry)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				heads[id] = head{a.Index, a.LeafHash}
				mu.Unlock()
			}()
		}
		wg.Wait()
		if seq == n/2-1 {
			half = published(t, l)
		}
	}
	if damage != "" {
		id := fmt.Sprintf("ev-%026d", 0)
		rec := events.Record{EvidenceID: id, Type: events.Annotation, RecordedAt: now, Performer: "urn:custody:custodian:c", Salt: events.NewSalt()}
		switch damage {
		case "fork": // a second event 1, linked to the ingest
			rec.Sequence, rec.Previous = 1, &events.Link{Index: 0, LeafHash: heads[id].leaf}
		case "badlink": // the right next event, linked to a leaf that is not its predecessor's
			rec.Sequence, rec.Previous = uint64(n), &events.Link{Index: heads[id].index, LeafHash: [32]byte{1}}
		}
		entry, _ := rec.Entry()
		if _, err := l.Append(t.Context(), entry); err != nil {
			t.Fatal(err)
		}
	}
	published(t, l)
	return dir, verifier, half
}

// published waits for a checkpoint covering everything appended.
func published(t *testing.T, l *custodylog.Log) *log.Checkpoint {
	t.Helper()
	size, err := l.Settled(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if p, err := l.Latest(t.Context()); err == nil && p.Size == size {
			return &log.Checkpoint{Origin: origin, Size: p.Size, Hash: p.Root}
		}
	}
	t.Fatalf("no checkpoint of size %d", size)
	return nil
}

func files(dir string) logaudit.Fetch {
	return func(_ context.Context, path string) ([]byte, error) {
		return os.ReadFile(filepath.Join(dir, filepath.FromSlash(path)))
	}
}

func TestAudit(t *testing.T) {
	dir, verifier, half := build(t, 150, 4, "") // 600 entries: three tiles, partial ones
	rep, err := logaudit.Audit(t.Context(), files(dir), origin, verifier, half)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Entries != 600 || rep.Items != 150 || rep.Checkpoint.Size != 600 || rep.Tiles < 4 {
		t.Fatalf("report %+v", rep)
	}

	t.Run("WrongKey", func(t *testing.T) {
		_, other, _ := note.GenerateKey(rand.Reader, origin)
		v, _ := note.NewVerifier(other)
		if _, err := logaudit.Audit(t.Context(), files(dir), origin, v, nil); err == nil {
			t.Fatal("a checkpoint signed by another key passed")
		}
	})
	t.Run("TamperedTile", func(t *testing.T) {
		tile := filepath.Join(dir, "tile", "0", "001")
		b, err := os.ReadFile(tile)
		if err != nil {
			t.Fatal(err)
		}
		defer os.WriteFile(tile, b, 0o644)
		bad := append([]byte(nil), b...)
		bad[100] ^= 1
		os.WriteFile(tile, bad, 0o644)
		if _, err := logaudit.Audit(t.Context(), files(dir), origin, verifier, nil); err == nil || !strings.Contains(err.Error(), "tile 0/1") {
			t.Fatalf("a tampered tile: %v", err)
		}
	})
	t.Run("NotAnExtension", func(t *testing.T) {
		forged := *half
		forged.Hash = append([]byte(nil), half.Hash...)
		forged.Hash[0] ^= 1
		if _, err := logaudit.Audit(t.Context(), files(dir), origin, verifier, &forged); err == nil || !strings.Contains(err.Error(), "trusted") {
			t.Fatalf("a checkpoint the log does not extend: %v", err)
		}
	})
	t.Run("ForkedChain", func(t *testing.T) {
		dir, verifier, _ := build(t, 3, 2, "fork")
		if _, err := logaudit.Audit(t.Context(), files(dir), origin, verifier, nil); err == nil || !strings.Contains(err.Error(), "fork") {
			t.Fatalf("two sequence-1 events of one item: %v", err)
		}
	})
	t.Run("BrokenLink", func(t *testing.T) {
		dir, verifier, _ := build(t, 3, 2, "badlink")
		if _, err := logaudit.Audit(t.Context(), files(dir), origin, verifier, nil); err == nil || !strings.Contains(err.Error(), "links to") {
			t.Fatalf("an event linked to the wrong leaf: %v", err)
		}
	})
}
