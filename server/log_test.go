package server_test

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/custody-dev/custody/client"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/servertest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
	"github.com/custody-dev/custody/verify"
)

// waitCheckpoint polls the public checkpoint until it covers size entries
// and returns it verified.
func waitCheckpoint(t *testing.T, env *servertest.Env, v note.Verifier, origin string, size uint64) *log.Checkpoint {
	t.Helper()
	hc := env.HTTPClient(t)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		code, body := get(t, hc, env.URL("/log/checkpoint"))
		if code == 200 {
			cp, _, _, err := log.ParseCheckpoint(body, origin, v)
			if err != nil {
				t.Fatalf("published checkpoint does not verify: %v\n%s", err, body)
			}
			if cp.Size >= size {
				return cp
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no checkpoint of size %d within 20s", size)
	return nil
}

// coveringSize is the smallest tree size that includes every event of
// the items (the log's own commitments may lie between them).
func coveringSize(t *testing.T, c *client.Client, ids []string) uint64 {
	t.Helper()
	size := uint64(0)
	for _, id := range ids {
		for _, e := range checkChain(t, c, id, nil) {
			size = max(size, e.GetLogIndex()+1)
		}
	}
	return size
}

func logVerifier(t *testing.T, c *client.Client) (note.Verifier, string) {
	t.Helper()
	keys, err := c.PublicKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(keys.GetLogVerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	return v, keys.GetLogOrigin()
}

// TestLogProofsVerifyIndependently checks the log with code that trusts
// nothing of ours: the checkpoint with signed notes, inclusion and
// consistency with transparency-dev/merkle, the tiles with Go's
// sumdb/tlog, the entries against the leaf hashes events name.
func TestLogProofsVerifyIndependently(t *testing.T) {
	env := servertest.StartT(t)
	collector := env.Client(t, identity.RoleCollector)
	auditor := env.Client(t, identity.RoleAuditor)
	v, origin := logVerifier(t, auditor)
	ctx := t.Context()

	var ids []string
	for range 5 {
		ids = append(ids, uploadOne(t, collector).GetEvidenceId())
	}
	for _, id := range ids[:3] {
		if _, err := collector.Release(ctx, id, custodianID, "to the lab"); err != nil {
			t.Fatal(err)
		}
	}
	first := waitCheckpoint(t, env, v, origin, coveringSize(t, auditor, ids))

	court := env.Client(t, identity.RoleCourt) // the court may annotate any item
	for range 300 {                            // past one full tile of 256 entries
		if _, err := court.RecordEvent(ctx, &custodyv1.RecordEventRequest{EvidenceId: ids[4], Type: custodyv1.EventType_EVENT_TYPE_ANNOTATION, Note: "seen"}); err != nil {
			t.Fatal(err)
		}
	}
	second := waitCheckpoint(t, env, v, origin, coveringSize(t, auditor, ids))
	logClient := custodyv1.NewLogServiceClient(auditor.Conn())

	// Every event's entry is included, and its bytes hash to the leaf.
	for _, id := range ids {
		for _, e := range checkChain(t, auditor, id, nil) {
			leaf, _ := hex.DecodeString(e.GetLeafHash())
			p, err := logClient.GetInclusionProof(ctx, &custodyv1.GetInclusionProofRequest{Index: e.GetLogIndex(), TreeSize: second.Size})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(p.GetLeafHash(), leaf) {
				t.Fatalf("event %s/%d: proof leaf %x, event leaf %x", id, e.GetSequence(), p.GetLeafHash(), leaf)
			}
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, e.GetLogIndex(), second.Size, leaf, p.GetHashes(), second.Hash); err != nil {
				t.Fatalf("event %s/%d: inclusion: %v", id, e.GetSequence(), err)
			}
			entry, err := logClient.GetEntry(ctx, &custodyv1.GetEntryRequest{Index: e.GetLogIndex()})
			if err != nil {
				t.Fatal(err)
			}
			if got := rfc6962.DefaultHasher.HashLeaf(entry.GetEntry()); !bytes.Equal(got, leaf) {
				t.Fatalf("entry %d hashes to %x, event says %x", e.GetLogIndex(), got, leaf)
			}
			// The public entry carries no personal data.
			for _, personal := range []string{"dev-collector", "case-handoff", "statement.bin", "to the lab"} {
				if bytes.Contains(entry.GetEntry(), []byte(personal)) {
					t.Fatalf("entry %d contains %q: %s", e.GetLogIndex(), personal, entry.GetEntry())
				}
			}
		}
	}

	// The log only grew.
	cons, err := logClient.GetConsistencyProof(ctx, &custodyv1.GetConsistencyProofRequest{FirstSize: first.Size, SecondSize: second.Size})
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, first.Size, second.Size, cons.GetHashes(), first.Hash, second.Hash); err != nil {
		t.Fatalf("consistency %d→%d: %v", first.Size, second.Size, err)
	}

	// Go's sumdb/tlog reads the same tiles over HTTPS, without a client
	// certificate, and proves the same records.
	tr := &httpTileReader{t: t, hc: env.HTTPClient(t), base: env.URL("/log/")}
	var th tlog.Hash
	copy(th[:], second.Hash)
	hr := tlog.TileHashReader(tlog.Tree{N: int64(second.Size), Hash: th}, tr)
	for _, n := range []int64{0, 7, 255, 256, int64(second.Size) - 1} {
		rp, err := tlog.ProveRecord(int64(second.Size), n, hr)
		if err != nil {
			t.Fatalf("sumdb/tlog proving record %d: %v", n, err)
		}
		bundle := tr.entries(n/256, second.Size)
		var leaf tlog.Hash
		copy(leaf[:], rfc6962.DefaultHasher.HashLeaf(bundle.Entries[n%256]))
		if err := tlog.CheckRecord(rp, int64(second.Size), th, n, leaf); err != nil {
			t.Fatalf("sumdb/tlog record %d: %v", n, err)
		}
	}

	// Only the public resources are served.
	anon := env.HTTPClient(t)
	for _, path := range []string{"/log/.state/treeState", "/log/../catalog.db", "/log/tile/0/abc", "/log/keys"} {
		if code, _ := get(t, anon, env.URL(path)); code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, code)
		}
	}
	resp, err := anon.Get(env.URL("/log/tile/0/000"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
		t.Errorf("full tile Cache-Control %q", cc)
	}
	resp, err = anon.Get(env.URL("/log/checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("checkpoint Cache-Control %q", cc)
	}
}

// httpTileReader is a sumdb/tlog TileReader over the C2SP tile paths,
// which differ from sumdb's only in leaving out the height.
type httpTileReader struct {
	t    *testing.T
	hc   *http.Client
	base string
}

func (r *httpTileReader) Height() int { return 8 }

func (r *httpTileReader) fetch(path string) []byte {
	resp, err := r.hc.Get(r.base + path)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		r.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return b
}

// tilePath renders N as C2SP does: groups of three digits, x-prefixed but
// the last.
func tilePath(n int64) string {
	s := fmt.Sprintf("%03d", n%1000)
	for n >= 1000 {
		n /= 1000
		s = fmt.Sprintf("x%03d/", n%1000) + s
	}
	return s
}

func (r *httpTileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		path := fmt.Sprintf("tile/%d/%s", t.L, tilePath(t.N))
		if t.W < 256 {
			path += fmt.Sprintf(".p/%d", t.W)
		}
		out[i] = r.fetch(path)
	}
	return out, nil
}

func (r *httpTileReader) SaveTiles([]tlog.Tile, [][]byte) {}

func (r *httpTileReader) entries(n int64, size uint64) api.EntryBundle {
	path := "tile/entries/" + tilePath(n)
	if w := size - uint64(n)*256; w < 256 {
		path += fmt.Sprintf(".p/%d", w)
	}
	var b api.EntryBundle
	if err := b.UnmarshalText(r.fetch(path)); err != nil {
		r.t.Fatal(err)
	}
	return b
}

// TestBundleOverRESTAndWithheld: the gateway serves the bundle as JSON; a
// caller who may not read a special-category item gets its commitments,
// proofs and receipts but no records or metadata, and it still verifies.
func TestBundleOverRESTAndWithheld(t *testing.T) {
	env := servertest.StartT(t)
	collector := env.Client(t, identity.RoleCollector)
	data := randomBytes(2048)
	md := meta("case-bio", data)
	md.SpecialCategory = true
	md.Filename = "subject-7f3a9c-fingerprints.eft"
	up, err := collector.Upload(t.Context(), md, bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	id := up.GetEvidence().GetEvidenceId()
	for _, tc := range []struct {
		role     identity.Role
		withheld bool
	}{{identity.RoleCourt, false}, {identity.RoleAuditor, true}} {
		t.Run(string(tc.role), func(t *testing.T) {
			hc := env.HTTPClient(t, env.Creds(t, tc.role).Certificate)
			resp, err := hc.Get(env.URL("/v1/evidence/" + id + "/bundle"))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("GET bundle: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			b, err := verify.Parse(body)
			if err != nil {
				t.Fatal(err)
			}
			if b.Evidence.Withheld != tc.withheld || (b.Events[0].Record == "") != tc.withheld || bytes.Contains(body, []byte("subject-7f3a9c")) == tc.withheld {
				t.Fatalf("withheld=%v, record present=%v, filename present=%v", b.Evidence.Withheld, b.Events[0].Record != "", bytes.Contains(body, []byte("subject-7f3a9c")))
			}
			if r := verify.Verify(b, verify.Options{File: bytes.NewReader(data)}); !r.OK {
				t.Fatalf("bundle does not verify: %v", r.Failures())
			}
		})
	}
}
