package verify

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"time"

	"github.com/custody-dev/custody/canonicaljson"
)

// The stream form of a bundle (docs/BUNDLE.md) carries a history of any
// length: JSON lines, a header first, then one line per event, in order.
// It states exactly what the document form states, and is checked the
// same way, a batch of lines at a time.
const (
	StreamFormat  = "custody-bundle-stream"
	StreamVersion = 1
	// MaxStreamLine bounds one line of the stream form.
	MaxStreamLine = 1 << 20
	// streamBatch is how many event lines are checked at once; the next
	// batch is read and decoded meanwhile. The events in hand are thus
	// bounded by 2 × streamBatch × MaxStreamLine (64 MiB), whatever the
	// length of the history; a typical event line is 1–7 KiB. The report
	// alone grows with the history: it lists every check, four per event
	// (docs/BENCHMARKS.md measures both).
	streamBatch = 32
)

// StreamHeader is the first line of the stream form.
type StreamHeader struct {
	Format      string       `json:"format"`
	Version     int          `json:"v"`
	CreatedAt   string       `json:"created_at"`
	Evidence    Evidence     `json:"evidence"`
	Log         Log          `json:"log"`
	Keys        Keys         `json:"keys"`
	Consistency *Consistency `json:"consistency,omitempty"`
	// Completeness is the document form's "completeness".
	Completeness *Completeness `json:"completeness,omitempty"`
	// EventCount is how many event lines follow.
	EventCount uint64 `json:"event_count"`
}

var streamHeaderShape = func() shape {
	sh := shape{keys: maps.Clone(schema), required: maps.Clone(required)}
	sh.keys[""] = []string{"format", "v", "created_at", "evidence", "log", "keys", "consistency", "completeness", "event_count"}
	sh.required[""] = []string{"format", "v", "created_at", "evidence", "log", "keys", "event_count"}
	return sh
}()

// IsStream reports whether b begins like the stream form (its first line
// names the stream format); a bundle document does not.
func IsStream(b []byte) bool {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	var h struct {
		Format string `json:"format"`
	}
	return json.Unmarshal(line, &h) == nil && h.Format == StreamFormat
}

// strictLine decodes one line of the stream form strictly into out.
func strictLine(line []byte, sh shape, root string, out any) error {
	doc, err := canonicaljson.Parse(line)
	if err != nil {
		return err
	}
	if err := sh.check(doc, root); err != nil {
		return err
	}
	return json.Unmarshal(line, out)
}

// VerifyStream checks a bundle in the stream form read from r, holding at
// most 2 × streamBatch events however long the history, and reports as
// Verify does. The report lists every check, four per event, so it grows
// with the history (about 0.4 KiB per event).
func VerifyStream(r io.Reader, opts Options) *Report {
	fail := func(err error) *Report {
		rep := &Report{Outcome: OutcomeFailed}
		rep.add("bundle format", err, "")
		return rep
	}
	br := bufio.NewReaderSize(r, 64<<10)
	lineNo := 0
	// One buffer for every line: a line is decoded into new values before
	// the next is read.
	var buf []byte
	readLine := func() ([]byte, error) {
		line := buf[:0]
		defer func() { buf = line[:0] }()
		for {
			part, isPrefix, err := br.ReadLine()
			if err != nil {
				return nil, err
			}
			line = append(line, part...)
			if len(line) > MaxStreamLine {
				return nil, fmt.Errorf("line %d is over %d bytes", lineNo+1, MaxStreamLine)
			}
			if !isPrefix {
				lineNo++
				return line, nil
			}
		}
	}
	first, err := readLine()
	if err != nil {
		return fail(fmt.Errorf("no header line: %w", err))
	}
	var h StreamHeader
	if err := strictLine(first, streamHeaderShape, "", &h); err != nil {
		return fail(fmt.Errorf("header: %w", err))
	}
	switch {
	case h.Format != StreamFormat:
		return fail(fmt.Errorf("not a Custody bundle stream (format %q)", h.Format))
	case h.Version != StreamVersion:
		return fail(fmt.Errorf("bundle stream version %d; this verifier reads version %d", h.Version, StreamVersion))
	case h.EventCount == 0:
		return fail(errors.New("the header announces no events"))
	}
	if _, err := time.Parse(time.RFC3339Nano, h.CreatedAt); err != nil {
		return fail(fmt.Errorf("created_at is not an RFC 3339 time: %q", h.CreatedAt))
	}
	if err := checkHeaderHashes(h.Consistency, h.Completeness); err != nil {
		return fail(fmt.Errorf("header: %w", err))
	}
	b := &Bundle{Format: Format, Version: Version, CreatedAt: h.CreatedAt, Evidence: h.Evidence, Log: h.Log, Keys: h.Keys,
		Consistency: h.Consistency, Completeness: h.Completeness}
	v := begin(b, opts)
	v.r.Checks[0].Detail = "strict JSON lines; every field known, typed and present"
	// Lines are read and decoded a batch ahead of the batch being checked.
	// The channel holds none: the reader fills one batch while the other
	// is checked, then waits, so two batches are decoded at most.
	type batch struct {
		events []Event
		err    error // the line that ends the stream early
	}
	batches := make(chan batch)
	go func() {
		defer close(batches)
		var dec decoder // its buffers serve every line
		bufs := [2][]Event{make([]Event, 0, streamBatch), make([]Event, 0, streamBatch)}
		evs := bufs[0][:0]
		for {
			line, err := readLine()
			if err == io.EOF {
				break
			}
			if err == nil {
				var ev Event
				if !dec.eventLine(line, &ev) {
					err = strictLine(line, bundleShape, "events[]", &ev)
				}
				if err == nil {
					for j, hsh := range ev.InclusionProof {
						if len(hsh) != 32 {
							err = fmt.Errorf("inclusion_proof[%d] is %d bytes, not a SHA-256 hash", j, len(hsh))
						}
					}
				}
				if err == nil {
					evs = append(evs, ev)
				}
			}
			if err != nil {
				batches <- batch{evs, fmt.Errorf("line %d: %w", lineNo, err)}
				return
			}
			if len(evs) == streamBatch {
				batches <- batch{events: evs}
				// Once the other batch is taken, this one is checked.
				bufs[0], bufs[1] = bufs[1], bufs[0]
				evs = bufs[0][:0]
			}
		}
		if len(evs) > 0 {
			batches <- batch{events: evs}
		}
	}()
	var streamErr error
	for b := range batches {
		if len(b.events) > 0 {
			v.events(b.events)
		}
		streamErr = b.err
	}
	if streamErr == nil && uint64(v.n) != h.EventCount {
		streamErr = fmt.Errorf("the stream holds %d events; its header announces %d", v.n, h.EventCount)
	}
	if streamErr != nil {
		// A malformed or cut stream is a format failure, reported first.
		v.r.Checks[0] = Check{Step: "format", Name: "bundle format", OK: false, Detail: streamErr.Error()}
	}
	return v.finish()
}
