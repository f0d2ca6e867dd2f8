package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/custody-dev/custody/internal/atomicfile"
)

// ManifestFormat names the manifest layout: an object whose entries are
// keyed by case and content digest. The first layout, a bare JSON array of
// entries keyed by file path alone, is still read (see manifest.legacy).
const ManifestFormat = "custody-manifest/2"

// ManifestEntry is one item a field team handed over: the content of a file
// (by SHA-256) in a case, and what the service answered. The path, size and
// modification time are of the file it was read from, for people; they are
// never used to decide that a file is done.
type ManifestEntry struct {
	CaseID     string `json:"case_id"`
	SHA256     string `json:"sha256"`
	Size       int64  `json:"size"`
	File       string `json:"file"`
	ModTime    string `json:"mtime,omitempty"`
	EvidenceID string `json:"evidence_id"`
	// Status is uploaded (this content was sent and a receipt signed) or
	// already-held (the service had an item with these bytes in the case).
	Status     string         `json:"status"`
	RecordedAt string         `json:"recorded_at,omitempty"`
	Receipt    map[string]any `json:"receipt,omitempty"`
}

type manifestKey struct{ caseID, sha256 string }

func (e ManifestEntry) key() manifestKey { return manifestKey{e.CaseID, e.SHA256} }

// manifestDoc is the file.
type manifestDoc struct {
	Format  string          `json:"format"`
	Entries []ManifestEntry `json:"entries"`
	// Legacy holds, unchanged, the entries of a first-layout manifest this
	// file was read from. They name no case, so they never skip a file.
	Legacy []json.RawMessage `json:"legacy_entries,omitempty"`
}

// Manifest is a resumable record of a batch upload (UploadBatch): which
// content (case and SHA-256) was handed over from which file, with the
// evidence id and the receipt the service signed. It is read once, added
// to, and saved by merging with what is on disk then, so that it never
// loses an entry, also when two runs share the file. It is safe for
// concurrent use.
type Manifest struct {
	path    string
	mu      sync.Mutex
	entries map[manifestKey]ManifestEntry
	legacy  []json.RawMessage
	// encoded holds each entry as Save writes it, made once per entry.
	encoded map[manifestKey][]byte
	// seen is the file as this Manifest last read or wrote it: while it
	// is unchanged, Save has nothing to merge.
	seen fileStamp
}

// fileStamp tells whether a file changed: its size, modification time and
// inode.
type fileStamp struct {
	ok    bool
	size  int64
	mtime time.Time
	sys   any
}

func stampOf(path string) fileStamp {
	info, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	st := fileStamp{ok: true, size: info.Size(), mtime: info.ModTime()}
	if sys, ok := info.Sys().(*syscall.Stat_t); ok {
		st.sys = [2]uint64{sys.Dev, sys.Ino}
	}
	return st
}

func (a fileStamp) same(b fileStamp) bool {
	return a.ok && b.ok && a.size == b.size && a.mtime.Equal(b.mtime) && a.sys == b.sys
}

// DefaultManifestName is the manifest a case's uploads go to when the
// caller names none (the CLI's --manifest): custody-manifest-<case>.json,
// every character of the case id other than a letter, digit, '-', '_' or
// '.' written as '_'. Cases whose names differ only there share a file; its
// entries still say which case.
func DefaultManifestName(caseID string) string {
	var b strings.Builder
	for _, c := range caseID {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
	}
	return "custody-manifest-" + b.String() + ".json"
}

// IsManifestName says whether a file name is one manifests get by default (the first layout's name included).
func IsManifestName(name string) bool {
	return name == "custody-manifest.json" || strings.HasPrefix(name, "custody-manifest-") && strings.HasSuffix(name, ".json")
}

// ErrNotManifest: the file named as a manifest holds something else, which
// saving would overwrite.
var ErrNotManifest = errors.New("not a custody manifest")

// LoadManifest reads path; a missing or empty file is an empty manifest. A
// file that is not a manifest is an error: it would be overwritten.
func LoadManifest(path string) (*Manifest, error) {
	m := &Manifest{path: path, entries: map[manifestKey]ManifestEntry{}, encoded: map[manifestKey][]byte{}}
	stamp := stampOf(path)
	doc, err := readManifestDoc(path)
	if err != nil {
		return nil, err
	}
	m.merge(doc)
	if stampOf(path).same(stamp) {
		m.seen = stamp
	}
	return m, nil
}

func readManifestDoc(path string) (manifestDoc, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return manifestDoc{}, nil
	}
	if err != nil {
		return manifestDoc{}, err
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return manifestDoc{}, nil
	}
	notManifest := fmt.Errorf("%s is %w", path, ErrNotManifest)
	switch b[0] {
	case '[':
		// The first layout: entries keyed by path, without a case.
		var legacy []json.RawMessage
		if json.Unmarshal(b, &legacy) != nil {
			return manifestDoc{}, notManifest
		}
		return manifestDoc{Legacy: legacy}, nil
	case '{':
		var doc manifestDoc
		if json.Unmarshal(b, &doc) != nil || doc.Format != ManifestFormat {
			return manifestDoc{}, notManifest
		}
		return doc, nil
	}
	return manifestDoc{}, notManifest
}

// merge adds doc's entries to m; an entry m already has for the same case
// and digest is kept.
func (m *Manifest) merge(doc manifestDoc) {
	for _, e := range doc.Entries {
		if e.CaseID == "" || e.SHA256 == "" || e.EvidenceID == "" {
			continue
		}
		if _, ok := m.entries[e.key()]; !ok {
			m.entries[e.key()] = e
		}
	}
	seen := map[string]bool{}
	for _, raw := range m.legacy {
		seen[string(raw)] = true
	}
	for _, raw := range doc.Legacy {
		if !seen[string(raw)] {
			m.legacy = append(m.legacy, raw)
			seen[string(raw)] = true
		}
	}
}

// Lookup returns the entry for content sum (SHA-256, hex) in caseID.
func (m *Manifest) Lookup(caseID, sum string) (ManifestEntry, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[manifestKey{caseID, sum}]
	return e, ok
}

// Put records e, replacing an entry for the same case and digest; Save
// writes it.
func (m *Manifest) Put(e ManifestEntry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries[e.key()] = e
	delete(m.encoded, e.key())
}

// Save writes the manifest atomically, after merging what another run may
// have written to the file since it was read.
func (m *Manifest) Save() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if stamp := stampOf(m.path); !stamp.same(m.seen) {
		if doc, err := readManifestDoc(m.path); err == nil {
			m.merge(doc)
		}
	}
	entries := make([]ManifestEntry, 0, len(m.entries))
	for _, e := range m.entries {
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool {
		a, b := entries[i], entries[j]
		if a.CaseID != b.CaseID {
			return a.CaseID < b.CaseID
		}
		if a.File != b.File {
			return a.File < b.File
		}
		return a.SHA256 < b.SHA256
	})
	b, err := m.encode(entries)
	if err != nil {
		return err
	}
	if dir := filepath.Dir(m.path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	if err := atomicfile.Write(m.path, b, 0o644); err != nil {
		return err
	}
	m.seen = stampOf(m.path)
	return nil
}

// encode is json.MarshalIndent(doc, "", "  ") and a newline, each entry
// encoded once (a batch saves every 50 files).
func (m *Manifest) encode(entries []ManifestEntry) ([]byte, error) {
	if len(m.legacy) > 0 || len(entries) == 0 {
		b, err := json.MarshalIndent(manifestDoc{Format: ManifestFormat, Entries: entries, Legacy: m.legacy}, "", "  ")
		return append(b, '\n'), err
	}
	var buf bytes.Buffer
	buf.WriteString("{\n  \"format\": ")
	f, _ := json.Marshal(ManifestFormat)
	buf.Write(f)
	buf.WriteString(",\n  \"entries\": [")
	for i, e := range entries {
		enc, ok := m.encoded[e.key()]
		if !ok {
			var err error
			if enc, err = json.MarshalIndent(e, "    ", "  "); err != nil {
				return nil, err
			}
			m.encoded[e.key()] = enc
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString("\n    ")
		buf.Write(enc)
	}
	buf.WriteString("\n  ]\n}\n")
	return buf.Bytes(), nil
}

// Path is the manifest's file.
func (m *Manifest) Path() string { return m.path }
