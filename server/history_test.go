package server_test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/servertest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
	"github.com/custody-dev/custody/verify"
)

// TestLongHistoryStaysExportable: the log is append-only, so an item's
// history only grows. However long it gets, ListEvents pages it (no page
// near gRPC's 4 MiB message limit), GetBundle refuses a document beyond
// --max-bundle-events with a message naming the stream form, and the
// stream form (gRPC and REST) carries every event and verifies. The
// default length keeps the suite fast; CUSTODY_LONG_HISTORY=100000 runs
// the length the red team asked for.
func TestLongHistoryStaysExportable(t *testing.T) {
	n := 600
	if v, err := strconv.Atoi(os.Getenv("CUSTODY_LONG_HISTORY")); err == nil && v > 0 {
		n = v
	}
	const maxDoc = 100
	env := servertest.StartT(t, servertest.Options{MaxBundleEvents: maxDoc})
	ctx := t.Context()
	collector := env.Client(t, identity.RoleCollector)
	court := env.Client(t, identity.RoleCourt)
	data := []byte("a long-contested photo")
	up, err := collector.Upload(ctx, meta("case-long", data), bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	id := up.GetEvidence().GetEvidenceId()
	// The court annotates it n-1 times, each note near the 4 KiB limit.
	note := strings.Repeat("reviewed again; ", 250)
	start := time.Now()
	for i := 1; i < n; i++ {
		if _, err := court.RecordEvent(ctx, &custodyv1.RecordEventRequest{EvidenceId: id, Type: custodyv1.EventType_EVENT_TYPE_ANNOTATION, Note: note[:4000],
			Instrument: &custodyv1.Instrument{Name: strings.Repeat("t", 256), Version: strings.Repeat("v", 256)}}); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	t.Logf("%d events recorded in %v", n, time.Since(start).Round(time.Millisecond))

	// The history, a page at a time: every event, in order.
	pages, seen := 0, 0
	start = time.Now()
	err = court.HistoryPages(ctx, id, func(page []*custodyv1.CustodyEvent) error {
		for _, e := range page {
			if e.GetSequence() != uint64(seen) {
				t.Fatalf("event %d where %d was due", e.GetSequence(), seen)
			}
			seen++
		}
		pages++
		return nil
	})
	if err != nil || seen != n {
		t.Fatalf("history: %d events in %d pages, %v; want %d", seen, pages, err, n)
	}
	t.Logf("history: %d events in %d pages in %v", seen, pages, time.Since(start).Round(time.Millisecond))
	_, err = court.Custody().ListEvents(ctx, &custodyv1.ListEventsRequest{EvidenceId: id, PageToken: "forged"})
	wantCode(t, err, codes.InvalidArgument, "page_token")

	// One document is refused, naming the stream form.
	_, err = court.Bundle(ctx, id, 0)
	wantCode(t, err, codes.FailedPrecondition, "stream form")

	// The stream form over gRPC verifies, every event in it.
	keys, err := court.PublicKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	opts := verify.Options{LogVerifierKey: keys.GetLogVerifierKey(), ReceiptKeyPEM: []byte(keys.GetReceiptPublicKeyPem()), Roots: env.RootCAs(t), File: bytes.NewReader(data)}
	var stream bytes.Buffer
	start = time.Now()
	lines, err := court.StreamBundle(ctx, id, 0, &stream)
	if err != nil || lines != n {
		t.Fatalf("stream: %d event lines, %v; want %d", lines, err, n)
	}
	t.Logf("stream form: %d bytes in %v", stream.Len(), time.Since(start).Round(time.Millisecond))
	start = time.Now()
	r := verify.VerifyStream(bytes.NewReader(stream.Bytes()), opts)
	// No witnesses or timestamp authority here: those two are the limits.
	if r.Outcome != verify.OutcomeVerifiedWithLimits || len(r.NotChecked) != 2 {
		t.Fatalf("stream form: %s %v %v", r.Outcome, r.Failures(), r.NotChecked)
	}
	t.Logf("verified in %v", time.Since(start).Round(time.Millisecond))
	// Cut short, it fails.
	cut := stream.Bytes()[:bytes.LastIndexByte(stream.Bytes()[:stream.Len()-1], '\n')+1]
	opts.File = bytes.NewReader(data)
	if r := verify.VerifyStream(bytes.NewReader(cut), opts); r.Outcome != verify.OutcomeFailed || r.Failures()[0].Step != "format" {
		t.Fatalf("a stream missing its last event: %s %v", r.Outcome, r.Failures())
	}

	// The same over REST: JSON lines.
	hc := env.HTTPClient(t, env.Creds(t, identity.RoleCourt).Certificate)
	resp, err := hc.Get(env.URL("/v1/evidence/" + id + "/bundle:stream"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/jsonl" || bytes.Count(body, []byte("\n")) != n+1 {
		t.Fatalf("REST stream: %d %s, %d lines", resp.StatusCode, resp.Header.Get("Content-Type"), bytes.Count(body, []byte("\n")))
	}
	opts.File = bytes.NewReader(data)
	if r := verify.VerifyStream(bytes.NewReader(body), opts); r.Outcome != verify.OutcomeVerifiedWithLimits || len(r.NotChecked) != 2 {
		t.Fatalf("REST stream form: %s %v", r.Outcome, r.Failures())
	}
}

// TestEventFieldLimits: every field a caller states about an event is
// bounded before anything is logged (a multi-MiB annotation would deny the
// item's history to every reader, forever), coordinates are finite and on
// the globe, and only those with a stake in the item annotate it.
func TestEventFieldLimits(t *testing.T) {
	env := servertest.StartT(t)
	ctx := t.Context()
	collector := env.Client(t, identity.RoleCollector)
	custodian := env.Client(t, identity.RoleCustodian)
	court := env.Client(t, identity.RoleCourt)
	data := []byte("photo for limits")
	up, err := collector.Upload(ctx, meta("case-limits", data), bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	id := up.GetEvidence().GetEvidenceId()
	if _, err := collector.Release(ctx, id, "urn:custody:custodian:dev-custodian", "to the lab"); err != nil {
		t.Fatal(err)
	}
	if _, err := custodian.Accept(ctx, id); err != nil {
		t.Fatal(err)
	}
	logSize := func() uint64 { return custodyEntries(t, env) }
	if n := logSize(); n != 3 {
		t.Fatalf("the log holds %d custody entries, want the first three events", n)
	}
	nan := func() float64 { var z float64; return z / z }()
	huge := strings.Repeat("x", 1<<20)
	for _, tc := range []struct {
		name string
		req  *custodyv1.RecordEventRequest
		code codes.Code
		msg  string
	}{
		{"instrument name of 1 MiB", &custodyv1.RecordEventRequest{Type: custodyv1.EventType_EVENT_TYPE_ANALYSIS, Instrument: &custodyv1.Instrument{Name: huge}}, codes.InvalidArgument, "instrument.name is 1048576 bytes, at most 256"},
		{"instrument version of 1 MiB", &custodyv1.RecordEventRequest{Type: custodyv1.EventType_EVENT_TYPE_ANALYSIS, Instrument: &custodyv1.Instrument{Name: "x", Version: huge}}, codes.InvalidArgument, "instrument.version"},
		{"place of 1 MiB", &custodyv1.RecordEventRequest{Type: custodyv1.EventType_EVENT_TYPE_ANALYSIS, Location: &custodyv1.Location{Description: huge}}, codes.InvalidArgument, "location.description"},
		{"NaN latitude", &custodyv1.RecordEventRequest{Type: custodyv1.EventType_EVENT_TYPE_ANALYSIS, Location: &custodyv1.Location{Point: &custodyv1.GeoPoint{Latitude: nan}}}, codes.InvalidArgument, "outside WGS 84"},
		{"note of 1 MiB", &custodyv1.RecordEventRequest{Type: custodyv1.EventType_EVENT_TYPE_ANNOTATION, Note: huge}, codes.InvalidArgument, "note is 1048576 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := logSize()
			tc.req.EvidenceId = id
			_, err := custodian.RecordEvent(ctx, tc.req)
			wantCode(t, err, tc.code, tc.msg)
			if after := logSize(); after != before {
				t.Fatalf("log grew from %d to %d", before, after)
			}
		})
	}
	// Another custodian, who does not hold the item, may not annotate it;
	// the court may.
	other := env.ClientAs(t, identity.Identity{Role: identity.RoleCustodian, Name: "other-lab"})
	_, err = other.RecordEvent(ctx, &custodyv1.RecordEventRequest{EvidenceId: id, Type: custodyv1.EventType_EVENT_TYPE_ANNOTATION, Note: "not mine"})
	wantCode(t, err, codes.PermissionDenied, "only the holder")
	if _, err := court.RecordEvent(ctx, &custodyv1.RecordEventRequest{EvidenceId: id, Type: custodyv1.EventType_EVENT_TYPE_ANNOTATION, Note: "court note"}); err != nil {
		t.Fatal(err)
	}
}
