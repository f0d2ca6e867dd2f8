package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody-dev/custody/certs"
	"github.com/custody-dev/custody/client"
	"github.com/custody-dev/custody/internal/atomicfile"
	"github.com/custody-dev/custody/verify"
	"github.com/custody-dev/custody/witness"
)

func runBundle(ctx context.Context, g globals, args []string) error {
	fs := newFlagSet("bundle")
	out := fs.String("out", "", "file to write the bundle to (required)")
	since := fs.String("checkpoint", "", "a checkpoint you saved before: the bundle then carries a consistency proof from it")
	stream := fs.Bool("stream", false, "write the stream form (JSON lines) even for a short history; histories too long for one document are always written in it")
	id, err := parseID(g, fs, args)
	if err != nil {
		return err
	}
	if err := required("bundle", "out", *out); err != nil {
		return err
	}
	var from uint64
	if *since != "" {
		raw, err := os.ReadFile(*since)
		if err != nil {
			return usageError{err.Error()}
		}
		if from, err = checkpointSize(raw); err != nil {
			return usagef("%s: %v", *since, err)
		}
	}
	c, err := dial(ctx, g)
	if err != nil {
		return err
	}
	defer c.Close()
	form := "document"
	var size int
	b, err := c.Bundle(ctx, id, from)
	switch {
	case err == nil && !*stream:
		if err := atomicfile.Write(*out, b, 0o644); err != nil {
			return err
		}
		size = len(b)
	case *stream || status.Code(err) == codes.FailedPrecondition && strings.Contains(err.Error(), "stream form"):
		// A history too long for one document: the stream form, written
		// as it arrives.
		form = "stream"
		if size, err = writeStream(ctx, c, id, from, *out); err != nil {
			return rpcError("bundle "+id, err)
		}
	default:
		return rpcError("bundle "+id, err)
	}
	if g.output == "json" {
		return printJSON(g.stdout, map[string]any{"evidence_id": id, "file": *out, "bytes": size, "form": form})
	}
	fmt.Fprintf(g.stdout, "bundle of %s written to %s (%d bytes, %s form)\nverify it offline: custody verify --bundle %s --trust TRUST.json (the operator's trust file: custody keys --out TRUST.json)\n", id, *out, size, form, *out)
	return nil
}

// writeStream writes the stream form to path through a temporary file, so
// an interrupted export never leaves a partial bundle under that name.
func writeStream(ctx context.Context, c *client.Client, id string, from uint64, path string) (int, error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".bundle-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	w := bufio.NewWriterSize(f, 1<<20)
	if _, err := c.StreamBundle(ctx, id, from, w); err != nil {
		f.Close()
		return 0, err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, err
	}
	st, _ := f.Stat()
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	return int(st.Size()), os.Rename(f.Name(), path)
}

// checkpointSize reads the size line of a checkpoint note (unverified: the
// verifier checks the signature).
func checkpointSize(raw []byte) (uint64, error) {
	lines := strings.SplitN(string(raw), "\n", 3)
	if len(lines) < 3 {
		return 0, errors.New("not a checkpoint")
	}
	var n uint64
	if _, err := fmt.Sscan(lines[1], &n); err != nil {
		return 0, errors.New("not a checkpoint: no size line")
	}
	return n, nil
}

func runVerify(ctx context.Context, g globals, args []string) error {
	fs := newFlagSet("verify")
	bundleFile := fs.String("bundle", "", "the court bundle (required)")
	evidenceFile := fs.String("file", "", "the evidence file, to check its SHA-256")
	oldCheckpoint := fs.String("checkpoint", "", "a checkpoint saved earlier: the log must have only grown since")
	var tf trustFlags
	tf.register(fs)
	pos, err := parseInterspersed(g, fs, args)
	if err != nil {
		return err
	}
	if err := positionals("verify", pos, 0); err != nil {
		return err
	}
	if err := required("verify", "bundle", *bundleFile); err != nil {
		return err
	}
	// The keys the court trusts are checked before the bundle: a key that
	// cannot be read is unusable input (exit 2), never a verdict on the
	// bundle.
	opts, trust, err := tf.options()
	if err != nil {
		return err
	}
	bf, err := os.Open(*bundleFile)
	if err != nil {
		return usageError{err.Error()}
	}
	defer bf.Close()
	br := bufio.NewReaderSize(bf, 1<<20)
	head, _ := br.Peek(1 << 20)
	streamForm := verify.IsStream(head)
	var raw []byte
	if !streamForm {
		if raw, err = io.ReadAll(io.LimitReader(br, verify.MaxBundleSize+1)); err != nil {
			return usageError{err.Error()}
		}
	}
	if _, err := verify.Parse(raw); !streamForm && err != nil {
		// Unusable input (exit 2), still stated as a verdict.
		printVerdict(g, verify.VerifyBytes(raw, verify.Options{}))
		return usagef("%s: %v", *bundleFile, err)
	}
	if *evidenceFile != "" {
		f, err := os.Open(*evidenceFile)
		if err != nil {
			return usageError{err.Error()}
		}
		defer f.Close()
		opts.File = f
	}
	if *oldCheckpoint != "" {
		if opts.OldCheckpoint, err = os.ReadFile(*oldCheckpoint); err != nil {
			return usageError{err.Error()}
		}
	}
	var report *verify.Report
	if streamForm {
		report = verify.VerifyStream(br, opts)
	} else {
		report = verify.VerifyBytes(raw, opts)
	}
	if err := printVerdict(g, report); err != nil {
		return err
	}
	if trust != nil && g.output != "json" {
		fmt.Fprintf(g.stdout, "\nKeys from the trust file %s (fingerprints to compare with the operator's):\n", tf.trust)
		printTrust(g.stdout, trust)
	}
	if fs := report.Failures(); len(fs) > 0 && fs[0].Step == "format" {
		return usagef("%s: not a well-formed bundle: %s", *bundleFile, fs[0].Detail)
	}
	switch {
	case !report.OK:
		return fmt.Errorf("verification failed: %d of %d checks", len(report.Failures()), len(report.Checks))
	case !report.Success():
		return errors.New("not verified: the keys came from the bundle itself")
	}
	return nil
}

func printVerdict(g globals, r *verify.Report) error {
	if g.output == "json" {
		return printJSON(g.stdout, r)
	}
	printReport(g.stdout, r)
	return nil
}

// printReport prints a report in the order a court reads it: the verdict,
// the facts the checks bound, what no signature covers, what was not
// checked, then every check.
func printReport(w io.Writer, r *verify.Report) {
	fmt.Fprintf(w, "%s\n", r.Headline())
	if r.EvidenceID != "" {
		fmt.Fprintf(w, "\nEvidence %s\n", r.EvidenceID)
	}
	if len(r.Facts) > 0 {
		fmt.Fprintln(w, "\nFacts bound to the signed log, records and receipts:")
		for _, f := range r.Facts {
			fmt.Fprintf(w, "  %s: %s   (checked against %s)\n", f.Name, f.Value, f.BoundBy)
		}
	}
	if len(r.Unauthenticated) > 0 {
		fmt.Fprintln(w, "\nUnauthenticated context (no signature covers these; do not rely on them):")
		for _, f := range r.Unauthenticated {
			fmt.Fprintf(w, "  %s: %s\n", f.Name, f.Value)
		}
	}
	if len(r.NotChecked) > 0 {
		fmt.Fprintln(w, "\nNot checked:")
		for _, n := range r.NotChecked {
			fmt.Fprintf(w, "  - %s\n", n)
		}
	}
	if len(r.TrustedFromBundle) > 0 {
		fmt.Fprintf(w, "\nWARNING: keys taken from the bundle itself: %s.\nGet these from the operator out of band and pass them with --log-key and --receipt-key (and --ca).\n",
			strings.Join(r.TrustedFromBundle, "; "))
	}
	if len(r.CannotProve) > 0 {
		fmt.Fprintln(w, "\nWhat no bundle proves:")
		for _, n := range r.CannotProve {
			fmt.Fprintf(w, "  - %s\n", n)
		}
	}
	fmt.Fprintln(w, "\nChecks:")
	for _, c := range r.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  [%s] %s: %s\n", mark, c.Name, c.Detail)
	}
	fmt.Fprintf(w, "\n%s\n", r.Headline())
}

// readLogKey reads --log-key: a signed-note verifier key, given as it is
// or in a file. A value that is neither is a usage error.
func readLogKey(v string) (string, error) {
	key, from := v, ""
	if data, err := os.ReadFile(v); err == nil {
		key, from = strings.TrimSpace(string(data)), " (read from the file "+v+")"
	}
	if _, err := note.NewVerifier(key); err != nil {
		if from == "" && !strings.Contains(v, "+") {
			return "", usagef("--log-key %q is neither a readable file nor a signed-note verifier key (origin+hash+base64 key, from custody keys or the operator)", v)
		}
		return "", usagef("--log-key%s is not a signed-note verifier key (origin+hash+base64 key, from custody keys or the operator): %v", from, err)
	}
	return key, nil
}

// readReceiptKey reads --receipt-key: a PEM file of a public key.
func readReceiptKey(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, usageError{err.Error()}
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, usagef("--receipt-key %s holds no PEM public key (-----BEGIN PUBLIC KEY-----)", path)
	}
	if _, err := x509.ParsePKIXPublicKey(block.Bytes); err != nil {
		return nil, usagef("--receipt-key %s: not a public key: %v", path, err)
	}
	return raw, nil
}

// trustFlags are how a court gives what it trusts: a trust file
// (custody keys --out), or the keys one by one; --policy and --tsa-chain
// given beside a trust file take the place of its own.
type trustFlags struct {
	trust, logKey, receiptKey, ca, policy string
	tsaChains                             multiFlag
}

func (t *trustFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.trust, "trust", "", "trust file from the operator (custody keys --out): log and receipt keys, CA, witness policy, timestamp authorities; instead of --log-key, --receipt-key and --ca")
	fs.StringVar(&t.logKey, "log-key", "", "the log's signed-note verifier key (origin+hash+key), or a file holding it (from the operator, out of band); a malformed key exits 2")
	fs.StringVar(&t.receiptKey, "receipt-key", "", "PEM file of the receipt public key (from the operator, out of band); a file that holds none exits 2")
	fs.StringVar(&t.ca, "ca", "", "PEM file of the operator's CA, to check hand-off signers' certificates")
	fs.Var(&t.tsaChains, "tsa-chain", "PEM file of a timestamp authority's certificate chain (root and any intermediates) to check the checkpoint's RFC 3161 timestamps; repeatable")
	fs.StringVar(&t.policy, "policy", "", "witness policy file (Sigsum format): the witnesses whose cosignatures show the checkpoint is the one everybody sees")
}

// options reads what the flags name. A file that cannot be read or does
// not hold what it should is a usage error (exit 2).
func (t *trustFlags) options() (verify.Options, *verify.Trust, error) {
	var opts verify.Options
	var trust *verify.Trust
	var err error
	if t.trust != "" {
		if t.logKey != "" || t.receiptKey != "" || t.ca != "" {
			return opts, nil, usagef("give --trust or the keys (--log-key, --receipt-key, --ca), not both")
		}
		raw, err := os.ReadFile(t.trust)
		if err != nil {
			return opts, nil, usageError{err.Error()}
		}
		if trust, err = verify.ParseTrust(raw); err != nil {
			return opts, nil, usagef("%s: %v", t.trust, err)
		}
		if opts, err = trust.Options(); err != nil {
			return opts, nil, usagef("%s: %v", t.trust, err)
		}
	}
	if t.logKey != "" {
		if opts.LogVerifierKey, err = readLogKey(t.logKey); err != nil {
			return opts, nil, err
		}
	}
	if t.receiptKey != "" {
		if opts.ReceiptKeyPEM, err = readReceiptKey(t.receiptKey); err != nil {
			return opts, nil, err
		}
	}
	if t.ca != "" {
		cs, err := certs.ReadCertificates(t.ca)
		if err != nil {
			return opts, nil, usageError{err.Error()}
		}
		opts.Roots = x509.NewCertPool()
		for _, c := range cs {
			opts.Roots.AddCert(c)
		}
	}
	if t.policy != "" {
		text, err := os.ReadFile(t.policy)
		if err != nil {
			return opts, nil, usageError{err.Error()}
		}
		if opts.Policy, err = witness.ParsePolicy(text); err != nil {
			return opts, nil, usagef("%s: %v", t.policy, err)
		}
	}
	if len(t.tsaChains) > 0 {
		opts.TSAChains = nil
	}
	for _, f := range t.tsaChains {
		chain, err := certs.ReadCertificates(f)
		if err != nil {
			return opts, nil, usageError{err.Error()}
		}
		opts.TSAChains = append(opts.TSAChains, chain)
	}
	return opts, trust, nil
}
