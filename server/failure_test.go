package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody-dev/custody/catalog"
	"github.com/custody-dev/custody/custodylog"
	"github.com/custody-dev/custody/evidence"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/servertest"
	"github.com/custody-dev/custody/journal"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
	"github.com/custody-dev/custody/server"
	"github.com/custody-dev/custody/storage"
)

// Internal errors as real components report them: paths, SQL, driver and
// library text, none of which a caller may read.
var (
	catalogFault  = errors.New(`pq: syntax error at or near "SELECT" (SQLSTATE 42601) in /var/lib/secret/path/catalog.db`)
	journalFault  = errors.New("open /var/lib/secret/path/journal/000042.log: input/output error")
	logFault      = errors.New("tessera: posix: write /var/lib/secret/path/log/tile/0/000: read-only file system")
	storeFault    = fmt.Errorf("get object: %w: minio: Get \"https://minio.internal:9000/secret-bucket/blobs/ab\": dial tcp 10.0.0.7:9000: connection refused", storage.ErrUnavailable)
	rawStoreFault = errors.New("minio: The specified key does not exist. /secret-bucket/blobs/ab")
)

// faults wraps the real components; each fails while its switch is on.
type faults struct {
	catalog, journal, log, serverLog, store, storeRaw atomic.Bool
}

func (f *faults) install(deps *evidence.Deps, log *server.Log) {
	deps.Catalog = &faultyCatalog{Catalog: deps.Catalog, f: f}
	deps.Journal = &faultyJournal{Store: deps.Journal, f: f}
	deps.Log = &faultyLog{Log: deps.Log, f: f}
	deps.Store = &faultyStore{Store: deps.Store, f: f}
	*log = &faultyServerLog{Log: *log, f: f}
}

type faultyCatalog struct {
	catalog.Catalog
	f *faults
}

func (c *faultyCatalog) Evidence(ctx context.Context, id string) (catalog.Evidence, error) {
	if c.f.catalog.Load() {
		return catalog.Evidence{}, catalogFault
	}
	return c.Catalog.Evidence(ctx, id)
}

type faultyJournal struct {
	journal.Store
	f *faults
}

func (j *faultyJournal) Put(ctx context.Context, r journal.Record, wait bool) error {
	if j.f.journal.Load() {
		return journalFault
	}
	return j.Store.Put(ctx, r, wait)
}

type faultyLog struct {
	evidence.Log
	f *faults
}

func (l *faultyLog) Append(ctx context.Context, entry []byte) (custodylog.Appended, error) {
	if l.f.log.Load() {
		return custodylog.Appended{}, logFault
	}
	return l.Log.Append(ctx, entry)
}

type faultyServerLog struct {
	server.Log
	f *faults
}

func (l *faultyServerLog) Latest(ctx context.Context) (custodylog.Published, error) {
	if l.f.serverLog.Load() {
		return custodylog.Published{}, logFault
	}
	return l.Log.Latest(ctx)
}

func (l *faultyServerLog) Entry(ctx context.Context, index, treeSize uint64) ([]byte, error) {
	if l.f.serverLog.Load() {
		return nil, logFault
	}
	return l.Log.Entry(ctx, index, treeSize)
}

type faultyStore struct {
	storage.Store
	f *faults
}

func (s *faultyStore) Put(ctx context.Context, key string, r io.Reader, size int64) (storage.Object, error) {
	if s.f.store.Load() {
		return storage.Object{}, storeFault
	}
	return s.Store.Put(ctx, key, r, size)
}

func (s *faultyStore) Open(ctx context.Context, obj storage.Object) (io.ReadCloser, error) {
	if s.f.storeRaw.Load() {
		return nil, rawStoreFault
	}
	return s.Store.Open(ctx, obj)
}

// internalText is what no caller's message may contain.
var internalText = []string{"/", "var/lib", "secret", "sql", "pq:", "select", "tessera", "posix", "minio", "open ", "dial", "tcp", "journal/", ".log", ".db", "input/output", "read-only file system", "connection refused"}

// wantSafe checks the call failed with code, its message names none of
// the internals, and the server's log holds the cause with the call's
// request id and method.
func wantSafe(t *testing.T, env *servertest.Env, err error, code codes.Code, cause error, method string) {
	t.Helper()
	st := status.Convert(err)
	if err == nil || st.Code() != code {
		t.Fatalf("got %v, want %v", err, code)
	}
	msg := strings.ToLower(st.Message())
	for _, s := range internalText {
		if strings.Contains(msg, s) {
			t.Errorf("the caller's message %q contains %q", st.Message(), s)
		}
	}
	if msg == "" {
		t.Error("the caller's message is empty")
	}
	quoted := strconv.Quote(cause.Error()) // as the text handler writes it
	for _, line := range strings.Split(env.Logs.String(), "\n") {
		if strings.Contains(line, quoted[1:len(quoted)-1]) && strings.Contains(line, "request_id=") && strings.Contains(line, method) {
			return
		}
	}
	t.Errorf("the server log has no line with the cause %q, a request id and the method %s:\n%s", cause, method, env.Logs.String())
}

// TestInternalFailuresReachOnlyTheLog injects failures into the catalog,
// the record journal, the custody log (as the evidence service and as the
// LogService read it) and evidence storage of a real service: each call
// fails with the code its kind maps to and a message written for callers;
// the internal text is in the server's log only.
func TestInternalFailuresReachOnlyTheLog(t *testing.T) {
	var f faults
	env := servertest.StartT(t, servertest.Options{Faults: f.install})
	collector := env.Client(t, identity.RoleCollector)
	court := env.Client(t, identity.RoleCourt)
	item := uploadOne(t, collector)
	id := item.GetEvidenceId()
	ctx := t.Context()

	t.Run("catalog", func(t *testing.T) {
		f.catalog.Store(true)
		defer f.catalog.Store(false)
		_, err := court.GetEvidence(ctx, id)
		wantSafe(t, env, err, codes.Unavailable, catalogFault, custodyv1.EvidenceService_GetEvidence_FullMethodName)
		_, err = court.History(ctx, id)
		wantSafe(t, env, err, codes.Unavailable, catalogFault, custodyv1.CustodyService_ListEvents_FullMethodName)
	})
	t.Run("journal", func(t *testing.T) {
		f.journal.Store(true)
		defer f.journal.Store(false)
		_, err := court.RecordEvent(ctx, &custodyv1.RecordEventRequest{EvidenceId: id, Type: custodyv1.EventType_EVENT_TYPE_ANNOTATION, Note: "journal down"})
		wantSafe(t, env, err, codes.Unavailable, journalFault, custodyv1.CustodyService_RecordEvent_FullMethodName)
		data := randomBytes(2000)
		_, err = collector.Upload(ctx, meta("case-faults", data), bytes.NewReader(data), nil)
		wantSafe(t, env, err, codes.Unavailable, journalFault, custodyv1.EvidenceService_Upload_FullMethodName)
	})
	t.Run("log", func(t *testing.T) {
		f.log.Store(true)
		defer f.log.Store(false)
		_, err := court.RecordEvent(ctx, &custodyv1.RecordEventRequest{EvidenceId: id, Type: custodyv1.EventType_EVENT_TYPE_ANNOTATION, Note: "log down"})
		wantSafe(t, env, err, codes.Unavailable, logFault, custodyv1.CustodyService_RecordEvent_FullMethodName)
	})
	t.Run("log service", func(t *testing.T) {
		f.serverLog.Store(true)
		defer f.serverLog.Store(false)
		_, err := court.Checkpoint(ctx)
		wantSafe(t, env, err, codes.Unavailable, logFault, custodyv1.LogService_GetCheckpoint_FullMethodName)
		_, err = court.Entry(ctx, 0)
		wantSafe(t, env, err, codes.Unavailable, logFault, custodyv1.LogService_GetEntry_FullMethodName)
	})
	t.Run("storage unavailable", func(t *testing.T) {
		f.store.Store(true)
		defer f.store.Store(false)
		data := randomBytes(2000)
		_, err := collector.Upload(ctx, meta("case-faults", data), bytes.NewReader(data), nil)
		wantSafe(t, env, err, codes.Unavailable, storeFault, custodyv1.EvidenceService_Upload_FullMethodName)
	})
	t.Run("storage internal", func(t *testing.T) {
		f.storeRaw.Store(true)
		defer f.storeRaw.Store(false)
		var buf bytes.Buffer
		_, err := court.Download(ctx, &custodyv1.DownloadRequest{EvidenceId: id, Purpose: "faults"}, &buf)
		wantSafe(t, env, err, codes.Internal, rawStoreFault, custodyv1.EvidenceService_Download_FullMethodName)
		if got := status.Convert(err).Message(); got != "internal error; the server log has the details" {
			t.Errorf("internal failure message %q", got)
		}
	})
	t.Run("over HTTPS", func(t *testing.T) {
		f.catalog.Store(true)
		defer f.catalog.Store(false)
		resp, err := env.HTTPClient(t, env.Creds(t, identity.RoleCourt).Certificate).Get(env.URL("/v1/evidence/" + id))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 503 {
			t.Fatalf("HTTP %d %s, want 503", resp.StatusCode, body)
		}
		for _, s := range internalText[1:] {
			if strings.Contains(strings.ToLower(string(body)), s) {
				t.Errorf("the HTTPS body %s contains %q", body, s)
			}
		}
	})
	// With the faults gone, the service works as before.
	if _, err := court.History(ctx, id); err != nil {
		t.Fatal(err)
	}
}
