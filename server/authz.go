package server

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/custody-dev/custody/identity"
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
	"/custody.v1.EvidenceService/Upload":              {collector, custodian},
	"/custody.v1.EvidenceService/GetUploadStatus":     {collector, custodian},
	"/custody.v1.EvidenceService/GetEvidence":         allRoles,
	"/custody.v1.EvidenceService/ListEvidence":        allRoles,
	"/custody.v1.EvidenceService/Download":            {custodian, court},
	"/custody.v1.EvidenceService/CreateSeizureRecord": {collector},
	"/custody.v1.EvidenceService/GetSeizureRecord":    {custodian, court},

	"/custody.v1.CustodyService/ReleaseCustody": {collector, custodian, court},
	"/custody.v1.CustodyService/AcceptCustody":  {collector, custodian, court},
	"/custody.v1.CustodyService/CancelRelease":  {collector, custodian, court},
	"/custody.v1.CustodyService/RecordEvent":    {custodian, court},
	"/custody.v1.CustodyService/ListEvents":     allRoles,
	"/custody.v1.CustodyService/GetBundle":      {custodian, court, auditor},
	"/custody.v1.CustodyService/StreamBundle":   {custodian, court, auditor},
	"/custody.v1.CustodyService/VerifyEvidence": {custodian, court, auditor, admin},

	"/custody.v1.IdentityService/WhoAmI": allRoles,
}

// anyAuthenticated are services every authenticated caller may use.
var anyAuthenticated = []string{"/grpc.reflection.v1.ServerReflection/", "/grpc.reflection.v1alpha.ServerReflection/"}

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
	return fmt.Errorf("%w: the %s role may not call %s (allowed: %s; see docs/AUTHORIZATION.md)", identity.ErrPermissionDenied, id.Role, short, strings.Join(names, ", "))
}

// logAuthorization logs refusals, and every call an admin makes.
func logAuthorization(ctx context.Context, log *slog.Logger, id identity.Identity, method string, err error) {
	switch {
	case err != nil:
		log.WarnContext(ctx, "authorization refused", "identity", id.String(), "method", method, "err", err)
	case id.Role == admin:
		log.InfoContext(ctx, "admin action", "identity", id.String(), "method", method)
	}
}
