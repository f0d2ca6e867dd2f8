package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
	"unicode"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody-dev/custody/client"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// cliJSON renders a message for -o json as the text output spells it:
// proto field names, and enum values by their short lower-case names
// (photo, analysis, court), not EVIDENCE_KIND_PHOTO.
func cliJSON(m proto.Message) map[string]any {
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return nil
	}
	var out map[string]any
	if json.Unmarshal(b, &out) != nil {
		return nil
	}
	shortEnums(m.ProtoReflect(), out)
	return out
}

// shortEnums rewrites the enum values of m in out, its JSON form.
func shortEnums(m protoreflect.Message, out map[string]any) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		key := string(fd.Name())
		cur, ok := out[key]
		if !ok || fd.IsMap() {
			return true
		}
		convert := func(v protoreflect.Value, cur any) any {
			switch fd.Kind() {
			case protoreflect.EnumKind:
				return enumName(fd.Enum(), v.Enum())
			case protoreflect.MessageKind:
				if sub, ok := cur.(map[string]any); ok {
					shortEnums(v.Message(), sub)
				}
			}
			return cur
		}
		if fd.IsList() {
			arr, _ := cur.([]any)
			for i := 0; i < v.List().Len() && i < len(arr); i++ {
				arr[i] = convert(v.List().Get(i), arr[i])
			}
			return true
		}
		out[key] = convert(v, cur)
		return true
	})
}

// enumName is an enum value's name without its type's prefix, in lower
// case: EvidenceKind EVIDENCE_KIND_PHOTO is "photo".
func enumName(ed protoreflect.EnumDescriptor, n protoreflect.EnumNumber) any {
	vd := ed.Values().ByNumber(n)
	if vd == nil {
		return int32(n)
	}
	var prefix strings.Builder
	for i, r := range string(ed.Name()) {
		if i > 0 && unicode.IsUpper(r) {
			prefix.WriteByte('_')
		}
		prefix.WriteRune(unicode.ToUpper(r))
	}
	return strings.ToLower(strings.TrimPrefix(string(vd.Name()), prefix.String()+"_"))
}

func kindName(k custodyv1.EvidenceKind) string {
	return strings.ToLower(strings.TrimPrefix(k.String(), "EVIDENCE_KIND_"))
}

// listed is an item as list and show print it, with its latest event
// when the caller may read the item's history.
type listed struct {
	ev   *custodyv1.Evidence
	last *custodyv1.CustodyEvent
}

func (l listed) json() map[string]any {
	m := cliJSON(l.ev)
	if l.last != nil {
		m["last_event"] = cliJSON(l.last)
	}
	return m
}

// lastEvents fetches the latest event of each item, a few at a time. An
// item whose history the caller may not read (special category) keeps
// none.
func lastEvents(ctx context.Context, c *client.Client, items []listed) {
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range items {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if e, err := c.LastEvent(ctx, items[i].ev.GetEvidenceId()); err == nil {
				items[i].last = e
			}
		}()
	}
	wg.Wait()
}

// listPageSize is how many items list asks for at once: the service's
// largest page (a variable for tests, which page through small cases).
var listPageSize = 1000

func runList(ctx context.Context, g globals, args []string) error {
	fs := newFlagSet("list")
	caseID := fs.String("case", "", "case id (required)")
	limit := fs.Int("limit", 0, "list at most this many items and print the token for the rest (0: every item, all pages)")
	token := fs.String("page-token", "", "continue a listing cut off by --limit, from the token it printed")
	pos, err := parseInterspersed(g, fs, args)
	if err != nil {
		return err
	}
	if err := positionals("list", pos, 0); err != nil {
		return err
	}
	if err := required("list", "case", *caseID); err != nil {
		return err
	}
	if *limit < 0 {
		return usagef("--limit %d: want 0 (everything) or more", *limit)
	}
	c, err := dial(ctx, g)
	if err != nil {
		return err
	}
	defer c.Close()
	var items []listed
	next := *token
	for {
		size := listPageSize
		if *limit > 0 {
			size = min(*limit-len(items), listPageSize)
		}
		resp, err := c.ListEvidence(ctx, &custodyv1.ListEvidenceRequest{CaseId: *caseID, PageSize: int32(size), PageToken: next})
		if err != nil {
			return rpcError("list "+*caseID, err)
		}
		for _, ev := range resp.GetEvidence() {
			items = append(items, listed{ev: ev})
		}
		next = resp.GetNextPageToken()
		if next == "" || *limit > 0 && len(items) >= *limit {
			break
		}
	}
	lastEvents(ctx, c, items)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if g.output == "json" {
		out := make([]any, len(items))
		for i, it := range items {
			out[i] = it.json()
		}
		doc := map[string]any{"case_id": *caseID, "evidence": out}
		if next != "" {
			doc["next_page_token"] = next
		}
		return printJSON(g.stdout, doc)
	}
	if len(items) == 0 {
		fmt.Fprintf(g.stdout, "no items in case %s\n", *caseID)
		return nil
	}
	printTable(g.stdout, items)
	if next != "" {
		fmt.Fprintf(g.stdout, "more: custody list --case %s --limit %d --page-token %s\n", *caseID, *limit, next)
	}
	return nil
}

// printTable writes list's table: id, kind, file name, size, current
// custodian, last event.
func printTable(w io.Writer, items []listed) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tFILE\tSIZE\tCUSTODIAN\tLAST EVENT")
	for _, it := range items {
		ev := it.ev
		custodian := ev.GetCustodian()
		if p := ev.GetPendingRelease(); p != nil {
			custodian += " → " + p.GetTo() + " (pending)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", ev.GetEvidenceId(), kindName(ev.GetKind()), fileName(ev),
			humanBytes(ev.GetSizeBytes()), custodian, eventSummary(it.last, false))
	}
	tw.Flush()
}

// fileName is an item's file name, or what stands in for it.
func fileName(ev *custodyv1.Evidence) string {
	switch {
	case ev.GetFilename() != "":
		return ev.GetFilename()
	case ev.GetSpecialCategory():
		return "(special category)"
	}
	return "-"
}

// eventSummary is an event in a few words: type and time, and with
// performer who did it.
func eventSummary(e *custodyv1.CustodyEvent, performer bool) string {
	if e == nil {
		return "-"
	}
	s := fmt.Sprintf("%s %s", eventTypeName(e.GetType()), utcTime(e.GetRecordedAt()))
	if performer {
		s = fmt.Sprintf("#%d %s by %s", e.GetSequence(), s, e.GetPerformer())
	}
	return s
}

func utcTime(t *timestamppb.Timestamp) string {
	if t == nil {
		return "-"
	}
	return t.AsTime().UTC().Format("2006-01-02 15:04:05Z")
}

// humanBytes is a size in IEC units.
func humanBytes(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	f := float64(n) / 1024
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}

func runShow(ctx context.Context, g globals, args []string) error {
	fs := newFlagSet("show")
	id, err := parseID(g, fs, args)
	if err != nil {
		return err
	}
	c, err := dial(ctx, g)
	if err != nil {
		return err
	}
	defer c.Close()
	ev, err := c.GetEvidence(ctx, id)
	if err != nil {
		return rpcError("show "+id, err)
	}
	it := []listed{{ev: ev}}
	lastEvents(ctx, c, it)
	if g.output == "json" {
		return printJSON(g.stdout, it[0].json())
	}
	printItem(g.stdout, it[0])
	return nil
}

// printItem writes show's text: one field a line, those the record has.
func printItem(w io.Writer, it listed) {
	ev := it.ev
	fmt.Fprintln(w, ev.GetEvidenceId())
	line := func(name, value string) {
		if value != "" {
			fmt.Fprintf(w, "  %-14s %s\n", name+":", value)
		}
	}
	line("case", ev.GetCaseId())
	line("kind", kindName(ev.GetKind()))
	line("file", fileName(ev))
	line("size", fmt.Sprintf("%d bytes (%s)", ev.GetSizeBytes(), humanBytes(ev.GetSizeBytes())))
	line("sha256", ev.GetSha256())
	mt := ev.GetMediaType()
	if d := ev.GetDeclaredMediaType(); d != "" && d != mt {
		mt += " (declared " + d + ")"
	}
	line("media type", mt)
	line("description", ev.GetDescription())
	if cp := ev.GetCapture(); cp != nil {
		if cp.GetCapturedAt() != nil {
			line("captured at", cp.GetCapturedAt().AsTime().Format(time.RFC3339)+" (as the collector states)")
		}
		line("location", locationText(cp.GetLocation()))
		line("device", deviceText(cp.GetDevice()))
	}
	if em := ev.GetEmbedded(); em != nil {
		var parts []string
		if em.GetCapturedAt() != nil {
			parts = append(parts, "taken "+em.GetCapturedAt().AsTime().Format(time.RFC3339))
		}
		if p := em.GetPoint(); p != nil {
			parts = append(parts, fmt.Sprintf("at %.6f,%.6f", p.GetLatitude(), p.GetLongitude()))
		}
		if d := deviceText(em.GetDevice()); d != "" {
			parts = append(parts, "by "+d)
		}
		if em.GetDuration() != nil {
			parts = append(parts, "lasting "+em.GetDuration().AsDuration().String())
		}
		if len(parts) > 0 {
			line("embedded", strings.Join(parts, ", ")+" (read from the bytes)")
		}
	}
	line("derived from", ev.GetDerivedFrom())
	line("collector", ev.GetCollector())
	line("ingested", utcTime(ev.GetIngestedAt()))
	line("custodian", ev.GetCustodian())
	if p := ev.GetPendingRelease(); p != nil {
		s := fmt.Sprintf("to %s (event %d), until %s", p.GetTo(), p.GetReleaseSequence(), utcTime(p.GetExpiresAt()))
		if p.GetReason() != "" {
			s += "; reason: " + p.GetReason()
		}
		line("release", s)
	}
	if ev.GetSpecialCategory() {
		line("special", "special category (biometric): stored encrypted; its metadata is read with download or seizure get")
	}
	if st := ev.GetStorage(); st != nil {
		s := st.GetBackend()
		if st.GetBucket() != "" {
			s += " " + st.GetBucket()
		}
		if st.GetEncrypted() {
			s += ", encrypted"
		}
		if st.GetRetainUntil() != nil {
			s += ", retained until " + utcTime(st.GetRetainUntil())
		}
		line("stored", s)
	}
	line("last event", eventSummary(it.last, true))
}

func locationText(l *custodyv1.Location) string {
	if l == nil {
		return ""
	}
	var parts []string
	if l.GetDescription() != "" {
		parts = append(parts, l.GetDescription())
	}
	if p := l.GetPoint(); p != nil {
		s := fmt.Sprintf("%.6f,%.6f", p.GetLatitude(), p.GetLongitude())
		if p.AltitudeM != nil {
			s += fmt.Sprintf(", %g m", p.GetAltitudeM())
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

func deviceText(d *custodyv1.Device) string {
	if d == nil {
		return ""
	}
	var parts []string
	for _, s := range []string{d.GetMake(), d.GetModel(), d.GetSerialNumber(), d.GetUniqueId(), d.GetSoftware()} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, " ")
}

func runSeizureGet(ctx context.Context, g globals, args []string) error {
	fs := newFlagSet("seizure get")
	purpose := fs.String("purpose", "", "why you read the record; logged (required)")
	authf := authorityFlags(fs)
	id, err := parseID(g, fs, args)
	if err != nil {
		return err
	}
	if err := required("seizure get", "purpose", *purpose); err != nil {
		return err
	}
	authority, err := authf.authority()
	if err != nil {
		return err
	}
	c, err := dial(ctx, g)
	if err != nil {
		return err
	}
	defer c.Close()
	resp, err := c.GetSeizureRecord(ctx, &custodyv1.GetSeizureRecordRequest{EvidenceId: id, Purpose: *purpose, Authority: authority})
	if err != nil {
		return rpcError("seizure get "+id, err)
	}
	if g.output == "json" {
		// The record as seizure create --record reads it.
		return printJSON(g.stdout, map[string]any{
			"evidence": cliJSON(resp.GetEvidence()), "record": protoMap(resp.GetRecord()),
			"attachment_evidence_ids": nonNil(resp.GetAttachmentEvidenceIds()),
		})
	}
	ev := resp.GetEvidence()
	fmt.Fprintf(g.stdout, "seizure record %s\n  case:        %s\n  sha256:      %s\n  custodian:   %s\n  attachments: %s\n  record:\n",
		ev.GetEvidenceId(), ev.GetCaseId(), ev.GetSha256(), ev.GetCustodian(), strings.Join(resp.GetAttachmentEvidenceIds(), ", "))
	// protojson varies its spacing on purpose; json.Indent makes it one.
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(resp.GetRecord())
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "    ", "  "); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "    %s\n", out.Bytes())
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
