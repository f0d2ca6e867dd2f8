package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	iofs "io/fs"
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
	out := fs.String("out", "", "file to write (required); an existing file is kept unless --force")
	force := fs.Bool("force", false, "replace --out if it exists")
	purpose := fs.String("purpose", "", "why you read the content; logged (required)")
	authf := authorityFlags(fs)
	id, err := parseID(g, fs, args)
	if err != nil {
		return err
	}
	if err := required("download", "out", *out, "purpose", *purpose); err != nil {
		return err
	}
	authority, err := authf.authority()
	if err != nil {
		return err
	}
	if !*force {
		if _, err := os.Lstat(*out); err == nil {
			return usagef("%s exists; custody download keeps it: give another --out, or --force to replace it", *out)
		}
	}
	c, err := dial(ctx, g)
	if err != nil {
		return err
	}
	defer c.Close()
	req := &custodyv1.DownloadRequest{EvidenceId: id, Purpose: *purpose, Authority: authority}
	var ev *custodyv1.Evidence
	if *force {
		ev, err = c.DownloadFile(ctx, req, *out)
	} else {
		ev, err = c.DownloadNewFile(ctx, req, *out)
	}
	if err != nil {
		switch {
		case errors.Is(err, client.ErrDigestMismatch):
			return fmt.Errorf("download %s: %w; nothing was written to %s", id, err, *out)
		case errors.Is(err, iofs.ErrExist):
			return usagef("%s appeared while downloading; it was kept and nothing was written: give another --out, or --force to replace it", *out)
		}
		return rpcError("download "+id, err)
	}
	if g.output == "json" {
		return printJSON(g.stdout, map[string]any{"evidence_id": ev.GetEvidenceId(), "file": *out, "sha256": ev.GetSha256(), "size_bytes": ev.GetSizeBytes(), "verified": true})
	}
	fmt.Fprintf(g.stdout, "%s\n  written to: %s\n  sha256:     %s (verified)\n  size:       %d bytes\n", ev.GetEvidenceId(), *out, ev.GetSha256(), ev.GetSizeBytes())
	return nil
}

// authorityFlags are the flags that cite the authority for a read.
type authFlags struct{ typ, id, by, from, until *string }

func authorityFlags(fs *flag.FlagSet) authFlags {
	return authFlags{
		typ:   fs.String("authority-type", "", "the authority for the access, e.g. court-order"),
		id:    fs.String("authority-id", "", "the authority's reference"),
		by:    fs.String("authority-issued-by", "", "who issued the authority"),
		from:  fs.String("authority-valid-from", "", "when the authority took effect (RFC 3339)"),
		until: fs.String("authority-valid-until", "", "when the authority ends (RFC 3339)"),
	}
}

// authority is the authority the flags cite, or nil if they cite none.
func (a authFlags) authority() (*custodyv1.Authority, error) {
	out := &custodyv1.Authority{Type: *a.typ, Identifier: *a.id, IssuedBy: *a.by}
	for _, f := range []struct {
		flag, v string
		to      **timestamppb.Timestamp
	}{{"--authority-valid-from", *a.from, &out.ValidFrom}, {"--authority-valid-until", *a.until, &out.ValidUntil}} {
		if f.v == "" {
			continue
		}
		t, err := parseTime(f.flag, f.v)
		if err != nil {
			return nil, err
		}
		*f.to = timestamppb.New(t)
	}
	if out.Type == "" && out.Identifier == "" && out.IssuedBy == "" && out.ValidFrom == nil && out.ValidUntil == nil {
		return nil, nil
	}
	return out, nil
}

// parseTime reads an RFC 3339 time given to flag.
func parseTime(flag, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, usagef("%s %q is not an RFC 3339 time (e.g. 2026-01-31T14:05:00Z or 2026-01-31T15:05:00+01:00)", flag, v)
	}
	return t, nil
}

func runSeizure(ctx context.Context, g globals, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "create":
			return runSeizureCreate(ctx, g, args[1:])
		case "get":
			return runSeizureGet(ctx, g, args[1:])
		case "-h", "-help", "--help":
			commandHelp(g.stdout, "seizure", nil)
			return errHelp
		}
	}
	return usagef("usage: custody seizure create|get ...; run custody help seizure")
}

func runSeizureCreate(ctx context.Context, g globals, args []string) error {
	fs := newFlagSet("seizure create")
	recordFile := fs.String("record", "", "the seizure record, JSON (see examples/seizure-record.json)")
	caseID := fs.String("case", "", "case id (default: the record's case_id)")
	description := fs.String("description", "", "a description of the record")
	var attach multiFlag
	fs.Var(&attach, "attach", "a raw file seized with the record (repeatable); uploaded encrypted")
	pos, err := parseInterspersed(g, fs, args)
	if err != nil {
		return err
	}
	if err := positionals("seizure create", pos, 0); err != nil {
		return err
	}
	if err := required("seizure create", "record", *recordFile); err != nil {
		return err
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
