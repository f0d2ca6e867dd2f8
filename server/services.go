package server

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody-dev/custody/custodylog"
	"github.com/custody-dev/custody/evidence"
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
		return nil, toStatus(ctx, err)
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

type logService struct {
	custodyv1.UnimplementedLogServiceServer
	keys PublicKeys
	log  *custodylog.Log
}

func (l *logService) GetCheckpoint(ctx context.Context, _ *custodyv1.GetCheckpointRequest) (*custodyv1.GetCheckpointResponse, error) {
	raw, err := l.log.Checkpoint(ctx)
	if err != nil {
		return nil, toStatus(ctx, fmt.Errorf("%w: no checkpoint published yet: %v", evidence.ErrUnavailable, err))
	}
	resp := &custodyv1.GetCheckpointResponse{Checkpoint: raw}
	// The body of a signed note is origin, size, base64 root, extensions.
	if lines := strings.SplitN(string(raw), "\n", 4); len(lines) >= 3 {
		resp.Origin = lines[0]
		resp.Size, _ = strconv.ParseUint(lines[1], 10, 64)
		resp.RootHash, _ = base64.StdEncoding.DecodeString(lines[2])
	}
	return resp, nil
}

func (l *logService) GetPublicKeys(context.Context, *custodyv1.GetPublicKeysRequest) (*custodyv1.GetPublicKeysResponse, error) {
	return &custodyv1.GetPublicKeysResponse{
		LogVerifierKey:      l.keys.LogVerifierKey,
		LogOrigin:           l.keys.LogOrigin,
		ReceiptPublicKeyPem: l.keys.ReceiptPublicKeyPEM,
	}, nil
}

