package main_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody-dev/custody/internal/testenv/binaries"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// TestKilledDuringEvents kills custodyd with SIGKILL, three times, while
// 32 clients record custody events, half on one item and half on items of
// their own: the events' own pipeline (records journaled while their
// entries wait in the log's batch, catalog rows written after the receipt)
// is cut at arbitrary points. After each restart, every acknowledged event
// is in its item's history as acknowledged (read at once, before any new
// event), and every chain is intact.
func TestKilledDuringEvents(t *testing.T) {
	dir := t.TempDir()
	d := binaries.StartCustodyd(t, dir, "--checkpoint-interval", "200ms")
	collector := dialRole(t, d, "collector")
	var ids []string
	for i := range 8 {
		resp, err := upload(t.Context(), collector, "case-kill-events", []byte(fmt.Sprintf("item %d %d", i, time.Now().UnixNano())))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, resp.GetEvidence().GetEvidenceId())
	}
	var acks []ack
	for round := range 3 {
		c := dialRole(t, d, "court")
		var mu sync.Mutex
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for g := range 32 {
			wg.Go(func() {
				for n := 0; ctx.Err() == nil; n++ {
					id := ids[0]
					if g%2 == 1 {
						id = ids[1+g%(len(ids)-1)]
					}
					req := &custodyv1.RecordEventRequest{EvidenceId: id, Type: custodyv1.EventType_EVENT_TYPE_ANNOTATION, Note: fmt.Sprintf("round %d writer %d note %d", round, g, n)}
					resp, err := c.RecordEvent(ctx, req)
					if status.Code(err) == codes.Unavailable && strings.Contains(err.Error(), "busy") {
						continue
					}
					if err != nil {
						return // the server died
					}
					e := resp.GetEvent()
					mu.Lock()
					acks = append(acks, ack{id, e.GetSequence(), e.GetLogIndex(), e.GetLeafHash()})
					mu.Unlock()
				}
			})
		}
		time.Sleep(time.Duration(1500+500*round) * time.Millisecond)
		d.Kill(t)
		cancel()
		wg.Wait()
		if len(acks) < 20*(round+1) {
			t.Fatalf("round %d: too little happened before the kill: %d acknowledged events", round, len(acks))
		}
		d = binaries.StartCustodyd(t, dir, "--checkpoint-interval", "200ms")
		verifyChains(t, dialRole(t, d, "auditor"), ids, acks)
		t.Logf("round %d: %d acknowledged events so far, all present after SIGKILL and restart (replayed from the journal at start: %v)",
			round, len(acks), strings.Contains(d.Logs.String(), "replayed entries from the journal"))
	}
}
