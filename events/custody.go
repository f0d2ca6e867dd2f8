package events

import (
	"errors"
	"fmt"
	"time"
)

// The custody rules (docs/LOG_FORMAT.md "Custody rules", docs/VERIFY.md
// step 6) live here, once: the service checks every event against them
// before logging it, and a court's verifier replays a bundle's records
// through the same function, so the two cannot drift apart.

// ServicePerformer is the performer of events the service records itself
// (a release that lapsed).
const ServicePerformer = "urn:custody:service:custodyd"

// State is an item's custody state: who holds it and the release, if any,
// that waits for its recipient.
type State struct {
	// Custodian is the identity URI of the holder.
	Custodian string
	// Pending is the release waiting for its recipient, or nil.
	Pending *Pending
}

// Pending is a release waiting for its recipient.
type Pending struct {
	Seq       uint64 // the release event's sequence
	From      string // the releaser (the custodian)
	To        string // the recipient
	Reason    string
	ExpiresAt time.Time
}

// The rules an event can break. A *RuleError wraps one of them.
var (
	// ErrNotCustodian: only the holder may do this.
	ErrNotCustodian = errors.New("not the custodian")
	// ErrNotRecipient: only the named recipient may accept.
	ErrNotRecipient = errors.New("not the recipient of the release")
	// ErrNoPendingRelease: accept, cancel or expiry with nothing pending.
	ErrNoPendingRelease = errors.New("no pending release")
	// ErrReleasePending: a second release while one is pending.
	ErrReleasePending = errors.New("a release is already pending")
	// ErrWrongRelease: the event names another release than the pending one.
	ErrWrongRelease = errors.New("not the pending release")
	// ErrReleaseLapsed: the pending release's time is up; only its expiry
	// may be recorded next.
	ErrReleaseLapsed = errors.New("the pending release has lapsed")
	// ErrBadEvent: the event is malformed for its type.
	ErrBadEvent = errors.New("malformed custody event")
)

// RuleError says why an event may not follow the state it was applied to.
type RuleError struct {
	Rule error
	Msg  string
}

func (e *RuleError) Error() string { return e.Msg }
func (e *RuleError) Unwrap() error { return e.Rule }

func broke(rule error, format string, args ...any) error {
	return &RuleError{Rule: rule, Msg: fmt.Sprintf(format, args...)}
}

// Next returns the custody state after rec, or a *RuleError saying why rec
// may not follow st. The zero State is an item before its ingest.
//
//   - ingest: first, and only first; its performer becomes the custodian.
//   - any event recorded at or after a pending release's expires_at, other
//     than release_expired, is refused (ErrReleaseLapsed).
//   - release: by the custodian, to someone else, with none pending; it
//     states expires_at. The releaser stays custodian until the accept.
//   - accept: by the pending release's recipient, naming the releaser as
//     counterparty and the release as release_seq; the accepter becomes
//     custodian.
//   - release_cancelled: by the custodian (the releaser), naming the
//     pending release and its recipient.
//   - release_expired: by the service, at or after expires_at, naming the
//     pending release and its expires_at.
//   - analysis, derivation, submission_to_court: by the custodian.
//   - access, verification, annotation: by anyone the service allowed; no
//     change of custody.
func (st State) Next(rec Record) (State, error) {
	if rec.Type == Ingest {
		if st.Custodian != "" || rec.Sequence != 0 {
			return st, broke(ErrBadEvent, "event %d of %s: an ingest can only be an item's first event", rec.Sequence, rec.EvidenceID)
		}
		if rec.Performer == "" {
			return st, broke(ErrBadEvent, "the ingest of %s names no collector", rec.EvidenceID)
		}
		return State{Custodian: rec.Performer}, nil
	}
	if st.Custodian == "" {
		return st, broke(ErrBadEvent, "event %d of %s: the chain does not start with an ingest", rec.Sequence, rec.EvidenceID)
	}
	p := st.Pending
	if p != nil && rec.Type != ReleaseExpired && !rec.RecordedAt.Before(p.ExpiresAt) {
		return st, broke(ErrReleaseLapsed, "the release of %s to %s (event %d) lapsed at %s", rec.EvidenceID, p.To, p.Seq, FormatTime(p.ExpiresAt))
	}
	releaseSeq := func() (uint64, bool) {
		switch v := rec.Details["release_seq"].(type) {
		case int64:
			return uint64(v), v >= 0
		case uint64:
			return v, true
		case int:
			return uint64(v), v >= 0
		}
		return 0, false
	}
	switch rec.Type {
	case Release:
		if rec.Performer != st.Custodian {
			return st, broke(ErrNotCustodian, "only the current custodian (%s) can release %s", st.Custodian, rec.EvidenceID)
		}
		if p != nil {
			return st, broke(ErrReleasePending, "%s is already released to %s (event %d); cancel that release first", rec.EvidenceID, p.To, p.Seq)
		}
		if rec.Counterparty == "" {
			return st, broke(ErrBadEvent, "event %d of %s: a release names its recipient", rec.Sequence, rec.EvidenceID)
		}
		if rec.Counterparty == rec.Performer {
			return st, broke(ErrBadEvent, "you cannot release an item to yourself")
		}
		s, _ := rec.Details["expires_at"].(string)
		expires, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || !expires.After(rec.RecordedAt) {
			return st, broke(ErrBadEvent, "event %d of %s: a release states when it lapses (expires_at), after its own time", rec.Sequence, rec.EvidenceID)
		}
		reason, _ := rec.Details["reason"].(string)
		st.Pending = &Pending{Seq: rec.Sequence, From: rec.Performer, To: rec.Counterparty, Reason: reason, ExpiresAt: expires}
	case Accept:
		if p == nil {
			return st, broke(ErrNoPendingRelease, "%s has no pending release to accept", rec.EvidenceID)
		}
		if rec.Performer != p.To {
			return st, broke(ErrNotRecipient, "%s is released to %s, not to you", rec.EvidenceID, p.To)
		}
		if seq, ok := releaseSeq(); !ok || seq != p.Seq {
			return st, broke(ErrWrongRelease, "the pending release of %s is event %d; the accept names event %v", rec.EvidenceID, p.Seq, rec.Details["release_seq"])
		}
		if rec.Counterparty != st.Custodian {
			return st, broke(ErrBadEvent, "event %d of %s: the accept names %s as releaser, but %s held the item", rec.Sequence, rec.EvidenceID, rec.Counterparty, st.Custodian)
		}
		st = State{Custodian: rec.Performer}
	case ReleaseCancelled:
		if p == nil {
			return st, broke(ErrNoPendingRelease, "%s has no pending release to cancel", rec.EvidenceID)
		}
		if rec.Performer != st.Custodian {
			return st, broke(ErrNotCustodian, "only the releaser (%s) can cancel the release of %s", st.Custodian, rec.EvidenceID)
		}
		if seq, ok := releaseSeq(); !ok || seq != p.Seq {
			return st, broke(ErrWrongRelease, "the pending release of %s is event %d; the cancellation names event %v", rec.EvidenceID, p.Seq, rec.Details["release_seq"])
		}
		if rec.Counterparty != p.To {
			return st, broke(ErrBadEvent, "event %d of %s: the cancellation names %s, but the release was to %s", rec.Sequence, rec.EvidenceID, rec.Counterparty, p.To)
		}
		st.Pending = nil
	case ReleaseExpired:
		if p == nil {
			return st, broke(ErrNoPendingRelease, "%s has no pending release to expire", rec.EvidenceID)
		}
		if rec.Performer != ServicePerformer {
			return st, broke(ErrBadEvent, "event %d of %s: only the service records a lapsed release", rec.Sequence, rec.EvidenceID)
		}
		if seq, ok := releaseSeq(); !ok || seq != p.Seq {
			return st, broke(ErrWrongRelease, "the pending release of %s is event %d; the expiry names event %v", rec.EvidenceID, p.Seq, rec.Details["release_seq"])
		}
		if at, _ := rec.Details["expired_at"].(string); at != FormatTime(p.ExpiresAt) || rec.RecordedAt.Before(p.ExpiresAt) {
			return st, broke(ErrBadEvent, "event %d of %s: the release lapses at %s, not %q (recorded %s)", rec.Sequence, rec.EvidenceID, FormatTime(p.ExpiresAt), at, FormatTime(rec.RecordedAt))
		}
		st.Pending = nil
	case Analysis, Derivation, SubmissionToCourt:
		if rec.Performer != st.Custodian {
			return st, broke(ErrNotCustodian, "only the current custodian (%s) records %s for %s", st.Custodian, rec.Type, rec.EvidenceID)
		}
	case Access, Verification, Annotation:
	default:
		return st, broke(ErrBadEvent, "event %d of %s: unknown event type %q", rec.Sequence, rec.EvidenceID, rec.Type)
	}
	return st, nil
}
