// Package failure owns the service's error contract. A domain error is an
// *Error: a Kind (what went wrong, which the RPC layer maps to a status
// code in one table), a Msg written for the caller (fixed, names the
// problem, never carries internal text such as file paths, SQL, driver or
// library messages), and a Cause for the operator's log.
//
// Text wrapped around an *Error with fmt.Errorf("%w: …") is caller text
// too: the packages that return errors write it for the caller. Internal
// errors go in a Cause, never into a message: Wrap(kind, msg, cause), not
// fmt.Errorf("%w: %v", sentinel, cause). Message(err) is what a caller may
// read; err.Error() is the whole text, causes included, for logs.
//
// The package imports nothing of gRPC or HTTP; server maps kinds to codes.
package failure

import (
	"errors"
	"strconv"
	"strings"
)

// Kind is the class of a failure. The zero Kind is Internal.
type Kind int

const (
	// Internal: a fault of the service; the caller can do nothing.
	Internal Kind = iota
	// Invalid: the request is malformed.
	Invalid
	// NotFound: no such thing.
	NotFound
	// Conflict: a concurrent change won; the caller may retry.
	Conflict
	// Incomplete: a resumable transfer ended before its end; resume.
	Incomplete
	// FailedPrecondition: the thing is not in a state that allows this.
	FailedPrecondition
	// TooLarge: over a limit.
	TooLarge
	// NoSpace: storage is full; nothing was kept.
	NoSpace
	// Unavailable: a dependency cannot be reached now; retry.
	Unavailable
	// Truncated: a stream ended before its declared size.
	Truncated
	// Corrupt: stored data no longer matches what was recorded.
	Corrupt
	// Inconsistent: a derived record (the catalog) disagrees with the
	// record it derives from (the custody log).
	Inconsistent
	// Unauthenticated: the caller is not known.
	Unauthenticated
	// PermissionDenied: the caller is known and may not do this.
	PermissionDenied
)

// Kinds lists every kind, for tables that must cover them all.
var Kinds = []Kind{Internal, Invalid, NotFound, Conflict, Incomplete, FailedPrecondition, TooLarge, NoSpace,
	Unavailable, Truncated, Corrupt, Inconsistent, Unauthenticated, PermissionDenied}

var kindNames = map[Kind]string{
	Internal: "internal", Invalid: "invalid", NotFound: "not found", Conflict: "conflict", Incomplete: "incomplete",
	FailedPrecondition: "failed precondition", TooLarge: "too large", NoSpace: "no space", Unavailable: "unavailable",
	Truncated: "truncated", Corrupt: "corrupt", Inconsistent: "inconsistent", Unauthenticated: "unauthenticated",
	PermissionDenied: "permission denied",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Error is a domain error.
type Error struct {
	Kind Kind
	// Msg is for the caller: fixed, names the problem, no internals.
	Msg string
	// Cause is for the log; nil for an error that is all caller text.
	Cause error
}

// New returns an error of kind with a message for the caller and no cause.
// The sentinels of the domain packages are made with it.
func New(kind Kind, msg string) *Error { return &Error{Kind: kind, Msg: msg} }

// Wrap returns an error of kind whose caller sees msg and whose log sees
// cause as well.
func Wrap(kind Kind, msg string, cause error) *Error {
	return &Error{Kind: kind, Msg: msg, Cause: cause}
}

// Error is Msg, then the cause's text: the whole story, for logs.
func (e *Error) Error() string {
	if e.Cause == nil {
		return e.Msg
	}
	return e.Msg + ": " + e.Cause.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

// Is reports whether target is a sentinel (an *Error without a cause) of
// e's kind, so that errors.Is(err, evidence.ErrUnavailable) holds for any
// Unavailable failure, whatever its message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Cause == nil && t.Kind == e.Kind
}

// KindOf is the kind of the outermost *Error in err's chain, or Internal
// if there is none.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// IsDomain reports whether err is (or wraps) an *Error.
func IsDomain(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// Message is the text of err a caller may read: err's text with every
// cause left out (each caused *Error reads as its Msg alone). It is ""
// for an error that is not a domain error: all of its text is internal.
func Message(err error) string {
	if !IsDomain(err) {
		return ""
	}
	msg := err.Error()
	for _, e := range caused(err, nil) {
		full := e.Error()
		if !strings.Contains(msg, full) {
			// Wrapped in a way that does not quote it whole: say only
			// what it says to the caller.
			return e.Msg
		}
		msg = strings.Replace(msg, full, e.Msg, 1)
	}
	return msg
}

// Causes returns the causes of the caused *Errors in err's tree, for the
// log.
func Causes(err error) []error {
	var out []error
	for _, e := range caused(err, nil) {
		out = append(out, e.Cause)
	}
	return out
}

// caused collects the *Errors with a cause in err's tree, not looking
// inside their causes.
func caused(err error, out []*Error) []*Error {
	if err == nil {
		return out
	}
	if e, ok := err.(*Error); ok {
		if e.Cause != nil {
			return append(out, e)
		}
		return out
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return caused(u.Unwrap(), out)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			out = caused(e, out)
		}
	}
	return out
}
