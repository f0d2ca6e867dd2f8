package ledger

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/custody-dev/custody/catalog"
	"github.com/custody-dev/custody/receipt"
	"github.com/custody-dev/custody/storage"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// goldenItem fills every field of a catalog row.
func goldenItem() catalog.Evidence {
	at := time.Date(2025, 3, 14, 9, 26, 53, 589793000, time.UTC)
	var leaf [32]byte
	for i := range leaf {
		leaf[i] = byte(i + 1)
	}
	return catalog.Evidence{
		ID: "ev-abcdefghijklmnopqrstuvwxyz", CaseID: "case-7", Kind: "photo",
		SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Size: 4,
		MediaType: "image/jpeg", DeclaredMediaType: "image/jpg", Collector: "urn:custody:collector:dev-collector",
		IngestedAt: at,
		Object: storage.Object{Backend: "s3", Bucket: "custody-evidence", Key: "objects/ev-abcdefghijklmnopqrstuvwxyz", VersionID: "v1",
			Size: 4, RetainUntil: at.AddDate(10, 0, 0)},
		Encrypted: true, Special: true, Metadata: []byte(`{"title":"x"}`),
		Custodian:   "urn:custody:collector:dev-collector",
		Pending:     &catalog.PendingRelease{To: "urn:custody:custodian:dev-custodian", Reason: "to the lab", Seq: 1, ExpiresAt: at.Add(72 * time.Hour)},
		DerivedFrom: "ev-zyxwvutsrqponmlkjihgfedcba", LastSeq: 3, LastLogIndex: 42, LastLeafHash: leaf,
	}
}

// goldenRecords are the values of testdata/journal/<name>.json, which the
// code before explicit tags wrote (see git history): one of each kind, and
// an ingest row with its zero fields.
func goldenRecords() map[string]journalRecord {
	item := goldenItem()
	at := item.IngestedAt
	ingest := []byte(`{"evidence_id":"ev-abcdefghijklmnopqrstuvwxyz","seq":0,"type":"ingest"}`)
	return map[string]journalRecord{
		"item": {Kind: kindItem, Record: ingest, Item: newJournalItem(item)},
		"item-minimal": {Kind: kindItem, Record: ingest, Item: newJournalItem(catalog.Evidence{
			ID: "ev-abcdefghijklmnopqrstuvwxyz", CaseID: "case-7", Kind: "document", SHA256: item.SHA256, Size: 4,
			MediaType: "application/pdf", Collector: "urn:custody:collector:dev-collector", IngestedAt: at,
			Object: storage.Object{Backend: "disk", Key: "ev-abcdefghijklmnopqrstuvwxyz", Size: 4}, Custodian: "urn:custody:collector:dev-collector",
		})},
		"event": {Kind: kindEvent, Record: []byte(`{"evidence_id":"ev-abcdefghijklmnopqrstuvwxyz","seq":1,"type":"annotation"}`)},
		"receipt": {Kind: kindReceipt, LeafHash: "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
			Receipt: newJournalReceipt(receipt.Receipt{Payload: []byte(`{"log_index":42}`), Signature: []byte{0x30, 0x45, 0x02, 0x21, 0xff}, KeyID: "a1b2c3"})},
	}
}

// TestJournalRecordGolden pins the journal's record format: each value
// encodes to its golden file, and the golden file decodes to the value.
// Run with -update only for a deliberate format change that old journals
// can still be read with.
func TestJournalRecordGolden(t *testing.T) {
	for name, want := range goldenRecords() {
		t.Run(name, func(t *testing.T) {
			file := "testdata/journal/" + name + ".json"
			got, err := json.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			if *update {
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			golden, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, golden) {
				t.Fatalf("encoding changed:\n got %s\nwant %s", got, golden)
			}
			var back journalRecord
			if err := json.Unmarshal(golden, &back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, want) {
				t.Fatalf("%s decodes to\n%+v\nwant\n%+v", file, back, want)
			}
		})
	}
}

// TestJournalItemCoversCatalogRow: every field of a catalog row (and of its
// object and pending release), and of a receipt, goes through the journal
// and back, so a field added there is not silently left out of the
// journal.
func TestJournalItemCoversCatalogRow(t *testing.T) {
	item := goldenItem()
	for _, v := range []reflect.Value{reflect.ValueOf(item), reflect.ValueOf(item.Object), reflect.ValueOf(*item.Pending)} {
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() && v.Field(i).IsZero() {
				t.Fatalf("goldenItem leaves %s.%s empty: fill it, and carry it in journalItem", v.Type().Name(), v.Type().Field(i).Name)
			}
		}
	}
	if back := newJournalItem(item).evidence(); !reflect.DeepEqual(back, item) {
		t.Fatalf("a catalog row through the journal:\n%+v\nwant\n%+v", back, item)
	}
	r := receipt.Receipt{Payload: []byte("p"), Signature: []byte("s"), KeyID: "k"}
	v := reflect.ValueOf(r)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Fatalf("fill receipt.Receipt.%s here, and carry it in journalReceipt", v.Type().Field(i).Name)
		}
	}
	if back := newJournalReceipt(r).receipt(); !reflect.DeepEqual(back, r) {
		t.Fatalf("a receipt through the journal: %+v, want %+v", back, r)
	}
}
