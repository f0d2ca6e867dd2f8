package server

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody-dev/custody/identity"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// roleToProto maps the domain role to its RPC enum.
var roleToProto = map[identity.Role]custodyv1.Role{
	identity.RoleCollector: custodyv1.Role_ROLE_COLLECTOR,
	identity.RoleCustodian: custodyv1.Role_ROLE_CUSTODIAN,
	identity.RoleCourt:     custodyv1.Role_ROLE_COURT,
	identity.RoleAuditor:   custodyv1.Role_ROLE_AUDITOR,
	identity.RoleAdmin:     custodyv1.Role_ROLE_ADMIN,
}

type identityService struct {
	custodyv1.UnimplementedIdentityServiceServer
}

func (identityService) WhoAmI(ctx context.Context, _ *custodyv1.WhoAmIRequest) (*custodyv1.WhoAmIResponse, error) {
	id, err := requireIdentity(ctx)
	if err != nil {
		return nil, err
	}
	resp := &custodyv1.WhoAmIResponse{
		Identity: id.String(),
		Role:     roleToProto[id.Role],
		Name:     id.Name,
	}
	if c := id.Certificate; c != nil {
		resp.Subject = c.Subject.String()
		resp.SerialNumber = c.SerialNumber.Text(16)
		resp.NotAfter = timestamppb.New(c.NotAfter)
	}
	return resp, nil
}
