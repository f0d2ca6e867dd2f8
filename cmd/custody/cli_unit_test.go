// Unit tests of the CLI: the command line run in-process (realMain), with
// no server. They run under -short.

package main

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// cli runs a command line in-process and returns its exit status, stdout
// and stderr.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	// An address nothing listens on: a command that reached the network
	// would fail with exit 1, not the status the test expects.
	code := realMain(t.Context(), append([]string{"--server", "127.0.0.1:1", "--creds", t.TempDir()}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestHelpForEveryCommand: `custody help CMD`, `custody CMD -h` and
// `custody CMD --help` print the same help for every command the list
// shows, on stdout, with exit status 0 and nothing on stderr; and the list
// shows every command there is.
func TestHelpForEveryCommand(t *testing.T) {
	listed := map[string]bool{}
	for _, d := range docs {
		listed[strings.Fields(d.name)[0]] = true
		if d.name == "help" {
			continue
		}
		t.Run(d.name, func(t *testing.T) {
			name := strings.Fields(d.name)
			code, want, stderr := cli(t, append([]string{"help"}, name...)...)
			if code != 0 || stderr != "" || !strings.HasPrefix(want, "usage: custody "+d.name) || !strings.Contains(want, d.summary) {
				t.Fatalf("custody help %s: exit %d\nstdout: %s\nstderr: %s", d.name, code, want, stderr)
			}
			for _, h := range []string{"-h", "--help", "-help"} {
				code, got, stderr := cli(t, append(name, h)...)
				if code != 0 || stderr != "" || got != want {
					t.Errorf("custody %s %s: exit %d, stderr %q, stdout differs from custody help %s:\n%s", d.name, h, code, stderr, d.name, got)
				}
			}
			// Flags first, then -h: still the help.
			if code, got, _ := cli(t, append(name, "--bogus-first=1", "-h")...); code != 2 || got != "" {
				t.Errorf("custody %s --bogus-first=1 -h: exit %d, stdout %q; want the unknown flag refused", d.name, code, got)
			}
		})
	}
	for name := range commands {
		if !listed[name] {
			t.Errorf("command %q is missing from custody -h", name)
		}
	}
	for name := range listed {
		if _, ok := commands[name]; !ok && name != "help" {
			t.Errorf("custody -h lists %q, which is no command", name)
		}
	}
	t.Run("groups and the list", func(t *testing.T) {
		for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}, {"seizure", "-h"}, {"help", "seizure"}, {"help", "help"}} {
			code, stdout, stderr := cli(t, args...)
			if code != 0 || stderr != "" || len(stdout) < 50 {
				t.Errorf("custody %v: exit %d\nstdout: %s\nstderr: %s", args, code, stdout, stderr)
			}
		}
		_, top, _ := cli(t, "-h")
		for _, d := range docs {
			if !strings.Contains(top, "  "+d.name) {
				t.Errorf("custody -h does not list %s", d.name)
			}
		}
		if code, _, stderr := cli(t, "help", "frobnicate"); code != 2 || !strings.Contains(stderr, `unknown command "frobnicate"`) {
			t.Errorf("custody help frobnicate: exit %d, %s", code, stderr)
		}
	})
}

// TestUsageErrors: a missing required flag or argument is named, with the
// usage line, exit status 2, before anything is dialled; no output says
// "flag: help requested".
func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	record := filepath.Join(dir, "record.json")
	os.WriteFile(record, []byte(`{}`), 0o600)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"download", "ev-1", "--out", filepath.Join(dir, "x")}, "--purpose is required"},
		{[]string{"download", "ev-1", "--purpose", "trial"}, "--out is required"},
		{[]string{"download", "--out", "x", "--purpose", "p"}, "download needs an item id"},
		{[]string{"release", "ev-1", "--reason", "r"}, "--to is required"},
		{[]string{"release", "ev-1", "--to", "urn:custody:court:c"}, "--reason is required"},
		{[]string{"event", "ev-1", "--note", "n"}, "--type is required"},
		{[]string{"event", "ev-1", "--type", "analysis"}, "--note is required"},
		{[]string{"upload", "a.jpg", "--kind", "photo"}, "--case is required"},
		{[]string{"upload", "a.jpg"}, "--case is required"},
		{[]string{"upload", "--case", "c", "--kind", "photo"}, "upload needs a FILE or DIR"},
		{[]string{"upload", "a.jpg", "--case", "c", "--kind", "photo", "--captured-at", "yesterday"}, `--captured-at "yesterday" is not an RFC 3339 time`},
		{[]string{"upload", "a.jpg", "--case", "c", "--kind", "photo", "--location", "geo:91,0"}, `--location "geo:91,0"`},
		{[]string{"list"}, "--case is required"},
		{[]string{"list", "--case", "c", "--limit", "-1"}, "--limit -1"},
		{[]string{"list", "--case", "c", "extra"}, "list takes no arguments"},
		{[]string{"show"}, "show needs an item id"},
		{[]string{"show", "ev-1", "ev-2"}, "show takes 1 argument(s), got 2"},
		{[]string{"cancel"}, "cancel needs an item id"},
		{[]string{"accept"}, "accept needs an item id"},
		{[]string{"history"}, "history needs an item id"},
		{[]string{"seizure", "get", "ev-1"}, "--purpose is required"},
		{[]string{"seizure", "get", "--purpose", "p"}, "seizure get needs an item id"},
		{[]string{"seizure", "create"}, "--record is required"},
		{[]string{"seizure"}, "custody help seizure"},
		{[]string{"bundle", "ev-1"}, "--out is required"},
		{[]string{"verify"}, "--bundle is required"},
		{[]string{"report", "--out", "r.html"}, "--bundle is required"},
		{[]string{"report", "--bundle", "b.json"}, "--out is required"},
		{[]string{"report", "--bundle", filepath.Join(dir, "none.json"), "--out", filepath.Join(dir, "r.html")}, "none.json"},
		{[]string{"report", "--bundle", record, "--out", filepath.Join(dir, "r.html"), "--log-key", "nonsense"}, "--log-key \"nonsense\""},
		{[]string{"whoami", "extra"}, "whoami takes no arguments"},
		{[]string{"download", "ev-1", "--nope"}, "flag provided but not defined: -nope; run custody help download"},
		{[]string{"-nope", "whoami"}, "flag provided but not defined: -nope"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{}, "no command given"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, stdout, stderr := cli(t, c.args...)
			if code != 2 || !strings.Contains(stderr, c.want) || strings.Contains(stdout+stderr, "help requested") {
				t.Fatalf("exit %d, want 2 naming %q\nstdout: %s\nstderr: %s", code, c.want, stdout, stderr)
			}
		})
	}
}

// TestDownloadKeepsAnExistingFile: --out naming an existing file is
// refused (exit 2) before anything is read, and the file is untouched.
func TestDownloadKeepsAnExistingFile(t *testing.T) {
	out := filepath.Join(t.TempDir(), "exhibit.jpg")
	os.WriteFile(out, []byte("the original"), 0o600)
	code, _, stderr := cli(t, "download", "ev-1", "--out", out, "--purpose", "check")
	if code != 2 || !strings.Contains(stderr, out+" exists") || !strings.Contains(stderr, "--force") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if b, _ := os.ReadFile(out); string(b) != "the original" {
		t.Fatalf("the existing file now holds %q", b)
	}
	// With --force the command goes on to the server (none answers: 1).
	if code, _, stderr := cli(t, "download", "ev-1", "--out", out, "--purpose", "check", "--force"); code != 2 || !strings.Contains(stderr, "ca.pem") {
		// No credentials in the test's folder: a usage error about them,
		// not about the file.
		t.Fatalf("--force: exit %d: %s", code, stderr)
	}
}

// TestVerifyRefusesMalformedKeys: a --log-key or --receipt-key that is not
// a key is unusable input, exit 2, as the help says; a well-formed key
// that is not the log's is a verdict, exit 1.
func TestVerifyRefusesMalformedKeys(t *testing.T) {
	vectors, err := filepath.Abs("../../testdata/verify-vectors")
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(vectors, "bundles", "single-photo.json")
	logKey := filepath.Join(vectors, "trust", "log-key.txt")
	receiptKey := filepath.Join(vectors, "trust", "receipt-key.pem")
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.txt")
	os.WriteFile(garbage, []byte("not a key\n"), 0o600)
	_, otherKey, err := note.GenerateKey(rand.Reader, "custody.test/log")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"the right keys", []string{"--log-key", logKey, "--receipt-key", receiptKey}, 0, ""},
		{"the right key given as text", []string{"--log-key", mustRead(t, logKey), "--receipt-key", receiptKey}, 0, ""},
		{"a log key that is no key", []string{"--log-key", "bogus", "--receipt-key", receiptKey}, 2, `--log-key "bogus" is neither a readable file nor a signed-note verifier key`},
		{"a malformed log key", []string{"--log-key", "custody.test/log+00207292+AAAA", "--receipt-key", receiptKey}, 2, "is not a signed-note verifier key"},
		{"a file holding no log key", []string{"--log-key", garbage, "--receipt-key", receiptKey}, 2, "(read from the file " + garbage + ") is not a signed-note verifier key"},
		{"a receipt key file holding no key", []string{"--log-key", logKey, "--receipt-key", garbage}, 2, "--receipt-key " + garbage + " holds no PEM public key"},
		{"another log's key", []string{"--log-key", otherKey, "--receipt-key", receiptKey}, 1, "verification failed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := cli(t, append([]string{"verify", "--bundle", bundle}, c.args...)...)
			if code != c.code || !strings.Contains(stderr, c.want) {
				t.Fatalf("exit %d, want %d naming %q\nstdout: %s\nstderr: %s", code, c.code, c.want, stdout, stderr)
			}
			if c.code == 2 && stdout != "" {
				t.Errorf("a refused key still printed a verdict:\n%s", stdout)
			}
		})
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestHistoryLine: text history shows the tool and its version where the
// record has them.
func TestHistoryLine(t *testing.T) {
	at := timestamppb.New(mustTime(t, "2026-03-01T10:00:00Z"))
	for _, c := range []struct {
		name string
		ev   *custodyv1.CustodyEvent
		want string
	}{
		{"analysis with a tool", &custodyv1.CustodyEvent{Sequence: 3, RecordedAt: at, Type: custodyv1.EventType_EVENT_TYPE_ANALYSIS, Performer: "urn:custody:custodian:lab",
			Instrument: &custodyv1.Instrument{Name: "forensically", Version: "1.2"}, Note: "ELA: no splicing", LogIndex: 9},
			"#3   2026-03-01 10:00:00Z  analysis             urn:custody:custodian:lab  tool: forensically 1.2  note: ELA: no splicing  [log 9]"},
		{"a tool without a version", &custodyv1.CustodyEvent{Sequence: 4, RecordedAt: at, Type: custodyv1.EventType_EVENT_TYPE_DERIVATION, Performer: "p",
			Instrument: &custodyv1.Instrument{Name: "ffmpeg"}, LogIndex: 10},
			"#4   2026-03-01 10:00:00Z  derivation           p  tool: ffmpeg  [log 10]"},
		{"a hand-off", &custodyv1.CustodyEvent{Sequence: 1, RecordedAt: at, Type: custodyv1.EventType_EVENT_TYPE_RELEASE, Performer: "a", Counterparty: "b", Note: "to the lab", LogIndex: 2},
			"#1   2026-03-01 10:00:00Z  release              a ↔ b  note: to the lab  [log 2]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := historyLine(c.ev); got != c.want {
				t.Fatalf("\n got %q\nwant %q", got, c.want)
			}
		})
	}
}

// TestJSONSpellsEnumsAsText: -o json spells roles, kinds and event types
// as the text output does.
func TestJSONSpellsEnumsAsText(t *testing.T) {
	me := cliJSON(&custodyv1.WhoAmIResponse{Identity: "urn:custody:court:judge-1", Role: custodyv1.Role_ROLE_COURT})
	if me["role"] != "court" || me["identity"] != "urn:custody:court:judge-1" {
		t.Errorf("whoami JSON %v", me)
	}
	ev := cliJSON(&custodyv1.Evidence{EvidenceId: "ev-1", Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_BIOMETRIC_SEIZURE_RECORD, SizeBytes: 5,
		PendingRelease: &custodyv1.PendingRelease{To: "x", ReleaseSequence: 2}})
	if ev["kind"] != "biometric_seizure_record" || ev["size_bytes"] != "5" || ev["pending_release"].(map[string]any)["release_sequence"] != "2" {
		t.Errorf("evidence JSON %v", ev)
	}
	rec := cliJSON(&custodyv1.SeizureRecord{Modalities: []*custodyv1.ModalityData{{Modality: custodyv1.Modality_MODALITY_FINGERPRINT}}})
	if m := rec["modalities"].([]any)[0].(map[string]any); m["modality"] != "fingerprint" {
		t.Errorf("a repeated message's enum: %v", rec)
	}
	e := cliJSON(&custodyv1.CustodyEvent{Type: custodyv1.EventType_EVENT_TYPE_SUBMISSION_TO_COURT, Outcome: custodyv1.Outcome_OUTCOME_FAILED, RecordedAt: timestamppb.New(mustTime(t, "2026-03-01T10:00:00Z"))})
	if e["type"] != "submission_to_court" || e["outcome"] != "failed" || e["recorded_at"] != "2026-03-01T10:00:00Z" {
		t.Errorf("event JSON %v", e)
	}
}

// TestParseLocation: --location is a description, or geo:LAT,LON[,ALT]
// for a point within range.
func TestParseLocation(t *testing.T) {
	alt := 12.5
	for _, c := range []struct {
		in   string
		want *custodyv1.Location
		bad  bool
	}{
		{in: "Main St 5, Utrecht", want: &custodyv1.Location{Description: "Main St 5, Utrecht"}},
		{in: "52.09,5.12", want: &custodyv1.Location{Description: "52.09,5.12"}},
		{in: "geo:52.0907,5.1214", want: &custodyv1.Location{Point: &custodyv1.GeoPoint{Latitude: 52.0907, Longitude: 5.1214}}},
		{in: "geo:-33.86, 151.2, 12.5", want: &custodyv1.Location{Point: &custodyv1.GeoPoint{Latitude: -33.86, Longitude: 151.2, AltitudeM: &alt}}},
		{in: "geo:91,0", bad: true},
		{in: "geo:0,181", bad: true},
		{in: "geo:NaN,0", bad: true},
		{in: "geo:1", bad: true},
		{in: "geo:1,2,3,4", bad: true},
		{in: "geo:north,east", bad: true},
	} {
		t.Run(c.in, func(t *testing.T) {
			got, err := parseLocation(c.in)
			if c.bad {
				if exitCode(err) != exitUsage {
					t.Fatalf("got %v, %v; want a usage error", got, err)
				}
				return
			}
			if err != nil || locationText(got) != locationText(c.want) || got.GetDescription() != c.want.GetDescription() || (got.GetPoint() == nil) != (c.want.GetPoint() == nil) {
				t.Fatalf("got %v, %v; want %v", got, err, c.want)
			}
		})
	}
	c, err := parseCapture("2026-01-31T14:05:00+01:00", "geo:1,2")
	if err != nil || c.GetCapturedAt().AsTime().UTC().Format("15:04") != "13:05" || c.GetLocation().GetPoint().GetLongitude() != 2 {
		t.Fatalf("parseCapture: %v, %v", c, err)
	}
	if c, err := parseCapture("", ""); c != nil || err != nil {
		t.Fatalf("no capture flags: %v, %v", c, err)
	}
}

// TestHints: only a refusal by the authorization table blames the role; a
// custody rule's refusal (not the holder) says so instead.
func TestHints(t *testing.T) {
	const role = "your role cannot do this"
	for _, c := range []struct {
		name   string
		code   codes.Code
		msg    string
		reason custodyv1.ErrorReason
		want   string
		not    string
	}{
		{"not the holder", codes.PermissionDenied, "permission denied: only the current custodian (urn:custody:custodian:lab) can release ev-1",
			custodyv1.ErrorReason_ERROR_REASON_NOT_CUSTODIAN, "you do not hold this item now", role},
		{"the role", codes.PermissionDenied, "permission denied: the auditor role may not call ReleaseCustody",
			custodyv1.ErrorReason_ERROR_REASON_ROLE_NOT_ALLOWED, role, ""},
		{"the role, from a server that states no reason", codes.PermissionDenied, "permission denied: the auditor role may not call ReleaseCustody",
			custodyv1.ErrorReason_ERROR_REASON_UNSPECIFIED, role, ""},
		{"another refusal, no reason", codes.PermissionDenied, "permission denied: the history of special-category item ev-1 is for the court",
			custodyv1.ErrorReason_ERROR_REASON_UNSPECIFIED, "", role},
		{"a release pending", codes.FailedPrecondition, "ev-1 is already released to x",
			custodyv1.ErrorReason_ERROR_REASON_RELEASE_PENDING, "custody cancel ID", role},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := hintFor(c.code, c.msg, c.reason)
			if !strings.Contains(got, c.want) || (c.want == "" && got != "") || (c.not != "" && strings.Contains(got, c.not)) {
				t.Fatalf("hint %q, want %q", got, c.want)
			}
		})
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return at
}
