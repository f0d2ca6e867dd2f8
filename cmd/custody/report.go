package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dop251/goja"

	"github.com/custody-dev/custody/internal/atomicfile"
	"github.com/custody-dev/custody/server/verifypage"
	"github.com/custody-dev/custody/verify"
)

// runReport is `custody report`: verify a bundle offline, as custody
// verify does, and write the court's printable report of it (one HTML
// file, no script, no external fetch). The report is rendered by the same
// JavaScript the /verify page runs (server/verifypage/report.js).
func runReport(ctx context.Context, g globals, args []string) error {
	fs := newFlagSet("report")
	bundleFile := fs.String("bundle", "", "the court bundle (required)")
	evidenceFile := fs.String("file", "", "the evidence file, to check its SHA-256")
	out := fs.String("out", "", "file to write the HTML report to (required)")
	oldCheckpoint := fs.String("checkpoint", "", "a checkpoint saved earlier: the log must have only grown since")
	var tf trustFlags
	tf.register(fs)
	pos, err := parseInterspersed(g, fs, args)
	if err != nil {
		return err
	}
	if err := positionals("report", pos, 0); err != nil {
		return err
	}
	if err := required("report", "bundle", *bundleFile, "out", *out); err != nil {
		return err
	}
	opts, trust, err := tf.options()
	if err != nil {
		return err
	}
	keys, err := tf.reportKeys(opts, trust)
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(*bundleFile)
	if err != nil {
		return usageError{err.Error()}
	}
	made, err := reportTime()
	if err != nil {
		return err
	}
	meta := reportMeta{GeneratedAt: made.Format(time.RFC3339), Generator: "custody report", BundleFile: reportFile{Name: filepath.Base(*bundleFile), SHA256: sha256Hex(raw)}}
	if *evidenceFile != "" {
		f, err := os.Open(*evidenceFile)
		if err != nil {
			return usageError{err.Error()}
		}
		defer f.Close()
		opts.File = f
		meta.EvidenceFile = &reportFile{Name: filepath.Base(*evidenceFile)}
	}
	if *oldCheckpoint != "" {
		if opts.OldCheckpoint, err = os.ReadFile(*oldCheckpoint); err != nil {
			return usageError{err.Error()}
		}
	}
	var report *verify.Report
	var doc json.RawMessage // the bundle as the renderer reads it; nil if unreadable
	if verify.IsStream(raw) {
		report = verify.VerifyStream(bytes.NewReader(raw), opts)
		doc = streamDocument(raw)
	} else {
		report = verify.VerifyBytes(raw, opts)
		if json.Valid(raw) && bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
			doc = raw
		}
	}
	html, err := renderReport(report, doc, keys, meta)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(*out, []byte(html), 0o644); err != nil {
		return err
	}
	if g.output == "json" {
		if err := printJSON(g.stdout, map[string]any{"file": *out, "bytes": len(html), "evidence_id": report.EvidenceID, "outcome": report.Outcome, "headline": report.Headline()}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(g.stdout, "%s\nreport written to %s (%d bytes): open it in a browser to read or print it\n", report.Headline(), *out, len(html))
	}
	if fs := report.Failures(); len(fs) > 0 && fs[0].Step == "format" {
		return usagef("%s: not a well-formed bundle: %s (the report says so)", *bundleFile, fs[0].Detail)
	}
	switch {
	case !report.OK:
		return fmt.Errorf("verification failed: %d of %d checks (the report says NOT VERIFIED)", len(report.Failures()), len(report.Checks))
	case !report.Success():
		return errors.New("not verified: the keys came from the bundle itself (the report says NOT VERIFIED)")
	}
	return nil
}

// reportTime is when the report says it was made: now, or, for a
// reproducible report, SOURCE_DATE_EPOCH (seconds since the Unix epoch, the
// reproducible-builds convention).
func reportTime() (time.Time, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return time.Now().UTC().Truncate(time.Second), nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, usagef("SOURCE_DATE_EPOCH %q is not a number of seconds since the Unix epoch", v)
	}
	return time.Unix(n, 0).UTC(), nil
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// streamDocument turns a bundle in the stream form into the document form
// the renderer reads (the header, with its event lines as "events"), or
// nil if the header does not read.
func streamDocument(raw []byte) json.RawMessage {
	lines := bytes.Split(raw, []byte("\n"))
	var head map[string]json.RawMessage
	if err := json.Unmarshal(lines[0], &head); err != nil {
		return nil
	}
	events := []json.RawMessage{}
	for _, l := range lines[1:] {
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		if !json.Valid(l) {
			break
		}
		events = append(events, l)
	}
	delete(head, "event_count")
	head["events"], _ = json.Marshal(events)
	doc, err := json.Marshal(head)
	if err != nil {
		return nil
	}
	return doc
}

// reportKeys are what the court supplied, as text, for the report's
// "Keys used" (the renderer computes their fingerprints): an empty field
// was not given.
type reportKeys struct {
	LogVerifierKey      string   `json:"log_verifier_key"`
	ReceiptPublicKeyPEM string   `json:"receipt_public_key_pem"`
	ClientCAPEM         string   `json:"client_ca_pem"`
	WitnessPolicy       string   `json:"witness_policy"`
	TSAChainPEMs        []string `json:"tsa_chain_pems"`
	// Source says where they came from, in words.
	Source string `json:"source"`
}

type reportFile struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256,omitempty"`
}

// reportMeta is the report's provenance: when, by what, from which files.
type reportMeta struct {
	GeneratedAt  string      `json:"generated_at"`
	Generator    string      `json:"generator"`
	BundleFile   reportFile  `json:"bundle_file"`
	EvidenceFile *reportFile `json:"evidence_file"`
}

// reportKeys returns the texts of what the flags gave, as options() read
// them: the trust file's, each replaced by the file given beside it.
func (t *trustFlags) reportKeys(opts verify.Options, trust *verify.Trust) (reportKeys, error) {
	k := reportKeys{LogVerifierKey: opts.LogVerifierKey, ReceiptPublicKeyPEM: string(opts.ReceiptKeyPEM), TSAChainPEMs: []string{}}
	var from []string
	if trust != nil {
		k.ClientCAPEM, k.WitnessPolicy = trust.ClientCAPEM, trust.WitnessPolicy
		for _, a := range trust.TimestampAuthorities {
			k.TSAChainPEMs = append(k.TSAChainPEMs, a.ChainPEM)
		}
		from = append(from, "trust file "+filepath.Base(t.trust))
	}
	read := func(path string) (string, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", usageError{err.Error()}
		}
		from = append(from, filepath.Base(path))
		return string(b), nil
	}
	var err error
	if t.logKey != "" {
		if _, statErr := os.Stat(t.logKey); statErr == nil {
			from = append(from, filepath.Base(t.logKey))
		} else {
			from = append(from, "--log-key")
		}
	}
	if t.receiptKey != "" {
		from = append(from, filepath.Base(t.receiptKey))
	}
	if t.ca != "" {
		if k.ClientCAPEM, err = read(t.ca); err != nil {
			return k, err
		}
	}
	if t.policy != "" {
		if k.WitnessPolicy, err = read(t.policy); err != nil {
			return k, err
		}
	}
	if len(t.tsaChains) > 0 {
		k.TSAChainPEMs = []string{}
	}
	for _, f := range t.tsaChains {
		pem, err := read(f)
		if err != nil {
			return k, err
		}
		k.TSAChainPEMs = append(k.TSAChainPEMs, pem)
	}
	k.Source = strings.Join(from, ", ")
	return k, nil
}

// The renderer, compiled once.
var (
	reportOnce sync.Once
	reportProg *goja.Program
	reportErr  error
)

// renderReport runs report.js's CustodyReport.renderReport on the
// report, the bundle document (nil: unreadable), the keys and the
// provenance, and returns the HTML document.
func renderReport(r *verify.Report, bundle json.RawMessage, keys reportKeys, meta reportMeta) (string, error) {
	reportOnce.Do(func() {
		reportProg, reportErr = goja.Compile("report.js", verifypage.ReportScript(), true)
	})
	if reportErr != nil {
		return "", fmt.Errorf("report renderer: %w", reportErr)
	}
	if bundle == nil {
		bundle = json.RawMessage("null")
	}
	args := make([]string, 0, 4)
	for _, v := range []any{r, bundle, keys, meta} {
		b, err := json.Marshal(v)
		if err != nil {
			return "", fmt.Errorf("report renderer: %w", err)
		}
		args = append(args, string(b))
	}
	vm := goja.New()
	if _, err := vm.RunProgram(reportProg); err != nil {
		return "", fmt.Errorf("report renderer: %w", err)
	}
	vm.Set("args", args)
	v, err := vm.RunString(`CustodyReport.renderReport(...args.map((a) => JSON.parse(a)))`)
	if err != nil {
		return "", fmt.Errorf("report renderer: %w", err)
	}
	html, ok := v.Export().(string)
	if !ok {
		return "", errors.New("report renderer: it returned no text")
	}
	return html, nil
}
