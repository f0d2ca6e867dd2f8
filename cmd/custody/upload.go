package main

import (
	"context"
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

	"github.com/custody-dev/custody/client"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// What happened to a file in one run of custody upload.
const (
	// statusUploaded: its bytes were sent and the service signed a receipt.
	statusUploaded = "uploaded"
	// statusHeld: the service already had an item with these bytes in the
	// case (uploaded by someone else, or by a run whose manifest is
	// elsewhere, or by an earlier file of this run); nothing was sent.
	statusHeld = "already-held"
	// statusSkipped: the manifest records this content in this case, and
	// the service confirms it holds it; nothing was sent.
	statusSkipped = "skipped"
	// statusFailed: not handed over; run the command again.
	statusFailed = "failed"
)

// uploadResult is what one run did with one file: a line of the text
// output and an element of the JSON output.
type uploadResult struct {
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

// expandFiles turns files and folders into the regular files below them,
// sorted, leaving out the manifest in use, hidden files, and files found in
// folders that bear a manifest's default name.
func expandFiles(args []string, manifest string) ([]string, error) {
	absManifest, _ := filepath.Abs(manifest)
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
			if path != a && isManifestName(d.Name()) {
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

func runUpload(ctx context.Context, g globals, args []string) error {
	fs := newFlagSet("upload")
	caseID := fs.String("case", "", "case id (required)")
	kind := fs.String("kind", "", "photo, video, audio, document or other (required)")
	description := fs.String("description", "", "what the items show")
	special := fs.Bool("special", false, "special-category data (biometric): stored encrypted, read-restricted")
	parallel := fs.Int("j", 4, "files hashed and uploaded at once")
	manifestPath := fs.String("manifest", "", "the manifest to add to (default custody-manifest-<case>.json in the current folder): case, sha256, file, evidence id, receipt; a rerun skips content it lists for the case")
	paths, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(paths) == 0 || *caseID == "" || *kind == "" {
		return usagef("usage: custody upload FILE|DIR... --case C --kind photo|video|audio|document|other")
	}
	k, err := parseKind(*kind)
	if err != nil {
		return err
	}
	if *parallel < 1 {
		return usagef("-j must be at least 1")
	}
	if *manifestPath == "" {
		*manifestPath = defaultManifestName(*caseID)
	}
	files, err := expandFiles(paths, *manifestPath)
	if err != nil {
		return usageError{err.Error()}
	}
	if len(files) == 0 {
		return usagef("no files to upload in %s", strings.Join(paths, " "))
	}
	man, err := loadManifest(*manifestPath)
	if err != nil {
		return usageError{err.Error()}
	}
	c, err := dial(ctx, g)
	if err != nil {
		return err
	}
	defer c.Close()
	held, err := heldDigests(ctx, c, *caseID)
	if err != nil {
		return rpcError("listing case "+*caseID, err)
	}

	results := make([]uploadResult, len(files))
	hashFiles(ctx, files, *caseID, *parallel, results)

	// Decide from content and case alone: the manifest must record this
	// digest for this case, and the service must still hold it.
	var todo []int
	first := map[string]int{} // digest → the file of this run that uploads it
	var later []int           // files with the same bytes as an earlier one
	var total int64
	for i := range results {
		r := &results[i]
		if r.Status == statusFailed {
			continue
		}
		id, isHeld := held[r.SHA256]
		if e, ok := man.lookup(*caseID, r.SHA256); ok && isHeld {
			r.Status, r.EvidenceID = statusSkipped, e.EvidenceID
			if e.File != r.File {
				r.ManifestFile = e.File
			}
			continue
		}
		if isHeld {
			r.Status, r.EvidenceID = statusHeld, id
			man.put(entryOf(*r))
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

	bar := newBar(total, fmt.Sprintf("uploading %d file(s)", len(todo)))
	var finished atomic.Int64
	grp, gctx := errgroup.WithContext(ctx)
	grp.SetLimit(*parallel)
	for _, i := range todo {
		grp.Go(func() error {
			md := &custodyv1.UploadMetadata{CaseId: *caseID, Kind: k, Description: *description, SpecialCategory: *special}
			uploadOne(gctx, c, &results[i], md, bar)
			if results[i].Status == statusUploaded {
				man.put(entryOf(results[i]))
			}
			if finished.Add(1)%50 == 0 {
				man.save()
			}
			return nil
		})
	}
	grp.Wait()
	bar.finish()
	for _, i := range later {
		r, f := &results[i], results[first[results[i].SHA256]]
		if f.Status == statusUploaded {
			// The manifest has the content already, under the first path.
			r.Status, r.EvidenceID = statusHeld, f.EvidenceID
		} else {
			r.Status, r.Error = statusFailed, fmt.Sprintf("%s: not sent, as it has the same bytes as %s, whose upload failed", r.File, f.File)
		}
	}
	if err := man.save(); err != nil {
		return fmt.Errorf("writing the manifest %s: %w", *manifestPath, err)
	}

	counts := map[string]int{}
	for _, r := range results {
		counts[r.Status]++
	}
	if g.output == "json" {
		if err := printJSON(g.stdout, results); err != nil {
			return err
		}
	} else {
		printUploadResults(g, results)
		fmt.Fprintf(g.stdout, "%d uploaded, %d already held by the service, %d skipped (in the manifest), %d failed; manifest: %s\n",
			counts[statusUploaded], counts[statusHeld], counts[statusSkipped], counts[statusFailed], *manifestPath)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted; run the same command again to finish (the manifest %s lists what is done)", *manifestPath)
	}
	if n := counts[statusFailed]; n > 0 {
		return fmt.Errorf("%d upload(s) failed; run the same command again to retry them", n)
	}
	return nil
}

// printUploadResults writes one line per file: path, evidence id, status;
// errors go to stderr. A single uploaded file also gets its digest and
// receipt.
func printUploadResults(g globals, results []uploadResult) {
	width := 0
	for _, r := range results {
		width = max(width, len(r.File))
	}
	for _, r := range results {
		id := r.EvidenceID
		if id == "" {
			id = "-"
		}
		line := fmt.Sprintf("%-*s  %-29s  %s", width, r.File, id, r.Status)
		if r.ManifestFile != "" {
			line += " (in the manifest as " + r.ManifestFile + ")"
		}
		fmt.Fprintln(g.stdout, line)
		if r.Status == statusFailed {
			fmt.Fprintf(os.Stderr, "custody: %s\n", r.Error)
		}
	}
	if len(results) == 1 && results[0].Status == statusUploaded {
		r := results[0]
		fmt.Fprintf(g.stdout, "  sha256:  %s\n  receipt: %s\n", r.SHA256, r.Receipt["payload"])
	}
}

// hashFiles fills in results: each file's digest, size and modification
// time, or failed.
func hashFiles(ctx context.Context, files []string, caseID string, parallel int, results []uploadResult) {
	var total int64
	for _, f := range files {
		if info, err := os.Stat(f); err == nil {
			total += info.Size()
		}
	}
	bar := newBar(total, fmt.Sprintf("hashing %d file(s)", len(files)))
	var grp errgroup.Group
	grp.SetLimit(parallel)
	for i, path := range files {
		grp.Go(func() error {
			r := uploadResult{File: path, CaseID: caseID, Status: statusFailed}
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
			sum, size, err := client.HashFile(path)
			if err != nil {
				r.Error = err.Error()
				return nil
			}
			bar.add(size)
			r.SHA256, r.Size, r.ModTime, r.Status = sum, size, info.ModTime().UTC().Format(time.RFC3339Nano), ""
			return nil
		})
	}
	grp.Wait()
	bar.finish()
}

// entryOf is the manifest entry of a file handed over.
func entryOf(r uploadResult) manifestEntry {
	return manifestEntry{
		CaseID: r.CaseID, SHA256: r.SHA256, Size: r.Size, File: r.File, ModTime: r.ModTime,
		EvidenceID: r.EvidenceID, Status: r.Status, RecordedAt: time.Now().UTC().Format(time.RFC3339), Receipt: r.Receipt,
	}
}

// heldDigests lists the digests the service already holds for a case.
func heldDigests(ctx context.Context, c *client.Client, caseID string) (map[string]string, error) {
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
func uploadOne(ctx context.Context, c *client.Client, r *uploadResult, md *custodyv1.UploadMetadata, bar *bar) {
	r.Status = statusFailed
	md.Sha256, md.SizeBytes = r.SHA256, r.Size
	var last int64
	resp, err := c.UploadFile(ctx, r.File, md, func(sent int64) {
		bar.add(sent - last)
		last = sent
	})
	if err != nil {
		if errors.Is(err, context.Canceled) || ctx.Err() != nil {
			r.Error = r.File + ": interrupted"
		} else {
			r.Error = rpcError("upload "+r.File, err).Error()
		}
		return
	}
	r.Status, r.EvidenceID = statusUploaded, resp.GetEvidence().GetEvidenceId()
	r.Receipt = receiptJSON(resp.GetReceipt())
}
