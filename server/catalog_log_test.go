// Tests of the rule that the log is the truth and the catalog a projection
// of it: a catalog row edited behind the service's back is never served,
// is reported, and is rewritten from the log at the next start.

package server_test

import (
	"bytes"
	"database/sql"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	_ "modernc.org/sqlite"

	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv"
	"github.com/custody-dev/custody/internal/testenv/miniotest"
	"github.com/custody-dev/custody/internal/testenv/servertest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// editCatalog runs one statement on a service's SQLite catalog, as an
// operator (or an intruder) with the data disk would.
func editCatalog(t *testing.T, dataDir, q string, args ...any) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "catalog.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.ExecContext(t.Context(), q, args...)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("%q changed %d rows, want 1", q, n)
	}
}

// metric reads one sample from the service's /metrics (0 if absent).
func metric(t *testing.T, env *servertest.Env, sample string) float64 {
	t.Helper()
	_, body := get(t, env.HTTPClient(t, env.Creds(t, identity.RoleAdmin).Certificate), env.URL("/metrics"))
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %q", sample, line)
			}
			return f
		}
	}
	return 0
}

// logged reports whether one line of the service's log holds every part.
func logged(env *servertest.Env, parts ...string) bool {
	for line := range strings.SplitSeq(env.Logs.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

// TestEditedCatalogRowIsRefusedThenRepaired points item A's catalog row at
// item B's stored object (digest, size, key, version), on local disk and on
// MinIO: A's content is refused over gRPC (DATA_LOSS) and REST (an error
// status, none of B's bytes), VerifyEvidence and the scrub report it, the
// metric counts it; after a restart the row is rewritten from A's logged
// ingest record and A's own bytes are served again.
func TestEditedCatalogRowIsRefusedThenRepaired(t *testing.T) {
	testenv.RequireFull(t, "in-process custodyd (TLS, gRPC, SQLite, Tessera)")
	for _, name := range []string{"disk", "s3"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			var opts servertest.Options
			if name == "s3" {
				srv := miniotest.Start(t)
				opts.S3 = &servertest.S3{Endpoint: srv.Endpoint, Bucket: fmt.Sprintf("evidence-%d", bucketSeq.Add(1)), AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}
			}
			start := func() *servertest.Env {
				env, err := servertest.Start(dir, opts)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { env.Stop() })
				return env
			}
			env := start()
			collector := env.Client(t, identity.RoleCollector)
			dataA, dataB := randomBytes(300<<10), randomBytes(200<<10)
			upA, err := collector.Upload(t.Context(), meta("case-edit", dataA), bytes.NewReader(dataA), nil)
			if err != nil {
				t.Fatal(err)
			}
			upB, err := collector.Upload(t.Context(), meta("case-edit", dataB), bytes.NewReader(dataB), nil)
			if err != nil {
				t.Fatal(err)
			}
			a, b := upA.GetEvidence(), upB.GetEvidence()
			editCatalog(t, dir, `UPDATE evidence SET sha256 = ?, size = ?, object_key = ?, version_id = ?, object_size = ? WHERE id = ?`,
				b.GetSha256(), b.GetSizeBytes(), b.GetStorage().GetKey(), b.GetStorage().GetVersionId(), b.GetSizeBytes(), a.GetEvidenceId())

			readsBefore := metric(t, env, `custody_catalog_disagreements_total{op="read"}`)
			court := env.Client(t, identity.RoleCourt)
			var got bytes.Buffer
			_, err = court.Download(t.Context(), &custodyv1.DownloadRequest{EvidenceId: a.GetEvidenceId(), Purpose: "edited row"}, &got)
			if status.Code(err) != codes.DataLoss || got.Len() != 0 {
				t.Fatalf("download of the edited row: %v, %d bytes; want DATA_LOSS and nothing", err, got.Len())
			}
			hc := env.HTTPClient(t, env.Creds(t, identity.RoleCourt).Certificate)
			code, body := get(t, hc, env.URL("/v1/evidence/"+a.GetEvidenceId()+"/content?purpose=edited+row"))
			if code != 500 || bytes.Contains(body, dataB[:64]) || !strings.Contains(string(body), "custody log") {
				t.Fatalf("REST content of the edited row: %d %.200s; want 500 naming the log", code, body)
			}
			if n := metric(t, env, `custody_catalog_disagreements_total{op="read"}`) - readsBefore; n != 2 {
				t.Errorf("the metric counted %v refused reads, want 2", n)
			}
			if !logged(env, "disagrees with the custody log", "evidence_id="+a.GetEvidenceId()) {
				t.Errorf("the refusal is not logged with the evidence id:\n%s", env.Logs.String())
			}
			// B is untouched; A's refused reads logged no access.
			if !bytes.Equal(download(t, court, b.GetEvidenceId()), dataB) {
				t.Fatal("B reads back wrong")
			}
			checkChain(t, court, a.GetEvidenceId(), []custodyv1.EventType{custodyv1.EventType_EVENT_TYPE_INGEST})

			v, err := court.VerifyEvidence(t.Context(), a.GetEvidenceId())
			if err != nil || v.GetOk() || v.GetChecks()[0].GetOk() {
				t.Fatalf("VerifyEvidence of the edited row: %v, %v; want a failed stored-bytes check", v, err)
			}
			var flagged []string
			checked, bad, err := env.Daemon.Evidence.Scrub(t.Context(), func(id string, err error) {
				if err != nil {
					flagged = append(flagged, id)
				}
			})
			if err != nil || checked != 2 || bad != 1 || len(flagged) != 1 || flagged[0] != a.GetEvidenceId() {
				t.Fatalf("scrub: checked %d, bad %d, flagged %v, err %v; want A alone", checked, bad, flagged, err)
			}

			repairsBefore := metric(t, env, `custody_catalog_repairs_total`)
			if err := env.Stop(); err != nil {
				t.Fatal(err)
			}
			env = start()
			if !logged(env, "level=WARN", "rewritten from the log", "evidence_id="+a.GetEvidenceId()) {
				t.Fatalf("the repair at start is not logged at WARN with the id:\n%s", env.Logs.String())
			}
			if n := metric(t, env, `custody_catalog_repairs_total`) - repairsBefore; n != 1 {
				t.Errorf("the metric counted %v repairs, want 1", n)
			}
			court = env.Client(t, identity.RoleCourt)
			if !bytes.Equal(download(t, court, a.GetEvidenceId()), dataA) {
				t.Fatal("after the restart A does not read back as its own bytes")
			}
			item, err := court.GetEvidence(t.Context(), a.GetEvidenceId())
			if err != nil || item.GetSha256() != a.GetSha256() || item.GetStorage().GetKey() != a.GetStorage().GetKey() || item.GetStorage().GetVersionId() != a.GetStorage().GetVersionId() {
				t.Fatalf("repaired row %v (%v), want A's digest and object", item, err)
			}
			if _, bad, err := env.Daemon.Evidence.Scrub(t.Context(), func(string, error) {}); err != nil || bad != 0 {
				t.Fatalf("scrub after the repair: %d bad, %v", bad, err)
			}
		})
	}
}
