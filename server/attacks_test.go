// Attacks from the red-team review of the input paths, over the network as
// a caller would make them: special-category histories, non-finite
// coordinates, seizure records through the plain upload and their fields
// in the service log, EXIF strings that are not UTF-8, upload ids, times,
// and decrypted metadata without an access event.

package server_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody-dev/custody/client"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/servertest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// Attack 1: an auditor reads the notes, purposes, instruments and
// performers of a special-category item's events.
func TestAuditorSeesOnlyTheShapeOfSpecialHistory(t *testing.T) {
	env := servertest.StartT(t)
	collector := env.Client(t, identity.RoleCollector)
	court := env.Client(t, identity.RoleCourt)
	auditor := env.Client(t, identity.RoleAuditor)
	data := randomBytes(3000)
	md := meta("case-shape", data)
	md.SpecialCategory = true
	up, err := collector.Upload(t.Context(), md, bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	id := up.GetEvidence().GetEvidenceId()
	if _, err := court.RecordEvent(t.Context(), &custodyv1.RecordEventRequest{
		EvidenceId: id, Type: custodyv1.EventType_EVENT_TYPE_ANNOTATION, Note: "NOTE-MARKER matched subject 7f3a9c",
		Purpose: "PURPOSE-MARKER", Instrument: &custodyv1.Instrument{Name: "INSTRUMENT-MARKER", Version: "2"},
	}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := court.Download(t.Context(), &custodyv1.DownloadRequest{EvidenceId: id, Purpose: "ACCESS-MARKER"}, &buf); err != nil {
		t.Fatal(err)
	}
	full := checkChain(t, court, id, []custodyv1.EventType{custodyv1.EventType_EVENT_TYPE_INGEST, custodyv1.EventType_EVENT_TYPE_ANNOTATION, custodyv1.EventType_EVENT_TYPE_ACCESS})
	if full[1].GetNote() == "" || full[1].GetPerformer() == "" {
		t.Fatalf("the court lost the records: %v", full[1])
	}
	shape := checkChain(t, auditor, id, []custodyv1.EventType{custodyv1.EventType_EVENT_TYPE_INGEST, custodyv1.EventType_EVENT_TYPE_ANNOTATION, custodyv1.EventType_EVENT_TYPE_ACCESS})
	for i, e := range shape {
		if e.GetLogIndex() != full[i].GetLogIndex() || e.GetLeafHash() != full[i].GetLeafHash() || !e.GetRecordedAt().AsTime().Equal(full[i].GetRecordedAt().AsTime()) {
			t.Errorf("event %d: shape %v, want the log position and time of %v", i, e, full[i])
		}
		text := prototext.Format(e)
		for _, m := range []string{"MARKER", "urn:custody", "7f3a9c"} {
			if strings.Contains(text, m) {
				t.Errorf("the auditor's event %d carries %q: %s", i, m, text)
			}
		}
	}
	// Bundles for the auditor: commitments only.
	b, err := auditor.Bundle(t.Context(), id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"withheld": true`)) || bytes.Contains(b, []byte("MARKER")) {
		t.Fatalf("the auditor's bundle is not withheld: %s", b)
	}
}

// Attack 2: NaN and infinite coordinates; the upload failed with INTERNAL
// after its object was sealed (write-once, no record names it).
func TestNonFiniteCoordinatesKeepNothing(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			s := be.start(t, servertest.Options{})
			c := s.env.Client(t, identity.RoleCollector)
			objects, logSize := s.storedObjects(t), s.logSize(t)
			for _, p := range []*custodyv1.GeoPoint{
				{Latitude: nan, Longitude: 30},
				{Latitude: 50, Longitude: -inf},
				{Latitude: 50, Longitude: 30, AltitudeM: &inf},
				{Latitude: 50, Longitude: 30, AccuracyM: &nan},
			} {
				data := randomBytes(5000)
				md := meta("case-nan", data)
				md.Capture = &custodyv1.Capture{Location: &custodyv1.Location{Point: p}}
				_, err := c.Upload(t.Context(), md, bytes.NewReader(data), nil)
				if status.Code(err) != codes.InvalidArgument {
					t.Fatalf("upload at %v: %v, want InvalidArgument", p, err)
				}
			}
			if got := s.storedObjects(t); got != objects {
				t.Errorf("%d objects stored, were %d", got, objects)
			}
			if got := s.logSize(t); got != logSize {
				t.Errorf("log size %d, was %d", got, logSize)
			}
			item := uploadOne(t, c)
			_, err := env(s).Client(t, identity.RoleCustodian).RecordEvent(t.Context(), &custodyv1.RecordEventRequest{
				EvidenceId: item.GetEvidenceId(), Type: custodyv1.EventType_EVENT_TYPE_ANNOTATION, Note: "n",
				Location: &custodyv1.Location{Point: &custodyv1.GeoPoint{Latitude: nan}},
			})
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("an event at NaN: %v", err)
			}
		})
	}
}

func env(s *stack) *servertest.Env { return s.env }

// Attack 3: a seizure record uploaded as raw JSON through the plain upload
// skips the record's validation; a malformed one put its personal fields
// into an ERROR line of the service log when read.
func TestSeizureRecordsOnlyThroughCreateSeizureRecord(t *testing.T) {
	// What the RPC layer logs through slog's default logger (custodyd
	// makes the service log the default) is captured too.
	defaultLog := &servertest.SyncBuffer{}
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(defaultLog, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(prev) })
	s := backends()[0].start(t, servertest.Options{})
	c := s.env.Client(t, identity.RoleCollector)
	court := s.env.Client(t, identity.RoleCourt)
	markers := []string{"Oleksandra-MARKER", "PASSPORT-MARKER", "subject home MARKER"}
	raw := []byte(`{"seizing_party": {"name": "Oleksandra-MARKER"}, "notes": "PASSPORT-MARKER", "modalities": [{"modality": "subject home MARKER"}]}`)
	objects, logSize := s.storedObjects(t), s.logSize(t)

	md := meta("case-raw-record", raw)
	md.Kind = custodyv1.EvidenceKind_EVIDENCE_KIND_BIOMETRIC_SEIZURE_RECORD
	md.SpecialCategory = true
	_, err := c.Upload(t.Context(), md, bytes.NewReader(raw), nil)
	wantCode(t, err, codes.InvalidArgument, "CreateSeizureRecord")

	hc := s.env.HTTPClient(t, s.env.Creds(t, identity.RoleCollector).Certificate)
	q := url.Values{"case_id": {"case-raw-record"}, "kind": {"biometric_seizure_record"}, "sha256": {sha(raw)}, "special_category": {"true"}}
	resp, err := hc.Post(s.env.URL("/v1/evidence:upload?"+q.Encode()), "application/json", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(answer), "CreateSeizureRecord") {
		t.Fatalf("REST raw upload of a record: %d %s", resp.StatusCode, answer)
	}
	if s.storedObjects(t) != objects || s.logSize(t) != logSize {
		t.Fatal("a refused record was stored or logged")
	}

	// A record the RPC refuses, over gRPC and the gateway.
	_, err = c.CreateSeizureRecord(t.Context(), &custodyv1.CreateSeizureRecordRequest{CaseId: "case-raw-record", Record: &custodyv1.SeizureRecord{
		SeizingParty: &custodyv1.Party{Name: "Oleksandra-MARKER"}, Notes: "PASSPORT-MARKER", SeizedAt: timestamppb.Now(),
		Modalities: []*custodyv1.ModalityData{{Modality: custodyv1.Modality_MODALITY_FINGERPRINT}}, SubjectRefs: []string{"subject home MARKER"},
	}})
	wantCode(t, err, codes.InvalidArgument, "subject_refs[0]")
	resp, err = hc.Post(s.env.URL("/v1/seizure-records"), "application/json", bytes.NewReader([]byte(`{"case_id": "case-raw-record", "record": `+string(raw)+`}`)))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("REST malformed record: %d", resp.StatusCode)
	}

	// A stored record that does not parse (one a plain upload made before
	// this was refused, or a bug): reading it must name no field of it.
	legacy, _, err := s.env.Daemon.Evidence.CreateSeizureRecord(t.Context(), identityOf(t, identity.RoleCollector), "case-raw-record", raw, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = court.GetSeizureRecord(t.Context(), &custodyv1.GetSeizureRecordRequest{EvidenceId: legacy.ID, Purpose: "trial"})
	if status.Code(err) == codes.OK || status.Code(err) == codes.Internal {
		t.Errorf("reading a malformed stored record: %v", err)
	}
	for _, m := range markers {
		if strings.Contains(status.Convert(err).Message(), m) {
			t.Errorf("the caller's error carries %q", m)
		}
	}
	// A special-category attachment is not a record.
	att := randomBytes(2000)
	amd := meta("case-raw-record", att)
	amd.Kind, amd.SpecialCategory = custodyv1.EvidenceKind_EVIDENCE_KIND_OTHER, true
	up, err := c.Upload(t.Context(), amd, bytes.NewReader(att), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = court.GetSeizureRecord(t.Context(), &custodyv1.GetSeizureRecordRequest{EvidenceId: up.GetEvidence().GetEvidenceId(), Purpose: "trial"})
	wantCode(t, err, codes.FailedPrecondition, "not a seizure record")

	logs := s.env.Logs.String() + defaultLog.String()
	for _, m := range append(markers, "MARKER") {
		if strings.Contains(logs, m) {
			i := strings.Index(logs, m)
			t.Errorf("the service log contains %q: …%s…", m, logs[max(0, i-200):min(len(logs), i+100)])
		}
	}
}

// jpegWithEXIF is a JPEG whose EXIF IFD0 has the given Make and Model,
// byte for byte.
func jpegWithEXIF(mk, model string) []byte {
	le := binary.LittleEndian
	const ifdAt = 8
	dataAt := uint32(ifdAt + 2 + 2*12 + 4)
	tiff := le.AppendUint32([]byte("II*\x00"), ifdAt)
	tiff = le.AppendUint16(tiff, 2)
	var data []byte
	for _, e := range []struct {
		tag uint16
		v   string
	}{{0x010F, mk}, {0x0110, model}} {
		v := e.v + "\x00"
		tiff = le.AppendUint16(tiff, e.tag)
		tiff = le.AppendUint16(tiff, 2)
		tiff = le.AppendUint32(tiff, uint32(len(v)))
		tiff = le.AppendUint32(tiff, dataAt+uint32(len(data)))
		data = append(data, v...)
	}
	tiff = append(le.AppendUint32(tiff, 0), data...)
	seg := append([]byte("Exif\x00\x00"), tiff...)
	out := binary.BigEndian.AppendUint16([]byte{0xFF, 0xD8, 0xFF, 0xE1}, uint16(2+len(seg)))
	out = append(append(out, seg...), 0xFF, 0xDA, 0x00, 0x02)
	return append(append(out, randomBytes(4096)...), 0xFF, 0xD9)
}

// Attack 4: a photo whose EXIF Make/Model are not UTF-8 was ingested and
// logged, but its uploader got an error (the response could not be
// encoded) and no receipt, and would upload it again.
func TestInvalidUTF8EXIFStillGetsItsReceipt(t *testing.T) {
	s := backends()[0].start(t, servertest.Options{})
	c := s.env.Client(t, identity.RoleCollector)
	photo := jpegWithEXIF("Nik\xffon\xfe", "D\xc3\x28850")
	md := meta("case-exif-utf8", photo)
	md.Kind = custodyv1.EvidenceKind_EVIDENCE_KIND_PHOTO
	before := s.logSize(t)
	resp, err := c.Upload(t.Context(), md, bytes.NewReader(photo), nil)
	if err != nil {
		t.Fatalf("upload: %v (log grew by %d)", err, s.logSize(t)-before)
	}
	if len(resp.GetReceipt().GetSignature()) == 0 {
		t.Fatal("no receipt")
	}
	dev := resp.GetEvidence().GetEmbedded().GetDevice()
	if !utf8.ValidString(dev.GetMake()) || !strings.Contains(dev.GetMake(), "on") || !utf8.ValidString(dev.GetModel()) {
		t.Fatalf("embedded device %v", dev)
	}
	got, err := c.GetEvidence(t.Context(), resp.GetEvidence().GetEvidenceId())
	if err != nil || got.GetEmbedded().GetDevice().GetMake() != dev.GetMake() {
		t.Fatalf("read back %v, %v", got.GetEmbedded(), err)
	}
}

// Attack 5: resumable upload ids were one namespace, and the client's are
// deterministic: another identity could squat a collector's id for the
// upload TTL, and the error told whether a session existed.
func TestUploadIDsCannotBeSquatted(t *testing.T) {
	env := servertest.StartT(t)
	collector := env.Client(t, identity.RoleCollector)
	custodian := env.Client(t, identity.RoleCustodian)
	data := randomBytes(3 << 20)
	md := meta("case-squat", data)
	md.UploadId = client.UploadID(collectorID, "case-squat", sha(data))

	// The custodian, who may upload too, takes the collector's id first.
	squat := randomBytes(1 << 20)
	smd := meta("case-squat", squat)
	smd.SizeBytes = 2 << 20
	smd.Sha256 = sha(append(squat, squat...))
	smd.UploadId = md.UploadId
	sendPart(t, custodian, smd, squat)
	waitReceived(t, custodian, md.UploadId, 1<<20)

	resp, err := collector.UploadResumable(t.Context(), md, bytes.NewReader(data), client.DefaultRetry, nil)
	if err != nil || resp.GetEvidence().GetSha256() != sha(data) {
		t.Fatalf("the collector's upload under a squatted id: %v", err)
	}
	// Whether someone else has a session is not for the custodian to know.
	_, errForeign := custodian.UploadStatus(t.Context(), "u-someone-elses")
	mine := meta("case-squat", data)
	mine.UploadId = "u-someone-elses"
	sendPart(t, collector, mine, data[:1<<20])
	waitReceived(t, collector, "u-someone-elses", 1<<20)
	_, errNow := custodian.UploadStatus(t.Context(), "u-someone-elses")
	if status.Code(errForeign) != codes.NotFound || status.Code(errNow) != codes.NotFound || status.Convert(errForeign).Message() != status.Convert(errNow).Message() {
		t.Fatalf("status before the collector's session: %v; after: %v; they must read the same", errForeign, errNow)
	}
}

// Attack 6: a movie header whose creation time overflows read as 1672,
// and stated times outside RFC 3339's years.
func TestImpossibleTimes(t *testing.T) {
	s := backends()[0].start(t, servertest.Options{})
	c := s.env.Client(t, identity.RoleCollector)
	mvhd := make([]byte, 112)
	mvhd[0] = 1 // version 1: 64-bit times
	binary.BigEndian.PutUint64(mvhd[4:], 1<<40-1)
	binary.BigEndian.PutUint32(mvhd[20:], 1000)
	binary.BigEndian.PutUint64(mvhd[24:], 7000)
	boxOf := func(typ string, payload []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(8+len(payload)))
		return append(append(b, typ...), payload...)
	}
	video := append(boxOf("ftyp", []byte("isom\x00\x00\x02\x00isomiso2mp41")), boxOf("moov", boxOf("mvhd", mvhd))...)
	video = append(video, boxOf("mdat", randomBytes(5000))...)
	md := meta("case-times", video)
	md.Kind = custodyv1.EvidenceKind_EVIDENCE_KIND_VIDEO
	resp, err := c.Upload(t.Context(), md, bytes.NewReader(video), nil)
	if err != nil {
		t.Fatal(err)
	}
	if emb := resp.GetEvidence().GetEmbedded(); emb.GetCapturedAt() != nil || emb.GetDuration().AsDuration() != 7*time.Second {
		t.Fatalf("embedded %v: no capture time from an overflowing header, the duration kept", emb)
	}
	for _, ts := range []*timestamppb.Timestamp{
		{Seconds: 253402300800}, // 10000-01-01
		{Seconds: -62198755200}, // year -1
		timestamppb.New(time.Now().Add(72 * time.Hour)),
	} {
		data := randomBytes(100)
		md := meta("case-times", data)
		md.Capture = &custodyv1.Capture{CapturedAt: ts}
		_, err := c.Upload(t.Context(), md, bytes.NewReader(data), nil)
		wantCode(t, err, codes.InvalidArgument, "captured_at")
	}
}

// Attack 7: GetEvidence and ListEvidence decrypted special-category
// metadata for the court with no access event in the log.
func TestSpecialMetadataNeedsALoggedRead(t *testing.T) {
	env := servertest.StartT(t)
	collector := env.Client(t, identity.RoleCollector)
	court := env.Client(t, identity.RoleCourt)
	data := randomBytes(3000)
	md := meta("case-special-meta", data)
	md.SpecialCategory = true
	md.Filename = "subject-FILENAME-MARKER.eft"
	md.Description = "DESCRIPTION-MARKER"
	up, err := collector.Upload(t.Context(), md, bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	id := up.GetEvidence().GetEvidenceId()
	got, err := court.GetEvidence(t.Context(), id)
	if err != nil || strings.Contains(prototext.Format(got), "MARKER") || got.GetSha256() != sha(data) {
		t.Fatalf("GetEvidence by the court: %v, %v", got, err)
	}
	list, err := court.ListEvidence(t.Context(), &custodyv1.ListEvidenceRequest{CaseId: "case-special-meta"})
	if err != nil || len(list.GetEvidence()) != 1 || strings.Contains(prototext.Format(list), "MARKER") {
		t.Fatalf("ListEvidence by the court: %v, %v", list, err)
	}
	checkChain(t, court, id, []custodyv1.EventType{custodyv1.EventType_EVENT_TYPE_INGEST})
	var buf bytes.Buffer
	ev, err := court.Download(t.Context(), &custodyv1.DownloadRequest{EvidenceId: id, Purpose: "trial preparation"}, &buf)
	if err != nil || ev.GetFilename() != md.Filename || ev.GetDescription() != md.Description {
		t.Fatalf("Download: %v, %v", ev, err)
	}
	checkChain(t, court, id, []custodyv1.EventType{custodyv1.EventType_EVENT_TYPE_INGEST, custodyv1.EventType_EVENT_TYPE_ACCESS})
}
