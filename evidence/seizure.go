package evidence

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/custody-dev/custody/catalog"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/receipt"
)

// MaxSeizureRecordBytes bounds a seizure record document (attachments are
// separate items and have the upload limit).
const MaxSeizureRecordBytes = 1 << 20

// CreateSeizureRecord stores a biometric-data seizure record document (the
// JSON the RPC layer validated) as an encrypted, special-category item of
// kind biometric_seizure_record. The attachments must be special-category
// items of the same case, uploaded before. recordDigests are the record's
// record_digests (lower-case hex SHA-256): when the record lists digests and
// has attachments, the two must agree — every attachment's digest listed,
// every listed digest an attachment's — or nothing is stored. The digest
// logged and signed is of the plaintext document.
func (s *Service) CreateSeizureRecord(ctx context.Context, who identity.Identity, caseID string, doc []byte, attachments []string, recordDigests []string, description string) (Item, receipt.Receipt, error) {
	if len(doc) > MaxSeizureRecordBytes {
		return Item{}, receipt.Receipt{}, fmt.Errorf("%w: the record is %d bytes, at most %d", ErrTooLarge, len(doc), MaxSeizureRecordBytes)
	}
	seen := map[string]bool{}
	atts := make([]catalog.Evidence, 0, len(attachments))
	for _, id := range attachments {
		if seen[id] {
			return Item{}, receipt.Receipt{}, fmt.Errorf("%w: attachment %s is listed twice", ErrInvalid, id)
		}
		seen[id] = true
		att, err := s.loadItem(ctx, id)
		if err != nil {
			return Item{}, receipt.Receipt{}, fmt.Errorf("attachment: %w", err)
		}
		if !att.Special || att.CaseID != caseID {
			return Item{}, receipt.Receipt{}, fmt.Errorf("%w: attachment %s must be a special-category item of case %s; upload it with special_category set", ErrFailedPrecondition, id, caseID)
		}
		atts = append(atts, att)
	}
	if err := s.checkRecordDigests(who, atts, recordDigests); err != nil {
		return Item{}, receipt.Receipt{}, err
	}
	sum := sha256.Sum256(doc)
	meta := UploadMeta{
		CaseID: caseID, Kind: KindBiometricSeizureRecord, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(doc)),
		DeclaredMediaType: "application/json", Description: description, Special: true,
		seizureRecord: true, seizureAttachments: attachments,
	}
	return s.Ingest(ctx, who, meta, bytes.NewReader(doc))
}

// checkRecordDigests refuses a record whose digests disagree with its
// attachments, naming the attachment (index, id, and file name if the
// caller may read it) or the digest at fault. A record without digests, or
// without attachments, has nothing to compare.
func (s *Service) checkRecordDigests(who identity.Identity, atts []catalog.Evidence, recordDigests []string) error {
	if len(atts) == 0 || len(recordDigests) == 0 {
		return nil
	}
	listed := map[string]bool{}
	for _, d := range recordDigests {
		listed[strings.ToLower(d)] = true
	}
	attached := map[string]bool{}
	for i, att := range atts {
		attached[att.SHA256] = true
		if listed[att.SHA256] {
			continue
		}
		name := att.ID
		if item, err := s.decode(att, s.mayReadSpecial(who, att)); err == nil && item.Meta.Filename != "" {
			name += fmt.Sprintf(", file %q", item.Meta.Filename)
		}
		return fmt.Errorf("%w: attachment_evidence_ids[%d] (%s) has sha256 %s, which the record's record_digests do not list; record_digests must list the sha256 of every attachment and nothing else", ErrInvalid, i, name, att.SHA256)
	}
	for i, d := range recordDigests {
		if !attached[strings.ToLower(d)] {
			return fmt.Errorf("%w: record_digests[%d] (sha256 %s) is the digest of none of the %d attachment(s); record_digests must list the sha256 of every attachment and nothing else", ErrInvalid, i, strings.ToLower(d), len(atts))
		}
	}
	return nil
}

// ReadSeizureRecord returns a seizure record's document to a caller allowed
// to read it, logging the access first.
func (s *Service) ReadSeizureRecord(ctx context.Context, who identity.Identity, id string, access Access) (Item, []byte, error) {
	ev, err := s.loadItem(ctx, id)
	if err != nil {
		return Item{}, nil, err
	}
	if ev.Kind != string(KindBiometricSeizureRecord) {
		return Item{}, nil, fmt.Errorf("%w: %s is a %s, not a seizure record", ErrFailedPrecondition, id, ev.Kind)
	}
	item, _, rc, err := s.Open(ctx, who, id, access)
	if err != nil {
		return Item{}, nil, err
	}
	defer rc.Close()
	doc, err := io.ReadAll(io.LimitReader(rc, MaxSeizureRecordBytes+1))
	if err != nil {
		return Item{}, nil, err
	}
	return item, doc, nil
}
