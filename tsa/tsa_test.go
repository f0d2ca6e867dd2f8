package tsa_test

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/digitorus/timestamp"

	"github.com/custody-dev/custody/internal/testenv/tsatest"
	"github.com/custody-dev/custody/tsa"
)

const checkpoint = "custody.test/log\n42\nqUqDuc2fbvCMDnWsyDeUXUZV4TnUhfKnA2MfBxx68MY=\n"

// TestRealAuthority timestamps a checkpoint with sigstore's
// timestamp-server on loopback and checks what the verifier accepts and
// refuses.
func TestRealAuthority(t *testing.T) {
	a := tsatest.Start(t, "Custody Test TSA")
	before := time.Now().Add(-time.Second)
	tsr, err := tsa.Request(t.Context(), http.DefaultClient, a.URL, []byte(checkpoint))
	if err != nil {
		t.Fatalf("Request: %v\n%s", err, a.Logs())
	}
	stamp, err := tsa.Verify(tsr, []byte(checkpoint), a.Chain)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if stamp.Time.Before(before.Truncate(time.Second)) || stamp.Time.After(time.Now().Add(time.Second)) || !strings.Contains(stamp.Authority, "Custody Test TSA") {
		t.Fatalf("stamp = %+v; want now, by Custody Test TSA", stamp)
	}
	// Another authority's token (one real server runs at a time: see
	// tsatest), made as a server makes them.
	otherChain, otherKey := tsatest.Chain(t, "Other TSA", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	otherTSR := makeToken(t, otherChain, otherKey, time.Now())
	for _, tc := range []struct {
		name, message string
		tsr           []byte
		chain         []*x509.Certificate
		want          string
	}{
		{"token from another authority", checkpoint, otherTSR, a.Chain, "verifying with chain"},
		{"token over another checkpoint", strings.Replace(checkpoint, "42", "43", 1), tsr, a.Chain, "hashed messages don't match"},
		{"checked against another authority's chain", checkpoint, tsr, otherChain, "verifying with chain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tsa.Verify(tc.tsr, []byte(tc.message), tc.chain)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Verify = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	t.Run("no root given", func(t *testing.T) {
		if _, err := tsa.Verify(tsr, []byte(checkpoint), a.Chain[:1]); err == nil || !strings.Contains(err.Error(), "no root") {
			t.Fatalf("Verify with the leaf alone = %v", err)
		}
	})
}

// TestTimeOutsideValidity signs tokens with a test authority's own key, as
// a real server would not: one dated before its certificate was valid
// fails; the same token dated within the validity verifies, so the first
// failed for its time and nothing else.
func TestTimeOutsideValidity(t *testing.T) {
	chain, key := tsatest.Chain(t, "Short-lived TSA", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	token := func(at time.Time) []byte { return makeToken(t, chain, key, at) }
	if _, err := tsa.Verify(token(time.Now()), []byte(checkpoint), chain); err != nil {
		t.Fatalf("a token dated within the certificate's validity: %v", err)
	}
	_, err := tsa.Verify(token(time.Now().Add(-48*time.Hour)), []byte(checkpoint), chain)
	if err == nil || !strings.Contains(err.Error(), "outside its signing certificate's validity") {
		t.Fatalf("a token dated before the certificate: %v", err)
	}
}

// makeToken signs a timestamp response over checkpoint as a TSA with this
// chain (leaf first) and key would, dated at.
func makeToken(t *testing.T, chain []*x509.Certificate, key crypto.Signer, at time.Time) []byte {
	t.Helper()
	sum := sha256.Sum256([]byte(checkpoint))
	ts := timestamp.Timestamp{
		HashAlgorithm: crypto.SHA256, HashedMessage: sum[:], Time: at,
		Policy: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 2}, SerialNumber: big.NewInt(at.UnixNano()),
		AddTSACertificate: true, Certificates: chain[1 : len(chain)-1],
	}
	tsr, err := ts.CreateResponseWithOpts(chain[0], key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return tsr
}
