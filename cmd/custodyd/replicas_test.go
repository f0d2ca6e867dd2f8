package main_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody-dev/custody/client"
	"github.com/custody-dev/custody/internal/testenv/clustertest"
	"github.com/custody-dev/custody/logaudit"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// httpsFetch reads public log resources from a replica's /log/.
func httpsFetch(addr string) logaudit.Fetch {
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	return func(ctx context.Context, path string) ([]byte, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/log/"+path, nil)
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET /log/%s: %s", path, resp.Status)
		}
		return io.ReadAll(resp.Body)
	}
}

// TestReplicasKilledMidLoad runs three custodyd replicas on MariaDB,
// PostgreSQL and a four-drive MinIO, drives uploads and hand-offs through
// all three (each step of an item on a different replica, and writers on
// every replica contending for one item), kills one replica with SIGKILL
// mid-load, and then checks: every acknowledged event present, every
// chain intact in the catalog and in the log, one custodian per item as
// its history says, entries the dead replica logged but never cataloged
// cataloged by the survivors, and the independent log audit passing,
// consistent with the checkpoint seen before the kill.
func TestReplicasKilledMidLoad(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Replicas: 3, Args: []string{"--repair-interval", "1s"}})
	type roleClients struct{ collector, custodian, court *client.Client }
	clients := make([]roleClients, len(c.Replicas))
	for i, d := range c.Replicas {
		clients[i] = roleClients{dialRole(t, d, "collector"), dialRole(t, d, "custodian"), dialRole(t, d, "court")}
	}
	keys, err := clients[0].collector.PublicKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := note.NewVerifier(keys.GetLogVerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	const victim = 2
	var dead atomic.Bool
	alive := func(i int) bool { return i != victim || !dead.Load() }

	hot, err := upload(t.Context(), clients[0].collector, "case-replicas", []byte("the contended item"))
	if err != nil {
		t.Fatal(err)
	}
	hotID := hot.GetEvidence().GetEvidenceId()

	var mu sync.Mutex
	var acks []ack
	ids := []string{hotID}
	record := func(a ack) {
		mu.Lock()
		acks = append(acks, a)
		mu.Unlock()
	}
	// failed reports whether a call failed; from a live replica only a
	// refusal to retry later (UNAVAILABLE: busy item, shed load) is
	// allowed, anything else is a real failure.
	var busy atomic.Int64
	failed := func(replica int, what string, err error) bool {
		if err == nil {
			return false
		}
		if alive(replica) {
			switch status.Code(err) {
			case codes.Unavailable, codes.ResourceExhausted:
				busy.Add(1)
			default:
				t.Errorf("%s on live replica %d: %v", what, replica, err)
			}
		}
		return true
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	// Hand-off workers: upload on one replica, release on the next, accept
	// on the third.
	for w := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				r := (w + n) % 3
				if !alive(r) {
					continue
				}
				resp, err := upload(ctx, clients[r].collector, "case-replicas", []byte(fmt.Sprintf("worker %d item %d %d", w, n, time.Now().UnixNano())))
				if ctx.Err() != nil || failed(r, "upload", err) {
					continue
				}
				id := resp.GetEvidence().GetEvidenceId()
				a, err := ingestAck(resp)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				ids = append(ids, id)
				mu.Unlock()
				record(a)
				r = (r + 1) % 3
				if !alive(r) {
					r = (r + 1) % 3
				}
				rel, err := clients[r].collector.Release(ctx, id, custodianID, "to the lab")
				if ctx.Err() != nil || failed(r, "release", err) {
					continue
				}
				record(ack{id, 1, rel.GetEvent().GetLogIndex(), rel.GetEvent().GetLeafHash()})
				r = (r + 1) % 3
				if !alive(r) {
					r = (r + 1) % 3
				}
				acc, err := clients[r].custodian.Accept(ctx, id)
				if ctx.Err() != nil || failed(r, "accept", err) {
					continue
				}
				record(ack{id, 2, acc.GetEvent().GetLogIndex(), acc.GetEvent().GetLeafHash()})
			}
		}()
	}
	// Annotators on every replica append to the one hot item.
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := w % 3
			for n := 0; ctx.Err() == nil; n++ {
				if !alive(r) {
					r = (r + 1) % 3
					continue
				}
				resp, err := clients[r].court.RecordEvent(ctx, &custodyv1.RecordEventRequest{EvidenceId: hotID, Type: custodyv1.EventType_EVENT_TYPE_ANNOTATION, Note: fmt.Sprintf("annotator %d note %d", w, n)})
				if ctx.Err() != nil || failed(r, "annotation", err) {
					continue
				}
				e := resp.GetEvent()
				record(ack{hotID, e.GetSequence(), e.GetLogIndex(), e.GetLeafHash()})
			}
		}()
	}
	fetch0 := httpsFetch(c.Replicas[0].HTTPAddr)
	readCheckpoint := func() *log.Checkpoint {
		raw, err := fetch0(t.Context(), "checkpoint")
		if err != nil {
			return nil
		}
		cp, _, _, err := log.ParseCheckpoint(raw, keys.GetLogOrigin(), verifier)
		if err != nil {
			t.Errorf("checkpoint: %v", err)
			return nil
		}
		return cp
	}
	// A resumable upload streams its first half to the replica about to
	// die; it will finish on another.
	big := make([]byte, 30<<20)
	for i := range big {
		big[i] = byte(i * 7 / 13)
	}
	bigSum := sha256.Sum256(big)
	bigMeta := &custodyv1.UploadMetadata{CaseId: "case-replicas-resume", Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_VIDEO,
		Sha256: hex.EncodeToString(bigSum[:]), SizeBytes: int64(len(big)), UploadId: "replica-resume-1"}
	st, err := clients[victim].collector.Evidence().Upload(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	st.Send(&custodyv1.UploadRequest{Payload: &custodyv1.UploadRequest_Metadata{Metadata: bigMeta}})
	for off := 0; off < 20<<20; off += 1 << 20 {
		st.Send(&custodyv1.UploadRequest{Payload: &custodyv1.UploadRequest_Chunk{Chunk: big[off : off+1<<20]}})
	}
	// Kill the replica while it stores the upload. Its session is locked
	// while it writes (another replica is told "busy"); once it is, give
	// it a few seconds to store some of the 20 MiB sent. On a loaded
	// machine the session can take seconds to start, so wait for it
	// rather than for a fixed time.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, err := clients[0].collector.UploadStatus(t.Context(), bigMeta.UploadId)
		if status.Code(err) == codes.Unavailable && strings.Contains(err.Error(), "busy") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the victim's upload session never started: %v", err)
		}
	}
	time.Sleep(5 * time.Second)
	before := readCheckpoint()
	mu.Lock()
	acksBefore := len(acks)
	mu.Unlock()
	dead.Store(true)
	c.Replicas[victim].Kill(t)
	time.Sleep(3 * time.Second)
	cancel()
	wg.Wait()
	if before == nil || acksBefore < 30 || len(acks) <= acksBefore {
		t.Fatalf("too little load: %d acknowledged events before the kill, %d in all, checkpoint %v", acksBefore, len(acks), before)
	}

	// The upload the dead replica was receiving continues on replica 0
	// from what it had stored.
	status, err := clients[0].collector.UploadStatus(t.Context(), bigMeta.UploadId)
	if err != nil || status.GetReceivedBytes() < 8<<20 {
		t.Fatalf("replica 0 sees %d bytes of the session the dead replica received (%v)", status.GetReceivedBytes(), err)
	}
	bigResp, err := clients[0].collector.UploadResumable(t.Context(), bigMeta, bytes.NewReader(big), client.DefaultRetry, nil)
	if err != nil {
		t.Fatalf("resuming on replica 0: %v", err)
	}
	bigHash := sha256.New()
	if _, err := dialRole(t, c.Replicas[1], "court").Download(t.Context(), &custodyv1.DownloadRequest{EvidenceId: bigResp.GetEvidence().GetEvidenceId(), Purpose: "check"}, bigHash); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bigHash.Sum(nil), bigSum[:]) {
		t.Fatal("the upload resumed on another replica differs from the original")
	}
	t.Logf("resumable upload: the killed replica had stored %d of %d bytes; finished on replica 0, byte-exact", status.GetReceivedBytes(), len(big))

	auditor := dialRole(t, c.Replicas[1], "auditor")
	// The survivors catalog what the dead replica logged but did not
	// (every --repair-interval); the log audit then names every chain.
	var rep logaudit.Report
	deadline := time.Now().Add(60 * time.Second)
	for {
		rep, err = logaudit.Audit(t.Context(), httpsFetch(c.Replicas[1].HTTPAddr), keys.GetLogOrigin(), verifier, before)
		if err != nil {
			t.Fatalf("log audit: %v", err)
		}
		complete := true
		for id, last := range rep.Chains {
			h, err := auditor.History(t.Context(), id)
			if err != nil || uint64(len(h)) != last+1 {
				complete = false
				if time.Now().After(deadline) {
					t.Fatalf("item %s: the log holds sequence %d, the catalog %d events (%v)", id, last, len(h), err)
				}
				break
			}
		}
		if complete {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	hist := verifyChains(t, auditor, ids, acks)
	for _, id := range ids {
		ev, err := auditor.GetEvidence(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if want := custodianFrom(hist[id]); ev.GetCustodian() != want {
			t.Fatalf("%s: the catalog names %s the custodian, its history %s", id, ev.GetCustodian(), want)
		}
		if last, ok := rep.Chains[id]; !ok || last+1 != uint64(len(hist[id])) {
			t.Fatalf("%s: %d events in its history, the log's chain ends at %d (%v)", id, len(hist[id]), last, ok)
		}
	}
	t.Logf("%d acknowledged events (%d before SIGKILL of replica %d), %d items, all present; %d calls told to retry; log audit: %d entries, %d tiles, %d chains, consistent with size %d",
		len(acks), acksBefore, victim, len(ids), busy.Load(), rep.Entries, rep.Tiles, rep.Items, before.Size)

	// The killed replica comes back and serves the same state.
	d := c.Restart(t, victim)
	h, err := dialRole(t, d, "auditor").History(t.Context(), hotID)
	if err != nil || len(h) != len(hist[hotID]) {
		t.Fatalf("restarted replica: history of the hot item has %d events (%v), want %d", len(h), err, len(hist[hotID]))
	}
}

// custodianFrom replays a history's hand-offs: the collector holds an item
// until an accepted release moves it.
func custodianFrom(h []*custodyv1.CustodyEvent) string {
	holder := h[0].GetPerformer()
	for _, e := range h[1:] {
		if e.GetType() == custodyv1.EventType_EVENT_TYPE_ACCEPT {
			holder = e.GetPerformer()
		}
	}
	return holder
}

// TestDriveLostDuringIngest takes one of MinIO's four drives away while
// uploads and hand-offs continue: erasure coding keeps every write and
// read working, and afterwards every acknowledged item downloads
// byte-exact and the log (whose tiles are on the same MinIO) audits.
func TestDriveLostDuringIngest(t *testing.T) {
	// Eight uploads of one identity at once, on purpose: this test is about
	// the drive, not the per-identity share of streams (which would refuse
	// some with RESOURCE_EXHAUSTED when uploads run slow on a loaded
	// machine).
	c := clustertest.Start(t, clustertest.Options{Replicas: 1, Args: []string{"--max-streams", "16", "--max-streams-per-identity", "16"}})
	d := c.Replicas[0]
	collector := dialRole(t, d, "collector")
	keys, err := collector.PublicKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	verifier, _ := note.NewVerifier(keys.GetLogVerifierKey())
	var mu sync.Mutex
	uploaded := map[string][]byte{}
	var lost atomic.Bool
	var afterLoss atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				data := make([]byte, 64<<10+n)
				copy(data, fmt.Sprintf("worker %d item %d %d", w, n, time.Now().UnixNano()))
				resp, err := upload(ctx, collector, "case-drive", data)
				if ctx.Err() != nil {
					return
				}
				if status.Code(err) == codes.Unavailable {
					continue // told to retry: allowed, and counted below only if it succeeds
				}
				if err != nil {
					t.Errorf("upload (drive lost: %v): %v", lost.Load(), err)
					return
				}
				if lost.Load() {
					afterLoss.Add(1)
				}
				mu.Lock()
				uploaded[resp.GetEvidence().GetEvidenceId()] = data
				mu.Unlock()
			}
		}()
	}
	time.Sleep(2 * time.Second)
	// The drive goes away under the running server.
	gone := c.MinIO.Drives[3]
	if err := os.Rename(gone, gone+".removed"); err != nil {
		t.Fatal(err)
	}
	lost.Store(true)
	time.Sleep(4 * time.Second)
	cancel()
	wg.Wait()
	if afterLoss.Load() < 10 {
		t.Fatalf("only %d uploads completed after the drive was taken away", afterLoss.Load())
	}
	court := dialRole(t, d, "court")
	for id, data := range uploaded {
		var got bytes.Buffer
		if _, err := court.Download(t.Context(), &custodyv1.DownloadRequest{EvidenceId: id, Purpose: "drive-loss check"}, &got); err != nil {
			t.Fatalf("download %s with a drive gone: %v", id, err)
		}
		if !bytes.Equal(got.Bytes(), data) {
			t.Fatalf("%s: downloaded bytes differ from the uploaded ones", id)
		}
	}
	var rep logaudit.Report
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		rep, err = logaudit.Audit(t.Context(), httpsFetch(d.HTTPAddr), keys.GetLogOrigin(), verifier, nil)
		if err != nil {
			t.Fatalf("log audit with a drive gone: %v", err)
		}
		// Every upload plus one access event per download.
		if rep.Entries >= 2*len(uploaded) || time.Now().After(deadline) {
			break
		}
	}
	if rep.Entries < 2*len(uploaded) {
		t.Fatalf("the log holds %d entries, want at least %d", rep.Entries, 2*len(uploaded))
	}
	t.Logf("%d uploads (%d after drive %s went away), all downloaded byte-exact; log audit: %d entries", len(uploaded), afterLoss.Load(), gone, rep.Entries)
}
