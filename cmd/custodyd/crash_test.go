package main_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody-dev/custody/client"
	"github.com/custody-dev/custody/internal/testenv/binaries"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

const custodianID = "urn:custody:custodian:dev-custodian"

func dialRole(t *testing.T, d *binaries.Daemon, role string) *client.Client {
	t.Helper()
	creds, err := client.LoadCredentials(d.CredsDir(role))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(context.Background(), d.GRPCAddr, creds)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func upload(ctx context.Context, c *client.Client, caseID string, data []byte) (*custodyv1.UploadResponse, error) {
	sum := sha256.Sum256(data)
	return c.Upload(ctx, &custodyv1.UploadMetadata{CaseId: caseID, Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_DOCUMENT, Sha256: hex.EncodeToString(sum[:]), SizeBytes: int64(len(data))}, bytes.NewReader(data), nil)
}

// ack is an event the service acknowledged with a receipt.
type ack struct {
	id       string
	seq      uint64
	logIndex uint64
	leaf     string
}

// ingestAck is what an upload's receipt acknowledges: the ingest event's
// log index and leaf hash, which must survive anything.
func ingestAck(resp *custodyv1.UploadResponse) (ack, error) {
	var r struct {
		LogIndex uint64 `json:"log_index"`
		LeafHash string `json:"leaf_hash"`
	}
	err := json.Unmarshal(resp.GetReceipt().GetPayload(), &r)
	return ack{resp.GetEvidence().GetEvidenceId(), 0, r.LogIndex, r.LeafHash}, err
}

// verifyChains checks every item's history: sequence 0..n with no gap or
// duplicate, each event linked to its predecessor's log entry, no log index
// used twice, and every acknowledged event present as acknowledged.
func verifyChains(t *testing.T, c *client.Client, ids []string, acks []ack) map[string][]*custodyv1.CustodyEvent {
	t.Helper()
	hist := map[string][]*custodyv1.CustodyEvent{}
	usedIndex := map[uint64]string{}
	for _, id := range ids {
		h, err := c.History(context.Background(), id)
		if err != nil {
			t.Fatalf("history %s: %v", id, err)
		}
		for i, e := range h {
			if e.GetSequence() != uint64(i) {
				t.Fatalf("%s: event %d has sequence %d", id, i, e.GetSequence())
			}
			if i > 0 && (e.GetPreviousLogIndex() != h[i-1].GetLogIndex() || e.GetPreviousLeafHash() != h[i-1].GetLeafHash()) {
				t.Fatalf("%s: event %d does not link to event %d", id, i, i-1)
			}
			if other, dup := usedIndex[e.GetLogIndex()]; dup {
				t.Fatalf("log index %d used by %s and %s", e.GetLogIndex(), other, id)
			}
			usedIndex[e.GetLogIndex()] = id
		}
		hist[id] = h
	}
	for _, a := range acks {
		h := hist[a.id]
		if a.seq >= uint64(len(h)) {
			t.Fatalf("acknowledged event %s/%d (log %d) is missing; history has %d events", a.id, a.seq, a.logIndex, len(h))
		}
		if e := h[a.seq]; e.GetLogIndex() != a.logIndex || e.GetLeafHash() != a.leaf {
			t.Fatalf("acknowledged event %s/%d was log %d/%s, history says %d/%s", a.id, a.seq, a.logIndex, a.leaf, e.GetLogIndex(), e.GetLeafHash())
		}
	}
	return hist
}

// TestConcurrentAppends: 64 goroutines append to one item and to many,
// through the real binary; no event is lost or duplicated and every chain
// stays intact.
func TestConcurrentAppends(t *testing.T) {
	d := binaries.StartCustodyd(t, t.TempDir(), "--checkpoint-interval", "200ms")
	collector := dialRole(t, d, "collector")
	c := dialRole(t, d, "court") // annotates (the court may annotate any item)
	ctx := t.Context()
	var ids []string
	for i := range 8 {
		resp, err := upload(ctx, collector, "case-conc", []byte(fmt.Sprintf("item %d", i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, resp.GetEvidence().GetEvidenceId())
	}
	var mu sync.Mutex
	var acks []ack
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range 10 {
				id := ids[0] // half the writers contend on one item
				if g%2 == 1 {
					id = ids[(g+n)%len(ids)]
				}
				req := &custodyv1.RecordEventRequest{EvidenceId: id, Type: custodyv1.EventType_EVENT_TYPE_ANNOTATION, Note: fmt.Sprintf("writer %d note %d", g, n)}
				resp, err := c.RecordEvent(ctx, req)
				// An item busy beyond the service's lock wait answers
				// UNAVAILABLE "busy" with nothing done, and a client
				// retries, as the message says (on a loaded machine 32
				// writers on one item can queue past the wait).
				for try := 0; status.Code(err) == codes.Unavailable && strings.Contains(err.Error(), "busy") && try < 20; try++ {
					time.Sleep(100 * time.Millisecond)
					resp, err = c.RecordEvent(ctx, req)
				}
				if err != nil {
					t.Errorf("writer %d: %v", g, err)
					return
				}
				e := resp.GetEvent()
				mu.Lock()
				acks = append(acks, ack{id, e.GetSequence(), e.GetLogIndex(), e.GetLeafHash()})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	hist := verifyChains(t, c, ids, acks)
	total := 0
	for _, h := range hist {
		total += len(h) - 1
	}
	if total != 640 || len(acks) != 640 {
		t.Fatalf("%d annotations in the histories and %d acknowledged, want 640 each", total, len(acks))
	}
	if got := len(hist[ids[0]]) - 1; got != 320+40 {
		t.Fatalf("the contended item has %d annotations, want 360", got)
	}
}

// TestKilledMidLoad kills custodyd with SIGKILL during concurrent uploads
// and hand-offs; after a restart every acknowledged event is there, chains
// are intact, and the new checkpoint is consistent with the last one seen.
func TestKilledMidLoad(t *testing.T) {
	dir := t.TempDir()
	d := binaries.StartCustodyd(t, dir, "--checkpoint-interval", "200ms")
	collector := dialRole(t, d, "collector")
	custodian := dialRole(t, d, "custodian")
	keys, err := collector.PublicKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := note.NewVerifier(keys.GetLogVerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	readCheckpoint := func(addr string) *log.Checkpoint {
		resp, err := hc.Get("https://" + addr + "/log/checkpoint")
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		cp, _, _, err := log.ParseCheckpoint(b, keys.GetLogOrigin(), verifier)
		if err != nil {
			return nil
		}
		return cp
	}

	var mu sync.Mutex
	var acks []ack
	var ids []string
	var lastSeen atomic.Pointer[log.Checkpoint]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				resp, err := upload(ctx, collector, "case-crash", []byte(fmt.Sprintf("writer %d item %d %d", w, n, time.Now().UnixNano())))
				if err != nil {
					return // the server died
				}
				ev := resp.GetEvidence()
				a, err := ingestAck(resp)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				ids = append(ids, ev.GetEvidenceId())
				acks = append(acks, a)
				mu.Unlock()
				if w%2 == 0 {
					rel, err := collector.Release(ctx, ev.GetEvidenceId(), custodianID, "to the lab")
					if err != nil {
						return
					}
					mu.Lock()
					acks = append(acks, ack{ev.GetEvidenceId(), 1, rel.GetEvent().GetLogIndex(), rel.GetEvent().GetLeafHash()})
					mu.Unlock()
					acc, err := custodian.Accept(ctx, ev.GetEvidenceId())
					if err != nil {
						return
					}
					mu.Lock()
					acks = append(acks, ack{ev.GetEvidenceId(), 2, acc.GetEvent().GetLogIndex(), acc.GetEvent().GetLeafHash()})
					mu.Unlock()
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if cp := readCheckpoint(d.HTTPAddr); cp != nil {
				lastSeen.Store(cp)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	time.Sleep(3 * time.Second)
	d.Kill(t)
	cancel()
	wg.Wait()
	before := lastSeen.Load()
	if before == nil || len(acks) < 20 {
		t.Fatalf("too little happened before the kill: %d acknowledged events, checkpoint %v", len(acks), before)
	}

	d2 := binaries.StartCustodyd(t, dir, "--checkpoint-interval", "200ms")
	auditor := dialRole(t, d2, "auditor")
	verifyChains(t, auditor, ids, acks)

	var after *log.Checkpoint
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if after = readCheckpoint(d2.HTTPAddr); after != nil && after.Size >= before.Size {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if after == nil || after.Size < before.Size {
		t.Fatalf("after restart the checkpoint is %v, before the kill it was size %d", after, before.Size)
	}
	cons, err := custodyv1.NewLogServiceClient(auditor.Conn()).GetConsistencyProof(t.Context(), &custodyv1.GetConsistencyProofRequest{FirstSize: before.Size, SecondSize: after.Size})
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, before.Size, after.Size, cons.GetHashes(), before.Hash, after.Hash); err != nil {
		t.Fatalf("checkpoint after restart (size %d) is not consistent with the one before the kill (size %d): %v", after.Size, before.Size, err)
	}
	t.Logf("%d acknowledged events before SIGKILL, all present; log %d → %d consistent", len(acks), before.Size, after.Size)
}

// TestUploadResumesAfterServerKill: custodyd is killed with SIGKILL in the
// middle of a 40 MiB upload; after a restart the client's resumable upload
// continues from what the server kept and completes byte-exact, with one
// ingest event.
func TestUploadResumesAfterServerKill(t *testing.T) {
	dir := t.TempDir()
	d := binaries.StartCustodyd(t, dir)
	c := dialRole(t, d, "collector")
	data := make([]byte, 40<<20)
	for i := range data {
		data[i] = byte(i * 7 / 13)
	}
	sum := sha256.Sum256(data)
	md := &custodyv1.UploadMetadata{CaseId: "case-kill-resume", Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_VIDEO,
		Sha256: hex.EncodeToString(sum[:]), SizeBytes: int64(len(data)), UploadId: "kill-resume-1"}

	// Stream about half, then the server dies mid-stream.
	st, err := custodyv1.NewEvidenceServiceClient(c.Conn()).Upload(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	st.Send(&custodyv1.UploadRequest{Payload: &custodyv1.UploadRequest_Metadata{Metadata: md}})
	for off := 0; off < 20<<20; off += 1 << 20 {
		st.Send(&custodyv1.UploadRequest{Payload: &custodyv1.UploadRequest_Chunk{Chunk: data[off : off+1<<20]}})
	}
	time.Sleep(300 * time.Millisecond)
	d.Kill(t)

	d2 := binaries.StartCustodyd(t, dir)
	c2 := dialRole(t, d2, "collector")
	status, err := c2.Evidence().GetUploadStatus(t.Context(), &custodyv1.GetUploadStatusRequest{UploadId: md.UploadId})
	if err != nil {
		t.Fatalf("the session did not survive the kill: %v", err)
	}
	if status.GetReceivedBytes() == 0 {
		t.Fatal("nothing of the first half was kept")
	}
	t.Logf("server kept %d of %d bytes across SIGKILL", status.GetReceivedBytes(), len(data))
	resp, err := c2.UploadResumable(t.Context(), md, bytes.NewReader(data), client.DefaultRetry, nil)
	if err != nil {
		t.Fatal(err)
	}
	court := dialRole(t, d2, "court")
	h := sha256.New()
	if _, err := court.Download(t.Context(), &custodyv1.DownloadRequest{EvidenceId: resp.GetEvidence().GetEvidenceId(), Purpose: "check"}, h); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(h.Sum(nil), sum[:]) {
		t.Fatal("the resumed item differs")
	}
	list, err := court.ListEvidence(t.Context(), &custodyv1.ListEvidenceRequest{CaseId: "case-kill-resume"})
	if err != nil || len(list.GetEvidence()) != 1 {
		t.Fatalf("%d items (%v), want exactly one", len(list.GetEvidence()), err)
	}
}
