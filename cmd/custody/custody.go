package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// parseID parses a command's flags and its one argument, an item id.
func parseID(g globals, fs *flag.FlagSet, args []string) (string, error) {
	pos, err := parseInterspersed(g, fs, args)
	if err != nil {
		return "", err
	}
	if err := positionals(fs.Name(), pos, 1); err != nil {
		return "", err
	}
	return pos[0], nil
}

func eventTypeName(t custodyv1.EventType) string {
	return strings.ToLower(strings.TrimPrefix(t.String(), "EVENT_TYPE_"))
}

func printEvent(g globals, e *custodyv1.CustodyEvent, r *custodyv1.Receipt) error {
	if g.output == "json" {
		return printJSON(g.stdout, map[string]any{"event": protoMap(e), "receipt": receiptJSON(r)})
	}
	fmt.Fprintf(g.stdout, "%s #%d %s by %s\n  log index: %d\n  receipt:   %s\n", e.GetEvidenceId(), e.GetSequence(),
		eventTypeName(e.GetType()), e.GetPerformer(), e.GetLogIndex(), r.GetPayload())
	return nil
}

func runHistory(ctx context.Context, g globals, args []string) error {
	fs := newFlagSet("history")
	id, err := parseID(g, fs, args)
	if err != nil {
		return err
	}
	c, err := dial(ctx, g)
	if err != nil {
		return err
	}
	defer c.Close()
	hist, err := c.History(ctx, id)
	if err != nil {
		return rpcError("history "+id, err)
	}
	if g.output == "json" {
		out := make([]any, len(hist))
		for i, e := range hist {
			out[i] = protoMap(e)
		}
		return printJSON(g.stdout, map[string]any{"evidence_id": id, "events": out})
	}
	for _, e := range hist {
		fmt.Fprintln(g.stdout, historyLine(e))
	}
	return nil
}

// historyLine is one event as text history prints it: sequence, time,
// type, performer, counterparty, then what the record states (purpose,
// tool and version, note) and the log index.
func historyLine(e *custodyv1.CustodyEvent) string {
	line := fmt.Sprintf("#%-3d %s  %-20s %s", e.GetSequence(), e.GetRecordedAt().AsTime().Format("2006-01-02 15:04:05Z"), eventTypeName(e.GetType()), e.GetPerformer())
	if e.GetCounterparty() != "" {
		line += " ↔ " + e.GetCounterparty()
	}
	if e.GetPurpose() != "" {
		line += "  purpose: " + e.GetPurpose()
	}
	if i := e.GetInstrument(); i.GetName() != "" || i.GetVersion() != "" {
		line += "  tool: " + strings.TrimSpace(i.GetName()+" "+i.GetVersion())
	}
	if e.GetNote() != "" {
		line += "  note: " + e.GetNote()
	}
	return fmt.Sprintf("%s  [log %d]", line, e.GetLogIndex())
}

func runRelease(ctx context.Context, g globals, args []string) error {
	fs := newFlagSet("release")
	to := fs.String("to", "", "the recipient's identity, e.g. urn:custody:custodian:lab-1 (required)")
	reason := fs.String("reason", "", "why the item is handed over (required)")
	id, err := parseID(g, fs, args)
	if err != nil {
		return err
	}
	if err := required("release", "to", *to, "reason", *reason); err != nil {
		return err
	}
	c, err := dial(ctx, g)
	if err != nil {
		return err
	}
	defer c.Close()
	resp, err := c.Release(ctx, id, *to, *reason)
	if err != nil {
		return rpcError("release "+id, err)
	}
	return printEvent(g, resp.GetEvent(), resp.GetReceipt())
}

func runAccept(ctx context.Context, g globals, args []string) error {
	fs := newFlagSet("accept")
	id, err := parseID(g, fs, args)
	if err != nil {
		return err
	}
	c, err := dial(ctx, g)
	if err != nil {
		return err
	}
	defer c.Close()
	resp, err := c.Accept(ctx, id)
	if err != nil {
		return rpcError("accept "+id, err)
	}
	return printEvent(g, resp.GetEvent(), resp.GetReceipt())
}

func runCancel(ctx context.Context, g globals, args []string) error {
	fs := newFlagSet("cancel")
	reason := fs.String("reason", "", "why the release is withdrawn; recorded in the history")
	id, err := parseID(g, fs, args)
	if err != nil {
		return err
	}
	c, err := dial(ctx, g)
	if err != nil {
		return err
	}
	defer c.Close()
	resp, err := c.CancelRelease(ctx, id, *reason)
	if err != nil {
		return rpcError("cancel "+id, err)
	}
	return printEvent(g, resp.GetEvent(), resp.GetReceipt())
}

func runEvent(ctx context.Context, g globals, args []string) error {
	fs := newFlagSet("event")
	typ := fs.String("type", "", "analysis, derivation, submission_to_court or annotation (required)")
	note := fs.String("note", "", "what was done and found (required)")
	purpose := fs.String("purpose", "", "why")
	tool := fs.String("tool", "", "instrument name, for analysis and derivation")
	toolVersion := fs.String("tool-version", "", "instrument version")
	related := fs.String("related", "", "the derived item's evidence id, for derivation")
	id, err := parseID(g, fs, args)
	if err != nil {
		return err
	}
	if err := required("event", "type", *typ, "note", *note); err != nil {
		return err
	}
	t, ok := custodyv1.EventType_value["EVENT_TYPE_"+strings.ToUpper(*typ)]
	if !ok {
		return usagef("--type %q: want analysis, derivation, submission_to_court or annotation", *typ)
	}
	req := &custodyv1.RecordEventRequest{EvidenceId: id, Type: custodyv1.EventType(t), Note: *note, Purpose: *purpose, RelatedEvidenceId: *related}
	if *tool != "" {
		req.Instrument = &custodyv1.Instrument{Name: *tool, Version: *toolVersion}
	}
	c, err := dial(ctx, g)
	if err != nil {
		return err
	}
	defer c.Close()
	resp, err := c.RecordEvent(ctx, req)
	if err != nil {
		return rpcError("event "+id, err)
	}
	return printEvent(g, resp.GetEvent(), resp.GetReceipt())
}
