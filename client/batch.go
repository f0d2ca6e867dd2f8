package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// What happened to a file in one UploadBatch (BatchResult.Status).
const (
	// StatusUploaded: its bytes were sent and the service signed a receipt.
	StatusUploaded = "uploaded"
	// StatusHeld: the service already had an item with these bytes in the
	// case (uploaded by someone else, or by a run whose manifest is
	// elsewhere, or by an earlier file of this run); nothing was sent.
	StatusHeld = "already-held"
	// StatusSkipped: the manifest records this content in this case, and
	// the service confirms it holds it; nothing was sent.
	StatusSkipped = "skipped"
	// StatusFailed: not handed over; run the batch again.
	StatusFailed = "failed"
)

// BatchResult is what one UploadBatch did with one file.
type BatchResult struct {
	File       string `json:"file"`
	CaseID     string `json:"case_id"`
	SHA256     string `json:"sha256,omitempty"`
	Size       int64  `json:"size"`
	ModTime    string `json:"mtime,omitempty"`
	EvidenceID string `json:"evidence_id,omitempty"`
	Status     string `json:"status"`
	// Receipt is the signed receipt of this run's upload; only for
	// uploaded (the manifest keeps those of earlier runs).
	Receipt map[string]any `json:"receipt,omitempty"`
	// ManifestFile is, for a skipped file the manifest records under
	// another path, that path.
	ManifestFile string `json:"manifest_file,omitempty"`
	Error        string `json:"error,omitempty"`
}

// Batch says how UploadBatch hands files over.
type Batch struct {
	// Metadata is what every item states (CaseId required; without a
	// Kind the service infers each item's from its bytes);
	// UploadBatch fills in each file's digest and size, and its name
	// unless Filename is set.
	Metadata *custodyv1.UploadMetadata
	// Manifest records what was handed over (required).
	Manifest *Manifest
	// Parallel is how many files are hashed and uploaded at once
	// (default 4).
	Parallel int
	// Progress, if set, is called as each phase ("hashing", then
	// "uploading") starts, with how many files and bytes it goes through;
	// it returns a function told of each run of bytes done, and one
	// called when the phase ends.
	Progress func(phase string, files int, bytes int64) (add func(n int64), done func())
	// UploadError, if set, words the error of a failed upload (default
	// "upload FILE: ERR").
	UploadError func(file string, err error) string
}

// UploadBatch hands files (regular files; see ExpandFiles) over to the
// case, resumably: the content of a file the manifest records for the case
// and the service still holds is skipped; content the service holds is not
// sent again (already-held); the rest is uploaded, b.Parallel files at
// once, each success recorded in the manifest with its receipt, which is
// saved every 50 files and at the end. A file with the same bytes as an
// earlier one of the batch is not sent twice. A result is uploaded, and
// recorded, only when this call made the upload and the service answered
// with the item (of this digest) and a signed receipt; otherwise it is
// failed.
//
// If the case cannot be listed, UploadBatch returns nil results and the
// server's error. Otherwise it returns one result per file, in order, and
// an error only if the manifest could not be written. Failed files are
// marked so; calling again with the same manifest finishes them.
func (c *Client) UploadBatch(ctx context.Context, files []string, b Batch) ([]BatchResult, error) {
	caseID := b.Metadata.GetCaseId()
	parallel := max(b.Parallel, 1)
	if b.Parallel == 0 {
		parallel = 4
	}
	progress := b.Progress
	if progress == nil {
		progress = func(string, int, int64) (func(int64), func()) { return func(int64) {}, func() {} }
	}
	uploadError := b.UploadError
	if uploadError == nil {
		uploadError = func(file string, err error) string { return fmt.Sprintf("upload %s: %v", file, err) }
	}
	man := b.Manifest
	held, err := c.heldDigests(ctx, caseID)
	if err != nil {
		return nil, err
	}

	results := make([]BatchResult, len(files))
	hashFiles(ctx, files, caseID, parallel, results, progress)

	// Decide from content and case alone: the manifest must record this
	// digest for this case, and the service must still hold it.
	var todo []int
	first := map[string]int{} // digest → the file of this run that uploads it
	var later []int           // files with the same bytes as an earlier one
	var total int64
	for i := range results {
		r := &results[i]
		if r.Status == StatusFailed {
			continue
		}
		id, isHeld := held[r.SHA256]
		if e, ok := man.Lookup(caseID, r.SHA256); ok && isHeld {
			r.Status, r.EvidenceID = StatusSkipped, e.EvidenceID
			if e.File != r.File {
				r.ManifestFile = e.File
			}
			continue
		}
		if isHeld {
			r.Status, r.EvidenceID = StatusHeld, id
			man.Put(entryOf(*r))
			continue
		}
		if _, dup := first[r.SHA256]; dup {
			later = append(later, i)
			continue
		}
		first[r.SHA256] = i
		todo = append(todo, i)
		total += r.Size
	}

	add, done := progress("uploading", len(todo), total)
	var finished atomic.Int64
	grp, gctx := errgroup.WithContext(ctx)
	grp.SetLimit(parallel)
	for _, i := range todo {
		grp.Go(func() error {
			md := cloneMetadata(b.Metadata)
			c.uploadOne(gctx, &results[i], md, add, uploadError)
			if results[i].Status == StatusUploaded {
				man.Put(entryOf(results[i]))
			}
			if finished.Add(1)%50 == 0 {
				man.Save()
			}
			return nil
		})
	}
	grp.Wait()
	done()
	for _, i := range later {
		r, f := &results[i], results[first[results[i].SHA256]]
		if f.Status == StatusUploaded {
			// The manifest has the content already, under the first path.
			r.Status, r.EvidenceID = StatusHeld, f.EvidenceID
		} else {
			r.Status, r.Error = StatusFailed, fmt.Sprintf("%s: not sent, as it has the same bytes as %s, whose upload failed", r.File, f.File)
		}
	}
	if err := man.Save(); err != nil {
		return results, fmt.Errorf("writing the manifest %s: %w", man.Path(), err)
	}
	return results, nil
}

// cloneMetadata copies what a batch states for every item.
func cloneMetadata(m *custodyv1.UploadMetadata) *custodyv1.UploadMetadata {
	return proto.Clone(m).(*custodyv1.UploadMetadata)
}

// ExpandFiles turns files and folders into the regular files below them,
// sorted, leaving out the manifest at manifestPath, hidden files, and files
// found in folders that bear a manifest's default name.
func ExpandFiles(args []string, manifestPath string) ([]string, error) {
	absManifest, _ := filepath.Abs(manifestPath)
	var out []string
	for _, a := range args {
		err := filepath.WalkDir(a, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != a && strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), ".") {
				return nil
			}
			if path != a && IsManifestName(d.Name()) {
				return nil
			}
			if abs, _ := filepath.Abs(path); abs == absManifest {
				return nil
			}
			out = append(out, path)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(out)
	return out, nil
}

// hashFiles fills in results: each file's digest, size and modification
// time, or failed.
func hashFiles(ctx context.Context, files []string, caseID string, parallel int, results []BatchResult,
	progress func(string, int, int64) (func(int64), func())) {
	var total int64
	for _, f := range files {
		if info, err := os.Stat(f); err == nil {
			total += info.Size()
		}
	}
	add, done := progress("hashing", len(files), total)
	var grp errgroup.Group
	grp.SetLimit(parallel)
	for i, path := range files {
		grp.Go(func() error {
			r := BatchResult{File: path, CaseID: caseID, Status: StatusFailed}
			defer func() { results[i] = r }()
			if ctx.Err() != nil {
				r.Error = path + ": interrupted"
				return nil
			}
			info, err := os.Stat(path)
			if err != nil {
				r.Error = err.Error()
				return nil
			}
			sum, size, err := HashFile(path)
			if err != nil {
				r.Error = err.Error()
				return nil
			}
			add(size)
			r.SHA256, r.Size, r.ModTime, r.Status = sum, size, info.ModTime().UTC().Format(time.RFC3339Nano), ""
			return nil
		})
	}
	grp.Wait()
	done()
}

// entryOf is the manifest entry of a file handed over.
func entryOf(r BatchResult) ManifestEntry {
	return ManifestEntry{
		CaseID: r.CaseID, SHA256: r.SHA256, Size: r.Size, File: r.File, ModTime: r.ModTime,
		EvidenceID: r.EvidenceID, Status: r.Status, RecordedAt: time.Now().UTC().Format(time.RFC3339), Receipt: r.Receipt,
	}
}

// heldDigests lists the digests the service already holds for a case.
func (c *Client) heldDigests(ctx context.Context, caseID string) (map[string]string, error) {
	held := map[string]string{}
	token := ""
	for {
		resp, err := c.ListEvidence(ctx, &custodyv1.ListEvidenceRequest{CaseId: caseID, PageSize: 1000, PageToken: token})
		if err != nil {
			return nil, err
		}
		for _, ev := range resp.GetEvidence() {
			if _, ok := held[ev.GetSha256()]; !ok {
				held[ev.GetSha256()] = ev.GetEvidenceId()
			}
		}
		if token = resp.GetNextPageToken(); token == "" {
			return held, nil
		}
	}
}

// uploadOne sends the file of r, whose digest and size are known.
func (c *Client) uploadOne(ctx context.Context, r *BatchResult, md *custodyv1.UploadMetadata, add func(int64), uploadError func(string, error) string) {
	r.Status = StatusFailed
	md.Sha256, md.SizeBytes = r.SHA256, r.Size
	var last int64
	resp, err := c.UploadFile(ctx, r.File, md, func(sent int64) {
		add(sent - last)
		last = sent
	})
	if err != nil {
		if errors.Is(err, context.Canceled) || ctx.Err() != nil {
			r.Error = r.File + ": interrupted"
		} else {
			r.Error = uploadError(r.File, err)
		}
		return
	}
	if err := answersFor(resp, r.SHA256); err != nil {
		r.Error = uploadError(r.File, err)
		return
	}
	r.Status, r.EvidenceID = StatusUploaded, resp.GetEvidence().GetEvidenceId()
	r.Receipt = ReceiptJSON(resp.GetReceipt())
}

// answersFor says why resp is not the service's acceptance of the content
// sum: it must name an item with that digest and carry a signed receipt.
// Anything less is no proof of an upload, so the file is not recorded.
func answersFor(resp *custodyv1.UploadResponse, sum string) error {
	ev, rc := resp.GetEvidence(), resp.GetReceipt()
	switch {
	case ev.GetEvidenceId() == "":
		return errors.New("the service answered without an evidence id")
	case ev.GetSha256() != sum:
		return fmt.Errorf("the service answered for content %q, not %s", ev.GetSha256(), sum)
	case len(rc.GetPayload()) == 0 || len(rc.GetSignature()) == 0:
		return errors.New("the service answered without a signed receipt")
	}
	return nil
}

// ReceiptJSON is a receipt as a JSON object (protojson field names), its
// payload as text.
func ReceiptJSON(r *custodyv1.Receipt) map[string]any {
	b, _ := protojson.Marshal(r)
	var out map[string]any
	json.Unmarshal(b, &out)
	out["payload"] = string(r.GetPayload())
	return out
}
