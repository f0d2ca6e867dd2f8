package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	// Parallel is how many files are read and uploaded at once
	// (default 4).
	Parallel int
	// Progress, if set, is called as each phase starts, with how many
	// files and bytes it goes through; it returns a function told of each
	// run of bytes done, and one called when the phase ends. The phases
	// are "hashing" (only for the files whose digest must be known before
	// anything is sent, below; often none) and "uploading" (every other
	// file: bytes sent, and the whole size of a file not sent).
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
// Each file is read once where that can decide the same:
//
//   - a file of up to InMemoryLimit bytes is read into memory, hashed,
//     checked against the manifest and the case, then signed and sent
//     from memory;
//   - a file uploaded as a resumable session (UploadFile) whose size no
//     item of the case and no other such file of the batch has cannot be
//     held, skipped or a duplicate: it is hashed while it is sent;
//   - any other file is hashed first ("hashing" phase), then sent.
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
	bt := &batchRun{c: c, b: b, caseID: caseID, uploadError: uploadError, first: map[string]int{}}
	var err error
	if bt.held, bt.heldSizes, err = c.heldDigests(ctx, caseID); err != nil {
		return nil, err
	}
	bt.results = make([]BatchResult, len(files))
	plans := bt.plan(files)

	// Files whose digest decides whether they are sent, and that are not
	// read into memory: hash them first.
	var hashFirst []int
	var hashBytes, total int64
	for i, p := range plans {
		if p == planHashFirst {
			hashFirst = append(hashFirst, i)
			hashBytes += bt.results[i].Size
		}
		if p != planFailed {
			total += bt.results[i].Size
		}
	}
	if len(hashFirst) > 0 {
		add, done := progress("hashing", len(hashFirst), hashBytes)
		var grp errgroup.Group
		grp.SetLimit(parallel)
		for _, i := range hashFirst {
			grp.Go(func() error {
				r := &bt.results[i]
				if ctx.Err() != nil {
					r.Status, r.Error = StatusFailed, r.File+": interrupted"
					plans[i] = planFailed
					return nil
				}
				sum, size, err := HashFile(r.File)
				if err == nil && size != r.Size {
					err = fmt.Errorf("%s: %w", r.File, ErrFileChanged)
				}
				if err != nil {
					r.Status, r.Error = StatusFailed, err.Error()
					plans[i] = planFailed
					return nil
				}
				add(size)
				r.SHA256 = sum
				return nil
			})
		}
		grp.Wait()
		done()
	}

	// Files decide in order whether they are sent, so that of files with
	// the same bytes the first uploads them: each waits for the previous
	// file that decides.
	bt.ready, bt.prev = make([]chan struct{}, len(files)), make([]int, len(files))
	prev := -1
	for i, p := range plans {
		bt.prev[i] = prev
		if p == planMemory || p == planHashFirst {
			bt.ready[i] = make(chan struct{})
			prev = i
		}
	}

	add, done := progress("uploading", len(files), total)
	var finished atomic.Int64
	grp, gctx := errgroup.WithContext(ctx)
	grp.SetLimit(parallel)
	for i, p := range plans {
		if p == planFailed {
			continue
		}
		grp.Go(func() error {
			r := &bt.results[i]
			md := cloneMetadata(b.Metadata)
			defer bt.decided(i)
			if gctx.Err() != nil {
				r.Status, r.Error = StatusFailed, r.File+": interrupted"
				return nil
			}
			bt.one(gctx, r, i, p, md, add)
			if r.Status == StatusUploaded {
				b.Manifest.Put(entryOf(*r))
			}
			if finished.Add(1)%50 == 0 {
				b.Manifest.Save()
			}
			return nil
		})
	}
	grp.Wait()
	done()
	for _, i := range bt.later {
		r, f := &bt.results[i], bt.results[bt.first[bt.results[i].SHA256]]
		if f.Status == StatusUploaded {
			// The manifest has the content already, under the first path.
			r.Status, r.EvidenceID = StatusHeld, f.EvidenceID
		} else {
			r.Status, r.Error = StatusFailed, fmt.Sprintf("%s: not sent, as it has the same bytes as %s, whose upload failed", r.File, f.File)
		}
	}
	if err := b.Manifest.Save(); err != nil {
		return bt.results, fmt.Errorf("writing the manifest %s: %w", b.Manifest.Path(), err)
	}
	return bt.results, nil
}

// How UploadBatch reads a file.
type filePlan int

const (
	planFailed    filePlan = iota // not readable: failed already
	planMemory                    // read into memory, hashed, decided, sent from there
	planStream                    // cannot be held or a duplicate: hashed while sent
	planHashFirst                 // hashed first, decided, then sent
)

// batchRun is one UploadBatch's shared state.
type batchRun struct {
	c           *Client
	b           Batch
	caseID      string
	uploadError func(string, error) string
	held        map[string]string // digest → evidence id, in the case
	heldSizes   map[int64]bool    // sizes of the case's items
	results     []BatchResult

	mu    sync.Mutex
	first map[string]int // digest → the file of this run that uploads it
	later []int          // files with the same bytes as another
	// ready[i] is closed once file i and every file before it that
	// decides has decided (nil for a file that does not decide); prev[i]
	// is the file before i that decides, or -1.
	ready []chan struct{}
	prev  []int
	once  sync.Map // i → closed ready[i]
}

// waitTurn waits until the files before i have decided.
func (bt *batchRun) waitTurn(i int) {
	if p := bt.prev[i]; p >= 0 {
		<-bt.ready[p]
	}
}

// decided lets the next file decide, once the files before i have.
func (bt *batchRun) decided(i int) {
	if bt.ready[i] == nil {
		return
	}
	if _, done := bt.once.LoadOrStore(i, true); done {
		return
	}
	bt.waitTurn(i)
	close(bt.ready[i])
}

// plan states every file and says how each is read.
func (bt *batchRun) plan(files []string) []filePlan {
	plans := make([]filePlan, len(files))
	streamed := map[int64]int{} // size → resumable files of the batch with it
	resumable := func(size int64) bool {
		return size >= ResumableThreshold && !special(bt.b.Metadata)
	}
	for i, path := range files {
		r := BatchResult{File: path, CaseID: bt.caseID, Status: StatusFailed}
		info, err := os.Stat(path)
		if err != nil {
			r.Error = err.Error()
		} else {
			r.Size, r.ModTime, r.Status = info.Size(), info.ModTime().UTC().Format(time.RFC3339Nano), ""
			switch {
			case info.Size() <= InMemoryLimit:
				plans[i] = planMemory
			case resumable(info.Size()):
				plans[i] = planStream
				streamed[info.Size()]++
			default:
				plans[i] = planHashFirst
			}
		}
		bt.results[i] = r
	}
	for i, p := range plans {
		if size := bt.results[i].Size; p == planStream && (bt.heldSizes[size] || streamed[size] > 1) {
			plans[i] = planHashFirst
		}
	}
	return plans
}

// decide says, once r's digest is known, whether this run sends it; if
// not, r says why (skipped, already-held, or a duplicate resolved at the
// end).
func (bt *batchRun) decide(r *BatchResult, i int) bool {
	bt.waitTurn(i)
	defer bt.decided(i)
	man := bt.b.Manifest
	id, isHeld := bt.held[r.SHA256]
	// Decide from content and case alone: the manifest must record this
	// digest for this case, and the service must still hold it.
	if e, ok := man.Lookup(bt.caseID, r.SHA256); ok && isHeld {
		r.Status, r.EvidenceID = StatusSkipped, e.EvidenceID
		if e.File != r.File {
			r.ManifestFile = e.File
		}
		return false
	}
	if isHeld {
		r.Status, r.EvidenceID = StatusHeld, id
		man.Put(entryOf(*r))
		return false
	}
	bt.mu.Lock()
	defer bt.mu.Unlock()
	if _, dup := bt.first[r.SHA256]; dup {
		bt.later = append(bt.later, i)
		return false
	}
	bt.first[r.SHA256] = i
	return true
}

// one hands over file i as planned, filling in r.
func (bt *batchRun) one(ctx context.Context, r *BatchResult, i int, p filePlan, md *custodyv1.UploadMetadata, add func(int64)) {
	var last int64
	sent := func(n int64) {
		add(n - last)
		last = n
	}
	var resp *custodyv1.UploadResponse
	var err error
	switch p {
	case planMemory:
		resp, err = bt.memory(ctx, r, i, md, sent)
		if resp == nil && err == nil {
			add(r.Size)
			return
		}
	case planHashFirst:
		if !bt.decide(r, i) {
			add(r.Size)
			return
		}
		md.Sha256, md.SizeBytes = r.SHA256, r.Size
		resp, err = bt.c.UploadFile(ctx, r.File, md, sent)
	case planStream:
		md.SizeBytes = r.Size
		var sum string
		resp, sum, err = bt.c.uploadFile(ctx, r.File, md, sent)
		r.SHA256 = sum
	}
	bt.answer(ctx, r, resp, err)
}

// memory reads a small file into memory, hashes it, and sends it if the
// batch is to: nil response and error when it is not sent.
func (bt *batchRun) memory(ctx context.Context, r *BatchResult, i int, md *custodyv1.UploadMetadata, sent func(int64)) (*custodyv1.UploadResponse, error) {
	f, err := openFile(r.File)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if info.Size() != r.Size {
		return nil, fmt.Errorf("%s: %w", r.File, ErrFileChanged)
	}
	data, release, err := readWhole(f, info)
	if err != nil {
		return nil, err
	}
	defer release()
	sum := sha256.Sum256(data)
	r.SHA256 = hex.EncodeToString(sum[:])
	if !bt.decide(r, i) {
		return nil, nil
	}
	md.Sha256, md.SizeBytes = r.SHA256, r.Size
	if md.Filename == "" {
		md.Filename = filepath.Base(r.File)
	}
	return bt.c.uploadMemory(ctx, data, md, sent)
}

// answer fills in r from the upload's outcome.
func (bt *batchRun) answer(ctx context.Context, r *BatchResult, resp *custodyv1.UploadResponse, err error) {
	r.Status = StatusFailed
	if err != nil {
		if errors.Is(err, context.Canceled) || ctx.Err() != nil {
			r.Error = r.File + ": interrupted"
		} else {
			r.Error = bt.uploadError(r.File, err)
		}
		return
	}
	if err := answersFor(resp, r.SHA256); err != nil {
		r.Error = bt.uploadError(r.File, err)
		return
	}
	r.Status, r.EvidenceID = StatusUploaded, resp.GetEvidence().GetEvidenceId()
	r.Receipt = ReceiptJSON(resp.GetReceipt())
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

// entryOf is the manifest entry of a file handed over.
func entryOf(r BatchResult) ManifestEntry {
	return ManifestEntry{
		CaseID: r.CaseID, SHA256: r.SHA256, Size: r.Size, File: r.File, ModTime: r.ModTime,
		EvidenceID: r.EvidenceID, Status: r.Status, RecordedAt: time.Now().UTC().Format(time.RFC3339), Receipt: r.Receipt,
	}
}

// heldDigests lists the digests the service already holds for a case,
// and the sizes of its items.
func (c *Client) heldDigests(ctx context.Context, caseID string) (map[string]string, map[int64]bool, error) {
	held, sizes := map[string]string{}, map[int64]bool{}
	token := ""
	for {
		resp, err := c.ListEvidence(ctx, &custodyv1.ListEvidenceRequest{CaseId: caseID, PageSize: 1000, PageToken: token})
		if err != nil {
			return nil, nil, err
		}
		for _, ev := range resp.GetEvidence() {
			sizes[ev.GetSizeBytes()] = true
			if _, ok := held[ev.GetSha256()]; !ok {
				held[ev.GetSha256()] = ev.GetEvidenceId()
			}
		}
		if token = resp.GetNextPageToken(); token == "" {
			return held, sizes, nil
		}
	}
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
