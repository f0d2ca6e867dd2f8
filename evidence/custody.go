package evidence

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/custody-dev/custody/canonicaljson"
	"github.com/custody-dev/custody/catalog"
	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/receipt"
)

// ServicePerformer is the performer of events the service records itself
// (a release that lapsed).
const ServicePerformer = events.ServicePerformer

// DefaultReleaseTTL is how long a release waits for its recipient.
const DefaultReleaseTTL = 72 * time.Hour

// Signature is a party's own signature over a hand-off statement, with the
// certificate (DER) whose key made it and the time it was made.
type Signature struct {
	Signature   []byte
	Certificate []byte
	SignedAt    time.Time
}

// Handoff is what a release or accept states beyond the item.
type Handoff struct {
	To         string // release: the recipient's identity URI
	Reason     string
	ReleaseSeq uint64 // accept, cancel: the release answered
	Signature  *Signature
	Location   *Location
}

// Release offers an item the caller holds to a named recipient. The caller
// stays custodian until the recipient accepts.
func (s *Service) Release(ctx context.Context, who identity.Identity, id string, h Handoff) (Event, error) {
	to, err := identity.Parse(h.To)
	if err != nil {
		return Event{}, fmt.Errorf("%w: recipient: %v", ErrInvalid, err)
	}
	if err := h.validate(); err != nil {
		return Event{}, err
	}
	return s.appendEvent(ctx, id, func(item catalog.Evidence, rec *events.Record) error {
		rec.Type = events.Release
		rec.Performer = who.String()
		rec.Counterparty = to.String()
		rec.Details = canonicaljson.Object{"reason": h.Reason, "expires_at": events.FormatTime(rec.RecordedAt.Add(s.releaseTTL()))}
		if err := checkRules(item, *rec); err != nil {
			return err
		}
		statement, err := events.ReleaseStatement(id, item.SHA256, who.String(), to.String(), h.Reason, sigTime(h.Signature))
		if err != nil {
			return err
		}
		sigDetails, err := s.checkSignature(who, h.Signature, statement)
		if err != nil {
			return err
		}
		maps.Copy(rec.Details, sigDetails)
		addLocation(rec.Details, h.Location)
		return nil
	})
}

// Accept takes over an item released to the caller.
func (s *Service) Accept(ctx context.Context, who identity.Identity, id string, h Handoff) (Event, error) {
	if err := h.validate(); err != nil {
		return Event{}, err
	}
	return s.appendEvent(ctx, id, func(item catalog.Evidence, rec *events.Record) error {
		rec.Type = events.Accept
		rec.Performer = who.String()
		rec.Counterparty = item.Custodian
		rec.Details = canonicaljson.Object{"release_seq": answered(item, h.ReleaseSeq)}
		if err := checkRules(item, *rec); err != nil {
			return err
		}
		statement, err := events.AcceptStatement(id, item.SHA256, item.Custodian, who.String(), item.Pending.Seq, sigTime(h.Signature))
		if err != nil {
			return err
		}
		details, err := s.checkSignature(who, h.Signature, statement)
		if err != nil {
			return err
		}
		maps.Copy(rec.Details, details)
		addLocation(rec.Details, h.Location)
		return nil
	})
}

// CancelRelease withdraws a pending release; only its releaser may.
func (s *Service) CancelRelease(ctx context.Context, who identity.Identity, id string, h Handoff) (Event, error) {
	if err := h.validate(); err != nil {
		return Event{}, err
	}
	return s.appendEvent(ctx, id, func(item catalog.Evidence, rec *events.Record) error {
		rec.Type = events.ReleaseCancelled
		rec.Performer = who.String()
		if item.Pending != nil {
			rec.Counterparty = item.Pending.To
		}
		rec.Details = canonicaljson.Object{"release_seq": answered(item, h.ReleaseSeq), "reason": h.Reason}
		return nil
	})
}

// mayAnnotate: an annotation is a permanent part of an item's history, so
// only those with a stake in the item now may add one: its holder, the
// recipient of its pending release, and the court (docs/AUTHORIZATION.md).
func mayAnnotate(who identity.Identity, item catalog.Evidence) bool {
	me := who.String()
	return me == item.Custodian || (item.Pending != nil && item.Pending.To == me) || who.Role == identity.RoleCourt
}

// answered is the release an accept or a cancellation answers: the one the
// caller named, or else the pending one.
func answered(item catalog.Evidence, named uint64) uint64 {
	if named == 0 && item.Pending != nil {
		return item.Pending.Seq
	}
	return named
}

// checkRules checks rec against the custody rules (events.State.Next)
// and maps a broken rule to the error kind callers see.
func checkRules(item catalog.Evidence, rec events.Record) error {
	_, err := stateOf(item).Next(rec)
	return ruleError(err)
}

func ruleError(err error) error {
	var re *events.RuleError
	if !errors.As(err, &re) {
		return err
	}
	kind := ErrInvalid
	switch re.Rule {
	case events.ErrNotCustodian, events.ErrNotRecipient:
		kind = identity.ErrPermissionDenied
	case events.ErrNoPendingRelease, events.ErrReleasePending, events.ErrWrongRelease, events.ErrReleaseLapsed:
		kind = ErrFailedPrecondition
	}
	// The rule stays in the chain (errors.As finds the *events.RuleError),
	// so the server can name it to programs; callers read the same text.
	return fmt.Errorf("%w: %w", kind, re)
}

// stateOf is an item's custody state in the custody rules' terms.
func stateOf(item catalog.Evidence) events.State {
	st := events.State{Custodian: item.Custodian}
	if p := item.Pending; p != nil {
		st.Pending = &events.Pending{Seq: p.Seq, From: item.Custodian, To: p.To, Reason: p.Reason, ExpiresAt: p.ExpiresAt}
	}
	return st
}

// catalogState is the custody state as the catalog keeps it.
func catalogState(st events.State) catalog.ItemState {
	out := catalog.ItemState{Custodian: st.Custodian}
	if p := st.Pending; p != nil {
		out.Pending = &catalog.PendingRelease{To: p.To, Reason: p.Reason, Seq: p.Seq, ExpiresAt: p.ExpiresAt}
	}
	return out
}

func (s *Service) releaseTTL() time.Duration {
	if s.cfg.ReleaseTTL > 0 {
		return s.cfg.ReleaseTTL
	}
	return DefaultReleaseTTL
}

func sigTime(sig *Signature) time.Time {
	if sig == nil {
		return time.Time{}
	}
	return sig.SignedAt
}

// checkSignature verifies a party's signature over statement with the
// caller's own certificate and returns the record details that keep the
// evidence of it.
func (s *Service) checkSignature(who identity.Identity, sig *Signature, statement []byte) (canonicaljson.Object, error) {
	return s.verifyPartySignature(who, sig, statement, true)
}

// verifyPartySignature checks sig over statement with the caller's own
// certificate; withSkew also requires signed_at near the server's clock.
func (s *Service) verifyPartySignature(who identity.Identity, sig *Signature, statement []byte, withSkew bool) (canonicaljson.Object, error) {
	if sig == nil || len(sig.Signature) == 0 {
		return nil, fmt.Errorf("%w: the statement must be signed with the key of your client certificate", ErrInvalid)
	}
	if who.Certificate == nil || !bytes.Equal(sig.Certificate, who.Certificate.Raw) {
		return nil, fmt.Errorf("%w: the statement is signed with a certificate that is not the one you connected with", ErrInvalid)
	}
	if skew := s.now().Sub(sig.SignedAt); withSkew && (skew > events.MaxStatementSkew || skew < -events.MaxStatementSkew) {
		return nil, fmt.Errorf("%w: the signature's time %s is more than %v from the server's clock", ErrInvalid, events.FormatTime(sig.SignedAt), events.MaxStatementSkew)
	}
	cert, err := x509.ParseCertificate(sig.Certificate)
	if err != nil {
		return nil, fmt.Errorf("%w: signer certificate: %v", ErrInvalid, err)
	}
	// The same check a court's verifier makes (package verify).
	if err := receipt.VerifySignature(cert.PublicKey, statement, sig.Signature); err != nil {
		return nil, fmt.Errorf("%w: the signature does not verify against your certificate", ErrInvalid)
	}
	return canonicaljson.Object{
		"statement":   string(statement),
		"signature":   base64.StdEncoding.EncodeToString(sig.Signature),
		"certificate": base64.StdEncoding.EncodeToString(sig.Certificate),
	}, nil
}

func addLocation(details canonicaljson.Object, l *Location) {
	if l == nil {
		return
	}
	loc := canonicaljson.Object{}
	if l.Description != "" {
		loc["description"] = l.Description
	}
	if p := l.Point; p != nil {
		// Coordinates as decimal strings: canonical JSON carries no floats.
		loc["latitude"] = fmt.Sprintf("%.7f", p.Latitude)
		loc["longitude"] = fmt.Sprintf("%.7f", p.Longitude)
	}
	details["location"] = loc
}

// EventInput is what a caller states about an analysis, derivation,
// submission to court or annotation.
type EventInput struct {
	Type       events.Type
	Note       string
	Purpose    string
	Authority  *Authority
	Instrument *Instrument
	Location   *Location
	StartedAt  time.Time
	EndedAt    time.Time
	Outcome    string
	// RelatedEvidenceID is the derived item, for derivations.
	RelatedEvidenceID string
}

// Instrument is the tool used.
type Instrument struct {
	Name    string
	Version string
}

// RecordEvent records an event other than ingest, hand-off and access.
// Analysis, derivation and submission to court are the custodian's to
// record; anyone may annotate.
func (s *Service) RecordEvent(ctx context.Context, who identity.Identity, id string, in EventInput) (Event, error) {
	switch in.Type {
	case events.Analysis, events.Derivation, events.SubmissionToCourt, events.Annotation:
	default:
		return Event{}, fmt.Errorf("%w: event type %q cannot be recorded directly; use analysis, derivation, submission_to_court or annotation", ErrInvalid, in.Type)
	}
	if err := in.validate(s.now()); err != nil {
		return Event{}, err
	}
	var related catalog.Evidence
	if in.Type == events.Derivation {
		if in.RelatedEvidenceID == "" || in.Instrument == nil || in.Instrument.Name == "" {
			return Event{}, fmt.Errorf("%w: a derivation names the derived item (related_evidence_id) and the instrument used", ErrInvalid)
		}
		var err error
		if related, err = s.loadItem(ctx, in.RelatedEvidenceID); err != nil {
			return Event{}, fmt.Errorf("related item: %w", err)
		}
	}
	return s.appendEvent(ctx, id, func(item catalog.Evidence, rec *events.Record) error {
		rec.Type = in.Type
		rec.Performer = who.String()
		if err := checkRules(item, *rec); err != nil {
			return err
		}
		if in.Type == events.Annotation && !mayAnnotate(who, item) {
			return fmt.Errorf("%w: only the holder of %s, the recipient of its pending release and the court annotate it", identity.ErrPermissionDenied, id)
		}
		rec.Purpose = in.Purpose
		d := canonicaljson.Object{}
		if in.Note != "" {
			d["note"] = in.Note
		}
		if in.Outcome != "" {
			d["outcome"] = in.Outcome
		}
		if in.Authority != nil {
			d["authority"] = in.Authority.canonical()
		}
		if in.Instrument != nil {
			d["instrument"] = canonicaljson.Object{"name": in.Instrument.Name, "version": in.Instrument.Version}
		}
		if !in.StartedAt.IsZero() {
			d["started_at"] = events.FormatTime(in.StartedAt)
		}
		if !in.EndedAt.IsZero() {
			d["ended_at"] = events.FormatTime(in.EndedAt)
		}
		if related.ID != "" {
			d["related_evidence_id"] = related.ID
			d["related_sha256"] = related.SHA256
		}
		addLocation(d, in.Location)
		if len(d) > 0 {
			rec.Details = d
		}
		return nil
	})
}

// Pages of an item's history: however long it grows (the log is
// append-only), it is read a page at a time, each small enough for any
// gRPC or REST reader.
const (
	DefaultEventsPage = 100
	MaxEventsPage     = 500
	// maxPageBytes bounds the records of one page, well under gRPC's
	// default 4 MiB message.
	maxPageBytes = 2 << 20
)

// Events returns a page of an item's custody chain in order, from sequence
// from: at most limit events (DefaultEventsPage if 0, at most
// MaxEventsPage) and at most about 2 MiB of records. next is the sequence
// to ask for next, or 0 at the end. Readers of special-category items must
// be allowed to read them; auditors get the history's shape only
// (historyShape).
func (s *Service) Events(ctx context.Context, who identity.Identity, id string, from uint64, limit int) (recs []events.Record, rows []catalog.Event, next uint64, err error) {
	item, err := s.loadItem(ctx, id)
	if err != nil {
		return nil, nil, 0, err
	}
	shapeOnly := item.Special && !s.mayReadSpecial(who, item)
	if shapeOnly && who.Role != identity.RoleAuditor {
		return nil, nil, 0, fmt.Errorf("%w: the history of special-category item %s is for the court and its custodian; auditors see its shape", identity.ErrPermissionDenied, id)
	}
	switch {
	case limit <= 0:
		limit = DefaultEventsPage
	case limit > MaxEventsPage:
		limit = MaxEventsPage
	}
	rows, err = s.catalog.EventsFrom(ctx, id, from, limit)
	if err != nil {
		return nil, nil, 0, err
	}
	size := 0
	for i, row := range rows {
		if size += len(row.Record) + len(row.ReceiptPayload); i > 0 && size > maxPageBytes {
			rows = rows[:i]
			break
		}
	}
	recs = make([]events.Record, len(rows))
	for i, row := range rows {
		if recs[i], err = events.ParseRecord(row.Record); err != nil {
			return nil, nil, 0, fmt.Errorf("%s event %d: %w", id, row.Seq, err)
		}
		if shapeOnly {
			recs[i], rows[i] = historyShape(recs[i], rows[i])
		}
	}
	if len(rows) > 0 && rows[len(rows)-1].Seq < item.LastSeq {
		next = rows[len(rows)-1].Seq + 1
	}
	return recs, rows, next, nil
}

// nextState applies a logged record to an item's custody state. A record
// already in the log is a fact: if it breaks the custody rules (a bug, or a
// record logged by another version), the state still follows it as far as
// it can, and the error says what was wrong.
func nextState(st catalog.ItemState, rec events.Record) (catalog.ItemState, error) {
	item := catalog.Evidence{Custodian: st.Custodian, Pending: st.Pending}
	next, err := stateOf(item).Next(rec)
	if err == nil {
		return catalogState(next), nil
	}
	switch rec.Type {
	case events.Release:
		p := &catalog.PendingRelease{To: rec.Counterparty, Seq: rec.Sequence}
		p.Reason, _ = rec.Details["reason"].(string)
		if s, ok := rec.Details["expires_at"].(string); ok {
			p.ExpiresAt, _ = time.Parse(time.RFC3339Nano, s)
		}
		st.Pending = p
	case events.Accept:
		st.Custodian = rec.Performer
		st.Pending = nil
	case events.ReleaseCancelled, events.ReleaseExpired:
		st.Pending = nil
	}
	return st, err
}
