package server

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/custody-dev/custody/evidence"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// validateSeizureRecord checks a seizure record before anything is stored:
// the fields a court needs are present, texts are bounded UTF-8, and
// subjects are referenced by pseudonyms, not names.
func validateSeizureRecord(r *custodyv1.SeizureRecord) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: seizure record: %s", evidence.ErrInvalid, fmt.Sprintf(format, args...))
	}
	if r == nil {
		return bad("missing")
	}
	if r.GetSeizingParty().GetName() == "" && r.GetSeizingParty().GetOrganization() == "" {
		return bad("seizing_party needs a name or an organization")
	}
	if r.GetSeizedAt() == nil {
		return bad("seized_at is required")
	}
	if len(r.GetModalities()) == 0 {
		return bad("at least one modality is required")
	}
	for i, m := range r.GetModalities() {
		if m.GetModality() == custodyv1.Modality_MODALITY_UNSPECIFIED {
			return bad("modalities[%d].modality is unspecified", i)
		}
		if m.GetRecordCount() < 0 {
			return bad("modalities[%d].record_count is negative", i)
		}
	}
	if r.GetRecordCount() < 0 {
		return bad("record_count is negative")
	}
	for i, ref := range r.GetSubjectRefs() {
		if ref == "" || len(ref) > 128 || strings.ContainsAny(ref, " \t\n") {
			return bad("subject_refs[%d] must be a pseudonymous reference of 1-128 characters without spaces (never a name)", i)
		}
	}
	for i, d := range r.GetRecordDigests() {
		if err := evidence.CheckSHA256(strings.ToLower(d.GetSha256())); err != nil {
			return bad("record_digests[%d]: %v", i, err)
		}
	}
	for i, id := range r.GetLinkedEvidenceIds() {
		if err := evidence.CheckID(id); err != nil {
			return bad("linked_evidence_ids[%d]: %v", i, err)
		}
	}
	texts := []string{r.GetLegalBasis(), r.GetNotes(), r.GetSourceAgency(), r.GetSeizingParty().GetName(), r.GetSeizingParty().GetOrganization(), r.GetSeizingParty().GetRole()}
	texts = append(texts, r.GetHandlingRestrictions()...)
	for _, t := range texts {
		if !utf8.ValidString(t) || len(t) > 8192 {
			return bad("a text field is not valid UTF-8 or is over 8192 bytes")
		}
	}
	return nil
}
