package evidence

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/custody-dev/custody/canonicaljson"
	"github.com/custody-dev/custody/catalog"
	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/ledger"
	"github.com/custody-dev/custody/media"
	"github.com/custody-dev/custody/receipt"
	"github.com/custody-dev/custody/storage"
)

// Ingest stores one item read from body, which must carry exactly
// meta.Size bytes hashing to meta.SHA256. The order is: metadata checked,
// bytes stored (pending) and verified, everything the record states
// computed and checked (media type, EXIF or container metadata, the
// canonical metadata and its encryption, the record itself), object
// sealed, ingest event appended to the log, receipt signed, catalog
// written. If anything before the seal fails, nothing is kept; if the log
// append fails, a sealed object no record names is left (retention forbids
// removing it). Once the event is in the log, the caller gets the item and
// its receipt: a failed catalog write is logged and repaired from the
// journal, never reported as a failed upload that would invite another.
func (s *Service) Ingest(ctx context.Context, who identity.Identity, meta UploadMeta, body io.Reader) (Item, receipt.Receipt, error) {
	if err := meta.Validate(s.cfg.MaxUploadBytes); err != nil {
		return Item{}, receipt.Receipt{}, err
	}
	return s.ingestValidated(ctx, who, meta, body)
}

// ingestValidated is Ingest after meta.Validate. It still checks all it
// records before sealing: validation is not what keeps a sealed object
// from being left behind.
func (s *Service) ingestValidated(ctx context.Context, who identity.Identity, meta UploadMeta, body io.Reader) (Item, receipt.Receipt, error) {
	if meta.Kind == KindBiometricSeizureRecord && !meta.Special {
		meta.Special = true
	}
	captureSig, err := s.checkStatements(ctx, who, meta)
	if err != nil {
		return Item{}, receipt.Receipt{}, err
	}
	id := newID()
	encrypt := meta.Special || s.cfg.EncryptAll
	src := newIngestReader(body, meta.SHA256, meta.Size)

	// Runs once every byte arrived and matched, before the object is
	// sealed: whatever fails here leaves nothing behind.
	var prep preparedIngest
	check := func(provisional storage.Object) error {
		var err error
		prep, err = s.prepareIngest(who, id, meta, content{head: src.head, movie: src.movie.Capture()}, provisional, encrypt, captureSig)
		return err
	}
	var obj storage.Object
	if encrypt {
		obj, err = s.putEncrypted(ctx, "enc/"+id, src, check)
	} else {
		obj, err = s.putPlain(ctx, meta.SHA256, src, check)
	}
	if err != nil {
		return Item{}, receipt.Receipt{}, err
	}
	item, rcpt, err := s.record(ctx, who, id, meta, prep, obj, encrypt, captureSig)
	if err != nil {
		return Item{}, receipt.Receipt{}, err
	}
	s.logger.InfoContext(ctx, "evidence ingested", "evidence_id", id, "size", meta.Size, "log_index", item.LastLogIndex)
	return item, rcpt, nil
}

// checkStatements checks what an upload states that needs no byte of it:
// the collector's signature (which names the digest) and the item it is
// derived from. It returns the signature's details for the record.
func (s *Service) checkStatements(ctx context.Context, who identity.Identity, meta UploadMeta) (canonicaljson.Object, error) {
	var captureSig canonicaljson.Object
	if sig := meta.CollectorSignature; sig != nil {
		var err error
		if captureSig, err = s.checkCaptureSignature(who, meta, sig); err != nil {
			return nil, err
		}
	}
	if meta.DerivedFrom != "" {
		if _, err := s.loadItem(ctx, meta.DerivedFrom); err != nil {
			return nil, fmt.Errorf("derived_from: %w", err)
		}
	}
	return captureSig, nil
}

// ingestStored records an unencrypted item whose bytes are already
// stored and checked against meta.SHA256 and meta.Size (a resumable
// upload's completed object): obj is that pending object, or, when held,
// the sealed object of an item the service already holds with the same
// bytes. c is what the bytes say. It prepares the record (every check
// Ingest makes before its seal), seals a pending obj and records the
// ingest. It discards nothing: a pending obj the checks refused is the
// caller's to discard (errors wrapping ErrInvalid); sealed reports
// whether obj was sealed, so that a caller retrying after a failed record
// does not seal it again.
func (s *Service) ingestStored(ctx context.Context, who identity.Identity, meta UploadMeta, captureSig canonicaljson.Object, c content, obj storage.Object, held bool, onSealed func(storage.Object) error) (Item, receipt.Receipt, error) {
	id := newID()
	prep, err := s.prepareIngest(who, id, meta, c, obj, false, captureSig)
	if err != nil {
		return Item{}, receipt.Receipt{}, err
	}
	if !held && obj.Pending() != "" {
		if obj, err = s.store.Seal(ctx, obj, s.now().Add(s.cfg.Retention)); err != nil {
			return Item{}, receipt.Receipt{}, s.uploadError(ctx, err)
		}
		if onSealed != nil {
			if err := onSealed(obj); err != nil {
				return Item{}, receipt.Receipt{}, err
			}
		}
	}
	item, rcpt, err := s.record(ctx, who, id, meta, prep, obj, false, captureSig)
	if err != nil {
		return Item{}, receipt.Receipt{}, err
	}
	s.logger.InfoContext(ctx, "evidence ingested", "evidence_id", id, "size", meta.Size, "log_index", item.LastLogIndex, "resumable", true)
	return item, rcpt, nil
}

// preparedIngest is what an ingest records besides the stored object,
// computed and checked before the object is sealed.
type preparedIngest struct {
	// md is the metadata as its canonical JSON decodes: exactly what the
	// record commits to and what later reads return.
	md        Metadata
	mdJSON    []byte
	stored    []byte // mdJSON, encrypted for special categories
	mediaType string
	// kind is the kind recorded: the one stated, or inferred from
	// mediaType when none was.
	kind Kind
}

// content is what the ingest reader saw of an item's bytes: its head, and
// what its movie box says (nil if it has none, or it says nothing).
type content struct {
	head  []byte
	movie *media.Capture
}

// prepareIngest reads what the item's bytes say (media type from the head;
// EXIF from the head, or the movie box's metadata wherever it sat), checks
// the stated kind against the media type or infers it, encodes and, for
// special categories, encrypts the metadata, and builds the ingest record
// with the provisional object to check that it encodes: every step of the
// record that can fail, before the seal.
func (s *Service) prepareIngest(who identity.Identity, id string, meta UploadMeta, c content, provisional storage.Object, encrypted bool, captureSig canonicaljson.Object) (preparedIngest, error) {
	md := Metadata{
		Filename: meta.Filename, Description: meta.Description, DeclaredMediaType: meta.DeclaredMediaType,
		Capture: meta.Capture, SeizureAttachments: meta.seizureAttachments,
	}
	if err := md.Capture.validate("capture"); err != nil {
		return preparedIngest{}, err
	}
	p := preparedIngest{mediaType: media.SniffType(c.head)}
	var err error
	if p.kind, err = checkKind(meta.Kind, p.mediaType); err != nil {
		return preparedIngest{}, err
	}
	var found *media.Capture
	switch {
	case p.kind == KindPhoto || isImage(p.mediaType):
		found = media.ReadEXIF(c.head)
	case p.kind == KindVideo || p.kind == KindAudio || strings.HasPrefix(p.mediaType, "video/") || strings.HasPrefix(p.mediaType, "audio/"):
		found = c.movie
	}
	md.Embedded = embedded(found).sanitized()
	if p.mdJSON, err = canonicalMetadata(md); err != nil {
		return preparedIngest{}, wrapCause(ErrInvalid, err, "the metadata cannot be encoded")
	}
	if err := json.Unmarshal(p.mdJSON, &p.md); err != nil {
		return preparedIngest{}, wrapCause(ErrInvalid, err, "the metadata does not read back")
	}
	p.stored = p.mdJSON
	if meta.Special {
		if p.stored, err = s.encryptMetadata(p.mdJSON); err != nil {
			return preparedIngest{}, err
		}
	}
	provisional.RetainUntil = s.now().Add(s.cfg.Retention)
	_, rec := s.ingestRecord(who, id, meta, p, provisional, encrypted, captureSig, s.now().UTC())
	if err := rec.Validate(); err != nil {
		return preparedIngest{}, err
	}
	if _, err := rec.Entry(); err != nil {
		return preparedIngest{}, err
	}
	return p, nil
}

func isImage(mt string) bool { return len(mt) > 6 && mt[:6] == "image/" }

// putPlain stores unencrypted content under its content address, once.
// check runs before anything is sealed.
func (s *Service) putPlain(ctx context.Context, sha string, src *ingestReader, check func(storage.Object) error) (storage.Object, error) {
	existing, found, err := s.dedupObject(ctx, sha)
	if err != nil {
		return storage.Object{}, err
	}
	if found {
		// The service holds these bytes already: check the caller really
		// sent them, and store nothing.
		if err := src.drain(); err != nil {
			return storage.Object{}, err
		}
		if err := check(existing); err != nil {
			return storage.Object{}, err
		}
		return existing, nil
	}
	key := "sha256/" + sha[:2] + "/" + sha
	return s.putAndSeal(ctx, key, src, src.size, check)
}

// putEncrypted stores content encrypted with age to the service's recipient
// and any extra recipients. The digest checked is the plaintext's.
func (s *Service) putEncrypted(ctx context.Context, key string, src *ingestReader, check func(storage.Object) error) (storage.Object, error) {
	recipients := append([]age.Recipient{s.identity.Recipient()}, s.cfg.ExtraRecipients...)
	pr, pw := io.Pipe()
	go func() {
		w, err := age.Encrypt(pw, recipients...)
		if err == nil {
			_, err = io.Copy(w, src)
		}
		if err == nil {
			err = src.finish()
		}
		if err == nil {
			err = w.Close()
		}
		pw.CloseWithError(err)
	}()
	obj, err := s.putAndSeal(ctx, key, pr, -1, check)
	pr.CloseWithError(errors.New("upload abandoned"))
	return obj, err
}

// putAndSeal writes a pending object, checks the stream ended where it
// should, runs check, and seals it; on any failure nothing is kept.
func (s *Service) putAndSeal(ctx context.Context, key string, r io.Reader, size int64, check func(storage.Object) error) (storage.Object, error) {
	obj, err := s.store.Put(ctx, key, r, size)
	if err != nil {
		return storage.Object{}, s.uploadError(ctx, err)
	}
	if src, ok := r.(*ingestReader); ok {
		if err := src.finish(); err != nil {
			s.discard(ctx, obj)
			return storage.Object{}, s.uploadError(ctx, err)
		}
	}
	if err := check(obj); err != nil {
		s.discard(ctx, obj)
		return storage.Object{}, s.uploadError(ctx, err)
	}
	sealed, err := s.store.Seal(ctx, obj, s.now().Add(s.cfg.Retention))
	if err != nil {
		s.discard(ctx, obj)
		return storage.Object{}, s.uploadError(ctx, err)
	}
	return sealed, nil
}

func (s *Service) discard(ctx context.Context, obj storage.Object) {
	if err := s.store.Discard(context.WithoutCancel(ctx), obj); err != nil {
		s.logger.ErrorContext(ctx, "discarding a refused upload failed", "key", obj.Key, "err", err)
	}
}

// uploadError keeps the errors the caller must see and maps storage ones.
func (s *Service) uploadError(ctx context.Context, err error) error {
	for _, known := range []error{ErrInvalid, ErrTruncated, ErrTooLarge, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, known) {
			return err
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return classifyStorage(err)
}

// ingestRecord builds an item's catalog row and ingest record.
func (s *Service) ingestRecord(who identity.Identity, id string, meta UploadMeta, p preparedIngest, obj storage.Object, encrypted bool, captureSig canonicaljson.Object, now time.Time) (catalog.Evidence, events.Record) {
	ev := catalog.Evidence{
		ID: id, CaseID: meta.CaseID, Kind: string(p.kind), SHA256: meta.SHA256, Size: meta.Size,
		MediaType: p.mediaType, DeclaredMediaType: meta.DeclaredMediaType, Collector: who.String(),
		IngestedAt: now, Object: obj, Encrypted: encrypted, Special: meta.Special, Metadata: p.stored,
		Custodian: who.String(), DerivedFrom: meta.DerivedFrom,
	}
	rec := events.Record{
		EvidenceID: id, Sequence: 0, Type: events.Ingest, RecordedAt: now, Performer: who.String(),
		ContentSHA256: meta.SHA256, Salt: events.NewSalt(),
		Details: ingestDetails(ev, p.mdJSON),
	}
	if captureSig != nil {
		rec.Details["collector_signature"] = captureSig
	}
	return ev, rec
}

// record logs the ingest event, signs the receipt and writes the catalog
// (ledger.Writer.Append). Once the event is in the log only a receipt that
// cannot be signed is an error to the caller (one naming the item, so it is
// not uploaded again).
func (s *Service) record(ctx context.Context, who identity.Identity, id string, meta UploadMeta, p preparedIngest, obj storage.Object, encrypted bool, captureSig canonicaljson.Object) (Item, receipt.Receipt, error) {
	now := s.now().UTC()
	ev, rec := s.ingestRecord(who, id, meta, p, obj, encrypted, captureSig, now)
	ack, err := s.ledger.Append(ctx, rec, ledger.Projection{Item: &ev})
	if err != nil {
		return Item{}, receipt.Receipt{}, err
	}
	s.rememberIngest(id, ack.Row.LogIndex, ack.Entry, ack.Row.Record)
	ev.LastSeq, ev.LastLogIndex, ev.LastLeafHash = 0, ack.Row.LogIndex, ack.Row.LeafHash
	return itemOf(ev, p.md), ack.Receipt, nil
}

// checkCaptureSignature verifies the collector's signature made at capture
// with the key of the certificate the upload comes with. It may be old (a
// field team signs offline) but not from the future.
func (s *Service) checkCaptureSignature(who identity.Identity, meta UploadMeta, sig *Signature) (canonicaljson.Object, error) {
	if sig.SignedAt.After(s.now().Add(events.MaxStatementSkew)) {
		return nil, fmt.Errorf("%w: the collector signature's time (collector_signature.signed_at) %s is in the future", ErrInvalid, formatAnyTime(sig.SignedAt))
	}
	if err := checkTimeIn("collector_signature.signed_at", sig.SignedAt, minCaptureTime, s.now().Add(events.MaxStatementSkew)); err != nil {
		return nil, err
	}
	stmt, err := events.CaptureStatement(strings.ToLower(meta.SHA256), meta.Size, meta.CaseID, who.String(), meta.Capture.CapturedAt, sig.SignedAt)
	if err != nil {
		return nil, err
	}
	details, err := s.verifyPartySignature(who, sig, stmt, false)
	if err != nil {
		return nil, fmt.Errorf("collector signature: %w", err)
	}
	return details, nil
}

// canonicalMetadata is the descriptive metadata as RFC 8785 canonical JSON:
// the bytes metadata_sha256 commits to (docs/VERIFY.md), so any verifier
// can recompute the digest from the metadata object a bundle carries,
// whatever its key order or spacing.
func canonicalMetadata(md Metadata) ([]byte, error) {
	raw, err := json.Marshal(md)
	if err != nil {
		return nil, err
	}
	return canonicaljson.Canonicalize(raw)
}

// ingestDetails is what the ingest record states beyond the common fields:
// the stored object and a digest of the descriptive metadata's canonical
// JSON (the metadata itself, which may be personal, travels only in
// bundles).
func ingestDetails(ev catalog.Evidence, mdJSON []byte) canonicaljson.Object {
	mdSum := sha256Hex(mdJSON)
	return canonicaljson.Object{
		"case_id":         ev.CaseID,
		"kind":            ev.Kind,
		"size":            ev.Size,
		"media_type":      ev.MediaType,
		"metadata_sha256": mdSum,
		"special":         ev.Special,
		"storage":         storageObject(ev.Object, ev.Encrypted),
	}
}

func storageObject(o storage.Object, encrypted bool) canonicaljson.Object {
	return canonicaljson.Object{
		"backend":      o.Backend,
		"bucket":       o.Bucket,
		"key":          o.Key,
		"version_id":   o.VersionID,
		"retain_until": events.FormatTime(o.RetainUntil),
		"encrypted":    encrypted,
	}
}

// ingestReceipt is the signed acknowledgement of an ingest (docs/RECEIPTS.md).
// It states the item's case, kind and special category too, so a bundle
// whose records are withheld still proves them.
func ingestReceipt(ev catalog.Evidence, index uint64, leaf [32]byte, origin string) canonicaljson.Object {
	return canonicaljson.Object{
		"type":        "ingest",
		"evidence_id": ev.ID,
		"sha256":      ev.SHA256,
		"size":        ev.Size,
		"media_type":  ev.MediaType,
		"case_id":     ev.CaseID,
		"kind":        ev.Kind,
		"special":     ev.Special,
		"storage":     storageObject(ev.Object, ev.Encrypted),
		"time":        events.FormatTime(ev.IngestedAt),
		"log_origin":  origin,
		"log_index":   index,
		"leaf_hash":   hex.EncodeToString(leaf[:]),
	}
}

// encryptMetadata encrypts an item's metadata (small: its canonical JSON)
// to the service's age recipients, for the catalog.
func (s *Service) encryptMetadata(plain []byte) ([]byte, error) {
	var buf bytes.Buffer
	recipients := append([]age.Recipient{s.identity.Recipient()}, s.cfg.ExtraRecipients...)
	w, err := age.Encrypt(&buf, recipients...)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(plain); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decryptMetadata decrypts metadata encrypted by encryptMetadata.
func (s *Service) decryptMetadata(encrypted []byte) ([]byte, error) {
	r, err := age.Decrypt(bytes.NewReader(encrypted), s.identity)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}
