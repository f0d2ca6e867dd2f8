// Tests of what the service reads from and keeps about content: EXIF and
// container metadata, and seizure records that must never be in clear.

package server_test

import (
	"bytes"
	"encoding/binary"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/servertest"
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
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			s := be.start(t, servertest.Options{})
			c := s.env.Client(t, identity.RoleCollector)
			md := meta("case-filtration", attachment)
			md.Kind = custodyv1.EvidenceKind_EVIDENCE_KIND_BIOMETRIC_SEIZURE_RECORD
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
