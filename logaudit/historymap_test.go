package logaudit_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api/layout"

	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/historymap"
	"github.com/custody-dev/custody/logaudit"
)

// mapLog builds, in memory, a log of custody entries for items items with
// a history map commitment every every entries (each for the tree size
// lag entries before it), and returns the entries and how many commitments
// it holds.
func mapLog(t *testing.T, n, items, every, lag int) ([][]byte, int) {
	t.Helper()
	var entries [][]byte
	heads := map[string]historymap.Event{}
	b := historymap.NewBuilder()
	var pending []historymap.Commitment // commitments waiting to be logged
	commits := 0
	for len(entries) < n {
		i := uint64(len(entries))
		var entry []byte
		if i > 0 && i%uint64(every) == 0 && len(pending) > 0 && pending[0].TreeSize+uint64(lag) <= i {
			entry, pending = pending[0].Entry(), pending[1:]
			commits++
		} else {
			id := fmt.Sprintf("ev-%026d", (i*7)%uint64(items))
			rec := events.Record{EvidenceID: id, Type: events.Annotation, RecordedAt: time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC), Performer: "urn:custody:custodian:c", Salt: events.NewSalt()}
			if h, ok := heads[id]; ok {
				rec.Sequence, rec.Previous = h.Seq+1, &events.Link{Index: h.LogIndex, LeafHash: h.LeafHash}
			} else {
				rec.Type, rec.ContentSHA256 = events.Ingest, strings.Repeat("ab", 32)
			}
			var err error
			if entry, err = rec.Entry(); err != nil {
				t.Fatal(err)
			}
			h := historymap.Event{Seq: rec.Sequence, LogIndex: i}
			copy(h.LeafHash[:], rfc6962.DefaultHasher.HashLeaf(entry))
			heads[id] = h
		}
		if i%uint64(every) == 1 { // take a map now, log it later
			m, err := b.Map(i)
			if err != nil {
				t.Fatal(err)
			}
			pending = append(pending, m.Commit())
		}
		if err := b.Add(i, entry); err != nil {
			t.Fatal(err)
		}
		entries = append(entries, entry)
	}
	return entries, commits
}

// bundles serves entries as tlog-tiles entry bundles.
func bundles(entries [][]byte) logaudit.Fetch {
	n := uint64(len(entries))
	files := map[string][]byte{}
	for idx := uint64(0); idx*layout.EntryBundleWidth < n; idx++ {
		var raw []byte
		for _, e := range entries[idx*layout.EntryBundleWidth : min(n, (idx+1)*layout.EntryBundleWidth)] {
			raw = binary.BigEndian.AppendUint16(raw, uint16(len(e)))
			raw = append(raw, e...)
		}
		files[layout.EntriesPath(idx, layout.PartialTileSize(0, idx, n))] = raw
	}
	return func(_ context.Context, path string) ([]byte, error) {
		if b, ok := files[path]; ok {
			return b, nil
		}
		return nil, os.ErrNotExist
	}
}

func TestAuditHistoryMaps(t *testing.T) {
	entries, commits := mapLog(t, 600, 40, 50, 3) // three entry bundles, the last partial
	if commits < 5 {
		t.Fatalf("only %d commitments", commits)
	}
	rep, err := logaudit.AuditHistoryMaps(t.Context(), bundles(entries), uint64(len(entries)))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Commitments != commits || rep.Last.MapSize != 40 || rep.LastIndex >= uint64(len(entries)) {
		t.Fatalf("report %+v, %d commitments logged", rep, commits)
	}
	last := rep.LastIndex

	replace := func(i uint64, e []byte) [][]byte {
		out := append([][]byte(nil), entries...)
		out[i] = e
		return out
	}
	c, _, _ := historymap.ParseEntry(entries[last])
	for _, tc := range []struct {
		name    string
		entries [][]byte
		errHas  string
	}{
		{"wrong root", replace(last, historymap.Commitment{TreeSize: c.TreeSize, MapSize: c.MapSize, MapRoot: [32]byte{1}}.Entry()), "root"},
		{"wrong size", replace(last, historymap.Commitment{TreeSize: c.TreeSize, MapSize: c.MapSize - 1, MapRoot: c.MapRoot}.Entry()), "leaves"},
		{"another tree size", replace(last, historymap.Commitment{TreeSize: c.TreeSize - 2, MapSize: c.MapSize, MapRoot: c.MapRoot}.Entry()), "root"},
		{"beyond itself", replace(last, historymap.Commitment{TreeSize: last + 1, MapSize: c.MapSize, MapRoot: c.MapRoot}.Entry()), "beyond itself"},
		{"malformed", replace(last, []byte(strings.Replace(string(entries[last]), `"v":1`, `"v":1,"x":0`, 1))), "unknown fields"},
		{"an entry of neither kind", replace(3, []byte(`{"type":"ingest","v":1}`)), "neither"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := logaudit.AuditHistoryMaps(t.Context(), bundles(tc.entries), uint64(len(tc.entries))); err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("error %v, want %q", err, tc.errHas)
			}
		})
	}
	t.Run("no commitments", func(t *testing.T) {
		rep, err := logaudit.CheckHistoryMaps(entries[:40])
		if err != nil || rep.Commitments != 0 {
			t.Fatalf("%+v %v", rep, err)
		}
	})
}
