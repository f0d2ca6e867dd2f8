package events_test

import (
	"errors"
	"testing"
	"time"

	"github.com/custody-dev/custody/canonicaljson"
	"github.com/custody-dev/custody/events"
)

const (
	collector = "urn:custody:collector:a"
	lab       = "urn:custody:custodian:lab"
	court     = "urn:custody:court:c"
)

var t0 = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

func rec(seq int, typ events.Type, performer, counterparty string, details canonicaljson.Object) events.Record {
	return events.Record{EvidenceID: "ev-x", Sequence: uint64(seq), Type: typ, Performer: performer, Counterparty: counterparty,
		RecordedAt: t0.Add(time.Duration(seq) * time.Minute), Details: details}
}

func release(seq int, from, to string) events.Record {
	return rec(seq, events.Release, from, to, canonicaljson.Object{"reason": "r", "expires_at": events.FormatTime(t0.Add(time.Hour))})
}

func TestCustodyRules(t *testing.T) {
	ingest := rec(0, events.Ingest, collector, "", nil)
	accept := func(seq, rel int, by, from string) events.Record {
		return rec(seq, events.Accept, by, from, canonicaljson.Object{"release_seq": int64(rel)})
	}
	expired := rec(2, events.ReleaseExpired, events.ServicePerformer, lab, canonicaljson.Object{"release_seq": int64(1), "expired_at": events.FormatTime(t0.Add(time.Hour))})
	expired.RecordedAt = t0.Add(time.Hour)
	early := expired
	early.RecordedAt = t0.Add(59 * time.Minute)
	late := accept(2, 1, lab, collector)
	late.RecordedAt = t0.Add(time.Hour)

	tests := []struct {
		name      string
		chain     []events.Record
		want      error // the rule the last event breaks, nil if valid
		custodian string
	}{
		{"ingest makes the collector custodian", []events.Record{ingest}, nil, collector},
		{"two-party hand-off", []events.Record{ingest, release(1, collector, lab), accept(2, 1, lab, collector)}, nil, lab},
		{"analysis by the custodian", []events.Record{ingest, rec(1, events.Analysis, collector, "", nil)}, nil, collector},
		{"anyone annotates or accesses", []events.Record{ingest, rec(1, events.Annotation, court, "", nil), rec(2, events.Access, court, "", nil)}, nil, collector},
		{"cancel by the releaser", []events.Record{ingest, release(1, collector, lab), rec(2, events.ReleaseCancelled, collector, lab, canonicaljson.Object{"release_seq": int64(1), "reason": "x"})}, nil, collector},
		{"expiry at expires_at", []events.Record{ingest, release(1, collector, lab), expired}, nil, collector},
		{"release by a non-custodian", []events.Record{ingest, release(1, lab, court)}, events.ErrNotCustodian, ""},
		{"second release while one is pending", []events.Record{ingest, release(1, collector, lab), release(2, collector, court)}, events.ErrReleasePending, ""},
		{"release to oneself", []events.Record{ingest, release(1, collector, collector)}, events.ErrBadEvent, ""},
		{"accept by someone else", []events.Record{ingest, release(1, collector, lab), accept(2, 1, court, collector)}, events.ErrNotRecipient, ""},
		{"accept without release", []events.Record{ingest, accept(1, 0, lab, collector)}, events.ErrNoPendingRelease, ""},
		{"accept of another release", []events.Record{ingest, release(1, collector, lab), accept(2, 7, lab, collector)}, events.ErrWrongRelease, ""},
		{"accept naming the wrong releaser", []events.Record{ingest, release(1, collector, lab), accept(2, 1, lab, court)}, events.ErrBadEvent, ""},
		{"accept after the release lapsed", []events.Record{ingest, release(1, collector, lab), late}, events.ErrReleaseLapsed, ""},
		{"cancel by the recipient", []events.Record{ingest, release(1, collector, lab), rec(2, events.ReleaseCancelled, lab, lab, canonicaljson.Object{"release_seq": int64(1)})}, events.ErrNotCustodian, ""},
		{"expiry before its time", []events.Record{ingest, release(1, collector, lab), early}, events.ErrBadEvent, ""},
		{"expiry by a person", []events.Record{ingest, release(1, collector, lab), func() events.Record { e := expired; e.Performer = court; return e }()}, events.ErrBadEvent, ""},
		{"analysis by a non-custodian", []events.Record{ingest, rec(1, events.Analysis, court, "", nil)}, events.ErrNotCustodian, ""},
		{"derivation while released is still the releaser's", []events.Record{ingest, release(1, collector, lab), rec(2, events.Derivation, lab, "", nil)}, events.ErrNotCustodian, ""},
		{"chain not starting with an ingest", []events.Record{rec(0, events.Analysis, collector, "", nil)}, events.ErrBadEvent, ""},
		{"second ingest", []events.Record{ingest, rec(1, events.Ingest, collector, "", nil)}, events.ErrBadEvent, ""},
		{"unknown type", []events.Record{ingest, rec(1, "teleport", collector, "", nil)}, events.ErrBadEvent, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var st events.State
			var err error
			for i, r := range tc.chain {
				st, err = st.Next(r)
				if err != nil && i < len(tc.chain)-1 {
					t.Fatalf("event %d refused: %v", i, err)
				}
			}
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if st.Custodian != tc.custodian {
					t.Fatalf("custodian %q, want %q", st.Custodian, tc.custodian)
				}
				return
			}
			var re *events.RuleError
			if !errors.Is(err, tc.want) || !errors.As(err, &re) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}
