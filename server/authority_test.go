package server_test

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/servertest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// validAuthority is a court order in force now.
func validAuthority() *custodyv1.Authority {
	now := time.Now()
	return &custodyv1.Authority{
		Type: "court-order", Identifier: "ICC-01/22-123", IssuedBy: "Pre-Trial Chamber II",
		ValidFrom: timestamppb.New(now.Add(-24 * time.Hour)), ValidUntil: timestamppb.New(now.Add(24 * time.Hour)),
	}
}

// TestRequiredAuthority: with --require-authority, a content read must
// cite an authority with every field given (type, identifier, issued_by,
// valid_from, valid_until), not inverted and in force at the time of the
// read; anything else is INVALID_ARGUMENT (HTTP 400) and logs no access.
// Without the flag, a cited authority is checked the same way except that
// fields may be left out.
func TestRequiredAuthority(t *testing.T) {
	now := time.Now()
	with := func(change func(a *custodyv1.Authority)) *custodyv1.Authority {
		a := validAuthority()
		change(a)
		return a
	}
	refused := []struct {
		name      string
		authority *custodyv1.Authority
		message   string
		always    bool // refused without --require-authority too
	}{
		{"none", nil, "requires an authority", false},
		{"blank type", with(func(a *custodyv1.Authority) { a.Type = "   " }), "authority.type", true},
		{"blank identifier", with(func(a *custodyv1.Authority) { a.Identifier = "\t" }), "authority.identifier", true},
		{"no issued_by", with(func(a *custodyv1.Authority) { a.IssuedBy = "" }), "authority.issued_by", false},
		{"blank issued_by", with(func(a *custodyv1.Authority) { a.IssuedBy = " " }), "authority.issued_by", true},
		{"no valid_from", with(func(a *custodyv1.Authority) { a.ValidFrom = nil }), "authority.valid_from", false},
		{"no valid_until", with(func(a *custodyv1.Authority) { a.ValidUntil = nil }), "authority.valid_until", false},
		{"inverted", with(func(a *custodyv1.Authority) {
			a.ValidFrom, a.ValidUntil = timestamppb.New(now.Add(time.Hour)), timestamppb.New(now.Add(-time.Hour))
		}), "before its valid_from", true},
		{"expired", with(func(a *custodyv1.Authority) {
			a.ValidFrom, a.ValidUntil = timestamppb.New(now.Add(-48*time.Hour)), timestamppb.New(now.Add(-24*time.Hour))
		}), "expired", true},
		{"not yet valid", with(func(a *custodyv1.Authority) {
			a.ValidFrom, a.ValidUntil = timestamppb.New(now.Add(24*time.Hour)), timestamppb.New(now.Add(48*time.Hour))
		}), "not valid before", true},
	}
	for _, required := range []bool{true, false} {
		name := "required"
		if !required {
			name = "optional"
		}
		t.Run(name, func(t *testing.T) {
			env := servertest.StartT(t, servertest.Options{RequireAuthority: required})
			data := randomBytes(4000)
			up, err := env.Client(t, identity.RoleCollector).Upload(t.Context(), meta("case-auth", data), bytes.NewReader(data), nil)
			if err != nil {
				t.Fatal(err)
			}
			id := up.GetEvidence().GetEvidenceId()
			court := env.Client(t, identity.RoleCourt)
			for _, tc := range refused {
				if !required && !tc.always {
					continue
				}
				t.Run(tc.name, func(t *testing.T) {
					var buf bytes.Buffer
					_, err := court.Download(t.Context(), &custodyv1.DownloadRequest{EvidenceId: id, Purpose: "review", Authority: tc.authority}, &buf)
					wantCode(t, err, codes.InvalidArgument, tc.message)
				})
			}
			checkChain(t, court, id, []custodyv1.EventType{custodyv1.EventType_EVENT_TYPE_INGEST})

			var buf bytes.Buffer
			if _, err := court.Download(t.Context(), &custodyv1.DownloadRequest{EvidenceId: id, Purpose: "review", Authority: validAuthority()}, &buf); err != nil || !bytes.Equal(buf.Bytes(), data) {
				t.Fatalf("download with an authority in force: %v", err)
			}
			hist := checkChain(t, court, id, []custodyv1.EventType{custodyv1.EventType_EVENT_TYPE_INGEST, custodyv1.EventType_EVENT_TYPE_ACCESS})
			if a := hist[1].GetAuthority(); a.GetIssuedBy() != "Pre-Trial Chamber II" || a.GetValidUntil() == nil {
				t.Fatalf("the access event's authority is %v", a)
			}

			// The same over REST, with the authority in query parameters.
			hc := env.HTTPClient(t, env.Creds(t, identity.RoleCourt).Certificate)
			a := validAuthority()
			q := url.Values{
				"purpose": {"review"}, "authority_type": {a.GetType()}, "authority_id": {a.GetIdentifier()},
				"authority_issued_by":   {a.GetIssuedBy()},
				"authority_valid_from":  {a.GetValidFrom().AsTime().Format(time.RFC3339)},
				"authority_valid_until": {a.GetValidUntil().AsTime().Format(time.RFC3339)},
			}
			if code, body := get(t, hc, env.URL("/v1/evidence/"+id+"/content?"+q.Encode())); code != http.StatusOK || !bytes.Equal(body, data) {
				t.Fatalf("REST read with an authority in force: %d %.200s", code, body)
			}
			q.Set("authority_valid_until", now.Add(-time.Hour).Format(time.RFC3339))
			q.Set("authority_valid_from", now.Add(-2*time.Hour).Format(time.RFC3339))
			if code, body := get(t, hc, env.URL("/v1/evidence/"+id+"/content?"+q.Encode())); code != http.StatusBadRequest || !strings.Contains(string(body), "expired") {
				t.Fatalf("REST read with an expired authority: %d %s", code, body)
			}
			q.Set("authority_valid_until", "next week")
			if code, body := get(t, hc, env.URL("/v1/evidence/"+id+"/content?"+q.Encode())); code != http.StatusBadRequest || !strings.Contains(string(body), "authority_valid_until") {
				t.Fatalf("REST read with an unreadable time: %d %s", code, body)
			}
			checkChain(t, court, id, []custodyv1.EventType{custodyv1.EventType_EVENT_TYPE_INGEST, custodyv1.EventType_EVENT_TYPE_ACCESS, custodyv1.EventType_EVENT_TYPE_ACCESS})
		})
	}
}
