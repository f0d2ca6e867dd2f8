package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// FetchPublicKeys reads the service's public keys — log and receipt keys,
// client CA chain, witness policy, timestamp authorities — from its public
// HTTPS route GET /v1/keys, with no client certificate. baseURL is the
// service's HTTPS address ("https://host:8080"); roots verify its
// certificate (nil: the system's). What it returns is only as trustworthy
// as the connection: a court compares the fingerprints of what it got
// with the operator over another channel (verify.Trust).
func FetchPublicKeys(ctx context.Context, baseURL string, roots *x509.CertPool) (*custodyv1.GetPublicKeysResponse, error) {
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots},
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(baseURL, "/")+"/v1/keys", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", req.URL, resp.Status)
	}
	var keys custodyv1.GetPublicKeysResponse
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(body, &keys); err != nil {
		return nil, fmt.Errorf("GET %s: %w", req.URL, err)
	}
	return &keys, nil
}
