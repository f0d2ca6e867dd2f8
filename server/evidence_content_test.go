// Tests of what the service reads from and keeps about content: EXIF and
// container metadata, and seizure records that must never be in clear.

package server_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/servertest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

func TestPhotoEXIF(t *testing.T) {
	s := backends()[0].start(t, servertest.Options{})
	c := s.env.Client(t, identity.RoleCollector)
	photo, err := os.ReadFile("../evidence/testdata/gps.jpg")
	if err != nil {
		t.Fatal(err)
	}
	md := meta("case-photo", photo)
	md.Kind = custodyv1.EvidenceKind_EVIDENCE_KIND_PHOTO
	md.Capture = &custodyv1.Capture{Device: &custodyv1.Device{Make: "What the collector typed"}}
	resp, err := c.Upload(t.Context(), md, bytes.NewReader(photo), nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := resp.GetEvidence()
	if ev.GetMediaType() != "image/jpeg" {
		t.Errorf("media type %q, want image/jpeg", ev.GetMediaType())
	}
	// The fixture's EXIF: GPS 38.405194783° S, 144.188958° E, and the
	// software that last wrote it.
	emb := ev.GetEmbedded()
	if lat, lon := emb.GetPoint().GetLatitude(), emb.GetPoint().GetLongitude(); math.Abs(lat+38.405194783) > 1e-6 || math.Abs(lon-144.188958) > 1e-6 {
		t.Fatalf("EXIF position (%v, %v), want (-38.405194783, 144.188958)", lat, lon)
	}
	if emb.GetDevice().GetSoftware() != "Perfectly Clear Complete v3 3.6.3.1351" {
		t.Fatalf("EXIF software %q", emb.GetDevice().GetSoftware())
	}
	if ev.GetCapture().GetDevice().GetMake() != "What the collector typed" {
		t.Errorf("the collector's statement was overwritten: %v", ev.GetCapture())
	}
}

// TestVideoContainerMetadata: the server reads creation time and duration
// from an MP4's movie header and keeps them beside what the client stated.
func TestVideoContainerMetadata(t *testing.T) {
	s := backends()[0].start(t, servertest.Options{})
	c := s.env.Client(t, identity.RoleCollector)
	// ftyp, then moov/mvhd (version 0): created 2022-03-16T10:05:00Z,
	// timescale 600, duration 57000 (95 s), then some media data.
	mvhd := make([]byte, 100)
	created := uint32(time.Date(2022, 3, 16, 10, 5, 0, 0, time.UTC).Sub(time.Date(1904, 1, 1, 0, 0, 0, 0, time.UTC)) / time.Second)
	binary.BigEndian.PutUint32(mvhd[4:], created)
	binary.BigEndian.PutUint32(mvhd[12:], 600)
	binary.BigEndian.PutUint32(mvhd[16:], 57000)
	boxOf := func(typ string, payload []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(8+len(payload)))
		return append(append(b, typ...), payload...)
	}
	video := append(boxOf("ftyp", []byte("isom\x00\x00\x02\x00isomiso2mp41")), boxOf("moov", boxOf("mvhd", mvhd))...)
	video = append(video, boxOf("mdat", randomBytes(50000))...)
	md := meta("case-video", video)
	md.Kind = custodyv1.EvidenceKind_EVIDENCE_KIND_VIDEO
	resp, err := c.Upload(t.Context(), md, bytes.NewReader(video), nil)
	if err != nil {
		t.Fatal(err)
	}
	emb := resp.GetEvidence().GetEmbedded()
	if emb.GetCapturedAt().AsTime() != time.Date(2022, 3, 16, 10, 5, 0, 0, time.UTC) || emb.GetDuration().AsDuration() != 95*time.Second {
		t.Fatalf("embedded %v", emb)
	}
	if resp.GetEvidence().GetMediaType() != "video/mp4" {
		t.Errorf("media type %q", resp.GetEvidence().GetMediaType())
	}
}

// TestSeizureRecordNeverInClear stores a seizure record with an attachment
// and checks that none of its fields nor the attachment's bytes can be
// found anywhere under the data dir (catalog included) or in MinIO's
// drive, while the court can read it back and an auditor cannot.
func TestSeizureRecordNeverInClear(t *testing.T) {
	doc, err := os.ReadFile("../examples/seizure-record.json")
	if err != nil {
		t.Fatal(err)
	}
	var rec custodyv1.SeizureRecord
	if err := protojson.Unmarshal(doc, &rec); err != nil {
		t.Fatal(err)
	}
	markers := []string{"KESTREL-3", "PS-30-004471", "subj-7f3a9c", "Bezimenne", "defector", "batch-0001.eft"}
	attachment := []byte("FINGERPRINT-TEMPLATE-BYTES " + strings.Repeat("minutiae ", 5000))
	rec.RecordDigests = []*custodyv1.RecordDigest{{RecordRef: "batch-0001.eft", Sha256: sha(attachment)}}
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			s := be.start(t, servertest.Options{})
			c := s.env.Client(t, identity.RoleCollector)
			md := meta("case-filtration", attachment)
			md.Kind = custodyv1.EvidenceKind_EVIDENCE_KIND_OTHER
			md.SpecialCategory = true
			md.Filename = "KESTREL-3-export.eft"
			att, err := c.Upload(t.Context(), md, bytes.NewReader(attachment), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !att.GetEvidence().GetStorage().GetEncrypted() {
				t.Fatal("special-category attachment stored unencrypted")
			}
			created, err := c.CreateSeizureRecord(t.Context(), &custodyv1.CreateSeizureRecordRequest{
				CaseId: "case-filtration", Record: &rec, AttachmentEvidenceIds: []string{att.GetEvidence().GetEvidenceId()},
			})
			if err != nil {
				t.Fatal(err)
			}
			id := created.GetEvidence().GetEvidenceId()

			court := s.env.Client(t, identity.RoleCourt)
			got, err := court.GetSeizureRecord(t.Context(), &custodyv1.GetSeizureRecordRequest{EvidenceId: id, Purpose: "trial preparation"})
			if err != nil {
				t.Fatal(err)
			}
			if got.GetRecord().GetSourceSystem().GetSerialNumber() != "PS-30-004471" || len(got.GetAttachmentEvidenceIds()) != 1 {
				t.Fatalf("court reads back %v", got)
			}
			if !bytes.Equal(download(t, court, att.GetEvidence().GetEvidenceId()), attachment) {
				t.Fatal("attachment reads back wrong")
			}
			auditor := s.env.Client(t, identity.RoleAuditor)
			_, err = auditor.GetSeizureRecord(t.Context(), &custodyv1.GetSeizureRecordRequest{EvidenceId: id, Purpose: "curiosity"})
			if status.Code(err) != codes.PermissionDenied {
				t.Fatalf("auditor read: %v, want PermissionDenied", err)
			}
			if ev, err := auditor.GetEvidence(t.Context(), att.GetEvidence().GetEvidenceId()); err != nil || ev.GetFilename() != "" {
				t.Fatalf("auditor sees attachment metadata %v, %v", ev, err)
			}

			// Stop the service so every file is flushed, then search.
			if err := s.env.Stop(); err != nil {
				t.Fatal(err)
			}
			dirs := []string{s.dataDir}
			if s.minio != nil {
				dirs = append(dirs, s.minio.DataDir)
			}
			searched := 0
			for _, dir := range dirs {
				filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
					if err != nil || d.IsDir() {
						return err
					}
					searched++
					b, err := os.ReadFile(path)
					if err != nil {
						return err
					}
					for _, m := range append(markers, "FINGERPRINT-TEMPLATE-BYTES", "minutiae minutiae") {
						if bytes.Contains(b, []byte(m)) {
							t.Errorf("%s contains %q in clear", path, m)
						}
					}
					return nil
				})
			}
			// The catalog, log tiles, keys and objects at least.
			if searched < 10 {
				t.Fatalf("searched only %d files", searched)
			}
		})
	}
}

// TestSeizureRecordDigestsMatchAttachments: a record whose record_digests
// disagree with its attachments is refused, over gRPC (INVALID_ARGUMENT) and
// the gateway (400), naming the attachment or digest at fault; nothing is
// stored, logged or cataloged, and no field of the record reaches the
// service log. Digests that agree, in any order and case, are accepted.
func TestSeizureRecordDigestsMatchAttachments(t *testing.T) {
	doc, err := os.ReadFile("../examples/seizure-record.json")
	if err != nil {
		t.Fatal(err)
	}
	s := backends()[0].start(t, servertest.Options{})
	c := s.env.Client(t, identity.RoleCollector)
	const caseID = "case-digests"
	upload := func(data []byte, filename string) string {
		md := meta(caseID, data)
		md.Kind = custodyv1.EvidenceKind_EVIDENCE_KIND_OTHER
		md.SpecialCategory = true
		md.Filename = filename
		resp, err := c.Upload(t.Context(), md, bytes.NewReader(data), nil)
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetEvidence().GetEvidenceId()
	}
	first, second := []byte("first export "+strings.Repeat("1", 3000)), []byte("second export "+strings.Repeat("2", 3000))
	idFirst, idSecond := upload(first, "export-1.eft"), upload(second, "export-2.eft")
	record := func(digests ...string) *custodyv1.SeizureRecord {
		var rec custodyv1.SeizureRecord
		if err := protojson.Unmarshal(doc, &rec); err != nil {
			t.Fatal(err)
		}
		rec.RecordDigests = nil
		for i, d := range digests {
			rec.RecordDigests = append(rec.RecordDigests, &custodyv1.RecordDigest{RecordRef: fmt.Sprintf("batch-%04d.eft", i+1), Sha256: d})
		}
		return &rec
	}
	court := s.env.Client(t, identity.RoleCourt)
	items := func() int {
		list, err := court.ListEvidence(t.Context(), &custodyv1.ListEvidenceRequest{CaseId: caseID, PageSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		return len(list.GetEvidence())
	}
	logSize, objects, cataloged := s.logSize(t), s.storedObjects(t), items()
	wrong := sha([]byte("not what was attached"))

	for _, tc := range []struct {
		name        string
		digests     []string
		attachments []string
		want        []string
	}{
		{"an attachment not listed", []string{sha(first), wrong}, []string{idFirst, idSecond},
			[]string{"attachment_evidence_ids[1] (" + idSecond + `, file "export-2.eft") has sha256 ` + sha(second)}},
		{"a digest of no attachment", []string{sha(second), sha(first), wrong}, []string{idFirst, idSecond},
			[]string{"record_digests[2] (sha256 " + wrong + ") is the digest of none of the 2 attachment(s)"}},
		{"the only digest wrong", []string{wrong}, []string{idFirst},
			[]string{"attachment_evidence_ids[0] (" + idFirst + `, file "export-1.eft")`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.CreateSeizureRecord(t.Context(), &custodyv1.CreateSeizureRecordRequest{
				CaseId: caseID, Record: record(tc.digests...), AttachmentEvidenceIds: tc.attachments,
			})
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("got %v, want InvalidArgument", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(status.Convert(err).Message(), w) {
					t.Fatalf("message %q lacks %q", status.Convert(err).Message(), w)
				}
			}
		})
	}

	// The gateway: 400, with the same message.
	body, err := protojson.Marshal(&custodyv1.CreateSeizureRecordRequest{CaseId: caseID, Record: record(wrong), AttachmentEvidenceIds: []string{idFirst}})
	if err != nil {
		t.Fatal(err)
	}
	hc := s.env.HTTPClient(t, s.env.Creds(t, identity.RoleCollector).Certificate)
	resp, err := hc.Post(s.env.URL("/v1/seizure-records"), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(answer), "attachment_evidence_ids[0] ("+idFirst) {
		t.Fatalf("gateway: %d %s", resp.StatusCode, answer)
	}

	if got := s.logSize(t); got != logSize {
		t.Errorf("refused records were logged: log size %d, was %d", got, logSize)
	}
	if got := s.storedObjects(t); got != objects {
		t.Errorf("refused records were stored: %d objects, were %d", got, objects)
	}
	if got := items(); got != cataloged {
		t.Errorf("refused records were cataloged: %d items, were %d", got, cataloged)
	}
	for _, m := range []string{"KESTREL-3", "PS-30-004471", "subj-7f3a9c", "Bezimenne", "batch-0001.eft", "export-1.eft", "export-2.eft"} {
		if strings.Contains(s.env.Logs.String(), m) {
			t.Errorf("the service log contains %q", m)
		}
	}

	// Agreeing digests, in another order and upper case, are accepted.
	created, err := c.CreateSeizureRecord(t.Context(), &custodyv1.CreateSeizureRecordRequest{
		CaseId: caseID, Record: record(strings.ToUpper(sha(second)), sha(first)), AttachmentEvidenceIds: []string{idFirst, idSecond},
	})
	if err != nil || created.GetEvidence().GetEvidenceId() == "" {
		t.Fatalf("a record whose digests match its attachments: %v", err)
	}
}
