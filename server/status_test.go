package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/evidence"
	"github.com/custody-dev/custody/failure"
	"github.com/custody-dev/custody/identity"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// TestEveryKindMaps: the table covers every failure kind, and each
// maps to the code the old sentinel table gave its sentinel.
func TestEveryKindMaps(t *testing.T) {
	for _, k := range failure.Kinds {
		if _, ok := kindCodes[k]; !ok {
			t.Errorf("kind %v has no code", k)
		}
	}
	for _, c := range []struct {
		err  error
		code codes.Code
	}{
		{identity.ErrUnauthenticated, codes.Unauthenticated},
		{identity.ErrPermissionDenied, codes.PermissionDenied},
		{evidence.ErrInvalid, codes.InvalidArgument},
		{evidence.ErrDigestMismatch, codes.InvalidArgument},
		{evidence.ErrTruncated, codes.DataLoss},
		{evidence.ErrCorrupt, codes.DataLoss},
		{evidence.ErrCatalogDisagrees, codes.DataLoss},
		{evidence.ErrTooLarge, codes.ResourceExhausted},
		{evidence.ErrNotFound, codes.NotFound},
		{evidence.ErrFailedPrecondition, codes.FailedPrecondition},
		{evidence.ErrConflict, codes.Aborted},
		{evidence.ErrIncomplete, codes.Aborted},
		{evidence.ErrUnavailable, codes.Unavailable},
		{evidence.ErrNoSpace, codes.ResourceExhausted},
		{context.Canceled, codes.Canceled},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
	} {
		wrapped := fmt.Errorf("%w: the detail for the caller", c.err)
		got := toStatus(t.Context(), slog.New(slog.DiscardHandler), "/m", wrapped)
		if status.Code(got) != c.code {
			t.Errorf("%v: %v, want %v", c.err, status.Code(got), c.code)
		}
		if failure.IsDomain(c.err) && status.Convert(got).Message() != wrapped.Error() {
			t.Errorf("%v: message %q, want %q", c.err, status.Convert(got).Message(), wrapped)
		}
	}
}

// TestCausesGoOnlyToTheLog: a caused failure shows its caller message
// and logs its cause; an unknown error or kind is INTERNAL with the fixed
// message; a status made by the server passes through.
func TestCausesGoOnlyToTheLog(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	cause := errors.New("pq: connection to /run/postgresql/.s.PGSQL.5432 refused")
	for _, c := range []struct {
		name string
		err  error
		code codes.Code
		msg  string
	}{
		{"caused", failure.Wrap(failure.Unavailable, "the catalog is unavailable; try again", cause), codes.Unavailable, "the catalog is unavailable; try again"},
		{"caused, wrapped", fmt.Errorf("item ev-1: %w", failure.Wrap(failure.Unavailable, "the catalog is unavailable", cause)), codes.Unavailable, "item ev-1: the catalog is unavailable"},
		{"caused, beside caller text", fmt.Errorf("%w: and %w", evidence.ErrInvalid, failure.Wrap(failure.Invalid, "a bad part", cause)), codes.InvalidArgument, "invalid request: and a bad part"},
		{"unknown error", fmt.Errorf("reading /var/lib/x: %w", cause), codes.Internal, internalMessage},
		{"unknown kind", failure.Wrap(failure.Kind(99), "whatever", cause), codes.Internal, internalMessage},
	} {
		logs.Reset()
		got := toStatus(t.Context(), log, "/custody.v1.X/Y", c.err)
		if st := status.Convert(got); st.Code() != c.code || st.Message() != c.msg {
			t.Errorf("%s: %v %q, want %v %q", c.name, st.Code(), st.Message(), c.code, c.msg)
		}
		if !strings.Contains(logs.String(), "s.PGSQL.5432") || !strings.Contains(logs.String(), "/custody.v1.X/Y") {
			t.Errorf("%s: the log lacks the cause or method: %s", c.name, logs.String())
		}
	}
	made := status.Error(codes.ResourceExhausted, "rate limit exceeded")
	if got := toStatus(t.Context(), log, "/m", fmt.Errorf("wrapped: %w", made)); status.Convert(got).Message() != "rate limit exceeded" || status.Code(got) != codes.ResourceExhausted {
		t.Errorf("a server-made status became %v", got)
	}
	if !errors.Is(failure.Wrap(failure.Unavailable, "x", cause), evidence.ErrUnavailable) || errors.Is(failure.Wrap(failure.Unavailable, "x", cause), evidence.ErrNoSpace) {
		t.Error("a caused failure does not match (only) its kind's sentinel")
	}
}

// TestRefusalReasons: a refusal states why for programs (ErrorInfo): the
// authorization table's no is ROLE_NOT_ALLOWED with the role and method,
// a custody rule's no names the rule, and other errors state none. The
// message is the same as without it.
func TestRefusalReasons(t *testing.T) {
	auditor := identity.Identity{Role: identity.RoleAuditor, Name: "a"}
	for _, c := range []struct {
		name   string
		err    error
		reason custodyv1.ErrorReason
		meta   map[string]string
	}{
		{"the role", authorize(auditor, custodyv1.CustodyService_ReleaseCustody_FullMethodName), custodyv1.ErrorReason_ERROR_REASON_ROLE_NOT_ALLOWED,
			map[string]string{"role": "auditor", "method": "ReleaseCustody"}},
		{"not the holder", fmt.Errorf("%w: %w", identity.ErrPermissionDenied, &events.RuleError{Rule: events.ErrNotCustodian, Msg: "only the current custodian (x) can release ev-1"}),
			custodyv1.ErrorReason_ERROR_REASON_NOT_CUSTODIAN, nil},
		{"a release pending", fmt.Errorf("%w: %w", evidence.ErrFailedPrecondition, &events.RuleError{Rule: events.ErrReleasePending, Msg: "ev-1 is already released"}),
			custodyv1.ErrorReason_ERROR_REASON_RELEASE_PENDING, nil},
		{"another refusal", fmt.Errorf("%w: the history of special-category item ev-1 is for the court", identity.ErrPermissionDenied),
			custodyv1.ErrorReason_ERROR_REASON_UNSPECIFIED, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := toStatus(t.Context(), slog.New(slog.DiscardHandler), "/m", c.err)
			st := status.Convert(got)
			if st.Message() != c.err.Error() {
				t.Errorf("message %q, want %q", st.Message(), c.err.Error())
			}
			var infos []*errdetails.ErrorInfo
			for _, d := range st.Details() {
				if info, ok := d.(*errdetails.ErrorInfo); ok {
					infos = append(infos, info)
				}
			}
			if c.reason == custodyv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
				if len(infos) != 0 {
					t.Fatalf("states %v, want no reason", infos)
				}
				return
			}
			if len(infos) != 1 || infos[0].GetDomain() != "custody.v1" || infos[0].GetReason() != c.reason.String() || !maps.Equal(infos[0].GetMetadata(), c.meta) {
				t.Fatalf("states %v, want %v %v", infos, c.reason, c.meta)
			}
		})
	}
}
