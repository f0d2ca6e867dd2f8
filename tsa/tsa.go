// Package tsa owns independent time for the custody log: RFC 3161
// timestamp tokens over checkpoints, requested from timestamp authorities
// and verified against the authority's certificate chain. A token over a
// checkpoint's text says the log had that size and root no later than the
// token's time — a bound the operator cannot move, because the authority
// signs it.
//
// What is stamped is the checkpoint's text (C2SP tlog-checkpoint body:
// origin, size, root hash and any extension lines, each ending in a
// newline), without its signature lines, so that witnesses' cosignatures
// added later do not change it. The message imprint is SHA-256 of those
// bytes. Tokens are kept and served as whole TimeStampResp messages (RFC
// 3161 §2.4.2, DER), with the signer's certificate included.
//
// Verification uses sigstore's timestamp-authority verification package
// (PKCS #7 signature, chain to the given roots, timeStamping extended key
// usage, message imprint), and also requires the token's time to fall
// within the signing certificate's validity.
package tsa

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"time"

	"github.com/digitorus/pkcs7"
	"github.com/digitorus/timestamp"
	"github.com/sigstore/timestamp-authority/v2/pkg/verification"
)

// MaxResponseSize bounds a timestamp response read from an authority.
const MaxResponseSize = 64 << 10

// Request asks the authority at url for a timestamp over message and
// returns its response (DER TimeStampResp), checked to be granted and to
// answer this request (imprint and nonce); its chain is not checked here.
func Request(ctx context.Context, client *http.Client, url string, message []byte) ([]byte, error) {
	nonce, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 63))
	if err != nil {
		return nil, err
	}
	req, err := timestamp.CreateRequest(bytes.NewReader(message), &timestamp.RequestOptions{Hash: crypto.SHA256, Certificates: true, Nonce: nonce})
	if err != nil {
		return nil, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(req))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", "application/timestamp-query")
	resp, err := client.Do(hreq)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseSize+1))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("timestamp authority answered %s", resp.Status)
	}
	if len(body) > MaxResponseSize {
		return nil, fmt.Errorf("timestamp response over %d bytes", MaxResponseSize)
	}
	ts, err := timestamp.ParseResponse(body)
	if err != nil {
		return nil, fmt.Errorf("timestamp response: %w", err)
	}
	if ts.Nonce == nil || ts.Nonce.Cmp(nonce) != 0 {
		return nil, errors.New("timestamp response does not answer this request (nonce)")
	}
	return body, nil
}

// Stamp is what a verified token establishes.
type Stamp struct {
	// Time is the authority's time: the message existed no later.
	Time time.Time
	// Authority is the signing certificate's subject.
	Authority string
}

// Verify checks that tsr (a DER TimeStampResp) is a granted timestamp
// over message, signed by a certificate that chains to one of chain's
// self-signed certificates (the others serve as intermediates) for time
// stamping, at a time within that certificate's validity.
func Verify(tsr, message []byte, chain []*x509.Certificate) (Stamp, error) {
	var roots, intermediates []*x509.Certificate
	for _, c := range chain {
		if bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil {
			roots = append(roots, c)
		} else {
			intermediates = append(intermediates, c)
		}
	}
	if len(roots) == 0 {
		return Stamp{}, errors.New("the authority's chain has no root (self-signed) certificate")
	}
	ts, err := verification.VerifyTimestampResponse(tsr, bytes.NewReader(message), verification.VerifyOpts{Roots: roots, Intermediates: intermediates})
	if err != nil {
		return Stamp{}, err
	}
	p7, err := pkcs7.Parse(ts.RawToken)
	if err != nil {
		return Stamp{}, err
	}
	signer := p7.GetOnlySigner()
	if signer == nil {
		return Stamp{}, errors.New("the token has no single signer")
	}
	if ts.Time.Before(signer.NotBefore) || ts.Time.After(signer.NotAfter) {
		return Stamp{}, fmt.Errorf("the token's time %s is outside its signing certificate's validity (%s to %s)",
			ts.Time.UTC().Format(time.RFC3339), signer.NotBefore.UTC().Format(time.RFC3339), signer.NotAfter.UTC().Format(time.RFC3339))
	}
	return Stamp{Time: ts.Time.UTC(), Authority: signer.Subject.String()}, nil
}
