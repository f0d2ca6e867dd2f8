package server

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody-dev/custody/catalog"
	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/evidence"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

type custodyService struct {
	custodyv1.UnimplementedCustodyServiceServer
	svc *evidence.Service
}

func signatureFromProto(p *custodyv1.PartySignature) *evidence.Signature {
	if p == nil {
		return nil
	}
	return &evidence.Signature{Signature: p.GetSignature(), Certificate: p.GetCertificate(), SignedAt: timeFromProto(p.GetSignedAt())}
}

func (c *custodyService) ReleaseCustody(ctx context.Context, req *custodyv1.ReleaseCustodyRequest) (*custodyv1.ReleaseCustodyResponse, error) {
	who, err := requireIdentity(ctx)
	if err != nil {
		return nil, err
	}
	ev, err := c.svc.Release(ctx, who, req.GetEvidenceId(), evidence.Handoff{
		To: req.GetTo(), Reason: req.GetReason(), Signature: signatureFromProto(req.GetSignature()), Location: locationFromProto(req.GetLocation()),
	})
	if err != nil {
		return nil, err
	}
	return &custodyv1.ReleaseCustodyResponse{Event: eventToProto(ev.Record, ev.Event), Receipt: receiptToProto(ev.Receipt)}, nil
}

func (c *custodyService) AcceptCustody(ctx context.Context, req *custodyv1.AcceptCustodyRequest) (*custodyv1.AcceptCustodyResponse, error) {
	who, err := requireIdentity(ctx)
	if err != nil {
		return nil, err
	}
	ev, err := c.svc.Accept(ctx, who, req.GetEvidenceId(), evidence.Handoff{
		ReleaseSeq: req.GetReleaseSequence(), Signature: signatureFromProto(req.GetSignature()), Location: locationFromProto(req.GetLocation()),
	})
	if err != nil {
		return nil, err
	}
	return &custodyv1.AcceptCustodyResponse{Event: eventToProto(ev.Record, ev.Event), Receipt: receiptToProto(ev.Receipt)}, nil
}

func (c *custodyService) CancelRelease(ctx context.Context, req *custodyv1.CancelReleaseRequest) (*custodyv1.CancelReleaseResponse, error) {
	who, err := requireIdentity(ctx)
	if err != nil {
		return nil, err
	}
	ev, err := c.svc.CancelRelease(ctx, who, req.GetEvidenceId(), evidence.Handoff{ReleaseSeq: req.GetReleaseSequence(), Reason: req.GetReason()})
	if err != nil {
		return nil, err
	}
	return &custodyv1.CancelReleaseResponse{Event: eventToProto(ev.Record, ev.Event), Receipt: receiptToProto(ev.Receipt)}, nil
}

func eventTypeFromProto(t custodyv1.EventType) events.Type {
	if t == custodyv1.EventType_EVENT_TYPE_UNSPECIFIED {
		return ""
	}
	return events.Type(strings.ToLower(strings.TrimPrefix(t.String(), "EVENT_TYPE_")))
}

func eventTypeToProto(t events.Type) custodyv1.EventType {
	return custodyv1.EventType(custodyv1.EventType_value["EVENT_TYPE_"+strings.ToUpper(string(t))])
}

func (c *custodyService) RecordEvent(ctx context.Context, req *custodyv1.RecordEventRequest) (*custodyv1.RecordEventResponse, error) {
	who, err := requireIdentity(ctx)
	if err != nil {
		return nil, err
	}
	in := evidence.EventInput{
		Type: eventTypeFromProto(req.GetType()), Note: req.GetNote(), Purpose: req.GetPurpose(),
		Authority: authorityFromProto(req.GetAuthority()), Location: locationFromProto(req.GetLocation()),
		StartedAt: timeFromProto(req.GetStartedAt()), EndedAt: timeFromProto(req.GetEndedAt()),
		RelatedEvidenceID: req.GetRelatedEvidenceId(),
	}
	if i := req.GetInstrument(); i != nil {
		in.Instrument = &evidence.Instrument{Name: i.GetName(), Version: i.GetVersion()}
	}
	if o := req.GetOutcome(); o != custodyv1.Outcome_OUTCOME_UNSPECIFIED {
		in.Outcome = strings.ToLower(strings.TrimPrefix(o.String(), "OUTCOME_"))
	}
	ev, err := c.svc.RecordEvent(ctx, who, req.GetEvidenceId(), in)
	if err != nil {
		return nil, err
	}
	return &custodyv1.RecordEventResponse{Event: eventToProto(ev.Record, ev.Event), Receipt: receiptToProto(ev.Receipt)}, nil
}

func (c *custodyService) ListEvents(ctx context.Context, req *custodyv1.ListEventsRequest) (*custodyv1.ListEventsResponse, error) {
	who, err := requireIdentity(ctx)
	if err != nil {
		return nil, err
	}
	var from uint64
	if t := req.GetPageToken(); t != "" {
		if from, err = strconv.ParseUint(t, 10, 64); err != nil || from == 0 {
			return nil, status.Error(codes.InvalidArgument, "page_token is not one this service gave out")
		}
	}
	if req.GetPageSize() < 0 {
		return nil, status.Error(codes.InvalidArgument, "page_size is negative")
	}
	recs, rows, next, err := c.svc.Events(ctx, who, req.GetEvidenceId(), from, int(req.GetPageSize()))
	if err != nil {
		return nil, err
	}
	resp := &custodyv1.ListEventsResponse{}
	if next > 0 {
		resp.NextPageToken = strconv.FormatUint(next, 10)
	}
	for i := range recs {
		resp.Events = append(resp.Events, eventToProto(recs[i], rows[i]))
	}
	return resp, nil
}

// eventToProto renders a record and its log position.
func eventToProto(rec events.Record, row catalog.Event) *custodyv1.CustodyEvent {
	d := rec.Details
	str := func(k string) string { v, _ := d[k].(string); return v }
	out := &custodyv1.CustodyEvent{
		EvidenceId:        rec.EvidenceID,
		Sequence:          rec.Sequence,
		Type:              eventTypeToProto(rec.Type),
		RecordedAt:        timeToProto(rec.RecordedAt),
		Performer:         rec.Performer,
		Counterparty:      rec.Counterparty,
		Purpose:           rec.Purpose,
		Note:              firstNonEmpty(str("note"), str("reason")),
		RelatedEvidenceId: str("related_evidence_id"),
		RelatedSha256:     str("related_sha256"),
		LogIndex:          row.LogIndex,
		LeafHash:          hex.EncodeToString(row.LeafHash[:]),
	}
	if rec.Previous != nil {
		idx := rec.Previous.Index
		out.PreviousLogIndex = &idx
		out.PreviousLeafHash = hex.EncodeToString(rec.Previous.LeafHash[:])
	}
	if i, ok := d["instrument"].(map[string]any); ok {
		name, _ := i["name"].(string)
		version, _ := i["version"].(string)
		out.Instrument = &custodyv1.Instrument{Name: name, Version: version}
	}
	if a, ok := d["authority"].(map[string]any); ok {
		out.Authority = authorityFromDetails(a)
	}
	if o := str("outcome"); o != "" {
		out.Outcome = custodyv1.Outcome(custodyv1.Outcome_value["OUTCOME_"+strings.ToUpper(o)])
	}
	return out
}

// authorityFromDetails renders the authority a record cites.
func authorityFromDetails(a map[string]any) *custodyv1.Authority {
	str := func(k string) string { v, _ := a[k].(string); return v }
	ts := func(k string) *timestamppb.Timestamp {
		t, err := time.Parse(time.RFC3339Nano, str(k))
		if err != nil {
			return nil
		}
		return timestamppb.New(t)
	}
	return &custodyv1.Authority{Type: str("type"), Identifier: str("identifier"), IssuedBy: str("issued_by"), ValidFrom: ts("valid_from"), ValidUntil: ts("valid_until")}
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func (c *custodyService) GetBundle(ctx context.Context, req *custodyv1.GetBundleRequest) (*custodyv1.GetBundleResponse, error) {
	who, err := requireIdentity(ctx)
	if err != nil {
		return nil, err
	}
	b, err := c.svc.Bundle(ctx, who, req.GetEvidenceId(), req.GetConsistencyFromSize())
	if err != nil {
		return nil, err
	}
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return nil, err
	}
	return &custodyv1.GetBundleResponse{Bundle: &httpbody.HttpBody{ContentType: "application/json", Data: data}}, nil
}

func (c *custodyService) StreamBundle(req *custodyv1.StreamBundleRequest, stream grpc.ServerStreamingServer[custodyv1.StreamBundleResponse]) error {
	ctx := stream.Context()
	who, err := requireIdentity(ctx)
	if err != nil {
		return err
	}
	err = c.svc.StreamBundle(ctx, who, req.GetEvidenceId(), req.GetConsistencyFromSize(), func(line []byte) error {
		return stream.Send(&custodyv1.StreamBundleResponse{Line: line})
	})
	if err != nil {
		return err
	}
	return nil
}

func (c *custodyService) VerifyEvidence(ctx context.Context, req *custodyv1.VerifyEvidenceRequest) (*custodyv1.VerifyEvidenceResponse, error) {
	who, err := requireIdentity(ctx)
	if err != nil {
		return nil, err
	}
	v, err := c.svc.VerifyStored(ctx, who, req.GetEvidenceId())
	if err != nil {
		return nil, err
	}
	resp := &custodyv1.VerifyEvidenceResponse{Ok: v.OK, Event: eventToProto(v.Event.Record, v.Event.Event), VerifiedAt: timeToProto(v.Event.RecordedAt)}
	for _, ch := range v.Checks {
		resp.Checks = append(resp.Checks, &custodyv1.VerificationCheck{Name: ch.Name, Ok: ch.OK, Detail: ch.Detail})
	}
	return resp, nil
}
