package client

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"time"

	"context"

	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/custody-dev/custody/events"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// sign signs a hand-off statement with the key behind the caller's client
// certificate, through sigstore's signature package.
func (c *Client) sign(statement []byte, at time.Time) (*custodyv1.PartySignature, error) {
	signer, ok := c.creds.Certificate.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("client: the credential's private key cannot sign")
	}
	sv, err := signature.LoadSignerVerifier(signer, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("client: signing key: %w", err)
	}
	sig, err := sv.SignMessage(bytes.NewReader(statement))
	if err != nil {
		return nil, fmt.Errorf("client: signing the hand-off: %w", err)
	}
	return &custodyv1.PartySignature{Signature: sig, Certificate: c.creds.Leaf.Raw, SignedAt: timestamppb.New(at)}, nil
}

// identityURI is the caller's identity as the certificate states it.
func (c *Client) identityURI() (string, error) {
	for _, u := range c.creds.Leaf.URIs {
		if s := u.String(); len(s) > 12 && s[:12] == "urn:custody:" {
			return s, nil
		}
	}
	return "", errors.New("client: the credential has no urn:custody identity")
}

// Release offers an item the caller holds to the identity to (a
// urn:custody URI), signed with the caller's key.
func (c *Client) Release(ctx context.Context, evidenceID, to, reason string) (*custodyv1.ReleaseCustodyResponse, error) {
	me, err := c.identityURI()
	if err != nil {
		return nil, err
	}
	ev, err := c.GetEvidence(ctx, evidenceID)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	statement, err := events.ReleaseStatement(evidenceID, ev.GetSha256(), me, to, reason, now)
	if err != nil {
		return nil, err
	}
	sig, err := c.sign(statement, now)
	if err != nil {
		return nil, err
	}
	return c.custody.ReleaseCustody(ctx, &custodyv1.ReleaseCustodyRequest{EvidenceId: evidenceID, To: to, Reason: reason, Signature: sig})
}

// Accept takes over an item released to the caller, signed with the
// caller's key.
func (c *Client) Accept(ctx context.Context, evidenceID string) (*custodyv1.AcceptCustodyResponse, error) {
	me, err := c.identityURI()
	if err != nil {
		return nil, err
	}
	ev, err := c.GetEvidence(ctx, evidenceID)
	if err != nil {
		return nil, err
	}
	p := ev.GetPendingRelease()
	if p == nil {
		return nil, fmt.Errorf("%s has no pending release", evidenceID)
	}
	now := time.Now().UTC()
	statement, err := events.AcceptStatement(evidenceID, ev.GetSha256(), ev.GetCustodian(), me, p.GetReleaseSequence(), now)
	if err != nil {
		return nil, err
	}
	sig, err := c.sign(statement, now)
	if err != nil {
		return nil, err
	}
	return c.custody.AcceptCustody(ctx, &custodyv1.AcceptCustodyRequest{EvidenceId: evidenceID, ReleaseSequence: p.GetReleaseSequence(), Signature: sig})
}

// CancelRelease withdraws the caller's pending release of an item.
func (c *Client) CancelRelease(ctx context.Context, evidenceID, reason string) (*custodyv1.CancelReleaseResponse, error) {
	return c.custody.CancelRelease(ctx, &custodyv1.CancelReleaseRequest{EvidenceId: evidenceID, Reason: reason})
}

// RecordEvent records analysis, derivation, submission to court or an
// annotation.
func (c *Client) RecordEvent(ctx context.Context, req *custodyv1.RecordEventRequest) (*custodyv1.RecordEventResponse, error) {
	return c.custody.RecordEvent(ctx, req)
}

// History returns an item's custody chain.
func (c *Client) History(ctx context.Context, evidenceID string) ([]*custodyv1.CustodyEvent, error) {
	var all []*custodyv1.CustodyEvent
	err := c.HistoryPages(ctx, evidenceID, func(page []*custodyv1.CustodyEvent) error {
		all = append(all, page...)
		return nil
	})
	return all, err
}

// HistoryPages calls fn with each page of an item's custody chain in
// order, so a history of any length can be read in bounded memory.
func (c *Client) HistoryPages(ctx context.Context, evidenceID string, fn func([]*custodyv1.CustodyEvent) error) error {
	token := ""
	for {
		resp, err := c.custody.ListEvents(ctx, &custodyv1.ListEventsRequest{EvidenceId: evidenceID, PageSize: 500, PageToken: token})
		if err != nil {
			return err
		}
		if err := fn(resp.GetEvents()); err != nil {
			return err
		}
		if token = resp.GetNextPageToken(); token == "" {
			return nil
		}
	}
}

// LastEvent returns the latest event of an item's custody chain.
func (c *Client) LastEvent(ctx context.Context, evidenceID string) (*custodyv1.CustodyEvent, error) {
	var last *custodyv1.CustodyEvent
	err := c.HistoryPages(ctx, evidenceID, func(page []*custodyv1.CustodyEvent) error {
		if len(page) > 0 {
			last = page[len(page)-1]
		}
		return nil
	})
	if err == nil && last == nil {
		err = fmt.Errorf("client: the service returned no events for %s", evidenceID)
	}
	return last, err
}

// Custody returns the raw CustodyService client, for calls this package
// does not wrap.
func (c *Client) Custody() custodyv1.CustodyServiceClient { return c.custody }

// Bundle returns an item's court bundle, the JSON document that verifies
// offline (package verify). consistencyFrom, if not 0, asks for a
// consistency proof from a checkpoint of that size seen before.
func (c *Client) Bundle(ctx context.Context, evidenceID string, consistencyFrom uint64) ([]byte, error) {
	resp, err := c.custody.GetBundle(ctx, &custodyv1.GetBundleRequest{EvidenceId: evidenceID, ConsistencyFromSize: consistencyFrom})
	return resp.GetBundle().GetData(), err
}

// StreamBundle writes an item's bundle in the stream form (JSON lines,
// docs/BUNDLE.md) to w as it arrives: the form for histories too long for
// one document. It returns the number of event lines written.
func (c *Client) StreamBundle(ctx context.Context, evidenceID string, consistencyFrom uint64, w io.Writer) (int, error) {
	stream, err := c.custody.StreamBundle(ctx, &custodyv1.StreamBundleRequest{EvidenceId: evidenceID, ConsistencyFromSize: consistencyFrom})
	if err != nil {
		return 0, err
	}
	lines := 0
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return lines - 1, nil
		}
		if err != nil {
			return 0, err
		}
		if _, err := w.Write(append(msg.GetLine(), '\n')); err != nil {
			return 0, err
		}
		lines++
	}
}

// VerifyEvidence asks the server to re-hash the stored bytes and re-check
// the item's log entries; the check is logged as a verification event.
func (c *Client) VerifyEvidence(ctx context.Context, evidenceID string) (*custodyv1.VerifyEvidenceResponse, error) {
	return c.custody.VerifyEvidence(ctx, &custodyv1.VerifyEvidenceRequest{EvidenceId: evidenceID})
}

// SignCapture signs the capture statement (events.CaptureStatement: the
// digest, size, case, capture time and the caller's identity) with the key
// behind the caller's certificate and attaches it to meta, binding the
// item to its collector from the first moment. Call it at capture, when
// the hash is computed; meta needs Sha256, SizeBytes and CaseId.
func (c *Client) SignCapture(meta *custodyv1.UploadMetadata) error {
	sig, err := c.signCapture(meta, meta.GetSha256())
	if err != nil {
		return err
	}
	meta.CollectorSignature = sig
	return nil
}

// signCapture signs the capture statement of meta's item with digest sum.
func (c *Client) signCapture(meta *custodyv1.UploadMetadata, sum string) (*custodyv1.PartySignature, error) {
	me, err := c.identityURI()
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	var capturedAt time.Time
	if t := meta.GetCapture().GetCapturedAt(); t != nil {
		capturedAt = t.AsTime()
	}
	stmt, err := events.CaptureStatement(sum, meta.GetSizeBytes(), meta.GetCaseId(), me, capturedAt, now)
	if err != nil {
		return nil, err
	}
	return c.sign(stmt, now)
}
