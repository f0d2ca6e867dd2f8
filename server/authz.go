package server

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionalphapb "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"

	"github.com/custody-dev/custody/identity"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// Role shorthands for the table.
const (
	collector = identity.RoleCollector
	custodian = identity.RoleCustodian
	court     = identity.RoleCourt
	auditor   = identity.RoleAuditor
	admin     = identity.RoleAdmin
)

var allRoles = identity.Roles

// permissions is the authorization table: which roles may call each RPC.
// docs/AUTHORIZATION.md is this table in prose, and the matrix test in
// server/authz_test.go holds both to the same answers. A method missing
// here is refused to everyone (public methods aside). The domain adds the
// rules that depend on the item: only its custodian releases it, only the
// recipient accepts, special-category content only for the court and the
// custodian.
var permissions = map[string][]identity.Role{
	custodyv1.EvidenceService_Upload_FullMethodName:              {collector, custodian},
	custodyv1.EvidenceService_GetUploadStatus_FullMethodName:     {collector, custodian},
	custodyv1.EvidenceService_GetEvidence_FullMethodName:         allRoles,
	custodyv1.EvidenceService_ListEvidence_FullMethodName:        allRoles,
	custodyv1.EvidenceService_Download_FullMethodName:            {custodian, court},
	custodyv1.EvidenceService_CreateSeizureRecord_FullMethodName: {collector},
	custodyv1.EvidenceService_GetSeizureRecord_FullMethodName:    {custodian, court},

	custodyv1.CustodyService_ReleaseCustody_FullMethodName: {collector, custodian, court},
	custodyv1.CustodyService_AcceptCustody_FullMethodName:  {collector, custodian, court},
	custodyv1.CustodyService_CancelRelease_FullMethodName:  {collector, custodian, court},
	custodyv1.CustodyService_RecordEvent_FullMethodName:    {custodian, court},
	custodyv1.CustodyService_ListEvents_FullMethodName:     allRoles,
	custodyv1.CustodyService_GetBundle_FullMethodName:      {custodian, court, auditor},
	custodyv1.CustodyService_StreamBundle_FullMethodName:   {custodian, court, auditor},
	custodyv1.CustodyService_VerifyEvidence_FullMethodName: {custodian, court, auditor, admin},

	custodyv1.IdentityService_WhoAmI_FullMethodName: allRoles,
}

// anyAuthenticated are services every authenticated caller may use.
var anyAuthenticated = []string{
	"/" + reflectionpb.ServerReflection_ServiceDesc.ServiceName + "/",
	"/" + reflectionalphapb.ServerReflection_ServiceDesc.ServiceName + "/",
}

// authorize says whether id may call method, with a message for the caller.
func authorize(id identity.Identity, method string) error {
	for _, prefix := range anyAuthenticated {
		if strings.HasPrefix(method, prefix) {
			return nil
		}
	}
	roles, ok := permissions[method]
	if !ok {
		return fmt.Errorf("%w: %s is not open to any role", identity.ErrPermissionDenied, method)
	}
	if slices.Contains(roles, id.Role) {
		return nil
	}
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r)
	}
	short := method[strings.LastIndex(method, "/")+1:]
	return roleRefusal{
		error:  fmt.Errorf("%w: the %s role may not call %s (allowed: %s; see docs/AUTHORIZATION.md)", identity.ErrPermissionDenied, id.Role, short, strings.Join(names, ", ")),
		role:   string(id.Role),
		method: short,
	}
}

// roleRefusal is the authorization table's no: the caller's role may not
// call the method at all, whatever the item. Its status says so in an
// ErrorInfo (ERROR_REASON_ROLE_NOT_ALLOWED), apart from the custody
// rules' refusals, which are about one item now.
type roleRefusal struct {
	error
	role, method string
}

func (r roleRefusal) Unwrap() error { return r.error }

// logAuthorization logs refusals, and every call an admin makes.
func logAuthorization(ctx context.Context, log *slog.Logger, id identity.Identity, method string, err error) {
	switch {
	case err != nil:
		log.WarnContext(ctx, "authorization refused", "identity", id.String(), "method", method, "err", err)
	case id.Role == admin:
		log.InfoContext(ctx, "admin action", "identity", id.String(), "method", method)
	}
}
