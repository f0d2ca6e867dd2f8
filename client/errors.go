package client

import (
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"

	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// ErrorDomain is the domain of the google.rpc.ErrorInfo the service puts
// in a refusal's status.
const ErrorDomain = "custody.v1"

// ErrorReason is why the service refused a call, as it states it for
// programs: ERROR_REASON_ROLE_NOT_ALLOWED when the caller's role may not
// call the method at all, ERROR_REASON_NOT_CUSTODIAN when only the item's
// holder may do this and the caller does not hold it, and so on
// (custodyv1.ErrorReason). It is ERROR_REASON_UNSPECIFIED for an error
// that states none (a server before reasons, or another kind of error).
func ErrorReason(err error) custodyv1.ErrorReason {
	s, ok := status.FromError(err)
	if !ok {
		return custodyv1.ErrorReason_ERROR_REASON_UNSPECIFIED
	}
	for _, d := range s.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == ErrorDomain {
			return custodyv1.ErrorReason(custodyv1.ErrorReason_value[info.GetReason()])
		}
	}
	return custodyv1.ErrorReason_ERROR_REASON_UNSPECIFIED
}
