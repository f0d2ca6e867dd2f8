package server_test

import (
	"bytes"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv"
	"github.com/custody-dev/custody/internal/testenv/servertest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// dumpCatalog reads every row of the catalog's evidence and events tables.
func dumpCatalog(t *testing.T, path string) [][]any {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out [][]any
	for _, q := range []string{"SELECT * FROM evidence ORDER BY id", "SELECT * FROM events ORDER BY log_index"} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			out = append(out, vals)
		}
		rows.Close()
	}
	return out
}

// TestDeletedCatalogRebuiltIdentically deletes catalog.db after a varied
// history and checks the restarted service rebuilds it row for row from
// the log and the journal.
func TestDeletedCatalogRebuiltIdentically(t *testing.T) {
	testenv.RequireFull(t, "in-process custodyd (TLS, gRPC, SQLite, Tessera)")
	dir := t.TempDir()
	env, err := servertest.Start(dir, servertest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	collector := env.Client(t, identity.RoleCollector)
	custodian := env.Client(t, identity.RoleCustodian)
	ctx := t.Context()
	var ids []string
	for i := range 6 {
		data := randomBytes(1000 + i)
		md := meta(fmt.Sprintf("case-%d", i%2), data)
		md.SpecialCategory = i == 3
		resp, err := collector.Upload(ctx, md, bytes.NewReader(data), nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, resp.GetEvidence().GetEvidenceId())
	}
	if _, err := collector.Release(ctx, ids[0], custodianID, "lab"); err != nil {
		t.Fatal(err)
	}
	if _, err := custodian.Accept(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := custodian.RecordEvent(ctx, &custodyv1.RecordEventRequest{EvidenceId: ids[0], Type: custodyv1.EventType_EVENT_TYPE_ANALYSIS, Note: "ELA analysis", Instrument: &custodyv1.Instrument{Name: "forensically", Version: "1.2"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := collector.Release(ctx, ids[1], courtID, "pending at shutdown"); err != nil {
		t.Fatal(err)
	}
	download(t, custodian, ids[0])
	if err := env.Stop(); err != nil {
		t.Fatal(err)
	}
	catalogPath := filepath.Join(dir, "catalog.db")
	before := dumpCatalog(t, catalogPath)
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(catalogPath + suffix)
	}

	env, err = servertest.Start(dir, servertest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Stop(); err != nil {
		t.Fatal(err)
	}
	after := dumpCatalog(t, catalogPath)
	if len(before) != 6+6+5 { // items; ingests; release, accept, analysis, release, access
		t.Fatalf("catalog had %d rows before, want 17", len(before))
	}
	if !reflect.DeepEqual(before, after) {
		for i := range max(len(before), len(after)) {
			if i >= len(before) || i >= len(after) || !reflect.DeepEqual(before[i], after[i]) {
				t.Fatalf("rebuilt catalog differs at row %d:\nbefore %v\nafter  %v", i, at(before, i), at(after, i))
			}
		}
	}
}

func at(rows [][]any, i int) any {
	if i < len(rows) {
		return rows[i]
	}
	return "(none)"
}
