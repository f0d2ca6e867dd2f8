package verify_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custody-dev/custody/verify"
)

// vectorTrust is the trust file of the conformance vectors' operator,
// made from the files in testdata/verify-vectors/trust.
func vectorTrust(t *testing.T) *verify.Trust {
	t.Helper()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(vectorDir, "trust", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	tr, err := verify.NewTrust("custody.test/log", strings.TrimSpace(read("log-key.txt")), read("receipt-key.pem"), read("ca.pem"),
		read("witness-policy.txt"), []verify.TrustAuthority{{URL: "https://tsa.example/", ChainPEM: read("tsa-chain.pem")}})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestTrustFile: a trust file gives the verifier everything a court brings
// (keys, CA, witness policy, authorities), so a bundle verifies with
// nothing else; it reads strictly, and a file whose keys were edited
// without its fingerprints is refused rather than trusted.
func TestTrustFile(t *testing.T) {
	tr := vectorTrust(t)
	raw, err := json.MarshalIndent(tr, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	read, err := verify.ParseTrust(raw)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := read.Options()
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := os.ReadFile(filepath.Join(vectorDir, "bundles", "single-photo.json"))
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(filepath.Join(vectorDir, "files", "single-photo.bin"))
	if err != nil {
		t.Fatal(err)
	}
	opts.File = bytes.NewReader(file)
	if r := verify.VerifyBytes(bundle, opts); r.Outcome != verify.OutcomeVerified {
		t.Fatalf("with the trust file: %s, failures %v, not checked %v", r.Outcome, r.Failures(), r.NotChecked)
	}
	// The receipt key's fingerprint is the receipt key id, grouped.
	var b struct {
		Events []struct {
			Receipt struct {
				KeyID string `json:"key_id"`
			} `json:"receipt"`
		} `json:"events"`
	}
	json.Unmarshal(bundle, &b)
	if got := strings.ToLower(strings.ReplaceAll(tr.Fingerprints.ReceiptPublicKey, " ", "")); got != b.Events[0].Receipt.KeyID {
		t.Fatalf("receipt key fingerprint %s, key id %s", got, b.Events[0].Receipt.KeyID)
	}
	if len(tr.Fingerprints.ClientCA) == 0 || len(tr.Fingerprints.TimestampAuthorities) == 0 || tr.Fingerprints.WitnessPolicy == "" {
		t.Fatalf("fingerprints missing: %+v", tr.Fingerprints)
	}

	for _, tc := range []struct {
		name, want string
		edit       func(m map[string]any)
	}{
		{"another log key, same fingerprints", "fingerprints do not match", func(m map[string]any) {
			m["log_verifier_key"] = strings.Replace(m["log_verifier_key"].(string), "+", "x+", 1)
		}},
		{"the witness quorum lowered", "fingerprints do not match", func(m map[string]any) {
			m["witness_policy"] = strings.Replace(m["witness_policy"].(string), "group both all A B", "group both any A B", 1)
		}},
		{"an unknown key", "unknown key", func(m map[string]any) { m["log_key"] = "x" }},
		{"no receipt key", `lacks "receipt_public_key_pem"`, func(m map[string]any) { delete(m, "receipt_public_key_pem") }},
		{"another format", "not a Custody trust file", func(m map[string]any) { m["format"] = "custody-bundle" }},
		{"a private key as the CA", "not a certificate", func(m map[string]any) {
			m["client_ca_pem"] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
			tc.edit(m)
			edited, _ := json.Marshal(m)
			if _, err := verify.ParseTrust(edited); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseTrust: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
