package custodylog

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"

	"github.com/custody-dev/custody/tsa"
)

// Authority is an RFC 3161 timestamp authority the log uses.
type Authority struct {
	// URL receives timestamp queries (POST application/timestamp-query).
	URL string
	// Chain is the authority's certificate chain (root and any
	// intermediates); every token is checked against it before it is
	// kept.
	Chain []*x509.Certificate
}

// Timestamp is one authority's RFC 3161 timestamp of a checkpoint's text
// (package tsa says what is stamped).
type Timestamp struct {
	Authority string `json:"authority"` // the authority's URL
	Response  []byte `json:"response"`  // DER TimeStampResp
}

// Stamped is a published checkpoint with its timestamps.
type Stamped struct {
	Published
	Timestamps []Timestamp
}

// stampRecord is what the annex keeps at timestampsLatest.
type stampRecord struct {
	Checkpoint string      `json:"checkpoint"` // the signed note as published
	Size       uint64      `json:"size"`
	Timestamps []Timestamp `json:"timestamps"`
}

const timestampsLatest = "timestamps/latest.json"

// TimestampState is how far timestamping has followed the log.
type TimestampState struct {
	// PublishedSize is the published checkpoint's size; StampedSize the
	// largest timestamped one (0: none yet); the gap is their difference.
	PublishedSize, StampedSize uint64
	// StampedAt is when the latest timestamp was obtained.
	StampedAt time.Time
	// Errors holds each authority's last failure since its last success.
	Errors map[string]string
}

// stamper timestamps new checkpoints in the background.
type stamper struct {
	annex       Annex
	authorities []Authority
	log         *Log
	client      *http.Client

	mu        sync.Mutex
	latest    *stampRecord
	stampedAt time.Time
	errs      map[string]string
}

func newStamper(a Annex, auths []Authority, l *Log) *stamper {
	return &stamper{annex: a, authorities: auths, log: l, client: &http.Client{Timeout: 10 * time.Second}, errs: map[string]string{}}
}

// run asks for timestamps of the newest checkpoint once an interval,
// until ctx ends.
func (s *stamper) run(ctx context.Context, interval time.Duration) {
	if rec, err := s.load(ctx); err == nil {
		s.mu.Lock()
		s.latest = rec
		s.mu.Unlock()
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.stamp(ctx); err != nil && ctx.Err() == nil {
			slog.WarnContext(ctx, "checkpoint timestamp", "err", err)
		}
	}
}

func (s *stamper) load(ctx context.Context) (*stampRecord, error) {
	b, err := s.annex.Read(ctx, timestampsLatest)
	if err != nil {
		return nil, err
	}
	var rec stampRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("%s: %w", timestampsLatest, err)
	}
	return &rec, nil
}

// stamp timestamps the published checkpoint with every authority that has
// not stamped it yet, and keeps what it got.
func (s *stamper) stamp(ctx context.Context) error {
	cp, err := s.log.Latest(ctx)
	if errors.Is(err, os.ErrNotExist) || err == nil && cp.Size == 0 {
		return nil
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	prev := s.latest
	s.mu.Unlock()
	var have []Timestamp
	if prev != nil && prev.Size == cp.Size {
		have = prev.Timestamps
		if len(have) == len(s.authorities) {
			return nil
		}
	}
	n, err := note.Open(cp.Raw, note.VerifierList(s.log.verifier))
	if err != nil {
		return err
	}
	got := append([]Timestamp(nil), have...)
	for _, a := range s.authorities {
		if stampedBy(have, a.URL) {
			continue
		}
		tsr, err := tsa.Request(ctx, s.client, a.URL, []byte(n.Text))
		if err == nil {
			_, err = tsa.Verify(tsr, []byte(n.Text), a.Chain)
		}
		s.mu.Lock()
		if err != nil {
			s.errs[a.URL] = err.Error()
		} else {
			delete(s.errs, a.URL)
		}
		s.mu.Unlock()
		if err != nil {
			slog.WarnContext(ctx, "timestamp authority", "url", a.URL, "size", cp.Size, "err", err)
			continue
		}
		got = append(got, Timestamp{Authority: a.URL, Response: tsr})
	}
	if len(got) == len(have) {
		return nil
	}
	rec := &stampRecord{Checkpoint: string(cp.Raw), Size: cp.Size, Timestamps: got}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := s.annex.Write(ctx, timestampsLatest, b); err != nil {
		return err
	}
	s.mu.Lock()
	s.latest, s.stampedAt = rec, time.Now()
	s.mu.Unlock()
	return nil
}

func stampedBy(ts []Timestamp, url string) bool {
	for _, t := range ts {
		if t.Authority == url {
			return true
		}
	}
	return false
}

// Timestamped returns the newest timestamped checkpoint if it includes the
// entry at index (ok false otherwise, or when the log has no authorities).
// With replicas, another replica's newer record is read from the annex.
func (l *Log) Timestamped(ctx context.Context, index uint64) (Stamped, bool, error) {
	s := l.stamper
	if s == nil {
		return Stamped{}, false, nil
	}
	s.mu.Lock()
	rec := s.latest
	s.mu.Unlock()
	if rec == nil || rec.Size <= index {
		fresh, err := s.load(ctx)
		if errors.Is(err, os.ErrNotExist) {
			return Stamped{}, false, nil
		}
		if err != nil {
			return Stamped{}, false, err
		}
		rec = fresh
	}
	if rec.Size <= index {
		return Stamped{}, false, nil
	}
	cp, _, _, err := log.ParseCheckpoint([]byte(rec.Checkpoint), l.origin, l.verifier)
	if err != nil || cp.Size != rec.Size {
		return Stamped{}, false, fmt.Errorf("kept timestamped checkpoint does not verify: %v", err)
	}
	return Stamped{Published: Published{Raw: []byte(rec.Checkpoint), Size: cp.Size, Root: cp.Hash}, Timestamps: rec.Timestamps}, true, nil
}

// Timestamping says how far timestamping has followed the published
// checkpoint; ok is false when the log has no authorities.
func (l *Log) Timestamping(ctx context.Context) (TimestampState, bool, error) {
	s := l.stamper
	if s == nil {
		return TimestampState{}, false, nil
	}
	cp, err := l.Latest(ctx)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return TimestampState{}, true, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := TimestampState{PublishedSize: cp.Size, StampedAt: s.stampedAt, Errors: map[string]string{}}
	if s.latest != nil {
		st.StampedSize = s.latest.Size
	}
	for k, v := range s.errs {
		st.Errors[k] = v
	}
	return st, true, nil
}
