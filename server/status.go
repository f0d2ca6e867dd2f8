package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/failure"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// The error contract (package failure): handlers and the domain return
// errors; one interceptor, the innermost but for recovery, turns them into
// statuses. A failure.Error's kind picks the code from kindCodes, the only
// table that does; the caller reads failure.Message (the message written
// for callers, never a cause) and the server's log reads the cause, with
// the request id and method. Any other error is an internal failure: the
// caller reads internalMessage and nothing of the error, the log reads it
// whole. Internal details (file paths, SQL, driver, storage or log library
// text) therefore never reach callers. HTTPS answers use the same codes:
// the gateway and the raw routes call through gRPC and map the status code
// with httpStatus.

// kindCodes maps every failure kind to its gRPC code (and, through
// httpStatus, its HTTP status).
var kindCodes = map[failure.Kind]codes.Code{
	failure.Internal:           codes.Internal,
	failure.Invalid:            codes.InvalidArgument,
	failure.NotFound:           codes.NotFound,
	failure.Conflict:           codes.Aborted,
	failure.Incomplete:         codes.Aborted,
	failure.FailedPrecondition: codes.FailedPrecondition,
	failure.TooLarge:           codes.ResourceExhausted,
	failure.NoSpace:            codes.ResourceExhausted,
	failure.Unavailable:        codes.Unavailable,
	failure.Truncated:          codes.DataLoss,
	failure.Corrupt:            codes.DataLoss,
	failure.Inconsistent:       codes.DataLoss,
	failure.Unauthenticated:    codes.Unauthenticated,
	failure.PermissionDenied:   codes.PermissionDenied,
}

// internalMessage is all a caller learns of an internal failure.
const internalMessage = "internal error; the server log has the details"

// toStatus converts err, returned by the call to method, into the status
// error the caller gets, and logs what the caller must not read to log.
func toStatus(ctx context.Context, log *slog.Logger, method string, err error) error {
	if err == nil {
		return nil
	}
	// A status made by this server (limits, admission, recovery, a
	// handler's own check) passes through as it was made.
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) && !failure.IsDomain(err) {
		return se.GRPCStatus().Err()
	}
	attrs := func(extra ...any) []any {
		a := []any{"method", method}
		if ci, ok := ctx.Value(callInfoKey{}).(*callInfo); ok {
			a = append(a, "request_id", ci.requestID)
		}
		return append(a, extra...)
	}
	if failure.IsDomain(err) {
		kind := failure.KindOf(err)
		code, ok := kindCodes[kind]
		if !ok {
			code = codes.Internal
		}
		msg := failure.Message(err)
		if causes := failure.Causes(err); len(causes) > 0 || code == codes.Internal {
			log.ErrorContext(ctx, "call failed", attrs("code", code.String(), "kind", kind.String(), "message", msg, "cause", errors.Join(causes...))...)
		}
		if code == codes.Internal && kind != failure.Internal {
			msg = internalMessage
		}
		st := status.New(code, msg)
		if info := errorInfo(err); info != nil {
			if withInfo, derr := st.WithDetails(info); derr == nil {
				st = withInfo
			}
		}
		return st.Err()
	}
	switch {
	case errors.Is(err, context.Canceled):
		log.DebugContext(ctx, "call canceled", attrs("err", err)...)
		return status.Error(codes.Canceled, context.Canceled.Error())
	case errors.Is(err, context.DeadlineExceeded):
		log.DebugContext(ctx, "call past its deadline", attrs("err", err)...)
		return status.Error(codes.DeadlineExceeded, context.DeadlineExceeded.Error())
	}
	log.ErrorContext(ctx, "internal error", attrs("cause", err)...)
	return status.Error(codes.Internal, internalMessage)
}

// ErrorDomain is the domain of the google.rpc.ErrorInfo a refusal carries.
const ErrorDomain = "custody.v1"

// busy is a refusal for load (rate, streams, capacity) with code and
// message, carrying ERROR_REASON_BUSY so clients retry it without reading
// the message.
func busy(code codes.Code, format string, args ...any) error {
	st := status.Newf(code, format, args...)
	if withInfo, err := st.WithDetails(&errdetails.ErrorInfo{Domain: ErrorDomain, Reason: custodyv1.ErrorReason_ERROR_REASON_BUSY.String()}); err == nil {
		st = withInfo
	}
	return st.Err()
}

// ruleReasons are the custody rules' reasons (package events) as the API
// names them.
var ruleReasons = map[error]custodyv1.ErrorReason{
	events.ErrNotCustodian:     custodyv1.ErrorReason_ERROR_REASON_NOT_CUSTODIAN,
	events.ErrNotRecipient:     custodyv1.ErrorReason_ERROR_REASON_NOT_RECIPIENT,
	events.ErrNoPendingRelease: custodyv1.ErrorReason_ERROR_REASON_NO_PENDING_RELEASE,
	events.ErrReleasePending:   custodyv1.ErrorReason_ERROR_REASON_RELEASE_PENDING,
	events.ErrWrongRelease:     custodyv1.ErrorReason_ERROR_REASON_WRONG_RELEASE,
	events.ErrReleaseLapsed:    custodyv1.ErrorReason_ERROR_REASON_RELEASE_LAPSED,
}

// errorInfo is the machine-readable reason of a refusal (custodyv1.
// ErrorReason), so a client tells the authorization table's no (the role)
// from the custody rules' (this item, now); nil for other errors.
func errorInfo(err error) *errdetails.ErrorInfo {
	var role roleRefusal
	if errors.As(err, &role) {
		return &errdetails.ErrorInfo{Domain: ErrorDomain, Reason: custodyv1.ErrorReason_ERROR_REASON_ROLE_NOT_ALLOWED.String(),
			Metadata: map[string]string{"role": role.role, "method": role.method}}
	}
	var rule *events.RuleError
	if errors.As(err, &rule) {
		if reason, ok := ruleReasons[rule.Rule]; ok {
			return &errdetails.ErrorInfo{Domain: ErrorDomain, Reason: reason.String()}
		}
	}
	return nil
}

// errorsUnary and errorsStream apply toStatus to what handlers return.
// They sit innermost but for recovery, so every interceptor outside them
// (logging, metrics) sees the status the caller gets.
func errorsUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		return resp, toStatus(ctx, log, info.FullMethod, err)
	}
}

func errorsStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return toStatus(ss.Context(), log, info.FullMethod, handler(srv, ss))
	}
}

// httpStatus is the HTTP status of a status error's code: the one the
// gateway answers with, so raw routes and gateway routes agree.
func httpStatus(err error) int {
	if err == nil {
		return http.StatusOK
	}
	return runtime.HTTPStatusFromCode(status.Code(err))
}
