package evidence

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/receipt"
)

// MaxSeizureRecordBytes bounds a seizure record document (attachments are
// separate items and have the upload limit).
const MaxSeizureRecordBytes = 1 << 20

// CreateSeizureRecord stores a biometric-data seizure record document (the
// JSON the RPC layer validated) as an encrypted, special-category item of
// kind biometric_seizure_record. The attachments must be special-category
// items of the same case, uploaded before. The digest logged and signed is
// of the plaintext document.
func (s *Service) CreateSeizureRecord(ctx context.Context, who identity.Identity, caseID string, doc []byte, attachments []string, description string) (Item, receipt.Receipt, error) {
	if len(doc) > MaxSeizureRecordBytes {
		return Item{}, receipt.Receipt{}, fmt.Errorf("%w: the record is %d bytes, at most %d", ErrTooLarge, len(doc), MaxSeizureRecordBytes)
	}
	seen := map[string]bool{}
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
	}
	sum := sha256.Sum256(doc)
	meta := UploadMeta{
		CaseID: caseID, Kind: KindBiometricSeizureRecord, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(doc)),
		DeclaredMediaType: "application/json", Description: description, Special: true,
		seizureAttachments: attachments,
	}
	return s.Ingest(ctx, who, meta, bytes.NewReader(doc))
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
