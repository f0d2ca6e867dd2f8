package verifypage_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"

	"github.com/custody-dev/custody/canonicaljson"
	"github.com/custody-dev/custody/certs"
	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv"
	"github.com/custody-dev/custody/receipt"
	"github.com/custody-dev/custody/verify"
)

// A forge makes bundles a well-behaved service would never serve: records
// that break the custody rules, yet committed in a log, included in a
// checkpoint signed by the forge's log key and receipted with its receipt
// key, with hand-off statements signed by parties of its CA. The published
// vectors cannot reach the custody rules with a bad history (changing a
// record breaks its log commitment first); these bundles do, so the page's
// replay of events.State.Next is compared with Go's rule for rule.
type forge struct {
	t          *testing.T
	origin     string
	signer     note.Signer
	logKey     string
	receiptKey *ecdsa.PrivateKey
	receiptPEM string
	receipts   *receipt.Signer
	ca         *certs.Authority
	parties    map[string]party
	t0         time.Time
	file       []byte
	metadata   []byte
}

type party struct {
	uri  string
	cert *x509.Certificate
	key  crypto.Signer
}

const (
	collectorURI = "urn:custody:collector:team-1"
	labURI       = "urn:custody:custodian:lab-1"
	courtURI     = "urn:custody:court:chamber-1"
	forgedID     = "ev-forgedforgedforgedforged1"
)

func newForge(t *testing.T) *forge {
	skey, vkey, err := note.GenerateKey(rand.Reader, "forge.test/log")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(rk.Public())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	ca, err := certs.NewAuthority("forge CA", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f := &forge{
		t: t, origin: "forge.test/log", signer: signer, logKey: vkey, receiptKey: rk,
		receiptPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
		receipts:   receipt.NewSigner(func(m []byte) ([]byte, error) { d := sha256.Sum256(m); return ecdsa.SignASN1(rand.Reader, rk, d[:]) }, hex.EncodeToString(sum[:])),
		ca:         ca, parties: map[string]party{},
		t0:       time.Now().UTC().Truncate(time.Second).Add(-time.Hour + 123456789),
		file:     []byte("forged evidence bytes"),
		metadata: []byte(`{"capture":{},"filename":"forged.bin"}`),
	}
	for _, p := range []struct {
		role identity.Role
		name string
	}{{identity.RoleCollector, "team-1"}, {identity.RoleCustodian, "lab-1"}, {identity.RoleCourt, "chamber-1"}} {
		id := identity.Identity{Role: p.role, Name: p.name}
		issued, err := ca.IssueClient(id, time.Now().Add(-2*time.Hour), time.Now().Add(2*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		pair, err := tls.X509KeyPair(issued.CertPEM, issued.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(pair.Certificate[0])
		f.parties[id.String()] = party{uri: id.String(), cert: c, key: pair.PrivateKey.(crypto.Signer)}
	}
	return f
}

func (f *forge) sha() string                  { s := sha256.Sum256(f.file); return hex.EncodeToString(s[:]) }
func (f *forge) at(d time.Duration) time.Time { return f.t0.Add(d) }

// signed adds statement, signature and certificate to d, signed by who
// (a party of the forge's CA).
func (f *forge) signed(d canonicaljson.Object, who string, stmt []byte) canonicaljson.Object {
	p, ok := f.parties[who]
	if !ok {
		f.t.Fatalf("no party %s", who)
	}
	dig := sha256.Sum256(stmt)
	sig, err := p.key.Sign(rand.Reader, dig[:], crypto.SHA256)
	if k, ok := p.key.(ed25519.PrivateKey); ok {
		sig, err = ed25519.Sign(k, stmt), nil
	}
	if err != nil {
		f.t.Fatal(err)
	}
	d["statement"] = string(stmt)
	d["signature"] = base64.StdEncoding.EncodeToString(sig)
	d["certificate"] = base64.StdEncoding.EncodeToString(p.cert.Raw)
	return d
}

func (f *forge) ingest(at time.Duration) events.Record {
	md, _ := canonicaljson.Canonicalize(f.metadata)
	mdSum := sha256.Sum256(md)
	return events.Record{EvidenceID: forgedID, Type: events.Ingest, Performer: collectorURI, RecordedAt: f.at(at), ContentSHA256: f.sha(),
		Details: canonicaljson.Object{"case_id": "CASE-1", "kind": "document", "size": int64(len(f.file)), "media_type": "application/octet-stream",
			"metadata_sha256": hex.EncodeToString(mdSum[:]), "special": false, "storage": canonicaljson.Object{"backend": "disk", "key": "k"}}}
}

func (f *forge) release(seq uint64, from, to string, at, lapse time.Duration) events.Record {
	stmt, _ := events.ReleaseStatement(forgedID, f.sha(), from, to, "to the lab", f.at(at))
	d := f.signed(canonicaljson.Object{"reason": "to the lab", "expires_at": events.FormatTime(f.at(at + lapse))}, from, stmt)
	return events.Record{EvidenceID: forgedID, Sequence: seq, Type: events.Release, Performer: from, Counterparty: to, RecordedAt: f.at(at), Details: d}
}

func (f *forge) accept(seq uint64, by, from string, releaseSeq int64, at time.Duration) events.Record {
	stmt, _ := events.AcceptStatement(forgedID, f.sha(), from, by, uint64(releaseSeq), f.at(at))
	d := f.signed(canonicaljson.Object{"release_seq": releaseSeq}, by, stmt)
	return events.Record{EvidenceID: forgedID, Sequence: seq, Type: events.Accept, Performer: by, Counterparty: from, RecordedAt: f.at(at), Details: d}
}

func (f *forge) cancel(seq uint64, by, to string, releaseSeq int64, at time.Duration) events.Record {
	return events.Record{EvidenceID: forgedID, Sequence: seq, Type: events.ReleaseCancelled, Performer: by, Counterparty: to, RecordedAt: f.at(at),
		Details: canonicaljson.Object{"release_seq": releaseSeq, "reason": "wrong recipient"}}
}

func (f *forge) expire(seq uint64, releaseSeq int64, expiredAt, at time.Duration) events.Record {
	return events.Record{EvidenceID: forgedID, Sequence: seq, Type: events.ReleaseExpired, Performer: events.ServicePerformer, RecordedAt: f.at(at),
		Details: canonicaljson.Object{"release_seq": releaseSeq, "expired_at": events.FormatTime(f.at(expiredAt))}}
}

func (f *forge) event(seq uint64, typ events.Type, by string, at time.Duration) events.Record {
	return events.Record{EvidenceID: forgedID, Sequence: seq, Type: typ, Performer: by, RecordedAt: f.at(at), Details: canonicaljson.Object{"note": "n"}}
}

// bundle logs the records (after two leaves of other items), signs a
// checkpoint and receipts, and returns the bundle's JSON.
func (f *forge) bundle(recs []events.Record) []byte {
	tree := testonly.New(rfc6962.DefaultHasher)
	tree.AppendData([]byte("another item's entry"), []byte("and another"))
	type logged struct {
		entry []byte
		index uint64
		leaf  [32]byte
		rec   events.Record
	}
	var ls []logged
	for i, r := range recs {
		r.Salt = events.NewSalt()
		if i > 0 {
			r.Previous = &events.Link{Index: ls[i-1].index, LeafHash: ls[i-1].leaf}
		}
		entry, err := r.Entry()
		if err != nil {
			f.t.Fatal(err)
		}
		l := logged{entry: entry, index: tree.Size(), rec: r}
		copy(l.leaf[:], rfc6962.DefaultHasher.HashLeaf(entry))
		tree.AppendData(entry)
		ls = append(ls, l)
	}
	size := tree.Size()
	cp, err := note.Sign(&note.Note{Text: fmt.Sprintf("%s\n%d\n%s\n", f.origin, size, base64.StdEncoding.EncodeToString(tree.Hash()))}, f.signer)
	if err != nil {
		f.t.Fatal(err)
	}
	b := verify.Bundle{Format: verify.Format, Version: verify.Version, CreatedAt: events.FormatTime(time.Now()),
		Evidence: verify.Evidence{EvidenceID: forgedID, SHA256: f.sha(), Size: int64(len(f.file)), MediaType: "application/octet-stream", Kind: "document", CaseID: "CASE-1", Metadata: f.metadata},
		Log:      verify.Log{Origin: f.origin, Checkpoint: string(cp), TreeSize: size},
		Keys:     verify.Keys{LogVerifierKey: f.logKey, ReceiptPublicKeyPEM: f.receiptPEM}}
	for _, l := range ls {
		canon, err := l.rec.Canonical()
		if err != nil {
			f.t.Fatal(err)
		}
		proof, err := tree.InclusionProof(l.index, size)
		if err != nil {
			f.t.Fatal(err)
		}
		fields := canonicaljson.Object{"evidence_id": forgedID, "time": events.FormatTime(l.rec.RecordedAt), "log_origin": f.origin, "log_index": l.index, "leaf_hash": hex.EncodeToString(l.leaf[:])}
		if l.rec.Sequence == 0 {
			fields["type"] = "ingest"
			for _, k := range []string{"size", "media_type", "case_id", "kind", "special", "storage"} {
				fields[k] = l.rec.Details[k]
			}
			fields["sha256"] = f.sha()
		} else {
			fields["type"], fields["event_type"], fields["seq"] = "event", string(l.rec.Type), l.rec.Sequence
		}
		rc, err := f.receipts.Sign(fields)
		if err != nil {
			f.t.Fatal(err)
		}
		b.Events = append(b.Events, verify.Event{Seq: l.rec.Sequence, LogIndex: l.index, Entry: string(l.entry), Record: string(canon), InclusionProof: proof,
			Receipt: &verify.Receipt{Payload: string(rc.Payload), Signature: rc.Signature, KeyID: rc.KeyID}})
	}
	out, err := json.Marshal(b)
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

// TestVerifyPageCustodyRules verifies forged bundles that break each rule
// of events.State.Next (and the hand-off and capture statements), and a
// history that keeps them all, in the page and with the Go verifier, and
// requires the same report (the forge's CA is not given to Go: the page
// cannot check chains).
func TestVerifyPageCustodyRules(t *testing.T) {
	testenv.RequireFull(t, "headless Chromium")
	f := newForge(t)
	const h, m = time.Hour, time.Minute
	col, lab, court := collectorURI, labURI, courtURI
	with := func(r events.Record, mod func(r *events.Record)) events.Record {
		r.Details = cloneObject(r.Details)
		mod(&r)
		return r
	}
	scenarios := map[string][]events.Record{
		"every rule kept": {f.ingest(0), f.release(1, col, lab, m, 10*m), f.accept(2, lab, col, 1, 2*m), f.event(3, events.Analysis, lab, 3*m),
			f.event(4, events.Access, court, 4*m), f.release(5, lab, court, 5*m, 10*m), f.cancel(6, lab, court, 5, 6*m), f.release(7, lab, court, 7*m, 10*m),
			f.expire(8, 7, 17*m, 17*m), f.event(9, events.Derivation, lab, 18*m), f.event(10, events.SubmissionToCourt, lab, 19*m), f.event(11, events.Annotation, court, 20*m),
			f.event(12, events.Verification, court, 21*m)},
		"ingest without collector":          {with(f.ingest(0), func(r *events.Record) { r.Performer = "" })},
		"second ingest":                     {f.ingest(0), with(f.ingest(m), func(r *events.Record) { r.Sequence = 1 })},
		"release by another":                {f.ingest(0), f.release(1, lab, court, m, h)},
		"release while one is pending":      {f.ingest(0), f.release(1, col, lab, m, h), f.release(2, col, court, 2*m, h)},
		"release to nobody":                 {f.ingest(0), with(f.release(1, col, lab, m, h), func(r *events.Record) { r.Counterparty = "" })},
		"release to oneself":                {f.ingest(0), f.release(1, col, col, m, h)},
		"release lapsing at its own time":   {f.ingest(0), f.release(1, col, lab, m, 0)},
		"release lapsing before its time":   {f.ingest(0), f.release(1, col, lab, m, -m)},
		"release without expires_at":        {f.ingest(0), with(f.release(1, col, lab, m, h), func(r *events.Record) { delete(r.Details, "expires_at") })},
		"release with a garbled expires_at": {f.ingest(0), with(f.release(1, col, lab, m, h), func(r *events.Record) { r.Details["expires_at"] = "tomorrow" })},
		"release with an offset expires_at": {f.ingest(0), with(f.release(1, col, lab, m, h), func(r *events.Record) {
			r.Details["expires_at"] = f.at(m + h).In(time.FixedZone("", 5400)).Format(time.RFC3339Nano)
		}), f.accept(2, lab, col, 1, 2*m)},
		"release statement with another reason": {f.ingest(0), with(f.release(1, col, lab, m, h), func(r *events.Record) { r.Details["reason"] = "to the bin" })},
		"release statement signed by another":   {f.ingest(0), with(f.release(1, col, lab, m, h), func(r *events.Record) { f.resign(r, lab) })},
		"release without statement":             {f.ingest(0), with(f.release(1, col, lab, m, h), func(r *events.Record) { delete(r.Details, "statement") })},
		"accept with nothing pending":           {f.ingest(0), f.accept(1, lab, col, 0, m)},
		"accept by another":                     {f.ingest(0), f.release(1, col, lab, m, h), f.accept(2, court, col, 1, 2*m)},
		"accept of another release":             {f.ingest(0), f.release(1, col, lab, m, h), f.accept(2, lab, col, 0, 2*m)},
		"accept of release -1":                  {f.ingest(0), f.release(1, col, lab, m, h), f.accept(2, lab, col, -1, 2*m)},
		"accept naming no release":              {f.ingest(0), f.release(1, col, lab, m, h), with(f.accept(2, lab, col, 1, 2*m), func(r *events.Record) { delete(r.Details, "release_seq") })},
		"accept naming another releaser":        {f.ingest(0), f.release(1, col, lab, m, h), f.accept(2, lab, court, 1, 2*m)},
		"accept after the release lapsed":       {f.ingest(0), f.release(1, col, lab, m, 10*m), f.accept(2, lab, col, 1, 12*m)},
		"accept just as the release lapses":     {f.ingest(0), f.release(1, col, lab, m, 10*m), f.accept(2, lab, col, 1, 11*m)},
		"accept a nanosecond before the lapse":  {f.ingest(0), f.release(1, col, lab, m, 10*m), f.accept(2, lab, col, 1, 11*m-1)},
		"access after the release lapsed":       {f.ingest(0), f.release(1, col, lab, m, 10*m), f.event(2, events.Access, court, 20*m)},
		"cancel with nothing pending":           {f.ingest(0), f.cancel(1, col, lab, 0, m)},
		"cancel by the recipient":               {f.ingest(0), f.release(1, col, lab, m, h), f.cancel(2, lab, lab, 1, 2*m)},
		"cancel of another release":             {f.ingest(0), f.release(1, col, lab, m, h), f.cancel(2, col, lab, 3, 2*m)},
		"cancel naming another recipient":       {f.ingest(0), f.release(1, col, lab, m, h), f.cancel(2, col, court, 1, 2*m)},
		"expiry with nothing pending":           {f.ingest(0), f.expire(1, 0, 0, m)},
		"expiry by a person":                    {f.ingest(0), f.release(1, col, lab, m, 10*m), with(f.expire(2, 1, 11*m, 11*m), func(r *events.Record) { r.Performer = col })},
		"expiry of another release":             {f.ingest(0), f.release(1, col, lab, m, 10*m), f.expire(2, 2, 11*m, 11*m)},
		"expiry stating another time":           {f.ingest(0), f.release(1, col, lab, m, 10*m), f.expire(2, 1, 12*m, 12*m)},
		"expiry before the lapse":               {f.ingest(0), f.release(1, col, lab, m, 10*m), f.expire(2, 1, 11*m, 10*m)},
		"expiry late":                           {f.ingest(0), f.release(1, col, lab, m, 10*m), f.expire(2, 1, 11*m, 30*m)},
		"analysis by another":                   {f.ingest(0), f.event(1, events.Analysis, lab, m)},
		"derivation by the recipient":           {f.ingest(0), f.release(1, col, lab, m, h), f.event(2, events.Derivation, lab, 2*m)},
		"submission by another":                 {f.ingest(0), f.event(1, events.SubmissionToCourt, court, m)},
		"unknown event type":                    {f.ingest(0), f.event(1, events.Type("teleport"), col, m)},
		"several broken rules":                  {f.ingest(0), f.event(1, events.Analysis, lab, m), f.accept(2, lab, col, 1, 2*m), f.release(3, lab, court, 3*m, h)},
	}
	// Capture signatures: over the case, digest, size, collector and
	// capture time the ingest record and metadata state.
	capture := func(caseID string, size int64, captured string, metadata string) []events.Record {
		ff := *f
		ff.metadata = []byte(metadata)
		in := ff.ingest(0)
		var at time.Time
		if captured != "" {
			at, _ = time.Parse(time.RFC3339Nano, captured)
		}
		stmt, _ := events.CaptureStatement(f.sha(), size, caseID, collectorURI, at, f.at(-m))
		in.Details["collector_signature"] = f.signed(canonicaljson.Object{}, collectorURI, stmt)
		return []events.Record{in}
	}
	captureCases := map[string]struct {
		caseID, captured, metadata string
		size                       int64
	}{
		"capture signature kept":                  {"CASE-1", "2022-03-16T10:04:05.12Z", `{"capture":{"captured_at":"2022-03-16T11:04:05.120+01:00"},"filename":"x"}`, int64(len(f.file))},
		"capture signature without capture time":  {"CASE-1", "", `{"capture":{},"filename":"x"}`, int64(len(f.file))},
		"capture time the collector did not sign": {"CASE-1", "", `{"capture":{"captured_at":"2022-03-16T10:04:05Z"}}`, int64(len(f.file))},
		"capture time other than signed":          {"CASE-1", "2022-03-16T10:04:05Z", `{"capture":{"captured_at":"2022-03-16T10:04:06Z"}}`, int64(len(f.file))},
		"capture time unparsable in metadata":     {"CASE-1", "2022-03-16T10:04:05Z", `{"capture":{"captured_at":"yesterday"}}`, int64(len(f.file))},
		"capture signature for another case":      {"CASE-2", "", `{"capture":{}}`, int64(len(f.file))},
		"capture signature for another size":      {"CASE-1", "", `{"capture":{}}`, 7},
	}

	files := vectorFiles{}
	var cases []pageCase
	add := func(name string, bundle []byte) {
		path := "forged/" + name + ".json"
		files[path] = base64.StdEncoding.EncodeToString(bundle)
		lk, rk := f.logKey, f.receiptPEM
		cases = append(cases, pageCase{Name: name, Raw: path, LogKeyText: &lk, ReceiptKeyText: &rk, bundle: bundle})
	}
	for name, recs := range scenarios {
		add(name, f.bundle(recs))
	}
	for name, c := range captureCases {
		ff := *f
		ff.metadata = []byte(c.metadata)
		add(name, ff.bundle(capture(c.caseID, c.size, c.captured, c.metadata)))
	}
	page := runPage(t, files, cases)
	rulesFailed := 0
	for i, c := range cases {
		g := goVerify(c.bundle, c.goOptions(t, nil))
		if diffs := sameAsGo(g, page[i]); len(diffs) > 0 {
			t.Errorf("%s: the page differs from the Go verifier:\n\t%s", c.Name, strings.Join(diffs, "\n\t"))
		}
		for _, fc := range failed(g.Checks) {
			if fc.Step != "custody" && !(fc.Step == "chain" && c.Name == "second ingest") && !(fc.Step == "item" && strings.HasPrefix(c.Name, "capture")) {
				t.Errorf("%s: the forge made a bundle that fails %s, not only the custody rules: %v", c.Name, fc.Step, fc)
			}
		}
		if page[i].firstFailedStep() == "custody" {
			rulesFailed++
		}
		wantOK := c.Name == "every rule kept" || c.Name == "accept a nanosecond before the lapse" || c.Name == "release with an offset expires_at" ||
			c.Name == "capture signature kept" || c.Name == "capture signature without capture time" || c.Name == "expiry late"
		if page[i].OK != wantOK {
			t.Errorf("%s: ok %v, want %v: %v", c.Name, page[i].OK, wantOK, failed(page[i].Checks))
		}
	}
	t.Logf("%d forged bundles, %d of them failing the custody rules, verified alike by the page and Go", len(cases), rulesFailed)
}

// resign replaces the statement's signature and certificate with who's.
func (f *forge) resign(r *events.Record, who string) {
	f.signed(r.Details, who, []byte(r.Details["statement"].(string)))
}

func cloneObject(o canonicaljson.Object) canonicaljson.Object {
	out := canonicaljson.Object{}
	for k, v := range o {
		out[k] = v
	}
	return out
}
