package client

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultManifestName(t *testing.T) {
	for caseID, want := range map[string]string{
		"ICC-01/22":       "custody-manifest-ICC-01_22.json",
		"case-7":          "custody-manifest-case-7.json",
		"urn:x:y/z.1_2":   "custody-manifest-urn_x_y_z.1_2.json",
		"../../etc/passw": "custody-manifest-.._.._etc_passw.json",
	} {
		if got := DefaultManifestName(caseID); got != want || filepath.Base(got) != got {
			t.Errorf("DefaultManifestName(%q) = %q, want %q", caseID, got, want)
		}
	}
}

// TestManifestKeepsEverything: saving keeps old-layout entries, entries of
// other cases, and entries another run wrote since this one read the file.
func TestManifestKeepsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.json")
	os.WriteFile(path, []byte(`[{"file": "a.jpg", "sha256": "aa", "status": "uploaded", "evidence_id": "ev-1"}]`), 0o644)
	m, err := LoadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Lookup("", "aa"); ok {
		t.Fatal("an old-layout entry is used to skip")
	}
	other, err := LoadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	other.Put(ManifestEntry{CaseID: "c2", SHA256: "bb", File: "b.jpg", EvidenceID: "ev-2", Status: StatusUploaded})
	if err := other.Save(); err != nil {
		t.Fatal(err)
	}
	m.Put(ManifestEntry{CaseID: "c1", SHA256: "aa", File: "a.jpg", EvidenceID: "ev-3", Status: StatusUploaded})
	if err := m.Save(); err != nil {
		t.Fatal(err)
	}
	got, err := LoadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.legacy) != 1 || len(got.entries) != 2 {
		t.Fatalf("after two saves: %d legacy entries, %v", len(got.legacy), got.entries)
	}
	if e, ok := got.Lookup("c1", "aa"); !ok || e.EvidenceID != "ev-3" {
		t.Fatalf("c1/aa: %+v %v", e, ok)
	}
	if _, ok := got.Lookup("c1", "bb"); ok {
		t.Fatal("an entry of case c2 answers for case c1")
	}

	os.WriteFile(path, []byte(`{"not": "a manifest"}`), 0o644)
	if _, err := LoadManifest(path); err == nil || !strings.Contains(err.Error(), "is not a custody manifest") {
		t.Fatalf("foreign JSON: %v", err)
	}
}

// TestManifestSaveIsAtomic: Save never writes the manifest in place. A
// reader holding the file sees the old content whole; a save that crashed
// mid-write (its temporary file left half-written beside the manifest)
// changes nothing a later run reads, and the next save succeeds.
func TestManifestSaveIsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, DefaultManifestName("c1"))
	m, _ := LoadManifest(path)
	m.Put(ManifestEntry{CaseID: "c1", SHA256: "aa", File: "a.jpg", EvidenceID: "ev-1", Status: StatusUploaded})
	if err := m.Save(); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)

	held, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	m.Put(ManifestEntry{CaseID: "c1", SHA256: "bb", File: "b.jpg", EvidenceID: "ev-2", Status: StatusUploaded})
	if err := m.Save(); err != nil {
		t.Fatal(err)
	}
	if old, _ := io.ReadAll(held); string(old) != string(before) {
		t.Fatalf("Save wrote the manifest in place: a reader of the old file sees\n%s", old)
	}
	after, _ := os.ReadFile(path)

	// A crash mid-write: the temporary file holds half of the next
	// manifest and is never renamed.
	if err := os.WriteFile(filepath.Join(dir, ".tmp-123456"), after[:len(after)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := LoadManifest(path)
	if err != nil {
		t.Fatalf("after a crashed save: %v", err)
	}
	if len(got.entries) != 2 {
		t.Fatalf("after a crashed save: %v", got.entries)
	}
	got.Put(ManifestEntry{CaseID: "c1", SHA256: "cc", File: "c.jpg", EvidenceID: "ev-3", Status: StatusUploaded})
	if err := got.Save(); err != nil {
		t.Fatal(err)
	}
	if again, err := LoadManifest(path); err != nil || len(again.entries) != 3 {
		t.Fatalf("the save after a crashed one: %v, %v", err, again)
	}
	if files, _ := ExpandFiles([]string{dir}, path); len(files) != 0 {
		t.Fatalf("a manifest folder's stray files are taken for evidence: %v", files)
	}
}

// TestManifestEncoding: Save writes what json.MarshalIndent writes, though
// it encodes each entry once; after a Put the entry is written anew, and
// what another writer added meanwhile is merged.
func TestManifestEncoding(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.json")
	m, err := LoadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	check := func() {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := readManifestDoc(path)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.MarshalIndent(doc, "", "  ")
		if string(b) != string(want)+"\n" {
			t.Fatalf("saved:\n%s\nwant:\n%s", b, want)
		}
	}
	for i := range 3 {
		m.Put(ManifestEntry{CaseID: "c", SHA256: fmt.Sprintf("%064d", i), File: fmt.Sprintf("f<%d>&.jpg", i), EvidenceID: "ev", Status: StatusUploaded,
			Receipt: map[string]any{"payload": "{\"a\":1}"}})
	}
	if err := m.Save(); err != nil {
		t.Fatal(err)
	}
	check()
	m.Put(ManifestEntry{CaseID: "c", SHA256: fmt.Sprintf("%064d", 1), File: "renamed.jpg", EvidenceID: "ev2", Status: StatusHeld})
	other, _ := LoadManifest(path)
	other.Put(ManifestEntry{CaseID: "d", SHA256: fmt.Sprintf("%064d", 9), File: "x", EvidenceID: "ev9", Status: StatusUploaded})
	if err := other.Save(); err != nil {
		t.Fatal(err)
	}
	if err := m.Save(); err != nil {
		t.Fatal(err)
	}
	check()
	again, _ := LoadManifest(path)
	if e, ok := again.Lookup("c", fmt.Sprintf("%064d", 1)); !ok || e.File != "renamed.jpg" {
		t.Fatalf("the changed entry: %+v", e)
	}
	if _, ok := again.Lookup("d", fmt.Sprintf("%064d", 9)); !ok || len(again.entries) != 4 {
		t.Fatalf("the other writer's entry was lost: %v", again.entries)
	}
}
