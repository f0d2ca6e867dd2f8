package server_test

import (
	"bytes"
	"testing"

	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/pgtest"
	"github.com/custody-dev/custody/internal/testenv/servertest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
	"github.com/custody-dev/custody/verify"
)

// TestPostgresCatalog runs custody end to end with the catalog in a real
// PostgreSQL server: ingest, hand-off, access, a bundle that verifies.
func TestPostgresCatalog(t *testing.T) {
	dsn := pgtest.NewDatabase(t, pgtest.Start(t), "custody")
	env := servertest.StartT(t, servertest.Options{CatalogDSN: dsn})
	collector := env.Client(t, identity.RoleCollector)
	custodian := env.Client(t, identity.RoleCustodian)
	court := env.Client(t, identity.RoleCourt)
	data := randomBytes(50000)
	up, err := collector.Upload(t.Context(), meta("case-pg", data), bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	id := up.GetEvidence().GetEvidenceId()
	if _, err := collector.Release(t.Context(), id, custodianID, "lab"); err != nil {
		t.Fatal(err)
	}
	if _, err := custodian.Accept(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(download(t, court, id), data) {
		t.Fatal("read back differs")
	}
	checkChain(t, court, id, []custodyv1.EventType{custodyv1.EventType_EVENT_TYPE_INGEST, custodyv1.EventType_EVENT_TYPE_RELEASE,
		custodyv1.EventType_EVENT_TYPE_ACCEPT, custodyv1.EventType_EVENT_TYPE_ACCESS})
	raw, err := court.Bundle(t.Context(), id, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := verify.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if r := verify.Verify(b, verify.Options{File: bytes.NewReader(data), Roots: env.RootCAs(t)}); !r.OK {
		t.Fatalf("bundle: %v", r.Failures())
	}
}
