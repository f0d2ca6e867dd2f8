package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody-dev/custody/client"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// parseInterspersed parses flags that may come before, between or after
// positional arguments, as in `custody upload a.jpg b.jpg --case C`.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	return fs
}

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func parseKind(k string) (custodyv1.EvidenceKind, error) {
	v, ok := custodyv1.EvidenceKind_value["EVIDENCE_KIND_"+strings.ToUpper(k)]
	if !ok || v == 0 || k == "biometric_seizure_record" {
		return 0, usagef("--kind %q: want photo, video, audio, document or other", k)
	}
	return custodyv1.EvidenceKind(v), nil
}

// receiptJSON is a receipt as the CLI prints it: the payload as text (it is
// canonical JSON), signature base64, key id.
func receiptJSON(r *custodyv1.Receipt) map[string]any { return client.ReceiptJSON(r) }

// bar is a progress bar on a terminal, and nothing otherwise.
type bar struct {
	mu sync.Mutex
	pb *progressbar.ProgressBar
}

func newBar(total int64, description string) *bar {
	if !term.IsTerminal(int(os.Stderr.Fd())) {
		return &bar{}
	}
	return &bar{pb: progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription(description),
		progressbar.OptionShowBytes(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionFullWidth(),
	)}
}

func (b *bar) add(n int64) {
	if b.pb == nil {
		return
	}
	b.mu.Lock()
	b.pb.Add64(n)
	b.mu.Unlock()
}

func (b *bar) finish() {
	if b.pb != nil {
		b.pb.Finish()
	}
}

func runDownload(ctx context.Context, g globals, args []string) error {
	fs := newFlagSet("download")
	out := fs.String("out", "", "file to write (required)")
	purpose := fs.String("purpose", "", "why you read the content; logged (required)")
	authType := fs.String("authority-type", "", "the authority for the access, e.g. court-order")
	authID := fs.String("authority-id", "", "the authority's reference")
	authBy := fs.String("authority-issued-by", "", "who issued the authority")
	authFrom := fs.String("authority-valid-from", "", "when the authority took effect (RFC 3339)")
	authUntil := fs.String("authority-valid-until", "", "when the authority ends (RFC 3339)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *out == "" || *purpose == "" {
		return usagef("usage: custody download ID --out FILE --purpose TEXT [--authority-type T --authority-id ID --authority-issued-by WHO --authority-valid-from TIME --authority-valid-until TIME]")
	}
	authority := &custodyv1.Authority{Type: *authType, Identifier: *authID, IssuedBy: *authBy}
	for _, f := range []struct {
		flag, v string
		to      **timestamppb.Timestamp
	}{{"--authority-valid-from", *authFrom, &authority.ValidFrom}, {"--authority-valid-until", *authUntil, &authority.ValidUntil}} {
		if f.v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, f.v)
		if err != nil {
			return usagef("%s %q is not an RFC 3339 time (e.g. 2026-01-31T00:00:00Z)", f.flag, f.v)
		}
		*f.to = timestamppb.New(t)
	}
	c, err := dial(ctx, g)
	if err != nil {
		return err
	}
	defer c.Close()
	req := &custodyv1.DownloadRequest{EvidenceId: pos[0], Purpose: *purpose}
	if *authType != "" || *authID != "" || *authBy != "" || authority.ValidFrom != nil || authority.ValidUntil != nil {
		req.Authority = authority
	}
	ev, err := c.DownloadFile(ctx, req, *out)
	if err != nil {
		if errors.Is(err, client.ErrDigestMismatch) {
			return fmt.Errorf("download %s: %w; nothing was written to %s", pos[0], err, *out)
		}
		return rpcError("download "+pos[0], err)
	}
	if g.output == "json" {
		return printJSON(g.stdout, map[string]any{"evidence_id": ev.GetEvidenceId(), "file": *out, "sha256": ev.GetSha256(), "size_bytes": ev.GetSizeBytes(), "verified": true})
	}
	fmt.Fprintf(g.stdout, "%s\n  written to: %s\n  sha256:     %s (verified)\n  size:       %d bytes\n", ev.GetEvidenceId(), *out, ev.GetSha256(), ev.GetSizeBytes())
	return nil
}

func runSeizure(ctx context.Context, g globals, args []string) error {
	if len(args) == 0 || args[0] != "create" {
		return usagef("usage: custody seizure create --record FILE.json [--attach FILE]... [--case C]")
	}
	fs := newFlagSet("seizure create")
	recordFile := fs.String("record", "", "the seizure record, JSON (see examples/seizure-record.json)")
	caseID := fs.String("case", "", "case id (default: the record's case_id)")
	description := fs.String("description", "", "a description of the record")
	var attach multiFlag
	fs.Var(&attach, "attach", "a raw file seized with the record (repeatable); uploaded encrypted")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != 0 || *recordFile == "" {
		return usagef("usage: custody seizure create --record FILE.json [--attach FILE]... [--case C]")
	}
	raw, err := os.ReadFile(*recordFile)
	if err != nil {
		return usageError{err.Error()}
	}
	var rec custodyv1.SeizureRecord
	if err := protojson.Unmarshal(raw, &rec); err != nil {
		return usagef("%s is not a seizure record: %v", *recordFile, err)
	}
	if *caseID == "" {
		*caseID = rec.GetCaseId()
	}
	if *caseID == "" {
		return usagef("no case: give --case or a case_id in %s", *recordFile)
	}
	// Hash the attachments and check them against the record's digests
	// before anything is uploaded: the service would refuse the record, and
	// the attachments would stay stored and logged without it.
	sums := make([]string, len(attach))
	sizes := make([]int64, len(attach))
	for i, path := range attach {
		if sums[i], sizes[i], err = client.HashFile(path); err != nil {
			return usageError{err.Error()}
		}
	}
	if err := checkRecordDigests(*recordFile, &rec, attach, sums); err != nil {
		return err
	}
	c, err := dial(ctx, g)
	if err != nil {
		return err
	}
	defer c.Close()
	var ids []string
	for i, path := range attach {
		// Attachments are special-category items of kind other: only
		// CreateSeizureRecord makes items of kind biometric_seizure_record.
		md := &custodyv1.UploadMetadata{CaseId: *caseID, Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_OTHER, SpecialCategory: true,
			Sha256: sums[i], SizeBytes: sizes[i]}
		resp, err := c.UploadFile(ctx, path, md, nil)
		if err != nil {
			return rpcError("attachment "+path, err)
		}
		ids = append(ids, resp.GetEvidence().GetEvidenceId())
	}
	resp, err := c.CreateSeizureRecord(ctx, &custodyv1.CreateSeizureRecordRequest{
		CaseId: *caseID, Record: &rec, AttachmentEvidenceIds: ids, Description: *description,
	})
	if err != nil {
		return rpcError("seizure create", err)
	}
	if g.output == "json" {
		return printJSON(g.stdout, map[string]any{
			"evidence_id": resp.GetEvidence().GetEvidenceId(), "sha256": resp.GetEvidence().GetSha256(),
			"attachment_evidence_ids": ids, "receipt": receiptJSON(resp.GetReceipt()),
		})
	}
	fmt.Fprintf(g.stdout, "seizure record %s\n  sha256:      %s\n  attachments: %s\n  receipt:     %s\n",
		resp.GetEvidence().GetEvidenceId(), resp.GetEvidence().GetSha256(), strings.Join(ids, ", "), resp.GetReceipt().GetPayload())
	return nil
}

// checkRecordDigests is the service's rule, applied before uploading: when
// the record lists digests and files are attached, every attached file's
// SHA-256 is listed and every listed digest is an attached file's.
func checkRecordDigests(recordFile string, rec *custodyv1.SeizureRecord, attach, sums []string) error {
	if len(attach) == 0 || len(rec.GetRecordDigests()) == 0 {
		return nil
	}
	listed := map[string]bool{}
	for _, d := range rec.GetRecordDigests() {
		listed[strings.ToLower(d.GetSha256())] = true
	}
	attached := map[string]bool{}
	for i, path := range attach {
		attached[sums[i]] = true
		if !listed[sums[i]] {
			return usagef("--attach %s (attachment %d) has sha256 %s, which record_digests in %s do not list; list the sha256 of every attachment there; nothing was uploaded", path, i, sums[i], recordFile)
		}
	}
	for i, d := range rec.GetRecordDigests() {
		if !attached[strings.ToLower(d.GetSha256())] {
			return usagef("record_digests[%d] in %s (sha256 %s) is the digest of no --attach file; nothing was uploaded", i, recordFile, d.GetSha256())
		}
	}
	return nil
}
