package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// The raw-body routes grpc-gateway cannot express. They call the gRPC
// server over the same in-memory connection as the gateway, forwarding the
// caller's certificate, so the same interceptors authenticate, log and
// count them, and the same domain code checks and records them.

// forwardedMetadata is what the HTTPS side passes to the gRPC server: the
// TLS client certificate chain and the request id, nothing else.
func forwardedMetadata(r *http.Request) metadata.MD {
	md := metadata.MD{}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		md.Set(forwardedChainKey, encodeChain(r.TLS.PeerCertificates))
	}
	if id := r.Header.Get("X-Request-Id"); id != "" {
		md.Set(requestIDKey, id)
	}
	return md
}

var restJSON = protojson.MarshalOptions{UseProtoNames: true}

// writeStatus writes a gRPC status as the gateway would: its HTTP status
// (httpStatus) and {"code","message"}. The raw routes call through gRPC,
// so err is the status the error interceptor made.
func writeStatus(w http.ResponseWriter, err error) {
	st := status.Convert(err)
	writeJSON(w, httpStatus(err), errorBody{Code: int(st.Code()), Message: st.Message()})
}

func badRequest(w http.ResponseWriter, format string, args ...any) {
	writeError(w, http.StatusBadRequest, fmt.Sprintf(format, args...))
}

// handleUpload serves POST /v1/evidence:upload?case_id=&kind=&sha256=&filename=
// with the raw bytes as body. Optional: kind (inferred from the bytes when
// absent), description, captured_at (RFC 3339), special_category=true,
// derived_from, size_bytes (when the body is sent without Content-Length),
// declared_media_type. The declared media type is what the caller
// declares explicitly (declaredMediaType), never a default.
func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	md, err := uploadMetadataFromQuery(q, r.ContentLength, r.Header.Get("Content-Type"))
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	ctx, cancel := context.WithCancel(metadata.NewOutgoingContext(r.Context(), forwardedMetadata(r)))
	defer cancel()
	stream, err := custodyv1.NewEvidenceServiceClient(s.gateway).Upload(ctx)
	if err != nil {
		writeStatus(w, err)
		return
	}
	// The body is read while a stuck read is watched: a caller that sends
	// nothing for the idle timeout is cut off, and so is one still sending
	// when the server has already answered (refused the upload, or ended
	// it), so no handler waits on a silent caller.
	stall := newStallWatch(s.limits.StreamIdleTimeout, http.NewResponseController(w).SetReadDeadline)
	defer stall.close()
	body := &watchedBody{r: r.Body, watch: stall}
	type answer struct {
		resp *custodyv1.UploadResponse
		err  error
	}
	answered := make(chan answer, 1)
	if err := stream.Send(&custodyv1.UploadRequest{Payload: &custodyv1.UploadRequest_Metadata{Metadata: md}}); err == nil {
		go func() {
			resp := new(custodyv1.UploadResponse)
			err := stream.RecvMsg(resp)
			stall.stop(errAnswered)
			answered <- answer{resp, err}
		}()
		buf := make([]byte, chunkSize)
	read:
		for {
			n, rerr := body.Read(buf)
			if n > 0 {
				if err := stream.Send(&custodyv1.UploadRequest{Payload: &custodyv1.UploadRequest_Chunk{Chunk: buf[:n]}}); err != nil {
					break // the server ended the call; its answer tells why
				}
			}
			switch {
			case errors.Is(rerr, io.EOF):
				stream.CloseSend()
				break read
			case errors.Is(rerr, errAnswered):
				break read
			case errors.Is(rerr, errStalled):
				cancel() // the server keeps nothing
				writeError(w, http.StatusRequestTimeout, fmt.Sprintf("no byte of the body arrived for %v: the upload was closed and nothing from it was kept", s.limits.StreamIdleTimeout))
				return
			case rerr != nil:
				// The caller went away or sent a broken body: cancel, so
				// the server keeps nothing.
				cancel()
				return
			}
		}
	} else {
		resp, err := stream.CloseAndRecv()
		answered <- answer{resp, err}
	}
	a := <-answered
	if a.err != nil {
		if status.Code(a.err) == codes.DeadlineExceeded {
			// The server found the stream idle: the caller's body stalled.
			writeError(w, http.StatusRequestTimeout, status.Convert(a.err).Message())
			return
		}
		writeStatus(w, a.err)
		return
	}
	b, _ := restJSON.Marshal(a.resp)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	w.Write(b)
}

var (
	errStalled  = errors.New("the transfer stalled")
	errAnswered = errors.New("the server answered")
)

// stallWatch ends a body transfer when one Read or Write has been blocked
// for the idle timeout, or on stop: it moves the connection's (HTTP/1.1)
// or stream's (HTTP/2) deadline into the past, which makes the blocked
// call fail. Deadlines are only touched while a call is blocked, so an
// HTTP/1.1 connection that finished its body stays usable.
type stallWatch struct {
	mu       sync.Mutex
	timeout  time.Duration
	deadline func(time.Time) error
	busy     bool
	since    time.Time
	reason   error
	timer    *time.Timer
}

func newStallWatch(timeout time.Duration, deadline func(time.Time) error) *stallWatch {
	w := &stallWatch{timeout: timeout, deadline: deadline}
	w.mu.Lock()
	w.timer = time.AfterFunc(timeout, w.check)
	w.mu.Unlock()
	return w
}

func (w *stallWatch) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.reason != nil {
		return
	}
	next := w.timeout
	if w.busy {
		if blocked := time.Since(w.since); blocked >= w.timeout {
			w.endLocked(errStalled)
			return
		} else {
			next = w.timeout - blocked
		}
	}
	w.timer.Reset(next)
}

func (w *stallWatch) endLocked(reason error) {
	w.reason = reason
	if w.busy {
		w.deadline(time.Unix(1, 0))
	}
}

// begin marks a call blocked from now, or returns why the transfer ended.
func (w *stallWatch) begin() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.reason != nil {
		return w.reason
	}
	w.busy, w.since = true, time.Now()
	return nil
}

// end marks the call done and returns why the transfer was ended, if it
// was (then the call's own error is only the deadline's).
func (w *stallWatch) end() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.busy = false
	return w.reason
}

// stop ends the transfer now, for reason.
func (w *stallWatch) stop(reason error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.reason == nil {
		w.endLocked(reason)
	}
}

func (w *stallWatch) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timer.Stop()
}

// watchedBody reads a request body under a stallWatch.
type watchedBody struct {
	r     io.Reader
	watch *stallWatch
}

func (b *watchedBody) Read(p []byte) (int, error) {
	if err := b.watch.begin(); err != nil {
		return 0, err
	}
	n, err := b.r.Read(p)
	if reason := b.watch.end(); reason != nil && err != nil && !errors.Is(err, io.EOF) {
		err = reason
	}
	return n, err
}

// declaredMediaType is the media type a raw upload declares explicitly,
// normalised (lower case, parameters as mime.FormatMediaType writes them),
// or "" when it declares none. Explicit are the query parameter
// declared_media_type, and a Content-Type other than
// application/octet-stream (what clients send for "some bytes") and other
// than the form and text types a browser sends cross-site
// (corsSafelisted: curl's default application/x-www-form-urlencoded among
// them), which browserGuard refuses before this is reached; the query
// parameter is how to declare one of those, e.g. text/plain. A query
// parameter and an explicit Content-Type that differ are refused. The
// media type the item is recorded as is always the one sniffed from its
// bytes; the declaration is kept beside it.
func declaredMediaType(param, contentType string) (string, error) {
	var fromParam, fromHeader string
	if param != "" {
		mt, params, err := mime.ParseMediaType(param)
		if err != nil || !strings.Contains(mt, "/") {
			return "", fmt.Errorf("declared_media_type %q is not a media type (type/subtype)", truncateText(param, 64))
		}
		fromParam = mime.FormatMediaType(mt, params)
	}
	if mt, params, err := mime.ParseMediaType(contentType); err == nil && strings.Contains(mt, "/") && mt != "application/octet-stream" && !corsSafelisted[mt] {
		fromHeader = mime.FormatMediaType(mt, params)
	}
	if fromParam != "" && fromHeader != "" && fromParam != fromHeader {
		return "", fmt.Errorf("declared_media_type %s and Content-Type %s differ: declare the file's media type once (Content-Type application/octet-stream with the parameter)", fromParam, fromHeader)
	}
	if fromParam != "" {
		return fromParam, nil
	}
	return fromHeader, nil
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// The query parameters of the raw routes; /openapi.json documents each
// (proto/custody/v1/openapi_raw.json, TestRawRouteParametersDocumented).
var (
	uploadQueryParams = []string{"case_id", "kind", "sha256", "filename", "description", "captured_at", "special_category",
		"derived_from", "size_bytes", "upload_id", "resume_offset", "declared_media_type"}
	contentQueryParams = []string{"purpose", "authority_type", "authority_id", "authority_issued_by", "authority_valid_from",
		"authority_valid_until"}
	bundleStreamQueryParams = []string{"consistency_from_size"}
)

// uploadMetadataFromQuery builds upload metadata from query parameters.
func uploadMetadataFromQuery(q map[string][]string, contentLength int64, contentType string) (*custodyv1.UploadMetadata, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	for k, v := range q {
		if len(v) > 1 {
			return nil, fmt.Errorf("query parameter %s is given %d times", k, len(v))
		}
		if !slices.Contains(uploadQueryParams, k) {
			return nil, fmt.Errorf("unknown query parameter %q", k)
		}
	}
	declared, err := declaredMediaType(get("declared_media_type"), contentType)
	if err != nil {
		return nil, err
	}
	md := &custodyv1.UploadMetadata{
		CaseId:            get("case_id"),
		Sha256:            get("sha256"),
		Filename:          get("filename"),
		Description:       get("description"),
		DerivedFrom:       get("derived_from"),
		DeclaredMediaType: declared,
	}
	if k := get("kind"); k != "" {
		v, ok := custodyv1.EvidenceKind_value["EVIDENCE_KIND_"+strings.ToUpper(k)]
		if !ok || v == 0 {
			return nil, fmt.Errorf("kind %q is not one of photo, video, audio, document, biometric_seizure_record, other", k)
		}
		md.Kind = custodyv1.EvidenceKind(v)
	}
	switch get("special_category") {
	case "", "false":
	case "true":
		md.SpecialCategory = true
	default:
		return nil, fmt.Errorf("special_category must be true or false")
	}
	if s := get("captured_at"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, fmt.Errorf("captured_at %q is not an RFC 3339 time", s)
		}
		md.Capture = &custodyv1.Capture{CapturedAt: timestamppb.New(t)}
	}
	md.SizeBytes = contentLength
	md.UploadId = get("upload_id")
	if s := get("resume_offset"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("resume_offset %q is not a byte offset", s)
		}
		md.ResumeOffset = n
	}
	if s := get("size_bytes"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("size_bytes %q is not a byte count", s)
		}
		// A resumable upload's body may be any part of the rest.
		if md.UploadId == "" && contentLength >= 0 && n != contentLength {
			return nil, fmt.Errorf("size_bytes %d differs from Content-Length %d", n, contentLength)
		}
		md.SizeBytes = n
	} else if md.UploadId != "" {
		return nil, errors.New("a resumable upload (upload_id) needs size_bytes, the item's whole size")
	}
	if md.SizeBytes < 0 {
		return nil, errors.New("the body's size is unknown: send Content-Length or size_bytes")
	}
	return md, nil
}

// handleBundleStream serves GET /v1/evidence/{id}/bundle:stream: the
// bundle in the stream form, JSON lines (docs/BUNDLE.md). Optional:
// consistency_from_size.
func (s *Server) handleBundleStream(w http.ResponseWriter, r *http.Request) {
	req := &custodyv1.StreamBundleRequest{EvidenceId: r.PathValue("id")}
	for k, v := range r.URL.Query() {
		if !slices.Contains(bundleStreamQueryParams, k) || len(v) > 1 {
			writeStatus(w, status.Errorf(codes.InvalidArgument, "unknown or repeated query parameter %q (this route takes consistency_from_size)", k))
			return
		}
	}
	if v := r.URL.Query().Get("consistency_from_size"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeStatus(w, status.Error(codes.InvalidArgument, "consistency_from_size is not a number"))
			return
		}
		req.ConsistencyFromSize = n
	}
	ctx, cancel := context.WithCancel(metadata.NewOutgoingContext(r.Context(), forwardedMetadata(r)))
	defer cancel()
	stream, err := custodyv1.NewCustodyServiceClient(s.gateway).StreamBundle(ctx, req)
	if err != nil {
		writeStatus(w, err)
		return
	}
	first, err := stream.Recv()
	if err != nil {
		writeStatus(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/jsonl")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	for msg := first; ; {
		if _, err := w.Write(append(msg.GetLine(), '\n')); err != nil {
			return
		}
		if msg, err = stream.Recv(); errors.Is(err, io.EOF) {
			return
		} else if err != nil {
			// Headers are sent: cut the connection so the stream is
			// visibly incomplete (the verifier also counts its lines).
			s.log.WarnContext(r.Context(), "bundle stream failed mid-way", "evidence_id", req.GetEvidenceId(), "err", err)
			panic(http.ErrAbortHandler)
		}
	}
}

// downloadRequestFromQuery builds a download request from the content
// route's query parameters; any other parameter, or one given twice, is
// refused.
func downloadRequestFromQuery(id string, q map[string][]string) (*custodyv1.DownloadRequest, error) {
	for _, k := range slices.Sorted(maps.Keys(q)) {
		v := q[k]
		if !slices.Contains(contentQueryParams, k) {
			return nil, fmt.Errorf("unknown query parameter %q (this route takes %s)", k, strings.Join(contentQueryParams, ", "))
		}
		if len(v) > 1 {
			return nil, fmt.Errorf("query parameter %s is given %d times", k, len(v))
		}
	}
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	req := &custodyv1.DownloadRequest{EvidenceId: id, Purpose: get("purpose")}
	a := &custodyv1.Authority{Type: get("authority_type"), Identifier: get("authority_id"), IssuedBy: get("authority_issued_by")}
	for _, f := range []struct {
		name string
		to   **timestamppb.Timestamp
	}{{"authority_valid_from", &a.ValidFrom}, {"authority_valid_until", &a.ValidUntil}} {
		if v := get(f.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return nil, fmt.Errorf("%s %q is not an RFC 3339 time", f.name, v)
			}
			*f.to = timestamppb.New(t)
		}
	}
	if a.Type != "" || a.Identifier != "" || a.IssuedBy != "" || a.ValidFrom != nil || a.ValidUntil != nil {
		req.Authority = a
	}
	return req, nil
}

// handleContent serves GET /v1/evidence/{id}/content?purpose= with the
// exact stored bytes. Optional: the authority cited for the read,
// authority_type, authority_id, authority_issued_by, authority_valid_from
// and authority_valid_until (RFC 3339).
func (s *Server) handleContent(w http.ResponseWriter, r *http.Request) {
	req, err := downloadRequestFromQuery(r.PathValue("id"), r.URL.Query())
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	ctx, cancel := context.WithCancel(metadata.NewOutgoingContext(r.Context(), forwardedMetadata(r)))
	defer cancel()
	stream, err := custodyv1.NewEvidenceServiceClient(s.gateway).Download(ctx, req)
	if err != nil {
		writeStatus(w, err)
		return
	}
	first, err := stream.Recv()
	if err != nil {
		writeStatus(w, err)
		return
	}
	ev := first.GetEvidence()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(ev.GetSizeBytes(), 10))
	h.Set("X-Custody-Sha256", ev.GetSha256())
	h.Set("X-Custody-Media-Type", ev.GetMediaType())
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Disposition", `attachment; filename="`+ev.GetEvidenceId()+`"`)
	w.WriteHeader(http.StatusOK)
	// A caller that stops reading is cut off once one write has been
	// blocked for the idle timeout.
	stall := newStallWatch(s.limits.StreamIdleTimeout, http.NewResponseController(w).SetWriteDeadline)
	defer stall.close()
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			// Headers are sent: end the connection so the body is visibly
			// short of Content-Length; the bytes held back never go out.
			s.log.WarnContext(r.Context(), "content download failed mid-stream", "evidence_id", ev.GetEvidenceId(), "err", err)
			panic(http.ErrAbortHandler)
		}
		if err := stall.begin(); err != nil {
			return
		}
		_, err = w.Write(msg.GetChunk())
		if reason := stall.end(); reason != nil {
			s.log.InfoContext(r.Context(), "content download closed: the caller stopped reading", "evidence_id", ev.GetEvidenceId(), "idle", s.limits.StreamIdleTimeout)
			panic(http.ErrAbortHandler)
		}
		if err != nil {
			return
		}
	}
}
