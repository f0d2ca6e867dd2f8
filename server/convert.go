package server

import (
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody-dev/custody/evidence"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
	"github.com/custody-dev/custody/receipt"
)

// kindFromProto maps the RPC enum to the domain kind ("" for unspecified).
func kindFromProto(k custodyv1.EvidenceKind) evidence.Kind {
	if k == custodyv1.EvidenceKind_EVIDENCE_KIND_UNSPECIFIED {
		return ""
	}
	name, ok := custodyv1.EvidenceKind_name[int32(k)]
	if !ok {
		return evidence.Kind("unknown")
	}
	return evidence.Kind(strings.ToLower(strings.TrimPrefix(name, "EVIDENCE_KIND_")))
}

func kindToProto(k string) custodyv1.EvidenceKind {
	return custodyv1.EvidenceKind(custodyv1.EvidenceKind_value["EVIDENCE_KIND_"+strings.ToUpper(k)])
}

func timeFromProto(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

func timeToProto(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func captureFromProto(c *custodyv1.Capture) evidence.Capture {
	if c == nil {
		return evidence.Capture{}
	}
	return evidence.Capture{
		CapturedAt: timeFromProto(c.GetCapturedAt()),
		Location:   locationFromProto(c.GetLocation()),
		Device:     deviceFromProto(c.GetDevice()),
	}
}

func locationFromProto(l *custodyv1.Location) *evidence.Location {
	if l == nil {
		return nil
	}
	out := &evidence.Location{Description: l.GetDescription()}
	if p := l.GetPoint(); p != nil {
		out.Point = &evidence.GeoPoint{Latitude: p.GetLatitude(), Longitude: p.GetLongitude(), AltitudeM: p.AltitudeM, AccuracyM: p.AccuracyM}
	}
	return out
}

func deviceFromProto(d *custodyv1.Device) *evidence.Device {
	if d == nil {
		return nil
	}
	return &evidence.Device{Make: d.GetMake(), Model: d.GetModel(), SerialNumber: d.GetSerialNumber(), UniqueID: d.GetUniqueId(), Software: d.GetSoftware()}
}

func captureToProto(c *evidence.Capture) *custodyv1.Capture {
	if c == nil {
		return nil
	}
	return &custodyv1.Capture{CapturedAt: timeToProto(c.CapturedAt), Location: locationToProto(c.Location), Device: deviceToProto(c.Device)}
}

func locationToProto(l *evidence.Location) *custodyv1.Location {
	if l == nil {
		return nil
	}
	out := &custodyv1.Location{Description: l.Description}
	if p := l.Point; p != nil {
		out.Point = &custodyv1.GeoPoint{Latitude: p.Latitude, Longitude: p.Longitude, AltitudeM: p.AltitudeM, AccuracyM: p.AccuracyM}
	}
	return out
}

func deviceToProto(d *evidence.Device) *custodyv1.Device {
	if d == nil {
		return nil
	}
	return &custodyv1.Device{Make: d.Make, Model: d.Model, SerialNumber: d.SerialNumber, UniqueId: d.UniqueID, Software: d.Software}
}

func uploadMetaFromProto(m *custodyv1.UploadMetadata) evidence.UploadMeta {
	return evidence.UploadMeta{
		CaseID:             m.GetCaseId(),
		Kind:               kindFromProto(m.GetKind()),
		SHA256:             m.GetSha256(),
		Size:               m.GetSizeBytes(),
		Filename:           m.GetFilename(),
		DeclaredMediaType:  m.GetDeclaredMediaType(),
		Description:        m.GetDescription(),
		Capture:            captureFromProto(m.GetCapture()),
		Special:            m.GetSpecialCategory(),
		DerivedFrom:        m.GetDerivedFrom(),
		CollectorSignature: signatureFromProto(m.GetCollectorSignature()),
	}
}

func evidenceToProto(ev evidence.Item) *custodyv1.Evidence {
	o := ev.Object
	out := &custodyv1.Evidence{
		EvidenceId:        ev.ID,
		CaseId:            ev.CaseID,
		Kind:              kindToProto(string(ev.Kind)),
		Sha256:            ev.SHA256,
		SizeBytes:         ev.Size,
		MediaType:         ev.MediaType,
		DeclaredMediaType: ev.DeclaredMediaType,
		Filename:          ev.Meta.Filename,
		Description:       ev.Meta.Description,
		Capture:           captureToProto(&ev.Meta.Capture),
		Embedded:          embeddedToProto(ev.Meta.Embedded),
		Collector:         ev.Collector,
		IngestedAt:        timeToProto(ev.IngestedAt),
		Storage: &custodyv1.StorageLocation{
			Backend: o.Backend, Bucket: o.Bucket, Key: o.Key, VersionId: o.VersionID,
			RetainUntil: timeToProto(o.RetainUntil), Encrypted: ev.Encrypted,
		},
		SpecialCategory: ev.Special,
		Custodian:       ev.Custodian,
		DerivedFrom:     ev.DerivedFrom,
	}
	if p := ev.Pending; p != nil {
		out.PendingRelease = &custodyv1.PendingRelease{To: p.To, Reason: p.Reason, ReleaseSequence: p.Seq, ExpiresAt: timeToProto(p.ExpiresAt)}
	}
	return out
}

func embeddedToProto(c *evidence.Capture) *custodyv1.EmbeddedMetadata {
	if c == nil {
		return nil
	}
	out := &custodyv1.EmbeddedMetadata{CapturedAt: timeToProto(c.CapturedAt), Device: deviceToProto(c.Device)}
	if c.Duration > 0 {
		out.Duration = durationpb.New(c.Duration)
	}
	if c.Location != nil && c.Location.Point != nil {
		out.Point = locationToProto(c.Location).Point
	}
	return out
}

func receiptToProto(r receipt.Receipt) *custodyv1.Receipt {
	return &custodyv1.Receipt{Payload: r.Payload, Signature: r.Signature, KeyId: r.KeyID}
}

func authorityFromProto(a *custodyv1.Authority) *evidence.Authority {
	if a == nil {
		return nil
	}
	return &evidence.Authority{
		Type: a.GetType(), Identifier: a.GetIdentifier(), IssuedBy: a.GetIssuedBy(),
		ValidFrom: timeFromProto(a.GetValidFrom()), ValidUntil: timeFromProto(a.GetValidUntil()),
	}
}
