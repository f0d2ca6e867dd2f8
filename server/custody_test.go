package server_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody-dev/custody/client"
	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/servertest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

const (
	collectorID = "urn:custody:collector:dev-collector"
	custodianID = "urn:custody:custodian:dev-custodian"
	courtID     = "urn:custody:court:dev-court"
)

func uploadOne(t *testing.T, c *client.Client) *custodyv1.Evidence {
	t.Helper()
	data := randomBytes(4096)
	resp, err := c.Upload(t.Context(), meta("case-handoff", data), bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetEvidence()
}

func wantCode(t *testing.T, err error, code codes.Code, message string) {
	t.Helper()
	if status.Code(err) != code || !strings.Contains(status.Convert(err).Message(), message) {
		t.Fatalf("error %v, want %v mentioning %q", err, code, message)
	}
}

// wantReason checks the reason a refusal states for programs.
func wantReason(t *testing.T, err error, want custodyv1.ErrorReason) {
	t.Helper()
	if got := client.ErrorReason(err); got != want {
		t.Fatalf("error %v states reason %v, want %v", err, got, want)
	}
}

func TestHandoffRules(t *testing.T) {
	env := servertest.StartT(t)
	collector := env.Client(t, identity.RoleCollector)
	custodian := env.Client(t, identity.RoleCustodian)
	court := env.Client(t, identity.RoleCourt)
	ctx := t.Context()
	ev := uploadOne(t, collector)
	id := ev.GetEvidenceId()
	if ev.GetCustodian() != collectorID {
		t.Fatalf("custodian after ingest %q", ev.GetCustodian())
	}

	_, err := custodian.Release(ctx, id, courtID, "not mine to give")
	wantCode(t, err, codes.PermissionDenied, "only the current custodian ("+collectorID+") can release")
	wantReason(t, err, custodyv1.ErrorReason_ERROR_REASON_NOT_CUSTODIAN)
	// A role the table refuses outright says so apart.
	_, err = env.Client(t, identity.RoleAuditor).Release(ctx, id, courtID, "auditors hold nothing")
	wantCode(t, err, codes.PermissionDenied, "the auditor role may not call ReleaseCustody")
	wantReason(t, err, custodyv1.ErrorReason_ERROR_REASON_ROLE_NOT_ALLOWED)

	rel, err := collector.Release(ctx, id, custodianID, "to the lab for analysis")
	if err != nil {
		t.Fatal(err)
	}
	if rel.GetEvent().GetSequence() != 1 || rel.GetEvent().GetType() != custodyv1.EventType_EVENT_TYPE_RELEASE {
		t.Fatalf("release event %v", rel.GetEvent())
	}
	_, err = collector.Release(ctx, id, courtID, "twice")
	wantCode(t, err, codes.FailedPrecondition, "already released to "+custodianID)
	wantReason(t, err, custodyv1.ErrorReason_ERROR_REASON_RELEASE_PENDING)

	_, err = court.Accept(ctx, id)
	wantCode(t, err, codes.PermissionDenied, "released to "+custodianID+", not to you")
	wantReason(t, err, custodyv1.ErrorReason_ERROR_REASON_NOT_RECIPIENT)

	acc, err := custodian.Accept(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if acc.GetEvent().GetCounterparty() != collectorID {
		t.Fatalf("accept counterparty %q", acc.GetEvent().GetCounterparty())
	}
	after, err := court.GetEvidence(ctx, id)
	if err != nil || after.GetCustodian() != custodianID || after.GetPendingRelease() != nil {
		t.Fatalf("after accept: %v, %v", after, err)
	}
	// A second accept of the same release.
	_, err = custodian.Custody().AcceptCustody(ctx, &custodyv1.AcceptCustodyRequest{EvidenceId: id, ReleaseSequence: 1, Signature: acc.GetEvent().GetSignature()})
	wantCode(t, err, codes.FailedPrecondition, "no pending release")
	wantReason(t, err, custodyv1.ErrorReason_ERROR_REASON_NO_PENDING_RELEASE)

	// The old custodian can no longer act as one.
	_, err = collector.Custody().ReleaseCustody(ctx, &custodyv1.ReleaseCustodyRequest{EvidenceId: id, To: courtID, Reason: "late"})
	wantCode(t, err, codes.PermissionDenied, "only the current custodian")
	wantReason(t, err, custodyv1.ErrorReason_ERROR_REASON_NOT_CUSTODIAN)
	_, err = court.RecordEvent(ctx, &custodyv1.RecordEventRequest{EvidenceId: id, Type: custodyv1.EventType_EVENT_TYPE_ANALYSIS, Note: "not mine"})
	wantCode(t, err, codes.PermissionDenied, "only the current custodian")

	// Release and cancel.
	if _, err := custodian.Release(ctx, id, courtID, "for trial"); err != nil {
		t.Fatal(err)
	}
	_, err = collector.CancelRelease(ctx, id, "not yours")
	wantCode(t, err, codes.PermissionDenied, "only the releaser")
	if _, err := custodian.CancelRelease(ctx, id, "wrong recipient"); err != nil {
		t.Fatal(err)
	}
	_, err = court.Accept(ctx, id)
	if err == nil {
		t.Fatal("accepted a cancelled release")
	}

	checkChain(t, court, id, []custodyv1.EventType{
		custodyv1.EventType_EVENT_TYPE_INGEST, custodyv1.EventType_EVENT_TYPE_RELEASE, custodyv1.EventType_EVENT_TYPE_ACCEPT,
		custodyv1.EventType_EVENT_TYPE_RELEASE, custodyv1.EventType_EVENT_TYPE_RELEASE_CANCELLED,
	})
}

// checkChain asserts an item's history has the given types, gap-free
// sequence numbers and links to each predecessor's log entry.
func checkChain(t *testing.T, c *client.Client, id string, types []custodyv1.EventType) []*custodyv1.CustodyEvent {
	t.Helper()
	hist, err := c.History(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if types != nil && len(hist) != len(types) {
		t.Fatalf("history has %d events, want %d: %v", len(hist), len(types), hist)
	}
	for i, e := range hist {
		if types != nil && e.GetType() != types[i] {
			t.Errorf("event %d is %v, want %v", i, e.GetType(), types[i])
		}
		if e.GetSequence() != uint64(i) {
			t.Errorf("event %d has sequence %d", i, e.GetSequence())
		}
		if i == 0 {
			if e.PreviousLogIndex != nil {
				t.Errorf("ingest links to %d", e.GetPreviousLogIndex())
			}
			continue
		}
		prev := hist[i-1]
		if e.GetPreviousLogIndex() != prev.GetLogIndex() || e.GetPreviousLeafHash() != prev.GetLeafHash() {
			t.Errorf("event %d links to %d/%s, predecessor is %d/%s", i, e.GetPreviousLogIndex(), e.GetPreviousLeafHash(), prev.GetLogIndex(), prev.GetLeafHash())
		}
	}
	return hist
}

func TestExpiredRelease(t *testing.T) {
	env := servertest.StartT(t, servertest.Options{ReleaseTTL: 300 * time.Millisecond})
	collector := env.Client(t, identity.RoleCollector)
	custodian := env.Client(t, identity.RoleCustodian)
	id := uploadOne(t, collector).GetEvidenceId()
	if _, err := collector.Release(t.Context(), id, custodianID, "to the lab"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	_, err := custodian.Accept(t.Context(), id)
	wantCode(t, err, codes.FailedPrecondition, "no pending release")
	hist := checkChain(t, custodian, id, []custodyv1.EventType{
		custodyv1.EventType_EVENT_TYPE_INGEST, custodyv1.EventType_EVENT_TYPE_RELEASE, custodyv1.EventType_EVENT_TYPE_RELEASE_EXPIRED,
	})
	if hist[2].GetPerformer() != "urn:custody:service:custodyd" {
		t.Fatalf("expiry performed by %q", hist[2].GetPerformer())
	}
}

func TestForgedHandoffSignatures(t *testing.T) {
	env := servertest.StartT(t)
	collector := env.Client(t, identity.RoleCollector)
	creds := env.Creds(t, identity.RoleCollector)
	court := env.Creds(t, identity.RoleCourt)
	ev := uploadOne(t, collector)
	id := ev.GetEvidenceId()
	now := time.Now().UTC()
	statement, err := events.ReleaseStatement(id, ev.GetSha256(), collectorID, custodianID, "to the lab", now)
	if err != nil {
		t.Fatal(err)
	}
	signWith := func(key any, msg []byte) []byte {
		sv, err := signature.LoadSignerVerifier(key, crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := sv.SignMessage(bytes.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherStatement, _ := events.ReleaseStatement(id, ev.GetSha256(), collectorID, custodianID, "something else", now)
	tests := []struct {
		name    string
		sig     *custodyv1.PartySignature
		message string
	}{
		{"none", nil, "must be signed"},
		{"someone else's key", &custodyv1.PartySignature{Signature: signWith(stranger, statement), Certificate: creds.Leaf.Raw, SignedAt: timestamppb.New(now)}, "does not verify"},
		{"another statement", &custodyv1.PartySignature{Signature: signWith(creds.Certificate.PrivateKey, otherStatement), Certificate: creds.Leaf.Raw, SignedAt: timestamppb.New(now)}, "does not verify"},
		{"another party's certificate", &custodyv1.PartySignature{Signature: signWith(court.Certificate.PrivateKey, statement), Certificate: court.Leaf.Raw, SignedAt: timestamppb.New(now)}, "not the one you connected with"},
		{"stale", &custodyv1.PartySignature{Signature: signWith(creds.Certificate.PrivateKey, statement), Certificate: creds.Leaf.Raw, SignedAt: timestamppb.New(now.Add(-time.Hour))}, "from the server's clock"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := collector.Custody().ReleaseCustody(t.Context(), &custodyv1.ReleaseCustodyRequest{EvidenceId: id, To: custodianID, Reason: "to the lab", Signature: tc.sig})
			wantCode(t, err, codes.InvalidArgument, tc.message)
		})
	}
	// Nothing was recorded.
	checkChain(t, collector, id, []custodyv1.EventType{custodyv1.EventType_EVENT_TYPE_INGEST})
}

// TestListEvidencePages lists a case in pages of two: every item once, in
// ingest order, the very first item of the log included.
func TestListEvidencePages(t *testing.T) {
	env := servertest.StartT(t)
	c := env.Client(t, identity.RoleCollector)
	var want []string
	for range 5 {
		want = append(want, uploadOne(t, c).GetEvidenceId())
	}
	var got []string
	token := ""
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("more than three pages for five items")
		}
		resp, err := c.ListEvidence(t.Context(), &custodyv1.ListEvidenceRequest{CaseId: "case-handoff", PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range resp.GetEvidence() {
			got = append(got, ev.GetEvidenceId())
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("listed %v, want %v", got, want)
	}
	_, err := c.ListEvidence(t.Context(), &custodyv1.ListEvidenceRequest{CaseId: "case-handoff", PageToken: "forged"})
	wantCode(t, err, codes.InvalidArgument, "page_token")
}
