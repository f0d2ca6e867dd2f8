package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/servertest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// TestListPages: custody list reads every page of a case (here pages of
// two), in order, and only that case; --limit stops early and prints the
// token that --page-token continues from; -o json is one document. The
// server is real (in-process, TLS); the CLI runs in-process so the page
// size can be small.
func TestListPages(t *testing.T) {
	env := servertest.StartT(t)
	collector := env.Client(t, identity.RoleCollector)
	upload := func(caseID, name string) string {
		data := []byte("content of " + caseID + "/" + name)
		sum := sha256.Sum256(data)
		resp, err := collector.Upload(t.Context(), &custodyv1.UploadMetadata{CaseId: caseID, Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_PHOTO,
			Sha256: hex.EncodeToString(sum[:]), SizeBytes: int64(len(data)), Filename: name}, bytes.NewReader(data), nil)
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetEvidence().GetEvidenceId()
	}
	var ids []string
	for i := range 5 {
		ids = append(ids, upload("case-pages", fmt.Sprintf("IMG_%04d.JPG", i)))
	}
	other := upload("case-other", "IMG_0000.JPG")
	old := listPageSize
	listPageSize = 2
	t.Cleanup(func() { listPageSize = old })

	run := func(args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		args = append([]string{"--server", env.GRPCAddr, "--creds", env.PKI.RoleDir(identity.RoleAuditor)}, args...)
		if code := realMain(t.Context(), args, &stdout, &stderr); code != 0 {
			t.Fatalf("custody %v: exit %d\n%s%s", args, code, stdout.String(), stderr.String())
		}
		return stdout.String()
	}
	type listing struct {
		CaseID   string `json:"case_id"`
		Evidence []struct {
			EvidenceID string `json:"evidence_id"`
			Kind       string `json:"kind"`
			Filename   string `json:"filename"`
			Custodian  string `json:"custodian"`
			LastEvent  struct {
				Type      string `json:"type"`
				Performer string `json:"performer"`
			} `json:"last_event"`
		} `json:"evidence"`
		NextPageToken *string `json:"next_page_token"`
	}
	listJSON := func(args ...string) (l listing, got []string) {
		t.Helper()
		out := run(append([]string{"-o", "json", "list", "--case", "case-pages"}, args...)...)
		dec := json.NewDecoder(strings.NewReader(out))
		if err := dec.Decode(&l); err != nil || dec.More() {
			t.Fatalf("not one JSON document (%v):\n%s", err, out)
		}
		for _, e := range l.Evidence {
			got = append(got, e.EvidenceID)
		}
		return l, got
	}

	t.Run("every page", func(t *testing.T) {
		l, got := listJSON()
		if !slices.Equal(got, ids) || l.CaseID != "case-pages" || l.NextPageToken != nil || slices.Contains(got, other) {
			t.Fatalf("listed %v (next %v), want %v", got, l.NextPageToken, ids)
		}
		for i, e := range l.Evidence {
			if e.Kind != "photo" || e.Filename != fmt.Sprintf("IMG_%04d.JPG", i) || e.Custodian != "urn:custody:collector:dev-collector" ||
				e.LastEvent.Type != "ingest" || e.LastEvent.Performer != e.Custodian {
				t.Fatalf("item %d: %+v", i, e)
			}
		}
		text := run("list", "--case", "case-pages")
		lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
		if len(lines) != 6 || !regexp.MustCompile(`^ID +KIND +FILE +SIZE +CUSTODIAN +LAST EVENT$`).MatchString(lines[0]) {
			t.Fatalf("text listing:\n%s", text)
		}
		row := regexp.MustCompile(`^(ev-\S+) +photo +IMG_\d{4}\.JPG +\d+ B +urn:custody:collector:dev-collector +ingest \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$`)
		for i, l := range lines[1:] {
			m := row.FindStringSubmatch(l)
			if m == nil || m[1] != ids[i] {
				t.Fatalf("row %d %q, want item %s:\n%s", i, l, ids[i], text)
			}
		}
	})
	t.Run("--limit and --page-token", func(t *testing.T) {
		l, first := listJSON("--limit", "3")
		if !slices.Equal(first, ids[:3]) || l.NextPageToken == nil || *l.NextPageToken == "" {
			t.Fatalf("--limit 3: %v, next %v", first, l.NextPageToken)
		}
		l, rest := listJSON("--page-token", *l.NextPageToken)
		if !slices.Equal(rest, ids[3:]) || l.NextPageToken != nil {
			t.Fatalf("the rest: %v, next %v", rest, l.NextPageToken)
		}
		text := run("list", "--case", "case-pages", "--limit", "4")
		m := regexp.MustCompile(`(?m)^more: custody list --case case-pages --limit 4 --page-token (\S+)$`).FindStringSubmatch(text)
		if strings.Count(text, "\nev-") != 4 || m == nil {
			t.Fatalf("text with --limit 4:\n%s", text)
		}
		if text := run("list", "--case", "case-pages", "--page-token", m[1]); strings.Count(text, "\nev-") != 1 || !strings.Contains(text, ids[4]) || strings.Contains(text, "more:") {
			t.Fatalf("text from the token:\n%s", text)
		}
	})
	t.Run("an empty case", func(t *testing.T) {
		if text := run("list", "--case", "case-none"); text != "no items in case case-none\n" {
			t.Fatalf("%q", text)
		}
		if l, got := listJSON("--case", "case-none"); len(got) != 0 || l.Evidence == nil {
			t.Fatalf("JSON of an empty case: %+v", l)
		}
	})
}
