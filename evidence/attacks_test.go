package evidence

// Attacks from the red-team review of the input paths, each written as a
// test before its fix: special-category histories, non-finite coordinates,
// seizure records through the plain upload, EXIF strings that are not
// UTF-8, upload ids, impossible times, and decrypted metadata without an
// access event.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/media/mediatest"
)

func mustIdentity(t *testing.T, r identity.Role, name string) identity.Identity {
	t.Helper()
	id, err := identity.New(r, name)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func docMeta(caseID string, body []byte) UploadMeta {
	sum := sha256.Sum256(body)
	return UploadMeta{CaseID: caseID, Kind: KindDocument, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(body))}
}

// blobFiles counts every file (pending or sealed) under a disk store.
func blobFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(filepath.Join(dir, "blobs"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// Attack 1: an auditor lists the events of a special-category item and
// reads its notes, purposes, instruments and performers. Auditors get the
// history's shape only: sequence, type, time, log position and link.
func TestAuditorGetsOnlyTheShapeOfSpecialHistory(t *testing.T) {
	s, _, _ := newTestService(t)
	collector := mustIdentity(t, identity.RoleCollector, "field-team")
	court := mustIdentity(t, identity.RoleCourt, "judge")
	auditor := mustIdentity(t, identity.RoleAuditor, "audit")
	body := []byte("fingerprint templates")
	meta := docMeta("case-shape", body)
	meta.Special = true
	item, _, err := s.Ingest(t.Context(), collector, meta, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordEvent(t.Context(), court, item.ID, EventInput{
		Type: events.Annotation, Note: "NOTE-MARKER subject matched", Purpose: "PURPOSE-MARKER",
		Instrument: &Instrument{Name: "INSTRUMENT-MARKER", Version: "1"},
	}); err != nil {
		t.Fatal(err)
	}
	_, _, rc, err := s.Open(t.Context(), court, item.ID, Access{Purpose: "ACCESS-MARKER"})
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()

	full, fullRows, _, err := s.Events(t.Context(), court, item.ID, 0, 0)
	if err != nil || len(full) != 3 {
		t.Fatalf("court: %d events, %v", len(full), err)
	}
	recs, rows, _, err := s.Events(t.Context(), auditor, item.ID, 0, 0)
	if err != nil || len(recs) != 3 || len(rows) != 3 {
		t.Fatalf("auditor: %d events, %v", len(recs), err)
	}
	for i, rec := range recs {
		want := full[i]
		if rec.EvidenceID != item.ID || rec.Sequence != want.Sequence || rec.Type != want.Type || !rec.RecordedAt.Equal(want.RecordedAt) {
			t.Errorf("event %d: shape %+v, want seq %d %s at %v", i, rec, want.Sequence, want.Type, want.RecordedAt)
		}
		if (rec.Previous == nil) != (want.Previous == nil) || rec.Previous != nil && *rec.Previous != *want.Previous {
			t.Errorf("event %d: link %+v, want %+v", i, rec.Previous, want.Previous)
		}
		if rows[i].LogIndex != fullRows[i].LogIndex || rows[i].LeafHash != fullRows[i].LeafHash {
			t.Errorf("event %d: log position %d/%x, want %d/%x", i, rows[i].LogIndex, rows[i].LeafHash, fullRows[i].LogIndex, fullRows[i].LeafHash)
		}
		if rec.Performer != "" || rec.Counterparty != "" || rec.Purpose != "" || rec.Details != nil || rec.ContentSHA256 != "" || rec.Salt != [32]byte{} {
			t.Errorf("event %d: the auditor gets %+v", i, rec)
		}
		if rows[i].Record != nil || rows[i].ReceiptPayload != nil || rows[i].ReceiptSignature != nil {
			t.Errorf("event %d: the auditor gets the record or receipt bytes", i)
		}
	}
	if full[1].Performer != court.String() || full[1].Details["note"] != "NOTE-MARKER subject matched" {
		t.Fatalf("the court lost the full records: %+v", full[1])
	}
	// An item that is not special-category: auditors see it all.
	plain, err := ingestDoc(t, s, collector, "a plain document")
	if err != nil {
		t.Fatal(err)
	}
	if recs, _, _, err := s.Events(t.Context(), auditor, plain.ID, 0, 0); err != nil || recs[0].Performer != collector.String() {
		t.Fatalf("auditor on a plain item: %+v, %v", recs, err)
	}
}

// Attack 2: NaN and infinite coordinates pass the bounds checks (altitude
// and accuracy are not checked at all); the metadata then fails to encode
// after the object is sealed, leaving a write-once object no record names.
func TestNonFiniteCoordinatesAreRefused(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	ptr := func(v float64) *float64 { return &v }
	for _, tc := range []struct {
		name string
		p    GeoPoint
		want string
	}{
		{"NaN latitude", GeoPoint{Latitude: nan}, "latitude"},
		{"NaN longitude", GeoPoint{Longitude: nan}, "longitude"},
		{"infinite latitude", GeoPoint{Latitude: inf}, "latitude"},
		{"minus infinite longitude", GeoPoint{Longitude: -inf}, "longitude"},
		{"NaN altitude", GeoPoint{AltitudeM: ptr(nan)}, "altitude_m"},
		{"infinite altitude", GeoPoint{AltitudeM: ptr(inf)}, "altitude_m"},
		{"altitude beyond the atmosphere", GeoPoint{AltitudeM: ptr(2e6)}, "altitude_m"},
		{"altitude below the deepest trench", GeoPoint{AltitudeM: ptr(-2e4)}, "altitude_m"},
		{"NaN accuracy", GeoPoint{AccuracyM: ptr(nan)}, "accuracy_m"},
		{"infinite accuracy", GeoPoint{AccuracyM: ptr(inf)}, "accuracy_m"},
		{"negative accuracy", GeoPoint{AccuracyM: ptr(-1)}, "accuracy_m"},
		{"accuracy wider than the Earth", GeoPoint{AccuracyM: ptr(3e7)}, "accuracy_m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := UploadMeta{CaseID: "c", Kind: KindPhoto, SHA256: strings.Repeat("ab", 32), Size: 1,
				Capture: Capture{Location: &Location{Point: &tc.p}}}
			err := m.Validate(10)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want ErrInvalid naming %s", err, tc.want)
			}
		})
	}
	good := GeoPoint{Latitude: -90, Longitude: 180, AltitudeM: ptr(-420), AccuracyM: ptr(0)}
	if err := (&Capture{Location: &Location{Point: &good}}).validate("capture"); err != nil {
		t.Fatalf("a point on the bounds: %v", err)
	}

	dir := t.TempDir()
	s, _, _ := newTestServiceIn(t, dir)
	collector := mustIdentity(t, identity.RoleCollector, "c")
	custodian := mustIdentity(t, identity.RoleCustodian, "k")
	body := []byte("a photo with a poisoned position")
	meta := docMeta("case-nan", body)
	meta.Capture.Location = &Location{Point: &GeoPoint{Latitude: nan, Longitude: 10}}
	if _, _, err := s.Ingest(t.Context(), collector, meta, bytes.NewReader(body)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Ingest with a NaN latitude: %v, want ErrInvalid", err)
	}
	// Even with the validation bypassed, nothing is sealed before every
	// check that can fail has passed.
	meta.Capture.Location.Point.AltitudeM = ptr(inf)
	if _, _, err := s.ingestValidated(t.Context(), collector, meta, bytes.NewReader(body)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("ingest past validation with NaN: %v, want ErrInvalid", err)
	}
	if n := blobFiles(t, dir); n != 0 {
		t.Fatalf("%d objects remain in the store after refused uploads", n)
	}
	if size, _ := s.log.Settled(t.Context()); size != 0 {
		t.Fatalf("the log has %d entries", size)
	}

	// Event locations: a hand-off or an annotation with a NaN point.
	item, err := ingestDoc(t, s, collector, "an item to annotate")
	if err != nil {
		t.Fatal(err)
	}
	bad := &Location{Point: &GeoPoint{Latitude: 1, Longitude: inf}}
	if _, err := s.RecordEvent(t.Context(), custodian, item.ID, EventInput{Type: events.Annotation, Note: "n", Location: bad}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("RecordEvent with an infinite longitude: %v", err)
	}
	if _, err := s.Release(t.Context(), collector, item.ID, Handoff{To: custodian.String(), Location: bad}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "location") {
		t.Fatalf("Release with an infinite longitude: %v", err)
	}
	if _, err := s.Accept(t.Context(), custodian, item.ID, Handoff{Location: &Location{Point: &GeoPoint{Latitude: nan}}}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "location") {
		t.Fatalf("Accept with a NaN latitude: %v", err)
	}
	if evs, _ := s.catalog.Events(t.Context(), item.ID); len(evs) != 1 {
		t.Fatalf("%d events logged for refused requests", len(evs))
	}
}

// Attack 3: a plain upload of kind biometric_seizure_record bypasses the
// seizure record's validation; only CreateSeizureRecord makes them.
func TestPlainUploadCannotMakeASeizureRecord(t *testing.T) {
	dir := t.TempDir()
	s, _, _ := newTestServiceIn(t, dir)
	collector := mustIdentity(t, identity.RoleCollector, "c")
	doc := []byte(`{"seizing_party":{"name":"Jane Q. Subject"},"notes":"NOTE-MARKER"}`)
	meta := docMeta("case-raw", doc)
	meta.Kind = KindBiometricSeizureRecord
	meta.Special = true
	if _, _, err := s.Ingest(t.Context(), collector, meta, bytes.NewReader(doc)); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "CreateSeizureRecord") {
		t.Fatalf("plain upload of a seizure record: %v, want ErrInvalid pointing at CreateSeizureRecord", err)
	}
	if _, _, err := s.IngestResumable(t.Context(), collector, "raw-record-1", meta, 0, bytes.NewReader(doc)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("resumable upload of a seizure record: %v", err)
	}
	if n := blobFiles(t, dir); n != 0 {
		t.Fatalf("%d objects stored", n)
	}
	// CreateSeizureRecord still makes them.
	item, _, err := s.CreateSeizureRecord(t.Context(), collector, "case-raw", doc, nil, nil, "")
	if err != nil || item.Kind != KindBiometricSeizureRecord || !item.Special {
		t.Fatalf("CreateSeizureRecord: %+v, %v", item, err)
	}
}

// Attack 4: EXIF strings that are not UTF-8. The item was ingested and
// logged but the uploader got an error and no receipt. (The reader's side
// is media's TestEXIFStringsAreValidUTF8.)
func TestEXIFStringsAreValidUTF8(t *testing.T) {
	photo := mediatest.JPEG("Can\xffon\xfe", "EOS \xc3\x28 R5")
	s, _, _ := newTestService(t)
	collector := mustIdentity(t, identity.RoleCollector, "c")
	meta := docMeta("case-exif", photo)
	meta.Kind = KindPhoto
	item, rcpt, err := s.Ingest(t.Context(), collector, meta, bytes.NewReader(photo))
	if err != nil || len(rcpt.Signature) == 0 {
		t.Fatalf("Ingest: %v (receipt %d bytes)", err, len(rcpt.Signature))
	}
	if d := item.Meta.Embedded.Device; !utf8.ValidString(d.Make) || !utf8.ValidString(d.Model) {
		t.Fatalf("the item returned carries %q / %q", d.Make, d.Model)
	}
}

// Attack 5: upload ids are one namespace; another identity squats a
// collector's (deterministic) id, and the error says a session exists.
func TestUploadIDsArePerIdentity(t *testing.T) {
	s, _, _ := newTestService(t)
	alice := mustIdentity(t, identity.RoleCollector, "alice")
	mallory := mustIdentity(t, identity.RoleCollector, "mallory")
	data := bytes.Repeat([]byte("evidence "), 1000)
	meta := docMeta("case-upload", data)
	const id = "u-0123456789abcdef"

	// Mallory squats the id Alice's client will use.
	squat := []byte("squatted")
	if _, _, err := s.IngestResumable(t.Context(), mallory, id, docMeta("case-squat", append(squat, 'x')), 0, bytes.NewReader(squat)); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("mallory's partial upload: %v", err)
	}
	// Alice starts and finishes hers under the same id.
	if _, _, err := s.IngestResumable(t.Context(), alice, id, meta, 0, bytes.NewReader(data[:100])); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("alice's first part: %v (a squatted id must not block her)", err)
	}
	// Mallory cannot tell Alice's session from none at all.
	_, errTheirs := s.UploadStatusOf(t.Context(), mallory, "u-aaaaaaaaaaaaaaaa")
	if _, errNone := s.UploadStatusOf(t.Context(), alice, "u-aaaaaaaaaaaaaaaa"); errNone == nil || errTheirs == nil {
		t.Fatal("status of a session that does not exist")
	}
	st, err := s.UploadStatusOf(t.Context(), mallory, id)
	if err != nil || st.Received != int64(len(squat)) {
		t.Fatalf("mallory sees %+v, %v; want only his own session", st, err)
	}
	other := "u-bbbbbbbbbbbbbbbb"
	if _, _, err := s.IngestResumable(t.Context(), alice, other, meta, 0, bytes.NewReader(data[:10])); !errors.Is(err, ErrIncomplete) {
		t.Fatal(err)
	}
	_, errForeign := s.UploadStatusOf(t.Context(), mallory, other)
	_, errMissing := s.UploadStatusOf(t.Context(), mallory, "u-cccccccccccccccc")
	if !errors.Is(errForeign, ErrNotFound) || !errors.Is(errMissing, ErrNotFound) ||
		strings.ReplaceAll(errForeign.Error(), other, "ID") != strings.ReplaceAll(errMissing.Error(), "u-cccccccccccccccc", "ID") {
		t.Fatalf("another's session: %v; no session: %v; they must read the same", errForeign, errMissing)
	}
	_, _, errForeign = s.IngestResumable(t.Context(), mallory, other, meta, 10, bytes.NewReader(data[10:]))
	_, _, errMissing = s.IngestResumable(t.Context(), mallory, "u-cccccccccccccccc", meta, 10, bytes.NewReader(data[10:]))
	if !errors.Is(errForeign, ErrNotFound) || strings.ReplaceAll(errForeign.Error(), other, "ID") != strings.ReplaceAll(errMissing.Error(), "u-cccccccccccccccc", "ID") {
		t.Fatalf("resuming another's session: %v; a missing one: %v", errForeign, errMissing)
	}
	item, _, err := s.IngestResumable(t.Context(), alice, id, meta, 100, bytes.NewReader(data[100:]))
	if err != nil || item.SHA256 != meta.SHA256 {
		t.Fatalf("alice finishes: %v", err)
	}
}

// Attack 6: impossible times. A crafted movie header overflows into a
// capture time of 1672 (media's TestImpossibleTimesAreDropped); times
// outside RFC 3339's years are stored.
func TestImpossibleTimesAreRefused(t *testing.T) {
	// Stated times outside RFC 3339's years, or absurdly in the future.
	for _, at := range []time.Time{
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1989, 12, 31, 0, 0, 0, 0, time.UTC), time.Now().Add(48 * time.Hour),
	} {
		m := UploadMeta{CaseID: "c", Kind: KindPhoto, SHA256: strings.Repeat("ab", 32), Size: 1, Capture: Capture{CapturedAt: at}}
		if err := m.Validate(10); !errors.Is(err, ErrInvalid) {
			t.Errorf("captured_at %v: %v", at, err)
		}
	}
	s, _, _ := newTestService(t)
	collector := mustIdentity(t, identity.RoleCollector, "c")
	custodian := mustIdentity(t, identity.RoleCustodian, "k")
	court := mustIdentity(t, identity.RoleCourt, "judge")
	item, err := ingestDoc(t, s, collector, "times")
	if err != nil {
		t.Fatal(err)
	}
	year10000 := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	yearMinus5 := time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := s.RecordEvent(t.Context(), custodian, item.ID, EventInput{Type: events.Annotation, Note: "n", StartedAt: yearMinus5}); !errors.Is(err, ErrInvalid) {
		t.Errorf("started_at in year -5: %v", err)
	}
	if _, err := s.RecordEvent(t.Context(), custodian, item.ID, EventInput{Type: events.Annotation, Note: "n", EndedAt: year10000}); !errors.Is(err, ErrInvalid) {
		t.Errorf("ended_at in year 10000: %v", err)
	}
	if _, _, _, err := s.Open(t.Context(), court, item.ID, Access{Purpose: "p", Authority: &Authority{Type: "order", Identifier: "1", ValidUntil: year10000}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("authority valid until year 10000: %v", err)
	}
	if _, _, _, err := s.Open(t.Context(), court, item.ID, Access{Purpose: "p", Authority: &Authority{Type: "order", Identifier: "1", ValidFrom: yearMinus5}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("authority valid from year -5: %v", err)
	}
	body := []byte("signed in year -5")
	meta := docMeta("case-times", body)
	meta.CollectorSignature = &Signature{Signature: []byte{1}, SignedAt: yearMinus5}
	if _, _, err := s.Ingest(t.Context(), collector, meta, bytes.NewReader(body)); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "signed_at") {
		t.Errorf("capture signature from year -5: %v", err)
	}
	if evs, _ := s.catalog.Events(t.Context(), item.ID); len(evs) != 1 {
		t.Fatalf("%d events logged for refused requests", len(evs))
	}
}

// Attack 7: GetEvidence and ListEvidence decrypt special-category
// metadata for the court without any access event. They never decrypt;
// the metadata comes only with a logged read (Open, ReadSeizureRecord).
func TestSpecialMetadataOnlyWithAnAccessEvent(t *testing.T) {
	s, _, _ := newTestService(t)
	collector := mustIdentity(t, identity.RoleCollector, "c")
	court := mustIdentity(t, identity.RoleCourt, "judge")
	body := []byte("iris scans")
	meta := docMeta("case-meta", body)
	meta.Special = true
	meta.Filename = "subject-FILENAME-MARKER.iris"
	meta.Description = "DESCRIPTION-MARKER"
	item, _, err := s.Ingest(t.Context(), collector, meta, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if item.Meta.Filename != meta.Filename {
		t.Fatalf("the uploader's own receipt lost its metadata: %+v", item.Meta)
	}
	got, err := s.Get(t.Context(), court, item.ID)
	if err != nil || got.Meta.Filename != "" || got.Meta.Description != "" || got.SHA256 != item.SHA256 {
		t.Fatalf("Get by the court: %+v, %v", got.Meta, err)
	}
	list, _, err := s.List(t.Context(), court, "case-meta", "", 10)
	if err != nil || len(list) != 1 || list[0].Meta.Filename != "" {
		t.Fatalf("List by the court: %+v, %v", list, err)
	}
	if evs, _ := s.catalog.Events(t.Context(), item.ID); len(evs) != 1 {
		t.Fatalf("%d events after metadata reads", len(evs))
	}
	opened, ev, rc, err := s.Open(t.Context(), court, item.ID, Access{Purpose: "trial preparation"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if opened.Meta.Filename != meta.Filename || ev.Record.Type != events.Access || !bytes.Equal(b, body) {
		t.Fatalf("Open: %+v, %s", opened.Meta, ev.Record.Type)
	}
}
