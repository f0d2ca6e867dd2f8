package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/custody-dev/custody/custodylog"
	"github.com/custody-dev/custody/evidence"
	"github.com/custody-dev/custody/failure"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// Log is what the server reads of the custody log: checkpoints, entries
// and proofs for the LogService, raw tlog-tiles resources for /log/, and
// the integration backlog for /metrics (*custodylog.Log implements it; the
// log's storage engine is none of the server's business).
type Log interface {
	// Origin is the log's origin line.
	Origin() string
	// Latest is the latest signed checkpoint, verified.
	Latest(ctx context.Context) (custodylog.Published, error)
	// Entry reads the entry at index from the tree of size treeSize.
	Entry(ctx context.Context, index, treeSize uint64) ([]byte, error)
	// InclusionProof and ConsistencyProof prove against a tree size; an
	// index or size past it is custodylog.ErrBeyondTree.
	InclusionProof(ctx context.Context, index, treeSize uint64) ([][]byte, error)
	ConsistencyProof(ctx context.Context, first, second uint64) ([][]byte, error)
	// Resource reads a public resource by its tlog-tiles path; a missing
	// one is os.ErrNotExist.
	Resource(ctx context.Context, path string) ([]byte, error)
	// Backlog is how many sequenced entries are not yet integrated.
	Backlog(ctx context.Context) (uint64, error)
	// Witnesses is how far each witness of the policy lags (nil: none).
	Witnesses(ctx context.Context) ([]custodylog.WitnessState, error)
	// Timestamping is how far timestamping lags (ok false: no
	// authorities); Timestamped the newest timestamped checkpoint
	// including index.
	Timestamping(ctx context.Context) (custodylog.TimestampState, bool, error)
	Timestamped(ctx context.Context, index uint64) (custodylog.Stamped, bool, error)
	// HistoryMapping is how far the history map lags (an error: the log
	// keeps none).
	HistoryMapping(ctx context.Context) (custodylog.HistoryState, error)
}

type logService struct {
	custodyv1.UnimplementedLogServiceServer
	keys PublicKeys
	log  Log
}

// latest is the current checkpoint, or UNAVAILABLE before the first one.
func (l *logService) latest(ctx context.Context) (custodylog.Published, error) {
	cp, err := l.log.Latest(ctx)
	if err != nil {
		return cp, failure.Wrap(failure.Unavailable, "unavailable: no checkpoint can be read now; retry shortly", err)
	}
	return cp, nil
}

func (l *logService) GetCheckpoint(ctx context.Context, _ *custodyv1.GetCheckpointRequest) (*custodyv1.GetCheckpointResponse, error) {
	cp, err := l.latest(ctx)
	if err != nil {
		return nil, err
	}
	return &custodyv1.GetCheckpointResponse{Checkpoint: cp.Raw, Origin: l.log.Origin(), Size: cp.Size, RootHash: cp.Root}, nil
}

// treeSize resolves a requested size: 0 means the latest checkpoint's,
// which is then returned too.
func (l *logService) treeSize(ctx context.Context, size uint64) (uint64, []byte, error) {
	cp, err := l.latest(ctx)
	if err != nil {
		return 0, nil, err
	}
	if size == 0 {
		return cp.Size, cp.Raw, nil
	}
	if size > cp.Size {
		return 0, nil, fmt.Errorf("%w: tree size %d is past the latest checkpoint (%d)", evidence.ErrInvalid, size, cp.Size)
	}
	return size, nil, nil
}

// logError maps the log's errors: an index or size past the tree is the
// caller's (its text names only numbers); anything else is the log's, for
// the server's log only.
func logError(err error) error {
	switch {
	case errors.Is(err, custodylog.ErrBeyondTree):
		return fmt.Errorf("%w: %v", evidence.ErrInvalid, err)
	case err != nil:
		return failure.Wrap(failure.Unavailable, "unavailable: the custody log cannot be read now; retry later", err)
	}
	return nil
}

func (l *logService) GetInclusionProof(ctx context.Context, req *custodyv1.GetInclusionProofRequest) (*custodyv1.GetInclusionProofResponse, error) {
	size, raw, err := l.treeSize(ctx, req.GetTreeSize())
	if err != nil {
		return nil, err
	}
	proof, err := l.log.InclusionProof(ctx, req.GetIndex(), size)
	if err != nil {
		return nil, logError(err)
	}
	entry, err := l.log.Entry(ctx, req.GetIndex(), size)
	if err != nil {
		return nil, logError(err)
	}
	leaf := custodylog.LeafHash(entry)
	return &custodyv1.GetInclusionProofResponse{Index: req.GetIndex(), TreeSize: size, LeafHash: leaf[:], Hashes: proof, Checkpoint: raw}, nil
}

func (l *logService) GetConsistencyProof(ctx context.Context, req *custodyv1.GetConsistencyProofRequest) (*custodyv1.GetConsistencyProofResponse, error) {
	size, raw, err := l.treeSize(ctx, req.GetSecondSize())
	if err != nil {
		return nil, err
	}
	proof, err := l.log.ConsistencyProof(ctx, req.GetFirstSize(), size)
	if err != nil {
		return nil, logError(err)
	}
	return &custodyv1.GetConsistencyProofResponse{FirstSize: req.GetFirstSize(), SecondSize: size, Hashes: proof, Checkpoint: raw}, nil
}

func (l *logService) GetEntry(ctx context.Context, req *custodyv1.GetEntryRequest) (*custodyv1.GetEntryResponse, error) {
	size, _, err := l.treeSize(ctx, 0)
	if err != nil {
		return nil, err
	}
	entry, err := l.log.Entry(ctx, req.GetIndex(), size)
	if err != nil {
		return nil, logError(err)
	}
	leaf := custodylog.LeafHash(entry)
	return &custodyv1.GetEntryResponse{Index: req.GetIndex(), Entry: entry, LeafHash: leaf[:]}, nil
}

func (l *logService) GetPublicKeys(context.Context, *custodyv1.GetPublicKeysRequest) (*custodyv1.GetPublicKeysResponse, error) {
	resp := &custodyv1.GetPublicKeysResponse{
		LogVerifierKey:      l.keys.LogVerifierKey,
		LogOrigin:           l.keys.LogOrigin,
		ReceiptPublicKeyPem: l.keys.ReceiptPublicKeyPEM,
		ClientCaPem:         l.keys.ClientCAPEM,
		WitnessPolicy:       l.keys.WitnessPolicy,
	}
	for _, a := range l.keys.Authorities {
		resp.TimestampAuthorities = append(resp.TimestampAuthorities, &custodyv1.TimestampAuthority{Url: a.URL, ChainPem: a.ChainPEM})
	}
	return resp, nil
}

// logPath matches the C2SP tlog-tiles resources: the checkpoint, tiles
// (tile/<L>/<N>[.p/<W>]) and entry bundles (tile/entries/<N>[.p/<W>]).
var logPath = regexp.MustCompile(`^(checkpoint|tile/(entries|[0-9]+)/(x[0-9]{3}/)*[0-9]{3}(\.p/[0-9]{1,3})?)$`)

// logHandler serves the log's public resources read-only under /log/,
// from whichever storage holds them (never .state or other files).
func logHandler(l Log, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeError(w, http.StatusMethodNotAllowed, "the log is read-only")
			return
		}
		rel := strings.TrimPrefix(r.URL.Path, "/log/")
		if rel == "timestamp" {
			serveTimestamp(w, r, l, log)
			return
		}
		if !logPath.MatchString(rel) {
			writeError(w, http.StatusNotFound, "no log resource "+r.URL.Path)
			return
		}
		b, err := l.Resource(r.Context(), rel)
		switch {
		case errors.Is(err, os.ErrNotExist):
			writeError(w, http.StatusNotFound, "no log resource "+r.URL.Path)
			return
		case err != nil:
			log.ErrorContext(r.Context(), "reading a log resource", "path", rel, "err", err)
			writeError(w, http.StatusServiceUnavailable, "the log cannot be read now; retry later")
			return
		}
		h := w.Header()
		switch {
		case rel == "checkpoint":
			h.Set("Content-Type", "text/plain; charset=utf-8")
			h.Set("Cache-Control", "no-cache")
		case strings.Contains(rel, ".p/"):
			// Partial tiles never change but are removed once full.
			h.Set("Content-Type", "application/octet-stream")
			h.Set("Cache-Control", "public, max-age=60")
		default:
			h.Set("Content-Type", "application/octet-stream")
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		}
		h.Set("Access-Control-Allow-Origin", "*")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
	})
}

// serveTimestamp serves the newest timestamped checkpoint with its RFC
// 3161 timestamps (docs/LOG_FORMAT.md): the same checkpoint and tokens a
// bundle made now would carry.
func serveTimestamp(w http.ResponseWriter, r *http.Request, l Log, log *slog.Logger) {
	st, ok, err := l.Timestamped(r.Context(), 0)
	switch {
	case err != nil:
		log.ErrorContext(r.Context(), "reading the timestamped checkpoint", "err", err)
		writeError(w, http.StatusServiceUnavailable, "the log cannot be read now; retry later")
		return
	case !ok:
		writeError(w, http.StatusNotFound, "no timestamped checkpoint: the log has no timestamp authority, or none has answered yet")
		return
	}
	type stamp struct {
		Authority string `json:"authority"`
		Response  []byte `json:"response"`
	}
	body := struct {
		Checkpoint string  `json:"checkpoint"`
		TreeSize   uint64  `json:"tree_size"`
		Timestamps []stamp `json:"timestamps"`
	}{Checkpoint: string(st.Raw), TreeSize: st.Size}
	for _, t := range st.Timestamps {
		body.Timestamps = append(body.Timestamps, stamp{t.Authority, t.Response})
	}
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	writeJSON(w, http.StatusOK, body)
}
