// Package verify checks a Custody court bundle offline, trusting no
// server: the evidence file's digest, every event record against the log
// entry that commits to it, every entry's inclusion in a signed checkpoint,
// the receipts, the per-item chain, the hand-offs and their signatures, and
// the log's consistency with a checkpoint the court saw before.
//
// It depends only on the standard library, golang.org/x/mod (signed
// notes), transparency-dev/merkle (proofs) and this module's stdlib-only
// packages (canonicaljson, events, receipt), so courts and other tools can
// embed it. The bundle format is specified in docs/BUNDLE.md, and every
// check, in order, in docs/VERIFY.md; testdata/verify-vectors holds the
// conformance vectors every verifier must pass.
package verify

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/custody-dev/custody/canonicaljson"
)

// Format and Version identify the bundle format.
const (
	Format  = "custody-bundle"
	Version = 1
)

// Bundle is a court bundle: one self-contained JSON document.
type Bundle struct {
	Format    string   `json:"format"`
	Version   int      `json:"v"`
	CreatedAt string   `json:"created_at"`
	Evidence  Evidence `json:"evidence"`
	Log       Log      `json:"log"`
	Events    []Event  `json:"events"`
	// Keys are hints: a court should get the keys out of band.
	Keys        Keys         `json:"keys"`
	Consistency *Consistency `json:"consistency,omitempty"`
	// Completeness proves the chain has every event of the item among the
	// log's first N entries (docs/HISTORY_MAP.md); absent, completeness is
	// not checked.
	Completeness *Completeness `json:"completeness,omitempty"`
}

// Completeness is the history-map proof of a bundle: a map commitment
// entry included in the bundle's checkpoint, and the item's leaf in that
// map with its inclusion proof.
type Completeness struct {
	// Entry is the commitment log entry, canonical JSON text:
	// {"map_root","map_size","tree_size","type":"history_map","v":1}.
	Entry string `json:"entry"`
	// LogIndex is the commitment entry's index; InclusionProof its audit
	// path to Log.TreeSize, base64 hashes.
	LogIndex       uint64   `json:"log_index"`
	InclusionProof [][]byte `json:"inclusion_proof"`
	// MapLeaf is the item's map leaf, canonical JSON text:
	// {"evidence_id","leaf_hash","log_index","seq"}.
	MapLeaf string `json:"map_leaf"`
	// MapIndex is the leaf's position in the map; MapProof its audit path
	// to the committed map root, base64 hashes.
	MapIndex uint64   `json:"map_index"`
	MapProof [][]byte `json:"map_proof"`
}

// Evidence is the item the bundle is about.
type Evidence struct {
	EvidenceID string `json:"evidence_id"`
	SHA256     string `json:"sha256"`
	Size       int64  `json:"size"`
	MediaType  string `json:"media_type"`
	Kind       string `json:"kind"`
	CaseID     string `json:"case_id"`
	// Metadata is the descriptive metadata (what the collector stated and
	// what the server read from the bytes); absent when withheld.
	Metadata json.RawMessage `json:"metadata,omitempty"`
	// Withheld says records and metadata were left out because the caller
	// may not read this special-category item: only commitments remain.
	Withheld bool `json:"withheld,omitempty"`
}

// Log names the checkpoint every proof leads to.
type Log struct {
	Origin     string `json:"origin"`
	Checkpoint string `json:"checkpoint"` // the signed note, verbatim
	TreeSize   uint64 `json:"tree_size"`
	// Timestamps are RFC 3161 timestamps of the checkpoint's text, from
	// the timestamp authorities the operator uses.
	Timestamps []Timestamp `json:"timestamps,omitempty"`
}

// Timestamp is one authority's RFC 3161 timestamp of a checkpoint.
type Timestamp struct {
	// Authority is the operator's name for the authority (its URL):
	// context only; the response's signer is what is checked.
	Authority string `json:"authority"`
	// Response is the DER TimeStampResp.
	Response []byte `json:"response"`
}

// Event is one custody event with its proofs.
type Event struct {
	Seq      uint64 `json:"seq"`
	LogIndex uint64 `json:"log_index"`
	// Entry is the log entry, canonical JSON text.
	Entry string `json:"entry"`
	// Record is the full event record, canonical JSON text; absent when
	// withheld.
	Record string `json:"record,omitempty"`
	// InclusionProof is the audit path to Log.TreeSize, base64 hashes.
	InclusionProof [][]byte `json:"inclusion_proof"`
	Receipt        *Receipt `json:"receipt,omitempty"`
}

// Receipt is a signed receipt.
type Receipt struct {
	Payload   string `json:"payload"` // canonical JSON text, as signed
	Signature []byte `json:"signature"`
	KeyID     string `json:"key_id"`
}

// Keys are the service's public keys, as hints.
type Keys struct {
	LogVerifierKey      string `json:"log_verifier_key"`
	ReceiptPublicKeyPEM string `json:"receipt_public_key_pem"`
}

// Consistency proves the log at FromSize is a prefix of Log.TreeSize.
type Consistency struct {
	FromSize uint64   `json:"from_size"`
	Proof    [][]byte `json:"proof"`
}

// MaxBundleSize bounds what Parse reads.
const MaxBundleSize = 256 << 20

// schema lists the keys each object of a bundle may hold. Keys are matched
// exactly (encoding/json alone would also take "SHA256" for "sha256").
var schema = map[string][]string{
	"":                 {"format", "v", "created_at", "evidence", "log", "events", "keys", "consistency", "completeness"},
	"evidence":         {"evidence_id", "sha256", "size", "media_type", "kind", "case_id", "metadata", "withheld"},
	"log":              {"origin", "checkpoint", "tree_size", "timestamps"},
	"log.timestamps[]": {"authority", "response"},
	"events[]":         {"seq", "log_index", "entry", "record", "inclusion_proof", "receipt"},
	"events[].receipt": {"payload", "signature", "key_id"},
	"keys":             {"log_verifier_key", "receipt_public_key_pem"},
	"consistency":      {"from_size", "proof"},
	"completeness":     {"entry", "log_index", "inclusion_proof", "map_leaf", "map_index", "map_proof"},
}

// required lists the keys each object must hold.
var required = map[string][]string{
	"":                 {"format", "v", "created_at", "evidence", "log", "events", "keys"},
	"evidence":         {"evidence_id", "sha256", "size", "media_type", "kind", "case_id"},
	"log":              {"origin", "checkpoint", "tree_size"},
	"log.timestamps[]": {"authority", "response"},
	"events[]":         {"seq", "log_index", "entry", "inclusion_proof", "receipt"},
	"events[].receipt": {"payload", "signature", "key_id"},
	"keys":             {"log_verifier_key", "receipt_public_key_pem"},
	"consistency":      {"from_size", "proof"},
	"completeness":     {"entry", "log_index", "inclusion_proof", "map_leaf", "map_index", "map_proof"},
}

// Parse decodes a bundle strictly and checks its shape (not its proofs):
// valid UTF-8, no key twice in any object, no key the format does not
// define, every required key present, no null, every value of its type.
func Parse(b []byte) (*Bundle, error) {
	if len(b) > MaxBundleSize {
		return nil, fmt.Errorf("bundle is %d bytes, at most %d", len(b), MaxBundleSize)
	}
	bundle, ok := decodeBundle(b)
	if !ok {
		var err error
		if bundle, err = parseStrict(b); err != nil {
			return nil, err
		}
	}
	if bundle.Format != Format {
		return nil, fmt.Errorf("not a Custody bundle (format %q)", bundle.Format)
	}
	if bundle.Version != Version {
		return nil, fmt.Errorf("bundle format version %d; this verifier reads version %d", bundle.Version, Version)
	}
	if len(bundle.Events) == 0 {
		return nil, errors.New("bundle has no events")
	}
	if _, err := time.Parse(time.RFC3339Nano, bundle.CreatedAt); err != nil {
		return nil, fmt.Errorf("bundle: created_at is not an RFC 3339 time: %q", bundle.CreatedAt)
	}
	for i, ev := range bundle.Events {
		for j, h := range ev.InclusionProof {
			if len(h) != 32 {
				return nil, fmt.Errorf("bundle: events[%d].inclusion_proof[%d] is %d bytes, not a SHA-256 hash", i, j, len(h))
			}
		}
	}
	if err := checkHeaderHashes(bundle.Consistency, bundle.Completeness); err != nil {
		return nil, err
	}
	return bundle, nil
}

// parseStrict is the decoding Parse describes, step by step, with the
// message of the first step that refuses the document; decodeBundle
// (decode.go) is the same in one pass, for documents it accepts.
func parseStrict(b []byte) (*Bundle, error) {
	doc, err := canonicaljson.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("bundle is not valid JSON: %w", err)
	}
	if err := bundleShape.check(doc, ""); err != nil {
		return nil, err
	}
	var bundle Bundle
	if err := json.Unmarshal(b, &bundle); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	return &bundle, nil
}

// checkHeaderHashes checks that every proof hash outside the events is 32
// bytes.
func checkHeaderHashes(c *Consistency, k *Completeness) error {
	lists := map[string][][]byte{}
	if c != nil {
		lists["consistency.proof"] = c.Proof
	}
	if k != nil {
		lists["completeness.inclusion_proof"], lists["completeness.map_proof"] = k.InclusionProof, k.MapProof
	}
	for _, name := range []string{"consistency.proof", "completeness.inclusion_proof", "completeness.map_proof"} {
		for j, h := range lists[name] {
			if len(h) != 32 {
				return fmt.Errorf("bundle: %s[%d] is %d bytes, not a SHA-256 hash", name, j, len(h))
			}
		}
	}
	return nil
}

// shape is the keys each object of a document may and must hold, by path.
type shape struct{ keys, required map[string][]string }

var bundleShape = shape{schema, required}

// check walks the parsed document against the shape.
func (sh shape) check(v any, path string) error {
	name := path
	if name == "" {
		name = "the bundle"
	}
	switch v := v.(type) {
	case nil:
		return fmt.Errorf("bundle: %s is null", name)
	case canonicaljson.Object:
		allowed, known := sh.keys[path]
		if !known {
			return fmt.Errorf("bundle: %s must not be an object", name)
		}
		for k, child := range v {
			if !slices.Contains(allowed, k) {
				return fmt.Errorf("bundle: %s has an unknown key %q", name, k)
			}
			childPath := strings.TrimPrefix(path+"."+k, ".")
			if childPath == "evidence.metadata" {
				if _, ok := child.(canonicaljson.Object); !ok {
					return errors.New("bundle: evidence.metadata is not an object")
				}
				continue // any JSON object; bound by its digest
			}
			if err := sh.check(child, childPath); err != nil {
				return err
			}
		}
		for _, k := range sh.required[path] {
			if _, ok := v[k]; !ok {
				return fmt.Errorf("bundle: %s lacks %q", name, k)
			}
		}
	case []any:
		for _, e := range v {
			if err := sh.check(e, path+"[]"); err != nil {
				return err
			}
		}
	case string:
		// Byte strings must be strict standard base64 (RFC 4648 §4 with
		// padding, unused bits zero), so one value has one spelling.
		if base64Paths[path] {
			if _, err := base64.StdEncoding.Strict().DecodeString(v); err != nil {
				return fmt.Errorf("bundle: %s is not strict standard base64", name)
			}
		}
	}
	return nil
}

var base64Paths = map[string]bool{
	"events[].inclusion_proof[]":     true,
	"events[].receipt.signature":     true,
	"consistency.proof[]":            true,
	"log.timestamps[].response":      true,
	"completeness.inclusion_proof[]": true,
	"completeness.map_proof[]":       true,
}
