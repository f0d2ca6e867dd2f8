package main

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
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/custody-dev/custody/certs"
	"github.com/custody-dev/custody/client"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// manifestEntry is one file of an upload manifest, the record a field team
// keeps of what it handed over.
type manifestEntry struct {
	File       string `json:"file"`
	SHA256     string `json:"sha256"`
	Size       int64  `json:"size"`
	EvidenceID string `json:"evidence_id,omitempty"`
	// Status is uploaded, already-held (the server had these bytes for the
	// case) or failed.
	Status  string         `json:"status"`
	Receipt map[string]any `json:"receipt,omitempty"`
	Error   string         `json:"error,omitempty"`
}

// expandFiles turns files and folders into the regular files below them,
// sorted, leaving out the manifest itself and hidden files.
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

func readManifest(path string) map[string]manifestEntry {
	done := map[string]manifestEntry{}
	b, err := os.ReadFile(path)
	if err != nil {
		return done
	}
	var entries []manifestEntry
	if json.Unmarshal(b, &entries) == nil {
		for _, e := range entries {
			if e.Status != "failed" {
				done[e.File] = e
			}
		}
	}
	return done
}

func runUpload(ctx context.Context, g globals, args []string) error {
	fs := newFlagSet("upload")
	caseID := fs.String("case", "", "case id (required)")
	kind := fs.String("kind", "", "photo, video, audio, document or other (required)")
	description := fs.String("description", "", "what the items show")
	special := fs.Bool("special", false, "special-category data (biometric): stored encrypted, read-restricted")
	parallel := fs.Int("j", 4, "files uploaded at once")
	manifest := fs.String("manifest", "custody-manifest.json", "where to write the manifest (file, sha256, evidence id, receipt); a rerun skips what it lists")
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
	files, err := expandFiles(paths, *manifest)
	if err != nil {
		return usageError{err.Error()}
	}
	if len(files) == 0 {
		return usagef("no files to upload in %s", strings.Join(paths, " "))
	}
	c, err := dial(ctx, g)
	if err != nil {
		return err
	}
	defer c.Close()

	done := readManifest(*manifest)
	held, err := heldDigests(ctx, c, *caseID)
	if err != nil {
		return rpcError("listing case "+*caseID, err)
	}
	var total int64
	todo := 0
	for _, f := range files {
		if _, ok := done[f]; ok {
			continue
		}
		todo++
		if info, err := os.Stat(f); err == nil {
			total += info.Size()
		}
	}
	bar := newBar(total, fmt.Sprintf("uploading %d file(s)", todo))
	var mu sync.Mutex
	entries := make([]manifestEntry, len(files))
	var failed, finished atomic.Int64
	save := func() error {
		mu.Lock()
		defer mu.Unlock()
		var out []manifestEntry
		for _, e := range entries {
			if e.File != "" {
				out = append(out, e)
			}
		}
		b, _ := json.MarshalIndent(out, "", "  ")
		return certs.WriteFileAtomic(*manifest, append(b, '\n'), 0o644)
	}
	grp, gctx := errgroup.WithContext(ctx)
	grp.SetLimit(*parallel)
	for i, path := range files {
		if e, ok := done[path]; ok {
			entries[i] = e
			continue
		}
		grp.Go(func() error {
			e := uploadOne(gctx, c, path, &custodyv1.UploadMetadata{CaseId: *caseID, Kind: k, Description: *description, SpecialCategory: *special}, held, bar)
			mu.Lock()
			entries[i] = e
			mu.Unlock()
			if e.Status == "failed" {
				failed.Add(1)
			}
			if finished.Add(1)%50 == 0 {
				save()
			}
			return nil
		})
	}
	grp.Wait()
	bar.finish()
	if err := save(); err != nil {
		return err
	}
	if g.output == "json" {
		if err := printJSON(g.stdout, entries); err != nil {
			return err
		}
	} else {
		counts := map[string]int{}
		for _, e := range entries {
			counts[e.Status]++
			if e.Status == "failed" {
				fmt.Fprintf(os.Stderr, "custody: %s\n", e.Error)
			}
		}
		fmt.Fprintf(g.stdout, "%d uploaded, %d already held by the service, %d failed; manifest: %s\n",
			counts["uploaded"], counts["already-held"], counts["failed"], *manifest)
		if len(files) == 1 && entries[0].Status == "uploaded" {
			e := entries[0]
			fmt.Fprintf(g.stdout, "%s\n  evidence id: %s\n  sha256:      %s\n  receipt:     %s\n", e.File, e.EvidenceID, e.SHA256, e.Receipt["payload"])
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted; run the same command again to finish (the manifest %s lists what is done)", *manifest)
	}
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%d upload(s) failed; run the same command again to retry them", n)
	}
	return nil
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
			held[ev.GetSha256()] = ev.GetEvidenceId()
		}
		if token = resp.GetNextPageToken(); token == "" {
			return held, nil
		}
	}
}

func uploadOne(ctx context.Context, c *client.Client, path string, md *custodyv1.UploadMetadata, held map[string]string, bar *bar) manifestEntry {
	e := manifestEntry{File: path, Status: "failed"}
	sum, size, err := client.HashFile(path)
	if err != nil {
		e.Error = err.Error()
		return e
	}
	e.SHA256, e.Size = sum, size
	if id, ok := held[sum]; ok {
		bar.add(size)
		e.Status, e.EvidenceID = "already-held", id
		return e
	}
	md.Sha256, md.SizeBytes = sum, size
	var last int64
	resp, err := c.UploadFile(ctx, path, md, func(sent int64) {
		bar.add(sent - last)
		last = sent
	})
	if err != nil {
		if errors.Is(err, context.Canceled) || ctx.Err() != nil {
			e.Error = "interrupted"
		} else {
			e.Error = rpcError("upload "+path, err).Error()
		}
		return e
	}
	e.Status, e.EvidenceID = "uploaded", resp.GetEvidence().GetEvidenceId()
	e.Receipt = receiptJSON(resp.GetReceipt())
	return e
}
