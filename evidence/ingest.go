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

	"filippo.io/age"

	"github.com/custody-dev/custody/canonicaljson"
	"github.com/custody-dev/custody/catalog"
	"github.com/custody-dev/custody/custodylog"
	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/receipt"
	"github.com/custody-dev/custody/storage"
)

// Item is an evidence item as callers see it.
type Item struct {
	catalog.Evidence
	// Meta is the decoded descriptive metadata (decrypted for special
	// categories).
	Meta Metadata
}

// Ingest stores one item read from body, which must carry exactly
// meta.Size bytes hashing to meta.SHA256. The order is: bytes stored and
// verified, object sealed, ingest event appended to the log, receipt
// signed, catalog written. If anything before the log append fails, nothing
// is kept; a failure after it leaves a logged event the catalog replays.
func (s *Service) Ingest(ctx context.Context, who identity.Identity, meta UploadMeta, body io.Reader) (Item, receipt.Receipt, error) {
	if err := meta.Validate(s.cfg.MaxUploadBytes); err != nil {
		return Item{}, receipt.Receipt{}, err
	}
	if meta.Kind == KindBiometricSeizureRecord && !meta.Special {
		meta.Special = true
	}
	var captureSig canonicaljson.Object
	if sig := meta.CollectorSignature; sig != nil {
		var err error
		if captureSig, err = s.checkCaptureSignature(who, meta, sig); err != nil {
			return Item{}, receipt.Receipt{}, err
		}
	}
	if meta.DerivedFrom != "" {
		if _, err := s.loadItem(ctx, meta.DerivedFrom); err != nil {
			return Item{}, receipt.Receipt{}, fmt.Errorf("derived_from: %w", err)
		}
	}
	id := newID()
	encrypt := meta.Special || s.cfg.EncryptAll
	src := newIngestReader(body, meta.SHA256, meta.Size)

	var obj storage.Object
	var err error
	if encrypt {
		obj, err = s.putEncrypted(ctx, "enc/"+id, src)
	} else {
		obj, err = s.putPlain(ctx, meta.SHA256, src)
	}
	if err != nil {
		return Item{}, receipt.Receipt{}, err
	}

	md := Metadata{
		Filename: meta.Filename, Description: meta.Description, DeclaredMediaType: meta.DeclaredMediaType,
		Capture: meta.Capture, SeizureAttachments: meta.seizureAttachments,
	}
	mediaType := sniffMediaType(src.head)
	switch {
	case meta.Kind == KindPhoto || isImage(mediaType):
		md.Embedded = readEXIF(src.head)
	case meta.Kind == KindVideo || meta.Kind == KindAudio || strings.HasPrefix(mediaType, "video/") || strings.HasPrefix(mediaType, "audio/"):
		md.Embedded = readMP4(src.head)
	}
	item, rcpt, err := s.record(ctx, who, id, meta, md, mediaType, obj, encrypt, captureSig)
	if err != nil {
		return Item{}, receipt.Receipt{}, err
	}
	s.logger.InfoContext(ctx, "evidence ingested", "evidence_id", id, "size", meta.Size, "log_index", item.LastLogIndex)
	return item, rcpt, nil
}

func isImage(mt string) bool { return len(mt) > 6 && mt[:6] == "image/" }

// putPlain stores unencrypted content under its content address, once.
func (s *Service) putPlain(ctx context.Context, sha string, src *ingestReader) (storage.Object, error) {
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
		return existing, nil
	}
	key := "sha256/" + sha[:2] + "/" + sha
	return s.putAndSeal(ctx, key, src, src.size)
}

// putEncrypted stores content encrypted with age to the service's recipient
// and any extra recipients. The digest checked is the plaintext's.
func (s *Service) putEncrypted(ctx context.Context, key string, src *ingestReader) (storage.Object, error) {
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
	obj, err := s.putAndSeal(ctx, key, pr, -1)
	pr.CloseWithError(errors.New("upload abandoned"))
	return obj, err
}

// putAndSeal writes a pending object, checks the stream ended where it
// should, and seals it; on any failure nothing is kept.
func (s *Service) putAndSeal(ctx context.Context, key string, r io.Reader, size int64) (storage.Object, error) {
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

// record logs the ingest event, signs the receipt and writes the catalog.
func (s *Service) record(ctx context.Context, who identity.Identity, id string, meta UploadMeta, md Metadata, mediaType string, obj storage.Object, encrypted bool, captureSig canonicaljson.Object) (Item, receipt.Receipt, error) {
	mdJSON, err := canonicalMetadata(md)
	if err != nil {
		return Item{}, receipt.Receipt{}, err
	}
	stored := mdJSON
	if meta.Special {
		if stored, err = s.seal(mdJSON); err != nil {
			return Item{}, receipt.Receipt{}, err
		}
	}
	now := s.now().UTC()
	ev := catalog.Evidence{
		ID: id, CaseID: meta.CaseID, Kind: string(meta.Kind), SHA256: meta.SHA256, Size: meta.Size,
		MediaType: mediaType, DeclaredMediaType: meta.DeclaredMediaType, Collector: who.String(),
		IngestedAt: now, Object: obj, Encrypted: encrypted, Special: meta.Special, Metadata: stored,
		Custodian: who.String(), DerivedFrom: meta.DerivedFrom,
	}
	rec := events.Record{
		EvidenceID: id, Sequence: 0, Type: events.Ingest, RecordedAt: now, Performer: who.String(),
		ContentSHA256: meta.SHA256, Salt: events.NewSalt(),
		Details: ingestDetails(ev, mdJSON),
	}
	if captureSig != nil {
		rec.Details["collector_signature"] = captureSig
	}
	appended, canon, key, err := s.appendRecord(ctx, rec, &ev)
	if err != nil {
		return Item{}, receipt.Receipt{}, err
	}
	// The ingest is in the log: catalog it even if the caller has gone.
	ctx = context.WithoutCancel(ctx)
	rcpt, err := s.signReceipt(ctx, ingestReceipt(ev, appended.Index, appended.LeafHash, s.log.Origin()), appended.LeafHash)
	if err != nil {
		return Item{}, receipt.Receipt{}, err
	}
	ev.LastSeq, ev.LastLogIndex, ev.LastLeafHash = 0, appended.Index, appended.LeafHash
	first := catalog.Event{
		EvidenceID: id, Seq: 0, Type: string(events.Ingest), RecordedAt: now,
		LogIndex: appended.Index, LeafHash: appended.LeafHash, Record: canon,
		ReceiptPayload: rcpt.Payload, ReceiptSignature: rcpt.Signature, ReceiptKeyID: rcpt.KeyID,
	}
	if err := s.catalog.AddEvidence(ctx, ev, first); err != nil {
		// With replicas, the repair loop may have cataloged this very
		// entry between the append and here (an ingest takes no lock: the
		// id is new). That is success; anything else is not.
		if !errors.Is(err, catalog.ErrExists) || !s.ingestedAt(ctx, id, appended) {
			return Item{}, receipt.Receipt{}, err
		}
	}
	s.settle(ctx, key)
	return Item{Evidence: ev, Meta: md}, rcpt, nil
}

// checkCaptureSignature verifies the collector's signature made at capture
// with the key of the certificate the upload comes with. It may be old (a
// field team signs offline) but not from the future.
func (s *Service) checkCaptureSignature(who identity.Identity, meta UploadMeta, sig *Signature) (canonicaljson.Object, error) {
	if sig.SignedAt.After(s.now().Add(events.MaxStatementSkew)) {
		return nil, fmt.Errorf("%w: the collector signature's time %s is in the future", ErrInvalid, events.FormatTime(sig.SignedAt))
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
		"collector":   ev.Collector,
		"time":        events.FormatTime(ev.IngestedAt),
		"log_origin":  origin,
		"log_index":   index,
		"leaf_hash":   hex.EncodeToString(leaf[:]),
	}
}

// seal encrypts small data to the service's age recipients.
func (s *Service) seal(plain []byte) ([]byte, error) {
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

// open decrypts data sealed with seal.
func (s *Service) open(sealed []byte) ([]byte, error) {
	r, err := age.Decrypt(bytes.NewReader(sealed), s.identity)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

// ingestedAt reports whether item id's ingest event is the log entry a.
func (s *Service) ingestedAt(ctx context.Context, id string, a custodylog.Appended) bool {
	evs, err := s.catalog.Events(ctx, id)
	return err == nil && len(evs) > 0 && evs[0].LogIndex == a.Index && evs[0].LeafHash == a.LeafHash
}
