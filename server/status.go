package server

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody-dev/custody/evidence"
	"github.com/custody-dev/custody/identity"
)

// statusTable maps domain errors to gRPC codes (and, through the gateway,
// HTTP statuses). It is the only place that does. Domain errors carry a
// message written for the caller; any error not in the table is an internal
// failure whose details go to the log, never to the caller.
var statusTable = []struct {
	err  error
	code codes.Code
}{
	{identity.ErrUnauthenticated, codes.Unauthenticated},
	{identity.ErrPermissionDenied, codes.PermissionDenied},
	{evidence.ErrInvalid, codes.InvalidArgument},
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
}

// toStatus converts err into a status error for the caller.
func toStatus(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	for _, row := range statusTable {
		if errors.Is(err, row.err) {
			return status.Error(row.code, err.Error())
		}
	}
	slog.ErrorContext(ctx, "internal error", "err", err)
	return status.Error(codes.Internal, "internal error; the server log has the details")
}
