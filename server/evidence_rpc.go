package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/custody-dev/custody/evidence"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
	"github.com/custody-dev/custody/receipt"
)

// chunkSize is the size of content chunks the server streams.
const chunkSize = 256 << 10

// maxMetadata bounds an upload's metadata message.
const maxMetadata = 64 << 10

type evidenceService struct {
	custodyv1.UnimplementedEvidenceServiceServer
	svc *evidence.Service
	log *slog.Logger
}

func (e *evidenceService) Upload(stream custodyv1.EvidenceService_UploadServer) error {
	ctx := stream.Context()
	who, err := requireIdentity(ctx)
	if err != nil {
		return err
	}
	first, err := stream.Recv()
	if err != nil {
		return streamError(err)
	}
	md := first.GetMetadata()
	if md == nil {
		return fmt.Errorf("%w: the first upload message must carry metadata", evidence.ErrInvalid)
	}
	if n := proto.Size(md); n > maxMetadata {
		return fmt.Errorf("%w: the upload metadata is %d bytes, at most %d", evidence.ErrInvalid, n, maxMetadata)
	}
	var item evidence.Item
	var rcpt receipt.Receipt
	// Only a resumable upload whose metadata leaves sha256 empty ends with
	// a trailer (proto: UploadTrailer).
	body := &chunkReader{recv: stream.Recv, trailerDue: md.GetUploadId() != "" && md.GetSha256() == ""}
	if md.GetUploadId() != "" {
		item, rcpt, err = e.svc.IngestResumable(ctx, who, md.GetUploadId(), uploadMetaFromProto(md), md.GetResumeOffset(), body)
	} else if md.GetResumeOffset() != 0 {
		err = fmt.Errorf("%w: resume_offset needs an upload_id", evidence.ErrInvalid)
	} else {
		item, rcpt, err = e.svc.Ingest(ctx, who, uploadMetaFromProto(md), body)
	}
	if err != nil {
		return err
	}
	return stream.SendAndClose(&custodyv1.UploadResponse{Evidence: evidenceToProto(item), Receipt: receiptToProto(rcpt)})
}

// streamError turns the end of a client stream before the metadata into a
// domain error.
func streamError(err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: the upload stream carried no metadata", evidence.ErrInvalid)
	}
	return err
}

// chunkReader reads an upload's bytes from its stream messages, and the
// trailer that may end them (evidence.TrailerBody).
type chunkReader struct {
	recv func() (*custodyv1.UploadRequest, error)
	buf  []byte
	// trailerDue: the metadata left sha256 empty in a resumable upload, so
	// the stream may end with a trailer; any other stream must not.
	trailerDue bool
	trailer    *evidence.Trailer
	ended      bool
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.buf) == 0 {
		if c.ended {
			return 0, io.EOF
		}
		msg, err := c.recv()
		if err != nil {
			return 0, err
		}
		switch pl := msg.GetPayload().(type) {
		case *custodyv1.UploadRequest_Metadata:
			return 0, fmt.Errorf("%w: metadata may only come in the first upload message", evidence.ErrInvalid)
		case *custodyv1.UploadRequest_Trailer:
			if err := c.takeTrailer(pl.Trailer); err != nil {
				return 0, err
			}
			return 0, io.EOF
		}
		c.buf = msg.GetChunk()
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}

// takeTrailer keeps the trailer and checks that the stream ends with it.
func (c *chunkReader) takeTrailer(t *custodyv1.UploadTrailer) error {
	if !c.trailerDue {
		return fmt.Errorf("%w: an upload trailer ends only a resumable upload (upload_id set) whose metadata leaves sha256 empty; this one states sha256 in its metadata or is not resumable", evidence.ErrInvalid)
	}
	c.trailer = &evidence.Trailer{SHA256: t.GetSha256(), CollectorSignature: signatureFromProto(t.GetCollectorSignature())}
	c.ended = true
	switch _, err := c.recv(); {
	case err == nil:
		return fmt.Errorf("%w: the upload trailer must be the stream's last message", evidence.ErrInvalid)
	case !errors.Is(err, io.EOF):
		return err
	}
	return nil
}

// Trailer implements evidence.TrailerBody.
func (c *chunkReader) Trailer() *evidence.Trailer { return c.trailer }

func (e *evidenceService) GetUploadStatus(ctx context.Context, req *custodyv1.GetUploadStatusRequest) (*custodyv1.GetUploadStatusResponse, error) {
	who, err := requireIdentity(ctx)
	if err != nil {
		return nil, err
	}
	st, err := e.svc.UploadStatusOf(ctx, who, req.GetUploadId())
	if err != nil {
		return nil, err
	}
	return &custodyv1.GetUploadStatusResponse{UploadId: st.ID, ReceivedBytes: st.Received, SizeBytes: st.Size, ExpiresAt: timeToProto(st.ExpiresAt)}, nil
}

func (e *evidenceService) GetEvidence(ctx context.Context, req *custodyv1.GetEvidenceRequest) (*custodyv1.GetEvidenceResponse, error) {
	who, err := requireIdentity(ctx)
	if err != nil {
		return nil, err
	}
	item, err := e.svc.Get(ctx, who, req.GetEvidenceId())
	if err != nil {
		return nil, err
	}
	return &custodyv1.GetEvidenceResponse{Evidence: evidenceToProto(item)}, nil
}

func (e *evidenceService) ListEvidence(ctx context.Context, req *custodyv1.ListEvidenceRequest) (*custodyv1.ListEvidenceResponse, error) {
	who, err := requireIdentity(ctx)
	if err != nil {
		return nil, err
	}
	items, next, err := e.svc.List(ctx, who, req.GetCaseId(), req.GetPageToken(), int(req.GetPageSize()))
	if err != nil {
		return nil, err
	}
	resp := &custodyv1.ListEvidenceResponse{NextPageToken: next}
	for _, item := range items {
		resp.Evidence = append(resp.Evidence, evidenceToProto(item))
	}
	return resp, nil
}

func (e *evidenceService) Download(req *custodyv1.DownloadRequest, stream custodyv1.EvidenceService_DownloadServer) error {
	ctx := stream.Context()
	who, err := requireIdentity(ctx)
	if err != nil {
		return err
	}
	item, _, rc, err := e.svc.Open(ctx, who, req.GetEvidenceId(), evidence.Access{
		Purpose: req.GetPurpose(), Authority: authorityFromProto(req.GetAuthority()),
	})
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := stream.Send(&custodyv1.DownloadResponse{Payload: &custodyv1.DownloadResponse_Evidence{Evidence: evidenceToProto(item)}}); err != nil {
		return err
	}
	buf := make([]byte, chunkSize)
	for {
		n, err := io.ReadFull(rc, buf)
		if n > 0 {
			if serr := stream.Send(&custodyv1.DownloadResponse{Payload: &custodyv1.DownloadResponse_Chunk{Chunk: buf[:n]}}); serr != nil {
				return serr
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// seizureJSON is how seizure records are stored: protojson with the proto
// field names; the stored bytes are what is hashed and logged.
var seizureJSON = protojson.MarshalOptions{UseProtoNames: true}

func (e *evidenceService) CreateSeizureRecord(ctx context.Context, req *custodyv1.CreateSeizureRecordRequest) (*custodyv1.CreateSeizureRecordResponse, error) {
	who, err := requireIdentity(ctx)
	if err != nil {
		return nil, err
	}
	if err := validateSeizureRecord(req.GetRecord()); err != nil {
		return nil, err
	}
	doc, err := seizureJSON.Marshal(req.GetRecord())
	if err != nil {
		return nil, err
	}
	caseID := req.GetCaseId()
	if caseID == "" {
		caseID = req.GetRecord().GetCaseId()
	}
	var digests []string
	for _, d := range req.GetRecord().GetRecordDigests() {
		digests = append(digests, d.GetSha256())
	}
	item, rcpt, err := e.svc.CreateSeizureRecord(ctx, who, caseID, doc, req.GetAttachmentEvidenceIds(), digests, req.GetDescription())
	if err != nil {
		return nil, err
	}
	return &custodyv1.CreateSeizureRecordResponse{Evidence: evidenceToProto(item), Receipt: receiptToProto(rcpt)}, nil
}

func (e *evidenceService) GetSeizureRecord(ctx context.Context, req *custodyv1.GetSeizureRecordRequest) (*custodyv1.GetSeizureRecordResponse, error) {
	who, err := requireIdentity(ctx)
	if err != nil {
		return nil, err
	}
	item, doc, err := e.svc.ReadSeizureRecord(ctx, who, req.GetEvidenceId(), evidence.Access{
		Purpose: req.GetPurpose(), Authority: authorityFromProto(req.GetAuthority()),
	})
	if err != nil {
		return nil, err
	}
	var rec custodyv1.SeizureRecord
	if err := protojson.Unmarshal(doc, &rec); err != nil {
		// The parser's message quotes the document (names, places): it
		// goes neither to the log nor to the caller.
		e.log.WarnContext(ctx, "a stored seizure record does not parse", "evidence_id", item.ID)
		return nil, fmt.Errorf("%w: %s does not hold a seizure record document this service can read (CreateSeizureRecord did not make it); read its content with Download", evidence.ErrFailedPrecondition, item.ID)
	}
	return &custodyv1.GetSeizureRecordResponse{
		Evidence: evidenceToProto(item), Record: &rec, AttachmentEvidenceIds: item.Meta.SeizureAttachments,
	}, nil
}
