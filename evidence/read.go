package evidence

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/custody-dev/custody/canonicaljson"
	"github.com/custody-dev/custody/catalog"
	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/identity"
)

// Authority is the basis for an action (warrant, court order...).
type Authority struct {
	Type       string
	Identifier string
	IssuedBy   string
	ValidFrom  time.Time
	ValidUntil time.Time
}

func (a *Authority) canonical() canonicaljson.Object {
	obj := canonicaljson.Object{"type": a.Type, "identifier": a.Identifier}
	if a.IssuedBy != "" {
		obj["issued_by"] = a.IssuedBy
	}
	if !a.ValidFrom.IsZero() {
		obj["valid_from"] = events.FormatTime(a.ValidFrom)
	}
	if !a.ValidUntil.IsZero() {
		obj["valid_until"] = events.FormatTime(a.ValidUntil)
	}
	return obj
}

// validate checks a cited authority wherever one is given: type and
// identifier present and not blank, issued_by not blank when given, and
// valid_until not before valid_from.
func (a *Authority) validate() error {
	if a == nil {
		return nil
	}
	if a.Type == "" || a.Identifier == "" {
		return fmt.Errorf("%w: an authority needs a type and an identifier (authority.type, authority.identifier)", ErrInvalid)
	}
	for _, f := range []struct{ name, v string }{{"authority.type", a.Type}, {"authority.identifier", a.Identifier}, {"authority.issued_by", a.IssuedBy}} {
		if f.v != "" && strings.TrimSpace(f.v) == "" {
			return fmt.Errorf("%w: %s is blank", ErrInvalid, f.name)
		}
		if err := checkText(f.name, f.v, maxShortText); err != nil {
			return err
		}
	}
	for name, t := range map[string]time.Time{"authority.valid_from": a.ValidFrom, "authority.valid_until": a.ValidUntil} {
		if !t.IsZero() {
			if err := checkTimeIn(name, t, minRecordTime, maxRecordTime); err != nil {
				return err
			}
		}
	}
	if !a.ValidFrom.IsZero() && !a.ValidUntil.IsZero() && a.ValidUntil.Before(a.ValidFrom) {
		return fmt.Errorf("%w: authority.valid_until (%s) is before its valid_from (%s)", ErrInvalid, events.FormatTime(a.ValidUntil), events.FormatTime(a.ValidFrom))
	}
	return nil
}

// validateAccess checks an authority cited for a content read at time at:
// as validate, and in force at that time. complete (--require-authority)
// requires every field.
func (a *Authority) validateAccess(at time.Time, complete bool) error {
	if err := a.validate(); err != nil {
		return err
	}
	if complete {
		for _, f := range []struct {
			name    string
			missing bool
		}{{"authority.issued_by", a.IssuedBy == ""}, {"authority.valid_from", a.ValidFrom.IsZero()}, {"authority.valid_until", a.ValidUntil.IsZero()}} {
			if f.missing {
				return fmt.Errorf("%w: this service requires a complete authority for every read of evidence content: %s is missing (give type, identifier, issued_by, valid_from and valid_until)", ErrInvalid, f.name)
			}
		}
	}
	if !a.ValidFrom.IsZero() && at.Before(a.ValidFrom) {
		return fmt.Errorf("%w: the authority %s is not valid before %s (this read is at %s)", ErrInvalid, a.Identifier, events.FormatTime(a.ValidFrom), events.FormatTime(at))
	}
	if !a.ValidUntil.IsZero() && at.After(a.ValidUntil) {
		return fmt.Errorf("%w: the authority %s expired at %s (this read is at %s)", ErrInvalid, a.Identifier, events.FormatTime(a.ValidUntil), events.FormatTime(at))
	}
	return nil
}

// Access is why content is read.
type Access struct {
	Purpose   string
	Authority *Authority
}

// validate checks an access at time at; requireAuthority is the operator's
// --require-authority.
func (a Access) validate(at time.Time, requireAuthority bool) error {
	if a.Purpose == "" {
		return fmt.Errorf("%w: a purpose is required to read evidence content", ErrInvalid)
	}
	if requireAuthority && a.Authority == nil {
		return fmt.Errorf("%w: this service requires an authority for every read of evidence content (type, identifier, issued_by, valid_from and valid_until, e.g. a court order)", ErrInvalid)
	}
	if err := checkText("purpose", a.Purpose, maxDescription); err != nil {
		return err
	}
	if a.Authority == nil {
		return nil
	}
	return a.Authority.validateAccess(at, requireAuthority)
}

// mayReadSpecial says whether who may read special-category data of item:
// the roles the operator grants (the court by default), and whoever holds
// the item now.
func (s *Service) mayReadSpecial(who identity.Identity, item catalog.Evidence) bool {
	return slices.Contains(s.cfg.SpecialReaders, who.Role) || who.String() == item.Custodian
}

// Get returns an item. The metadata of a special-category item is never
// decrypted here, whoever asks: it comes only with a read that states a
// purpose and is logged as an access event first (Open, ReadSeizureRecord).
// Its pending release's reason, a record field, goes only to those who may
// read its records.
func (s *Service) Get(ctx context.Context, who identity.Identity, id string) (Item, error) {
	ev, err := s.loadItem(ctx, id)
	if err != nil {
		return Item{}, err
	}
	return s.decodeListed(who, ev)
}

// decodeListed is an item as Get and List return it: special-category
// metadata left encrypted (Meta empty).
func (s *Service) decodeListed(who identity.Identity, ev catalog.Evidence) (Item, error) {
	if ev.Special && ev.Pending != nil && !s.mayReadSpecial(who, ev) {
		p := *ev.Pending
		p.Reason = ""
		ev.Pending = &p
	}
	return s.decode(ev, false)
}

func (s *Service) decode(ev catalog.Evidence, readSpecial bool) (Item, error) {
	var md Metadata
	raw := ev.Metadata
	if ev.Special {
		if !readSpecial {
			return itemOf(ev, md), nil
		}
		var err error
		if raw, err = s.decryptMetadata(raw); err != nil {
			return Item{}, fmt.Errorf("decrypting metadata of %s: %w", ev.ID, err)
		}
	}
	if err := json.Unmarshal(raw, &md); err != nil {
		return Item{}, fmt.Errorf("metadata of %s: %w", ev.ID, err)
	}
	return itemOf(ev, md), nil
}

// MaxPageSize bounds list pages.
const MaxPageSize = 1000

// List returns a page of a case's items, as Get returns them; pageToken is
// from a previous page.
func (s *Service) List(ctx context.Context, who identity.Identity, caseID, pageToken string, pageSize int) ([]Item, string, error) {
	if err := checkCaseID(caseID); err != nil {
		return nil, "", err
	}
	switch {
	case pageSize < 0:
		return nil, "", fmt.Errorf("%w: page_size %d is negative", ErrInvalid, pageSize)
	case pageSize == 0:
		pageSize = 100
	case pageSize > MaxPageSize:
		pageSize = MaxPageSize
	}
	after := ""
	if pageToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(pageToken)
		if err != nil || CheckID(string(b)) != nil {
			return nil, "", fmt.Errorf("%w: page_token is not one this service issued", ErrInvalid)
		}
		after = string(b)
	}
	rows, err := s.catalog.ListByCase(ctx, caseID, after, pageSize+1)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(rows) > pageSize {
		rows = rows[:pageSize]
		next = base64.RawURLEncoding.EncodeToString([]byte(rows[len(rows)-1].ID))
	}
	items := make([]Item, 0, len(rows))
	for _, ev := range rows {
		item, err := s.decodeListed(who, ev)
		if err != nil {
			return nil, "", err
		}
		items = append(items, item)
	}
	return items, next, nil
}

// Open logs an access event and returns the item and a reader of its exact
// bytes (decrypted if stored encrypted), re-hashed as they are read: the
// reader fails with ErrCorrupt, holding back the final bytes, if they no
// longer match the digest the log commits to. An item whose catalog row
// disagrees with its logged ingest is refused (ErrCatalogDisagrees). The
// access is logged before any byte is read.
func (s *Service) Open(ctx context.Context, who identity.Identity, id string, access Access) (Item, Event, io.ReadCloser, error) {
	if err := access.validate(s.now(), s.cfg.RequireAuthority); err != nil {
		return Item{}, Event{}, nil, err
	}
	ev, err := s.loadItem(ctx, id)
	if err != nil {
		return Item{}, Event{}, nil, err
	}
	// Before anything is decided on the row (its special flag included).
	facts, err := s.checkRow(ctx, ev, "read")
	if err != nil {
		return Item{}, Event{}, nil, err
	}
	if ev.Special && !s.mayReadSpecial(who, ev) {
		return Item{}, Event{}, nil, fmt.Errorf("%w: %s is special-category data, readable only by its current custodian and the roles the operator grants", identity.ErrPermissionDenied, id)
	}
	item, err := s.decode(ev, true)
	if err != nil {
		return Item{}, Event{}, nil, err
	}
	// Reach the stored object first: an access is logged only when the
	// bytes can actually go out, and before the first one does.
	rc, err := s.store.Open(ctx, ev.Object)
	if err != nil {
		return Item{}, Event{}, nil, classifyStorage(err)
	}
	var plain io.ReadCloser = rc
	if ev.Encrypted {
		dec, err := age.Decrypt(rc, s.identity)
		if err != nil {
			rc.Close()
			return Item{}, Event{}, nil, wrapCause(ErrCorrupt, err, "the stored ciphertext of %s does not decrypt", id)
		}
		plain = readCloser{dec, rc}
	}
	logged, err := s.appendEvent(ctx, id, func(_ catalog.Evidence, rec *events.Record) error {
		rec.Type = events.Access
		rec.Performer = who.String()
		rec.Purpose = access.Purpose
		if access.Authority != nil {
			rec.Details = canonicaljson.Object{"authority": access.Authority.canonical()}
		}
		return nil
	})
	if err != nil {
		plain.Close()
		return Item{}, Event{}, nil, err
	}
	return item, logged, newVerifyingReader(plain, facts.sha256, facts.contentSize(ev)), nil
}

type readCloser struct {
	io.Reader
	io.Closer
}
