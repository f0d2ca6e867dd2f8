package server_test

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/servertest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// TestStorageOutage stops MinIO under a running service: uploads and
// downloads get UNAVAILABLE naming storage, nothing is logged, and when
// MinIO returns the service works again without a restart.
func TestStorageOutage(t *testing.T) {
	s := backends()[1].start(t, servertest.Options{})
	c := s.env.Client(t, identity.RoleCollector)
	court := s.env.Client(t, identity.RoleCourt)
	held := randomBytes(100000)
	up, err := c.Upload(t.Context(), meta("case-outage", held), bytes.NewReader(held), nil)
	if err != nil {
		t.Fatal(err)
	}
	id := up.GetEvidence().GetEvidenceId()

	s.minio.Stop(t)
	entries := s.logSize(t)
	data := randomBytes(100000)
	_, err = c.Upload(t.Context(), meta("case-outage", data), bytes.NewReader(data), nil)
	wantCode(t, err, codes.Unavailable, "evidence storage cannot be reached")
	var buf bytes.Buffer
	_, err = court.Download(t.Context(), &custodyv1.DownloadRequest{EvidenceId: id, Purpose: "outage"}, &buf)
	wantCode(t, err, codes.Unavailable, "evidence storage cannot be reached")
	if got := s.logSize(t); got != entries {
		t.Fatalf("the log grew from %d to %d during the outage", entries, got)
	}

	s.minio.Restart(t)
	if _, err := c.Upload(t.Context(), meta("case-outage", data), bytes.NewReader(data), nil); err != nil {
		t.Fatalf("after storage returned: %v", err)
	}
	if !bytes.Equal(download(t, court, id), held) {
		t.Fatal("the held item reads back wrong after the outage")
	}
	checkChain(t, court, id, []custodyv1.EventType{custodyv1.EventType_EVENT_TYPE_INGEST, custodyv1.EventType_EVENT_TYPE_ACCESS})
}
