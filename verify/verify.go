package verify

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/receipt"
)

// Options are what the court brings: trusted keys, the evidence file, a
// checkpoint seen before. Anything absent is taken from the bundle and the
// report says so.
type Options struct {
	// File is the evidence file to hash, if any.
	File io.Reader
	// LogVerifierKey is the trusted signed-note verifier key of the log.
	LogVerifierKey string
	// ReceiptKeyPEM is the trusted receipt public key.
	ReceiptKeyPEM []byte
	// OldCheckpoint is a signed checkpoint the court saved earlier.
	OldCheckpoint []byte
	// Roots are the operator's CA certificates, for hand-off signers.
	Roots *x509.CertPool
}

// Check is one verdict.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Report is the outcome of Verify.
type Report struct {
	EvidenceID string  `json:"evidence_id"`
	OK         bool    `json:"ok"`
	Checks     []Check `json:"checks"`
	// TrustedFromBundle lists what was taken from the bundle itself
	// because the court supplied no independent copy.
	TrustedFromBundle []string `json:"trusted_from_bundle,omitempty"`
}

func (r *Report) add(name string, err error, okDetail string) {
	c := Check{Name: name, OK: err == nil, Detail: okDetail}
	if err != nil {
		c.Detail = err.Error()
	}
	r.Checks = append(r.Checks, c)
}

// Failures returns the checks that failed.
func (r *Report) Failures() []Check {
	var out []Check
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

// Verify checks everything the bundle claims and reports every failure it
// finds, not only the first.
func Verify(b *Bundle, opts Options) *Report {
	r := &Report{EvidenceID: b.Evidence.EvidenceID}
	logKey := opts.LogVerifierKey
	if logKey == "" {
		logKey = b.Keys.LogVerifierKey
		r.TrustedFromBundle = append(r.TrustedFromBundle, "log verifier key")
	}
	receiptKey := opts.ReceiptKeyPEM
	if receiptKey == nil {
		receiptKey = []byte(b.Keys.ReceiptPublicKeyPEM)
		r.TrustedFromBundle = append(r.TrustedFromBundle, "receipt public key")
	}
	if opts.Roots == nil {
		r.TrustedFromBundle = append(r.TrustedFromBundle, "hand-off signer certificates (not checked against the operator's CA)")
	}

	cp, err := openCheckpoint([]byte(b.Log.Checkpoint), logKey, b.Log.Origin)
	if err == nil && cp.size != b.Log.TreeSize {
		err = fmt.Errorf("the checkpoint is for %d entries, the bundle claims %d", cp.size, b.Log.TreeSize)
	}
	r.add("checkpoint signature", err, fmt.Sprintf("signed by %s; %d entries", b.Log.Origin, b.Log.TreeSize))
	var root []byte
	if err == nil {
		root = cp.root
	}

	entries := make([]map[string]any, len(b.Events))
	records := make([]*events.Record, len(b.Events))
	leaves := make([][32]byte, len(b.Events))
	perEvent := make([][]Check, len(b.Events))
	// Events are independent until the chain check: verify them on every
	// core (a receipt's ECDSA signature is the dearest part).
	work := make(chan int)
	var wg sync.WaitGroup
	receiptPub, receiptKeyErr := parsePublicKey(receiptKey)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				perEvent[i] = checkEvent(b, i, root, receiptPub, receiptKeyErr, &entries[i], &records[i], &leaves[i])
			}
		}()
	}
	for i := range b.Events {
		work <- i
	}
	close(work)
	wg.Wait()
	for _, cs := range perEvent {
		r.Checks = append(r.Checks, cs...)
	}
	r.add("custody chain", checkChain(b, entries, leaves), fmt.Sprintf("%d events, gap-free, each linked to its predecessor", len(b.Events)))
	if !b.Evidence.Withheld {
		r.add("hand-offs", checkHandoffs(b, records, opts.Roots), "every accept answers a release to that recipient by the then custodian; signatures verify")
	}
	r.add("evidence digest in the log", checkIngestDigest(b, entries), "the ingest entry commits to "+b.Evidence.SHA256)
	if opts.File != nil {
		r.add("evidence file", checkFile(opts.File, b.Evidence.SHA256, b.Evidence.Size), "SHA-256 matches the record")
	}
	if opts.OldCheckpoint != nil {
		r.add("consistency with the earlier checkpoint", checkConsistency(b, opts.OldCheckpoint, logKey, root), "the log seen before is a prefix of this one")
	}
	r.OK = len(r.Failures()) == 0
	return r
}

// checkEvent checks one event's entry, record, inclusion and receipt.
func checkEvent(b *Bundle, i int, root []byte, receiptKey crypto.PublicKey, receiptKeyErr error, entryOut *map[string]any, recOut **events.Record, leafOut *[32]byte) []Check {
	ev := b.Events[i]
	var r Report
	name := fmt.Sprintf("event #%d (log %d)", ev.Seq, ev.LogIndex)
	entry, err := events.ParseEntry([]byte(ev.Entry))
	if err != nil {
		r.add(name+": entry", err, "")
		return r.Checks
	}
	*entryOut = entry
	*leafOut = leafHash([]byte(ev.Entry))
	if id, _ := entry["evidence_id"].(string); id != b.Evidence.EvidenceID {
		r.add(name+": entry", fmt.Errorf("the entry is about %q, not %s", id, b.Evidence.EvidenceID), "")
		return r.Checks
	}
	if seq, _ := entry["seq"].(int64); uint64(seq) != ev.Seq {
		r.add(name+": entry", fmt.Errorf("the entry is event #%d, the bundle says #%d", seq, ev.Seq), "")
	}
	r.add(name+": record commitment", checkRecord(ev, entry, recOut, b.Evidence.Withheld), "the record re-encodes to the committed digest")
	r.add(name+": inclusion", checkInclusion(ev, *leafOut, b.Log.TreeSize, root), fmt.Sprintf("in the log of %d entries", b.Log.TreeSize))
	if receiptKeyErr != nil {
		r.add(name+": receipt", fmt.Errorf("receipt key: %w", receiptKeyErr), "")
	} else {
		r.add(name+": receipt", checkReceipt(ev, *leafOut, b.Evidence.EvidenceID, receiptKey), "signed by the receipt key")
	}
	return r.Checks
}

func leafHash(entry []byte) [32]byte {
	var out [32]byte
	copy(out[:], rfc6962.DefaultHasher.HashLeaf(entry))
	return out
}

type checkpoint struct {
	size uint64
	root []byte
}

// openCheckpoint verifies a signed checkpoint note and parses its body
// (C2SP tlog-checkpoint: origin, size, base64 root hash, extensions).
func openCheckpoint(raw []byte, verifierKey, origin string) (checkpoint, error) {
	v, err := note.NewVerifier(verifierKey)
	if err != nil {
		return checkpoint{}, fmt.Errorf("log verifier key: %w", err)
	}
	n, err := note.Open(raw, note.VerifierList(v))
	if err != nil {
		return checkpoint{}, fmt.Errorf("the checkpoint's signature does not verify under the log key: %w", err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 {
		return checkpoint{}, errors.New("the checkpoint body is not origin, size, root")
	}
	if lines[0] != origin {
		return checkpoint{}, fmt.Errorf("the checkpoint is for log %q, not %q", lines[0], origin)
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil {
		return checkpoint{}, fmt.Errorf("checkpoint size: %w", err)
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != 32 {
		return checkpoint{}, errors.New("checkpoint root hash is not 32 bytes of base64")
	}
	return checkpoint{size: size, root: root}, nil
}

func checkRecord(ev Event, entry map[string]any, out **events.Record, withheld bool) error {
	if ev.Record == "" {
		if withheld {
			return nil // only the commitment is given
		}
		return errors.New("the record is missing")
	}
	rec, err := events.ParseRecord([]byte(ev.Record))
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(ev.Record))
	if committed, _ := entry["record_sha256"].(string); committed != hex.EncodeToString(sum[:]) {
		return fmt.Errorf("the record hashes to %x; the log entry commits to %s: the record was changed", sum, committed)
	}
	if string(rec.Type) != entry["type"] || int64(rec.Sequence) != entry["seq"] || events.FormatTime(rec.RecordedAt) != entry["time"] {
		return errors.New("the record's type, sequence or time differ from its log entry")
	}
	*out = &rec
	return nil
}

func checkInclusion(ev Event, leaf [32]byte, size uint64, root []byte) error {
	if root == nil {
		return errors.New("no verified checkpoint to prove against")
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, ev.LogIndex, size, leaf[:], ev.InclusionProof, root); err != nil {
		return fmt.Errorf("the inclusion proof does not lead to the checkpoint's root: %w", err)
	}
	return nil
}

func checkReceipt(ev Event, leaf [32]byte, evidenceID string, key crypto.PublicKey) error {
	if ev.Receipt == nil {
		return errors.New("no receipt")
	}
	if err := receipt.VerifySignature(key, []byte(ev.Receipt.Payload), ev.Receipt.Signature); err != nil {
		return fmt.Errorf("the receipt's signature does not verify under the receipt key: %w", err)
	}
	var p struct {
		EvidenceID string `json:"evidence_id"`
		LogIndex   uint64 `json:"log_index"`
		LeafHash   string `json:"leaf_hash"`
	}
	if err := json.Unmarshal([]byte(ev.Receipt.Payload), &p); err != nil {
		return err
	}
	if p.EvidenceID != evidenceID || p.LogIndex != ev.LogIndex || p.LeafHash != hex.EncodeToString(leaf[:]) {
		return fmt.Errorf("the receipt acknowledges %s at log %d (%s), not this entry", p.EvidenceID, p.LogIndex, p.LeafHash)
	}
	return nil
}

// parsePublicKey reads a PEM SubjectPublicKeyInfo.
func parsePublicKey(keyPEM []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("no PEM public key")
	}
	return x509.ParsePKIXPublicKey(block.Bytes)
}

// checkChain: the events are the item's chain from its ingest, in order,
// without gaps, each linked to its predecessor's log entry.
func checkChain(b *Bundle, entries []map[string]any, leaves [][32]byte) error {
	var errs []error
	seen := map[uint64]bool{}
	for i, ev := range b.Events {
		e := entries[i]
		if e == nil {
			continue
		}
		if ev.Seq != uint64(i) {
			errs = append(errs, fmt.Errorf("position %d holds event #%d: an event is missing, duplicated or out of order", i, ev.Seq))
		}
		if seen[ev.LogIndex] {
			errs = append(errs, fmt.Errorf("log entry %d appears twice", ev.LogIndex))
		}
		seen[ev.LogIndex] = true
		prevIndex, hasPrev := e["prev_index"].(int64)
		if i == 0 {
			if e["type"] != "ingest" || hasPrev {
				errs = append(errs, errors.New("the chain does not start with the ingest"))
			}
			continue
		}
		if !hasPrev || entries[i-1] == nil {
			errs = append(errs, fmt.Errorf("event #%d has no link to its predecessor", ev.Seq))
			continue
		}
		if uint64(prevIndex) != b.Events[i-1].LogIndex || e["prev_leaf_hash"] != hex.EncodeToString(leaves[i-1][:]) {
			errs = append(errs, fmt.Errorf("event #%d links to log entry %d, but the event before it is log entry %d", ev.Seq, prevIndex, b.Events[i-1].LogIndex))
		}
		if uint64(prevIndex) >= ev.LogIndex {
			errs = append(errs, fmt.Errorf("event #%d is logged before its predecessor", ev.Seq))
		}
	}
	return errors.Join(errs...)
}

func checkIngestDigest(b *Bundle, entries []map[string]any) error {
	if entries[0] == nil {
		return errors.New("no readable ingest entry")
	}
	if got, _ := entries[0]["sha256"].(string); got != b.Evidence.SHA256 {
		return fmt.Errorf("the ingest entry commits to %q, the bundle's record says %s", got, b.Evidence.SHA256)
	}
	return nil
}

func checkFile(f io.Reader, want string, size int64) error {
	h := sha256.New()
	n, err := io.Copy(h, bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want || n != size {
		return fmt.Errorf("the file hashes to %s (%d bytes); the evidence is %s (%d bytes)", got, n, want, size)
	}
	return nil
}

func checkConsistency(b *Bundle, oldRaw []byte, logKey string, root []byte) error {
	old, err := openCheckpoint(oldRaw, logKey, b.Log.Origin)
	if err != nil {
		return fmt.Errorf("earlier checkpoint: %w", err)
	}
	if root == nil {
		return errors.New("no verified checkpoint in the bundle")
	}
	switch {
	case old.size > b.Log.TreeSize:
		return fmt.Errorf("the earlier checkpoint (%d entries) is larger than the bundle's (%d)", old.size, b.Log.TreeSize)
	case old.size == b.Log.TreeSize:
		if !bytes.Equal(old.root, root) {
			return errors.New("two checkpoints of the same size with different roots: the log forked")
		}
		return nil
	}
	c := b.Consistency
	if c == nil || c.FromSize != old.size {
		return fmt.Errorf("the bundle carries no consistency proof from %d entries; request the bundle with that size", old.size)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, old.size, b.Log.TreeSize, c.Proof, old.root, root); err != nil {
		return fmt.Errorf("the log seen before is not a prefix of this one (forked or rewritten): %w", err)
	}
	return nil
}
