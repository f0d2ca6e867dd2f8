package events_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/custody-dev/custody/canonicaljson"
	"github.com/custody-dev/custody/events"
)

func TestRecordRoundTripAndEntry(t *testing.T) {
	rec := events.Record{
		EvidenceID: "ev-aaaaaaaaaaaaaaaaaaaaaaaaaa", Sequence: 2, Type: events.Accept,
		RecordedAt: time.Date(2026, 11, 27, 1, 2, 3, 4, time.UTC), Performer: "urn:custody:custodian:lab-1",
		Counterparty: "urn:custody:collector:team-1", Details: canonicaljson.Object{"release_seq": int64(1)},
		Previous: &events.Link{Index: 41, LeafHash: [32]byte{9}}, Salt: events.NewSalt(),
	}
	canon, err := rec.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	back, err := events.ParseRecord(canon)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := back.Canonical()
	if !bytes.Equal(canon, again) {
		t.Fatalf("round trip changed the record:\n%s\n%s", canon, again)
	}
	entry, err := rec.Entry()
	if err != nil {
		t.Fatal(err)
	}
	fields, err := events.ParseEntry(entry)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(canon)
	if fields["record_sha256"] != hex.EncodeToString(sum[:]) || fields["prev_index"] != int64(41) {
		t.Fatalf("entry %s", entry)
	}
	for _, personal := range []string{"lab-1", "team-1", "release_seq"} {
		if bytes.Contains(entry, []byte(personal)) {
			t.Fatalf("entry carries %q: %s", personal, entry)
		}
	}
	// Not canonical: spaces, unknown fields.
	for _, bad := range [][]byte{bytes.Replace(canon, []byte(`","`), []byte(`", "`), 1), bytes.Replace(canon, []byte(`{`), []byte(`{"extra":1,`), 1)} {
		if _, err := events.ParseRecord(bad); err == nil {
			t.Errorf("accepted non-canonical %s", bad)
		}
	}
}

func seeds(f *testing.F, name string) {
	if b, err := os.ReadFile("testdata/" + name); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"v":1,"seq":1e400}`))
}

// FuzzParseEntry: no input panics the entry decoder, and whatever it
// accepts re-encodes to the same bytes.
func FuzzParseEntry(f *testing.F) {
	seeds(f, "entry.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		obj, err := events.ParseEntry(b)
		if err != nil {
			return
		}
		again, err := canonicaljson.Marshal(obj)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted %q, re-encodes to %q (%v)", b, again, err)
		}
	})
}

// FuzzParseRecord: no input panics the record decoder, and whatever it
// accepts re-encodes to the same bytes, so its commitment is stable.
func FuzzParseRecord(f *testing.F) {
	seeds(f, "record.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := events.ParseRecord(b)
		if err != nil {
			return
		}
		again, err := rec.Canonical()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted %q, re-encodes to %q (%v)", b, again, err)
		}
	})
}
