package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody-dev/custody/client"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

func runUpload(ctx context.Context, g globals, args []string) error {
	fs := newFlagSet("upload")
	caseID := fs.String("case", "", "case id (required)")
	kind := fs.String("kind", "", "photo, video, audio, document or other (default: the service infers it from each file's bytes)")
	description := fs.String("description", "", "what the items show")
	special := fs.Bool("special", false, "special-category data (biometric): stored encrypted, read-restricted")
	parallel := fs.Int("j", 4, "files hashed and uploaded at once")
	manifestPath := fs.String("manifest", "", "the manifest to add to (default custody-manifest-<case>.json in the current folder): case, sha256, file, evidence id, receipt; a rerun skips content it lists for the case")
	capturedAt := fs.String("captured-at", "", "when the items were captured, RFC 3339 (e.g. 2026-01-31T14:05:00+01:00); stated for every file and signed with the capture statement")
	location := fs.String("location", "", "where the items were captured: a description, or geo:LAT,LON[,ALT] (WGS 84 degrees, altitude in metres) for a point")
	derivedFrom := fs.String("derived-from", "", "the evidence id of the item these were derived from (a redacted or transcoded copy)")
	paths, err := parseInterspersed(g, fs, args)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		return usagef("upload needs a FILE or DIR\nusage: %s", usageLine("upload"))
	}
	if err := required("upload", "case", *caseID); err != nil {
		return err
	}
	var k custodyv1.EvidenceKind
	if *kind != "" {
		if k, err = parseKind(*kind); err != nil {
			return err
		}
	}
	capture, err := parseCapture(*capturedAt, *location)
	if err != nil {
		return err
	}
	if *parallel < 1 {
		return usagef("-j must be at least 1")
	}
	if *manifestPath == "" {
		*manifestPath = client.DefaultManifestName(*caseID)
	}
	files, err := client.ExpandFiles(paths, *manifestPath)
	if err != nil {
		return usageError{err.Error()}
	}
	if len(files) == 0 {
		return usagef("no files to upload in %s", strings.Join(paths, " "))
	}
	man, err := client.LoadManifest(*manifestPath)
	if errors.Is(err, client.ErrNotManifest) {
		return usageError{err.Error() + "; give another file with --manifest, or move it away"}
	}
	if err != nil {
		return usageError{err.Error()}
	}
	c, err := dial(ctx, g)
	if err != nil {
		return err
	}
	defer c.Close()
	results, err := c.UploadBatch(ctx, files, client.Batch{
		Metadata: &custodyv1.UploadMetadata{CaseId: *caseID, Kind: k, Description: *description, SpecialCategory: *special,
			Capture: capture, DerivedFrom: *derivedFrom},
		Manifest: man,
		Parallel: *parallel,
		Progress: func(phase string, files int, bytes int64) (func(int64), func()) {
			b := newBar(bytes, fmt.Sprintf("%s %d file(s)", phase, files))
			return b.add, b.finish
		},
		UploadError: func(file string, err error) string { return rpcError("upload "+file, err).Error() },
	})
	if results == nil {
		return rpcError("listing case "+*caseID, err)
	}
	if err != nil {
		return err
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
			counts[client.StatusUploaded], counts[client.StatusHeld], counts[client.StatusSkipped], counts[client.StatusFailed], *manifestPath)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted; run the same command again to finish (the manifest %s lists what is done)", *manifestPath)
	}
	if n := counts[client.StatusFailed]; n > 0 {
		return fmt.Errorf("%d upload(s) failed; run the same command again to retry them", n)
	}
	return nil
}

// printUploadResults writes one line per file: path, evidence id, status;
// errors go to stderr. A single uploaded file also gets its digest and
// receipt.
func printUploadResults(g globals, results []client.BatchResult) {
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
		if r.Status == client.StatusFailed {
			fmt.Fprintf(g.stderr, "custody: %s\n", r.Error)
		}
	}
	if len(results) == 1 && results[0].Status == client.StatusUploaded {
		r := results[0]
		fmt.Fprintf(g.stdout, "  sha256:  %s\n  receipt: %s\n", r.SHA256, r.Receipt["payload"])
	}
}

// parseCapture is the capture --captured-at and --location state, or nil.
func parseCapture(capturedAt, location string) (*custodyv1.Capture, error) {
	if capturedAt == "" && location == "" {
		return nil, nil
	}
	c := &custodyv1.Capture{}
	if capturedAt != "" {
		t, err := parseTime("--captured-at", capturedAt)
		if err != nil {
			return nil, err
		}
		c.CapturedAt = timestamppb.New(t)
	}
	if location != "" {
		loc, err := parseLocation(location)
		if err != nil {
			return nil, err
		}
		c.Location = loc
	}
	return c, nil
}

// parseLocation reads --location: geo:LAT,LON[,ALT] (RFC 5870's form,
// without parameters) is a point, anything else a description.
func parseLocation(v string) (*custodyv1.Location, error) {
	rest, ok := strings.CutPrefix(v, "geo:")
	if !ok {
		if !utf8.ValidString(v) {
			return nil, usagef("--location is not valid UTF-8")
		}
		return &custodyv1.Location{Description: v}, nil
	}
	bad := func() error {
		return usagef("--location %q: want geo:LAT,LON or geo:LAT,LON,ALT (degrees, -90..90 and -180..180; altitude in metres), or a description", v)
	}
	parts := strings.Split(rest, ",")
	if len(parts) < 2 || len(parts) > 3 {
		return nil, bad()
	}
	var nums []float64
	for _, p := range parts {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, bad()
		}
		nums = append(nums, f)
	}
	if nums[0] < -90 || nums[0] > 90 || nums[1] < -180 || nums[1] > 180 {
		return nil, bad()
	}
	pt := &custodyv1.GeoPoint{Latitude: nums[0], Longitude: nums[1]}
	if len(nums) == 3 {
		pt.AltitudeM = &nums[2]
	}
	return &custodyv1.Location{Point: pt}, nil
}
