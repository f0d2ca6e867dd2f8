package evidence

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/custody-dev/custody/canonicaljson"
	"github.com/custody-dev/custody/catalog"
	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/receipt"
)

// ServicePerformer is the performer of events the service records itself
// (a release that lapsed).
const ServicePerformer = "urn:custody:service:custodyd"

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
	if err := checkText("reason", h.Reason, maxDescription); err != nil {
		return Event{}, err
	}
	return s.appendEvent(ctx, id, func(item catalog.Evidence, rec *events.Record) error {
		if item.Custodian != who.String() {
			return fmt.Errorf("%w: only the current custodian (%s) can release %s", identity.ErrPermissionDenied, item.Custodian, id)
		}
		if item.Pending != nil {
			return fmt.Errorf("%w: %s is already released to %s (event %d); cancel that release first", ErrFailedPrecondition, id, item.Pending.To, item.Pending.Seq)
		}
		if to.String() == who.String() {
			return fmt.Errorf("%w: you cannot release an item to yourself", ErrInvalid)
		}
		statement, err := events.ReleaseStatement(id, item.SHA256, who.String(), to.String(), h.Reason, sigTime(h.Signature))
		if err != nil {
			return err
		}
		sigDetails, err := s.checkSignature(who, h.Signature, statement)
		if err != nil {
			return err
		}
		rec.Type = events.Release
		rec.Performer = who.String()
		rec.Counterparty = to.String()
		sigDetails["reason"] = h.Reason
		sigDetails["expires_at"] = events.FormatTime(rec.RecordedAt.Add(s.releaseTTL()))
		addLocation(sigDetails, h.Location)
		rec.Details = sigDetails
		return nil
	})
}

// Accept takes over an item released to the caller.
func (s *Service) Accept(ctx context.Context, who identity.Identity, id string, h Handoff) (Event, error) {
	return s.appendEvent(ctx, id, func(item catalog.Evidence, rec *events.Record) error {
		p := item.Pending
		if p == nil {
			return fmt.Errorf("%w: %s has no pending release to accept", ErrFailedPrecondition, id)
		}
		if p.To != who.String() {
			return fmt.Errorf("%w: %s is released to %s, not to you", identity.ErrPermissionDenied, id, p.To)
		}
		if h.ReleaseSeq != 0 && h.ReleaseSeq != p.Seq {
			return fmt.Errorf("%w: the pending release of %s is event %d, not %d", ErrFailedPrecondition, id, p.Seq, h.ReleaseSeq)
		}
		statement, err := events.AcceptStatement(id, item.SHA256, item.Custodian, who.String(), p.Seq, sigTime(h.Signature))
		if err != nil {
			return err
		}
		details, err := s.checkSignature(who, h.Signature, statement)
		if err != nil {
			return err
		}
		rec.Type = events.Accept
		rec.Performer = who.String()
		rec.Counterparty = item.Custodian
		details["release_seq"] = p.Seq
		addLocation(details, h.Location)
		rec.Details = details
		return nil
	})
}

// CancelRelease withdraws a pending release; only its releaser may.
func (s *Service) CancelRelease(ctx context.Context, who identity.Identity, id string, h Handoff) (Event, error) {
	if err := checkText("reason", h.Reason, maxDescription); err != nil {
		return Event{}, err
	}
	return s.appendEvent(ctx, id, func(item catalog.Evidence, rec *events.Record) error {
		p := item.Pending
		if p == nil {
			return fmt.Errorf("%w: %s has no pending release to cancel", ErrFailedPrecondition, id)
		}
		if item.Custodian != who.String() {
			return fmt.Errorf("%w: only the releaser (%s) can cancel the release of %s", identity.ErrPermissionDenied, item.Custodian, id)
		}
		if h.ReleaseSeq != 0 && h.ReleaseSeq != p.Seq {
			return fmt.Errorf("%w: the pending release of %s is event %d, not %d", ErrFailedPrecondition, id, p.Seq, h.ReleaseSeq)
		}
		rec.Type = events.ReleaseCancelled
		rec.Performer = who.String()
		rec.Counterparty = p.To
		rec.Details = canonicaljson.Object{"release_seq": p.Seq, "reason": h.Reason}
		return nil
	})
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
	for name, v := range map[string]string{"note": in.Note, "purpose": in.Purpose, "outcome": in.Outcome} {
		if err := checkText(name, v, maxDescription); err != nil {
			return Event{}, err
		}
	}
	if err := in.Authority.validate(); err != nil {
		return Event{}, err
	}
	if !in.StartedAt.IsZero() && !in.EndedAt.IsZero() && in.EndedAt.Before(in.StartedAt) {
		return Event{}, fmt.Errorf("%w: ended_at is before started_at", ErrInvalid)
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
		if in.Type != events.Annotation && item.Custodian != who.String() {
			return fmt.Errorf("%w: only the current custodian (%s) records %s for %s", identity.ErrPermissionDenied, item.Custodian, in.Type, id)
		}
		rec.Type = in.Type
		rec.Performer = who.String()
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

// Events returns an item's custody chain in order, with each record
// decoded. Readers of special-category items must be allowed to read them.
func (s *Service) Events(ctx context.Context, who identity.Identity, id string) ([]events.Record, []catalog.Event, error) {
	item, err := s.loadItem(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if item.Special && !s.mayReadSpecial(who, item) && who.Role != identity.RoleAuditor {
		return nil, nil, fmt.Errorf("%w: the history of special-category item %s is for the court, auditors and its custodian", identity.ErrPermissionDenied, id)
	}
	rows, err := s.catalog.Events(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	recs := make([]events.Record, len(rows))
	for i, row := range rows {
		if recs[i], err = events.ParseRecord(row.Record); err != nil {
			return nil, nil, fmt.Errorf("%s event %d: %w", id, row.Seq, err)
		}
	}
	return recs, rows, nil
}

// nextState is what an event does to an item's custody state. It is a pure
// function of the state and the record, so replaying the log rebuilds it.
func nextState(st catalog.ItemState, rec events.Record) catalog.ItemState {
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
	return st
}
