package verify

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/custody-dev/custody/canonicaljson"
	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/historymap"
	"github.com/custody-dev/custody/receipt"
	"github.com/custody-dev/custody/tsa"
	"github.com/custody-dev/custody/witness"
)

// Options are what the court brings: trusted keys, the evidence file, a
// checkpoint seen before. Anything absent is taken from the bundle (keys)
// or left unchecked, and the report says so.
type Options struct {
	// File is the evidence file to hash, if any.
	File io.Reader
	// LogVerifierKey is the trusted signed-note verifier key of the log.
	LogVerifierKey string
	// ReceiptKeyPEM is the trusted receipt public key.
	ReceiptKeyPEM []byte
	// OldCheckpoint is a signed checkpoint the court saved earlier.
	OldCheckpoint []byte
	// Roots are the operator's CA certificates, for capture and hand-off
	// signers.
	Roots *x509.CertPool
	// Policy names the witnesses whose cosignatures on the checkpoint
	// show it is the one everybody else sees (no split view).
	Policy *witness.Policy
	// TSAChains are the certificate chains of the timestamp authorities
	// the court trusts (each: a root, and any intermediates).
	TSAChains [][]*x509.Certificate
}

// Outcome is the verdict of a verification as a whole.
type Outcome string

// The outcomes, from best to worst. Only OutcomeVerified and
// OutcomeVerifiedWithLimits are successes.
const (
	// OutcomeVerified: every check passed against keys the court brought,
	// and nothing the bundle states was left unchecked.
	OutcomeVerified Outcome = "verified"
	// OutcomeVerifiedWithLimits: every check made passed against keys the
	// court brought, but some things could not be checked (NotChecked says
	// which: no evidence file, no CA, records withheld...).
	OutcomeVerifiedWithLimits Outcome = "verified_with_limits"
	// OutcomeUntrustedKeys: the checks passed, but only against keys the
	// bundle carries itself; anyone can make such a bundle.
	OutcomeUntrustedKeys Outcome = "untrusted_keys"
	// OutcomeFailed: a check failed, or the bundle is malformed.
	OutcomeFailed Outcome = "failed"
)

// Check is one verdict.
type Check struct {
	// Step is the docs/VERIFY.md step the check belongs to: format, keys,
	// checkpoint, event, chain, item, custody, file, consistency or
	// completeness.
	Step   string `json:"step"`
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// steps maps check names (by prefix) to docs/VERIFY.md steps.
var steps = []struct{ prefix, step string }{
	{"bundle format", "format"}, {"key hints", "keys"}, {"checkpoint signature", "checkpoint"}, {"checkpoint witnesses", "checkpoint"}, {"checkpoint timestamp", "checkpoint"},
	{"event #", "event"}, {"custody chain", "chain"}, {"item facts", "item"}, {"custody rules", "custody"},
	{"evidence file", "file"}, {"consistency", "consistency"}, {"history completeness", "completeness"},
}

// Fact is one thing a bundle states, and what vouches for it.
type Fact struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	// BoundBy names what the value was checked against; empty for
	// unauthenticated context.
	BoundBy string `json:"bound_by,omitempty"`
}

// Report is the outcome of Verify.
type Report struct {
	EvidenceID string  `json:"evidence_id"`
	Outcome    Outcome `json:"outcome"`
	// OK: every check made passed (the outcome may still not be a
	// success: see Outcome).
	OK     bool    `json:"ok"`
	Checks []Check `json:"checks"`
	// Facts are the bundle's statements that the checks bound to the
	// signed log, records and receipts (only when every check passed).
	Facts []Fact `json:"facts,omitempty"`
	// Unauthenticated are the bundle's fields no signature covers, shown
	// as context only.
	Unauthenticated []Fact `json:"unauthenticated,omitempty"`
	// NotChecked says what could not be checked, and why.
	NotChecked []string `json:"not_checked,omitempty"`
	// CannotProve says what no bundle of this format proves, whatever
	// the court brings (docs/VERIFY.md "What a bundle cannot prove"); it
	// does not change the outcome.
	CannotProve []string `json:"cannot_prove,omitempty"`
	// TrustedFromBundle lists the keys taken from the bundle itself
	// because the court supplied no independent copy.
	TrustedFromBundle []string `json:"trusted_from_bundle,omitempty"`
}

func (r *Report) add(name string, err error, okDetail string) {
	c := Check{Name: name, OK: err == nil, Detail: okDetail}
	for _, s := range steps {
		if strings.HasPrefix(name, s.prefix) {
			c.Step = s.step
			break
		}
	}
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

// Success reports whether the outcome is one a court may rely on
// (verified, or verified with the limits NotChecked lists).
func (r *Report) Success() bool {
	return r.Outcome == OutcomeVerified || r.Outcome == OutcomeVerifiedWithLimits
}

// Headline is the one-line verdict, in plain words.
func (r *Report) Headline() string {
	switch r.Outcome {
	case OutcomeVerified:
		return "VERIFIED: every check passed, against the keys you supplied."
	case OutcomeVerifiedWithLimits:
		return fmt.Sprintf("VERIFIED, WITH LIMITS: every check made passed, but %d thing(s) could not be checked (listed under \"Not checked\").", len(r.NotChecked))
	case OutcomeUntrustedKeys:
		return "NOT VERIFIED: the checks pass only against keys the bundle carries itself, and anyone can make such a bundle. Get the log and receipt keys from the operator out of band and verify again."
	}
	if fs := r.Failures(); len(fs) > 0 {
		return fmt.Sprintf("NOT VERIFIED: %d check(s) failed.", len(fs))
	}
	return "NOT VERIFIED."
}

// VerifyBytes parses raw as a bundle and verifies it. A malformed bundle
// gives a failed report (check "bundle format"), not an error.
func VerifyBytes(raw []byte, opts Options) *Report {
	b, err := Parse(raw)
	if err != nil {
		r := &Report{Outcome: OutcomeFailed}
		r.add("bundle format", err, "")
		return r
	}
	return Verify(b, opts)
}

// Verify checks everything the bundle states (docs/VERIFY.md, in that
// order) and reports every failure it finds, not only the first.
func Verify(b *Bundle, opts Options) *Report {
	v := begin(b, opts)
	// Four checks per event, and a dozen for the item.
	v.r.Checks = slices.Grow(v.r.Checks, 4*len(b.Events)+16)
	v.events(b.Events)
	return v.finish()
}

// maxErrors bounds the errors one check collects over a long history.
const maxErrors = 100

// run is one verification in progress: the checks up to the checkpoint are
// made once, then events are fed in order (all at once for a bundle
// document, a batch at a time for the stream form), then the item-wide
// checks close it. Its own memory does not grow with the number of
// events; the report's does (four checks per event).
type run struct {
	b    *Bundle // the header; b.Events is not used
	opts Options
	r    *Report

	logKey        string
	root          []byte
	receiptPub    crypto.PublicKey
	receiptKeyID  string
	receiptKeyErr error
	// inclusionDetail is every inclusion check's detail: one string for
	// them all.
	inclusionDetail string

	n            int          // events seen
	first        checkedEvent // event 0
	prevEv       Event
	prev         checkedEvent
	chainErrs    []error
	chainMore    int
	state        events.State
	custodyErrs  []error
	custodyMore  int
	custodyStuck bool // a record is missing: custody cannot be replayed
	witnessed    witness.Result
	stamped      *tsa.Stamp // the earliest verified timestamp
	// The history map's proof (step 10): completion is nil when the
	// bundle has none or it failed before any event (completeErr).
	commitment  historymap.Commitment
	completion  *historymap.Completion
	completeErr error
}

func (v *run) chainErr(err error) {
	if len(v.chainErrs) < maxErrors {
		v.chainErrs = append(v.chainErrs, err)
	} else {
		v.chainMore++
	}
}

func (v *run) custodyErr(err error) {
	if len(v.custodyErrs) < maxErrors {
		v.custodyErrs = append(v.custodyErrs, err)
	} else {
		v.custodyMore++
	}
}

func joined(errs []error, more int) error {
	if more > 0 {
		errs = append(errs, fmt.Errorf("and %d more", more))
	}
	return errors.Join(errs...)
}

// begin makes the checks that come before any event: the keys and the
// checkpoint.
func begin(b *Bundle, opts Options) *run {
	r := &Report{EvidenceID: b.Evidence.EvidenceID}
	v := &run{b: b, opts: opts, r: r, inclusionDetail: fmt.Sprintf("in the log of %d entries", b.Log.TreeSize)}
	r.add("bundle format", nil, "strict JSON; every field known, typed and present")
	v.logKey = opts.LogVerifierKey
	if v.logKey == "" {
		v.logKey = b.Keys.LogVerifierKey
		r.TrustedFromBundle = append(r.TrustedFromBundle, "log verifier key")
	} else if b.Keys.LogVerifierKey != strings.TrimSpace(v.logKey) {
		r.add("key hints", fmt.Errorf("the bundle names log key %q, not the one you trust", b.Keys.LogVerifierKey), "")
	}
	receiptKey := opts.ReceiptKeyPEM
	if receiptKey == nil {
		receiptKey = []byte(b.Keys.ReceiptPublicKeyPEM)
		r.TrustedFromBundle = append(r.TrustedFromBundle, "receipt public key")
	} else if !sameHint(receiptKey, []byte(b.Keys.ReceiptPublicKeyPEM)) {
		r.add("key hints", errors.New("the bundle's receipt key is not the one you trust"), "")
	}
	cp, err := openCheckpoint([]byte(b.Log.Checkpoint), v.logKey, b.Log.Origin)
	if err == nil && cp.size != b.Log.TreeSize {
		err = fmt.Errorf("the checkpoint is for %d entries, the bundle claims %d", cp.size, b.Log.TreeSize)
	}
	r.add("checkpoint signature", err, fmt.Sprintf("signed by %s; %d entries", b.Log.Origin, b.Log.TreeSize))
	if err == nil {
		v.root = cp.root
		v.timestamps(cp.text)
	}
	v.witnesses([]byte(b.Log.Checkpoint))
	v.receiptPub, v.receiptKeyID, v.receiptKeyErr = parsePublicKey(receiptKey)
	v.beginCompleteness()
	return v
}

// beginCompleteness checks the history map's commitment and the item's
// leaf (docs/VERIFY.md step 10); the events are checked against the leaf
// as they come.
func (v *run) beginCompleteness() {
	k, size := v.b.Completeness, v.b.Log.TreeSize
	if k == nil {
		return
	}
	c, ok, err := historymap.ParseEntry([]byte(k.Entry))
	switch {
	case err != nil:
		err = fmt.Errorf("completeness.entry: %w", err)
	case !ok:
		err = errors.New(`completeness.entry is not a history-map commitment (type "history_map")`)
	case k.LogIndex >= size:
		err = fmt.Errorf("the commitment's log index %d is not below the checkpoint's %d entries", k.LogIndex, size)
	case c.TreeSize > k.LogIndex:
		err = fmt.Errorf("the commitment at log index %d claims to cover %d entries; a commitment covers only entries before it", k.LogIndex, c.TreeSize)
	case v.root == nil:
		err = errors.New("the checkpoint does not verify, so the commitment's inclusion cannot be checked")
	}
	if err == nil {
		leaf := leafHash([]byte(k.Entry))
		if perr := proof.VerifyInclusion(rfc6962.DefaultHasher, k.LogIndex, size, leaf[:], k.InclusionProof, v.root); perr != nil {
			err = fmt.Errorf("the commitment entry is not in the log at index %d: %w", k.LogIndex, perr)
		}
	}
	if err == nil {
		v.completion, err = historymap.NewCompletion(c, v.b.Evidence.EvidenceID, []byte(k.MapLeaf),
			historymap.LeafProof{Index: k.MapIndex, MapSize: c.MapSize, Hashes: k.MapProof})
	}
	v.commitment, v.completeErr = c, err
}

// witnesses checks the checkpoint's cosignatures against the court's
// witness policy (docs/VERIFY.md step 3).
func (v *run) witnesses(cp []byte) {
	r, p := v.r, v.opts.Policy
	switch {
	case p == nil:
		r.NotChecked = append(r.NotChecked, "split view: no witness policy was given, so nothing shows that the log showed this checkpoint to anyone else (give one with --policy)")
		return
	case p.RequiresNone():
		r.NotChecked = append(r.NotChecked, "split view: the witness policy given requires no witness (quorum none)")
		return
	}
	res := p.Check(cp)
	var signed []string
	for _, c := range res.Signed {
		signed = append(signed, fmt.Sprintf("%s (at %s)", c.Witness, c.Time.Format(time.RFC3339)))
	}
	cosigned := "no witness of the policy"
	if len(signed) > 0 {
		cosigned = strings.Join(signed, ", ")
	}
	var err error
	switch {
	case len(res.Invalid) > 0:
		err = fmt.Errorf("the cosignature of %s does not verify", strings.Join(res.Invalid, ", "))
	case !res.Satisfied:
		err = fmt.Errorf("the checkpoint lacks the witness quorum: the policy needs %s; cosigned by %s", res.Required, cosigned)
	}
	r.add("checkpoint witnesses", err, fmt.Sprintf("cosigned by %s; the policy needs %s", cosigned, res.Required))
	if err == nil {
		v.witnessed = res
	}
}

// timestamps checks the checkpoint's RFC 3161 timestamps against the
// authorities the court trusts (docs/VERIFY.md step 3).
func (v *run) timestamps(text string) {
	r, ts := v.r, v.b.Log.Timestamps
	switch {
	case len(v.opts.TSAChains) == 0 && len(ts) == 0:
		r.NotChecked = append(r.NotChecked, "time: the bundle carries no timestamp and no authority was given, so every time in it is the operator's word")
		return
	case len(v.opts.TSAChains) == 0:
		r.NotChecked = append(r.NotChecked, fmt.Sprintf("time: the bundle's %d timestamp(s) were not checked: no timestamp authority's chain was given (give it with --tsa-chain)", len(ts)))
		return
	case len(ts) == 0:
		r.NotChecked = append(r.NotChecked, "time: the bundle carries no timestamp of its checkpoint, so every time in it is the operator's word")
		return
	}
	var errs []error
	var ok []string
	for i, t := range ts {
		var stamp tsa.Stamp
		var err error
		for _, chain := range v.opts.TSAChains {
			if stamp, err = tsa.Verify(t.Response, []byte(text), chain); err == nil {
				break
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("timestamp %d (%s) does not verify against any authority given: %w", i, t.Authority, err))
			continue
		}
		ok = append(ok, fmt.Sprintf("%s by %s", stamp.Time.Format(time.RFC3339), stamp.Authority))
		if v.stamped == nil || stamp.Time.Before(v.stamped.Time) {
			v.stamped = &stamp
		}
	}
	r.add("checkpoint timestamp", errors.Join(errs...), "the checkpoint existed no later than "+strings.Join(ok, "; "))
	if len(errs) > 0 {
		v.stamped = nil
	}
}

// events checks the next events of the chain, in order.
func (v *run) events(evs []Event) {
	checked := make([]checkedEvent, len(evs))
	perEvent := make([][]Check, len(evs))
	// Events are independent until the chain: check them on every core
	// (a receipt's ECDSA signature is the dearest part).
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(evs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				perEvent[i] = v.checkEvent(evs[i], &checked[i])
			}
		}()
	}
	for i := range evs {
		work <- i
	}
	close(work)
	wg.Wait()
	for i := range evs {
		v.r.Checks = append(v.r.Checks, perEvent[i]...)
		v.link(evs[i], &checked[i])
		v.replay(&checked[i])
		if v.completion != nil && v.completeErr == nil {
			leaf := checked[i].leaf
			if checked[i].entry == nil {
				leaf = leafHash([]byte(evs[i].Entry))
			}
			v.completeErr = v.completion.Event(historymap.Event{Seq: evs[i].Seq, LogIndex: evs[i].LogIndex, LeafHash: leaf})
		}
		if v.n == 0 {
			v.first = checked[i]
		}
		v.prevEv, v.prev = evs[i], checked[i]
		v.n++
	}
}

// finish makes the item-wide checks and sets the outcome.
func (v *run) finish() *Report {
	b, r, opts := v.b, v.r, v.opts
	if v.n == 0 {
		r.add("custody chain", errors.New("no events"), "")
	} else {
		r.add("custody chain", joined(v.chainErrs, v.chainMore), fmt.Sprintf("%d events, gap-free, each linked to its predecessor", v.n))
	}
	facts, err := checkIngest(b, v.first)
	r.add("item facts", err, "case, kind, size, media type, digest, category and metadata are those the ingest record and receipt commit to")
	if b.Evidence.Withheld {
		r.NotChecked = append(r.NotChecked, "who held the item and the hand-off signatures: the records of this special-category item were withheld from the requester (the chain's order, links, inclusion and receipts were checked)")
	} else {
		err := joined(v.custodyErrs, v.custodyMore)
		if v.custodyStuck {
			err = errors.Join(err, errors.New("a record is missing or unreadable; custody cannot be replayed past it"))
		}
		r.add("custody rules", err, "every event is allowed by the custody rules; capture and hand-off signatures verify")
		if opts.Roots == nil {
			r.NotChecked = append(r.NotChecked, "the signers' certificates were not checked against the operator's CA (give it with --ca)")
		}
	}
	if opts.File != nil {
		r.add("evidence file", checkFile(opts.File, b.Evidence.SHA256, b.Evidence.Size), "the file's SHA-256 and size are the logged item's")
	} else {
		r.NotChecked = append(r.NotChecked, "no evidence file was given: the bundle proves the digest "+b.Evidence.SHA256+", not that any file you hold has it")
	}
	if opts.OldCheckpoint != nil {
		r.add("consistency with the earlier checkpoint", checkConsistency(b, opts.OldCheckpoint, v.logKey, v.root), "the log seen before is a prefix of this one")
	} else if b.Consistency != nil {
		r.NotChecked = append(r.NotChecked, "the bundle's consistency proof was not checked: no earlier checkpoint was given")
	}
	complete := v.finishCompleteness()
	r.Unauthenticated = append(r.Unauthenticated, Fact{Name: "created_at", Value: b.CreatedAt})
	if ts := b.Log.Timestamps; len(ts) > 0 {
		labels := make([]string, len(ts))
		for i, t := range ts {
			labels[i] = t.Authority
		}
		r.Unauthenticated = append(r.Unauthenticated, Fact{Name: "log.timestamps[].authority", Value: strings.Join(labels, ", ")})
	}

	r.OK = len(r.Failures()) == 0
	switch {
	case !r.OK:
		r.Outcome = OutcomeFailed
	case len(r.TrustedFromBundle) > 0:
		r.Outcome = OutcomeUntrustedKeys
	case len(r.NotChecked) > 0:
		r.Outcome = OutcomeVerifiedWithLimits
	default:
		r.Outcome = OutcomeVerified
	}
	if r.OK {
		r.Facts = append(r.Facts, facts...)
		if v.stamped != nil {
			r.Facts = append(r.Facts, Fact{Name: "existed no later than", Value: fmt.Sprintf("%s (%s)", v.stamped.Time.Format(time.RFC3339), v.stamped.Authority), BoundBy: "RFC 3161 timestamp of the checkpoint (your authority's chain)"})
		}
		if len(v.witnessed.Signed) > 0 {
			var names []string
			for _, c := range v.witnessed.Signed {
				names = append(names, c.Witness)
			}
			r.Facts = append(r.Facts, Fact{Name: "same log as the witnesses", Value: fmt.Sprintf("%d of %d: %s", len(names), len(opts.Policy.Witnesses), strings.Join(names, ", ")), BoundBy: "witness cosignatures on the checkpoint (your policy)"})
		}
		if complete != nil {
			r.Facts = append(r.Facts, *complete)
		}
	}
	return r
}

// finishCompleteness closes step 10: the leaf's event must have been
// among the bundle's. It states what remains unproven (entries after the
// map's tree size that are neither the bundle's events nor the
// commitment) and returns the fact a passing check establishes.
func (v *run) finishCompleteness() *Fact {
	b, r := v.b, v.r
	if v.n == 0 {
		return nil
	}
	id, size, last := b.Evidence.EvidenceID, b.Log.TreeSize, v.prevEv.LogIndex
	k := b.Completeness
	if k == nil {
		r.NotChecked = append(r.NotChecked, fmt.Sprintf("completeness: the bundle carries no history-map proof, so nothing shows that no event of this item was logged after its last one here (log index %d) and before the checkpoint (%d entries); to be sure, read the public entries in between (/log/tile/entries/…) and check that none names %s", last, size, id))
		return nil
	}
	err := v.completeErr
	if err == nil && v.completion == nil {
		err = errors.New("the history map's proof could not be checked")
	}
	if err == nil {
		err = v.completion.Done()
	}
	n := v.commitment.TreeSize
	detail := ""
	if err == nil {
		l := v.completion.Leaf()
		detail = fmt.Sprintf("the history map committed at log index %d names event #%d (log index %d) as the item's last among the first %d entries: none of the item's events among them is missing", k.LogIndex, l.Seq, l.LogIndex, n)
	}
	r.add("history completeness", err, detail)
	if err != nil {
		return nil
	}
	// Unproven: the entries from the map's tree size (or after the
	// bundle's last event, if later) to the checkpoint, but for the
	// commitment itself.
	from, unproven := n, uint64(0)
	if last < size { // else the last event lies past the checkpoint: step 4 failed
		from = max(n, last+1)
		unproven = size - from
		if k.LogIndex >= from {
			unproven--
		}
	}
	bound := "the history map committed in the log (docs/HISTORY_MAP.md)"
	if unproven == 0 {
		return &Fact{Name: "history complete", Value: fmt.Sprintf("at the checkpoint: no event of the item among its %d entries is missing", size), BoundBy: bound}
	}
	r.CannotProve = append(r.CannotProve, fmt.Sprintf("that no event of this item was logged among the %d entries from log index %d to the checkpoint (%d entries), after the history map's tree size; to be sure, read those public entries (/log/tile/entries/…) and check that none names %s", unproven, from, size, id))
	return &Fact{Name: "history complete", Value: fmt.Sprintf("as of log entry %d: no event of the item among the first %d of the checkpoint's %d entries is missing", n, n, size), BoundBy: bound}
}

// checkedEvent is what checking one event established.
type checkedEvent struct {
	entry   canonicaljson.Object // nil if unreadable
	leaf    [32]byte
	record  *events.Record // nil if absent or unreadable
	receipt canonicaljson.Object
}

// The names of an event's four checks, after "event #<seq> (log <index>)".
const (
	entryCheck     = ": entry"
	recordCheck    = ": record commitment"
	inclusionCheck = ": inclusion"
	receiptCheck   = ": receipt"
)

// checkNames returns the names of event ev's four checks, "event #<seq>
// (log <index>): entry" and so on, as substrings of one string: a long
// history's report holds four per event.
func checkNames(ev Event) (entry, record, inclusion, receipt string) {
	var buf [64]byte
	name := append(strconv.AppendUint(append(buf[:0], "event #"...), ev.Seq, 10), " (log "...)
	name = append(strconv.AppendUint(name, ev.LogIndex, 10), ')')
	n := len(name)
	all := make([]byte, 0, 4*n+len(entryCheck+recordCheck+inclusionCheck+receiptCheck))
	for _, suffix := range []string{entryCheck, recordCheck, inclusionCheck, receiptCheck} {
		all = append(append(all, name...), suffix...)
	}
	s := string(all)
	i := n + len(entryCheck)
	entry, s = s[:i], s[i:]
	i = n + len(recordCheck)
	record, s = s[:i], s[i:]
	i = n + len(inclusionCheck)
	return entry, record, s[:i], s[i:]
}

// checkEvent checks one event's entry, record, inclusion and receipt. It
// only reads v, so events are checked concurrently.
func (v *run) checkEvent(ev Event, out *checkedEvent) []Check {
	b := v.b
	r := Report{Checks: make([]Check, 0, 4)}
	entryName, recordName, inclusionName, receiptName := checkNames(ev)
	// One copy of each text for the several readers of its bytes.
	entryText := []byte(ev.Entry)
	entry, err := events.ParseEntry(entryText)
	if err == nil {
		err = checkEntry(entry, b.Evidence.EvidenceID, ev.Seq)
	}
	r.add(entryName, err, "canonical; names this item and this sequence")
	if err != nil {
		return r.Checks
	}
	out.entry = entry
	out.leaf = leafHash(entryText)
	r.add(recordName, checkRecord(ev, entry, &out.record, b.Evidence.Withheld), "the record is canonical and hashes to the entry's record_sha256")
	r.add(inclusionName, checkInclusion(ev, out.leaf, b.Log.TreeSize, v.root), v.inclusionDetail)
	if v.receiptKeyErr != nil {
		r.add(receiptName, fmt.Errorf("receipt key: %w", v.receiptKeyErr), "")
	} else {
		var err error
		out.receipt, err = checkReceipt(ev, out, b, v.receiptPub, v.receiptKeyID)
		r.add(receiptName, err, "signed by the receipt key; states this entry")
	}
	return r.Checks
}

// checkEntry checks what every entry must state: version, item, sequence,
// a known type and time, the record digest.
func checkEntry(entry canonicaljson.Object, evidenceID string, seq uint64) error {
	if id, _ := entry["evidence_id"].(string); id != evidenceID {
		return fmt.Errorf("the entry is about %q, not %s", id, evidenceID)
	}
	if s, ok := entry["seq"].(int64); !ok || s < 0 || uint64(s) != seq {
		return fmt.Errorf("the entry is event #%v, the bundle says #%d", entry["seq"], seq)
	}
	if _, ok := entry["type"].(string); !ok {
		return errors.New("the entry has no type")
	}
	if _, ok := entry["record_sha256"].(string); !ok {
		return errors.New("the entry has no record_sha256")
	}
	if _, ok := entry["time"].(string); !ok {
		return errors.New("the entry has no time")
	}
	return nil
}

// hasher is rfc6962.DefaultHasher's hashing (SHA-256 of 0x00 ‖ leaf, of
// 0x01 ‖ left ‖ right) without a hash.Hash for each node: every event's
// inclusion proof hashes a dozen.
type hasher struct{}

func (hasher) EmptyRoot() []byte { return rfc6962.DefaultHasher.EmptyRoot() }

func (hasher) HashLeaf(leaf []byte) []byte { return rfc6962.DefaultHasher.HashLeaf(leaf) }

func (hasher) HashChildren(l, r []byte) []byte {
	var buf [1 + 2*sha256.Size]byte
	sum := sha256.Sum256(append(append(append(buf[:0], rfc6962.RFC6962NodeHashPrefix), l...), r...))
	return sum[:]
}

func (hasher) Size() int { return sha256.Size }

func leafHash(entry []byte) [32]byte {
	var out [32]byte
	copy(out[:], rfc6962.DefaultHasher.HashLeaf(entry))
	return out
}

type checkpoint struct {
	size uint64
	root []byte
	text string // the signed text, without signature lines
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
	if err != nil || strconv.FormatUint(size, 10) != lines[1] {
		return checkpoint{}, fmt.Errorf("checkpoint size %q is not a decimal number", lines[1])
	}
	root, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(root) != 32 {
		return checkpoint{}, errors.New("checkpoint root hash is not 32 bytes of base64")
	}
	return checkpoint{size: size, root: root, text: n.Text}, nil
}

func checkRecord(ev Event, entry canonicaljson.Object, out **events.Record, withheld bool) error {
	if ev.Record == "" {
		if withheld {
			return nil // only the commitment is given
		}
		return errors.New("the record is missing")
	}
	if withheld {
		return errors.New("the bundle says the records are withheld, yet carries one")
	}
	text := []byte(ev.Record)
	rec, err := events.ParseRecord(text)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(text)
	if committed, _ := entry["record_sha256"].(string); committed != hex.EncodeToString(sum[:]) {
		return fmt.Errorf("the record hashes to %x; the log entry commits to %s: the record was changed", sum, committed)
	}
	if string(rec.Type) != entry["type"] || int64(rec.Sequence) != entry["seq"] || events.FormatTime(rec.RecordedAt) != entry["time"] || rec.EvidenceID != entry["evidence_id"] {
		return errors.New("the record's item, type, sequence or time differ from its log entry")
	}
	*out = &rec
	return nil
}

func checkInclusion(ev Event, leaf [32]byte, size uint64, root []byte) error {
	if root == nil {
		return errors.New("no verified checkpoint to prove against")
	}
	if ev.LogIndex >= size {
		return fmt.Errorf("log index %d is beyond the checkpoint's %d entries", ev.LogIndex, size)
	}
	if err := proof.VerifyInclusion(hasher{}, ev.LogIndex, size, leaf[:], ev.InclusionProof, root); err != nil {
		return fmt.Errorf("the inclusion proof does not lead to the checkpoint's root: %w", err)
	}
	return nil
}

// checkReceipt checks a receipt's key id and signature, and that its
// payload states this very entry: item, log origin, index, leaf hash,
// and for events the type, sequence and time (the ingest receipt's other
// fields are checked with the item's facts).
func checkReceipt(ev Event, ce *checkedEvent, b *Bundle, key crypto.PublicKey, keyID string) (canonicaljson.Object, error) {
	if ev.Receipt.KeyID != keyID {
		return nil, fmt.Errorf("the receipt names key %s, the receipt key is %s", ev.Receipt.KeyID, keyID)
	}
	payload := []byte(ev.Receipt.Payload)
	if err := receipt.VerifySignature(key, payload, ev.Receipt.Signature); err != nil {
		return nil, fmt.Errorf("the receipt's signature does not verify under the receipt key: %w", err)
	}
	p, err := events.ParseCanonical(payload)
	if err != nil {
		return nil, fmt.Errorf("receipt payload: %w", err)
	}
	if receiptStates(p, ev, ce, b) {
		return p, nil
	}
	want := canonicaljson.Object{
		"v":           int64(receipt.Version),
		"evidence_id": b.Evidence.EvidenceID,
		"log_origin":  b.Log.Origin,
		"log_index":   int64(ev.LogIndex),
		"leaf_hash":   hex.EncodeToString(ce.leaf[:]),
		"time":        ce.entry["time"],
	}
	if ev.Seq == 0 {
		want["type"] = "ingest"
	} else {
		want["type"] = "event"
		want["event_type"] = ce.entry["type"]
		want["seq"] = int64(ev.Seq)
	}
	var errs []error
	for k, v := range want {
		if p[k] != v {
			errs = append(errs, fmt.Errorf("the receipt states %s %v, the entry %v", k, p[k], v))
		}
	}
	return p, errors.Join(errs...)
}

// receiptStates reports whether receipt payload p states every field
// checkReceipt expects: the common case, decided without building the
// expectation that checkReceipt's messages need.
func receiptStates(p canonicaljson.Object, ev Event, ce *checkedEvent, b *Bundle) bool {
	var leaf [2 * sha256.Size]byte
	hex.Encode(leaf[:], ce.leaf[:])
	if s, _ := p["leaf_hash"].(string); s != string(leaf[:]) {
		return false
	}
	if p["v"] != int64(receipt.Version) || p["evidence_id"] != b.Evidence.EvidenceID || p["log_origin"] != b.Log.Origin ||
		p["log_index"] != int64(ev.LogIndex) || p["time"] != ce.entry["time"] {
		return false
	}
	if ev.Seq == 0 {
		return p["type"] == "ingest"
	}
	return p["type"] == "event" && p["event_type"] == ce.entry["type"] && p["seq"] == int64(ev.Seq)
}

// parsePublicKey reads a PEM SubjectPublicKeyInfo and its key id (hex
// SHA-256 of the DER).
func parsePublicKey(keyPEM []byte) (crypto.PublicKey, string, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, "", errors.New("no PEM public key")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(block.Bytes)
	return pub, hex.EncodeToString(sum[:]), nil
}

// sameHint reports whether hint is exactly the canonical PEM form of the
// trusted key (a hint is compared byte for byte, so one key has one
// spelling in a bundle).
func sameHint(trusted, hint []byte) bool {
	block, _ := pem.Decode(trusted)
	if block == nil {
		return false
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: block.Bytes})) == string(hint)
}

// link checks event e's place in the chain (docs/VERIFY.md step 5): its
// position, and its link to the event before it. Links make log indexes
// strictly increasing, so no index can appear twice.
func (v *run) link(e Event, ce *checkedEvent) {
	i := v.n
	entry := ce.entry
	if entry == nil {
		v.chainErr(fmt.Errorf("position %d: no readable entry", i))
		return
	}
	if e.Seq != uint64(i) {
		v.chainErr(fmt.Errorf("position %d holds event #%d: an event is missing, duplicated or out of order", i, e.Seq))
	}
	prevIndex, hasPrev := entry["prev_index"].(int64)
	if i == 0 {
		if entry["type"] != string(events.Ingest) || hasPrev || entry["prev_leaf_hash"] != nil {
			v.chainErr(errors.New("the chain does not start with the ingest"))
		}
		return
	}
	if entry["type"] == string(events.Ingest) || entry["sha256"] != nil {
		v.chainErr(fmt.Errorf("event #%d is a second ingest", e.Seq))
	}
	switch {
	case e.LogIndex == v.prevEv.LogIndex:
		v.chainErr(fmt.Errorf("log entry %d appears twice", e.LogIndex))
	case e.LogIndex < v.prevEv.LogIndex:
		v.chainErr(fmt.Errorf("event #%d (log entry %d) is logged before its predecessor (log entry %d)", e.Seq, e.LogIndex, v.prevEv.LogIndex))
	}
	if !hasPrev || v.prev.entry == nil {
		v.chainErr(fmt.Errorf("event #%d has no link to its predecessor", e.Seq))
		return
	}
	if uint64(prevIndex) != v.prevEv.LogIndex || entry["prev_leaf_hash"] != hex.EncodeToString(v.prev.leaf[:]) {
		v.chainErr(fmt.Errorf("event #%d links to log entry %d, but the event before it is log entry %d", e.Seq, prevIndex, v.prevEv.LogIndex))
	}
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
