package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/custody-dev/custody/certs"
	"github.com/custody-dev/custody/client"
	"github.com/custody-dev/custody/internal/atomicfile"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
	"github.com/custody-dev/custody/verify"
)

// globals are the flags that go before the command.
type globals struct {
	server string
	creds  string
	output string
	stdout io.Writer
	stderr io.Writer
}

type command struct {
	run func(ctx context.Context, g globals, args []string) error
}

var commands = map[string]command{
	"whoami":     {runWhoAmI},
	"checkpoint": {runCheckpoint},
	"keys":       {runKeys},
	"list":       {runList},
	"show":       {runShow},
	"upload":     {runUpload},
	"download":   {runDownload},
	"seizure":    {runSeizure},
	"history":    {runHistory},
	"release":    {runRelease},
	"accept":     {runAccept},
	"cancel":     {runCancel},
	"event":      {runEvent},
	"bundle":     {runBundle},
	"verify":     {runVerify},
	"report":     {runReport},
}

// protoMap renders a message as a JSON-ready map with proto field names.
func protoMap(m proto.Message) map[string]any {
	b, _ := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	var out map[string]any
	json.Unmarshal(b, &out)
	return out
}

func run(ctx context.Context, g globals, args []string) error {
	if g.output != "text" && g.output != "json" {
		return usagef("-o %q: want text or json", g.output)
	}
	if g.stdout == nil {
		g.stdout = os.Stdout
	}
	if g.stderr == nil {
		g.stderr = os.Stderr
	}
	if len(args) == 0 {
		return usagef("no command given; run custody -h for the list")
	}
	if args[0] == "help" {
		var err error
		if args, err = runHelp(g, args[1:]); err != nil {
			return err
		}
	}
	cmd, ok := commands[args[0]]
	if !ok {
		return usagef("unknown command %q; run custody -h for the list", args[0])
	}
	return cmd.run(ctx, g, args[1:])
}

// dial connects with the global flags.
func dial(ctx context.Context, g globals) (*client.Client, error) {
	creds, err := client.LoadCredentials(g.creds)
	if err != nil {
		return nil, usageError{err.Error()}
	}
	return client.Dial(ctx, g.server, creds)
}

// rpcError makes a call's error readable: the status message without the
// "rpc error: code = ..." wrapping, the code in words, and what to do.
func rpcError(what string, err error) error {
	s, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s: %w", what, err)
	}
	msg := fmt.Sprintf("%s: %s (%s)", what, s.Message(), codeWords(s.Code()))
	if hint := hintFor(s.Code(), s.Message(), client.ErrorReason(err)); hint != "" {
		msg += "\n  " + hint
	}
	return errors.New(msg)
}

// codeWords is a status code in words: PermissionDenied is "permission
// denied".
func codeWords(c codes.Code) string {
	var b strings.Builder
	for i, r := range c.String() {
		if i > 0 && unicode.IsUpper(r) {
			b.WriteByte(' ')
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// hintFor says what a person can do about an error. The service names
// why it refused (reason): only a refusal by the authorization table is
// about the caller's role; the custody rules refuse what the caller may do
// with one item now, e.g. release an item somebody else holds.
func hintFor(code codes.Code, msg string, reason custodyv1.ErrorReason) string {
	switch reason {
	case custodyv1.ErrorReason_ERROR_REASON_ROLE_NOT_ALLOWED:
		return roleHint
	case custodyv1.ErrorReason_ERROR_REASON_NOT_CUSTODIAN:
		return "you do not hold this item now: custody show ID names its current custodian"
	case custodyv1.ErrorReason_ERROR_REASON_NOT_RECIPIENT:
		return "the item is released to somebody else: custody show ID names the recipient"
	case custodyv1.ErrorReason_ERROR_REASON_RELEASE_PENDING:
		return "withdraw the pending release first (custody cancel ID), or wait for its recipient"
	}
	switch {
	case strings.Contains(msg, "certificate signed by unknown authority"), strings.Contains(msg, "x509:"):
		return "the server's certificate is not from the CA in your credentials (ca.pem): check --server and --creds"
	case strings.Contains(msg, "connection refused"), strings.Contains(msg, "no such host"), strings.Contains(msg, "i/o timeout"):
		return "no Custody server answers there: check --server (or CUSTODY_SERVER) and your network"
	case strings.Contains(msg, "expired"):
		return "your certificate has expired: ask your operator for a new credential"
	case strings.Contains(msg, "revoked"):
		return "your certificate was revoked: contact your operator"
	case code == codes.Unauthenticated:
		return "check --creds: the folder must hold ca.pem, cert.pem and key.pem from your operator"
	case code == codes.PermissionDenied && reason == custodyv1.ErrorReason_ERROR_REASON_UNSPECIFIED && strings.Contains(msg, "role may not call"):
		// A server that states no reasons: its table's refusals say this.
		return roleHint
	case strings.Contains(msg, "rate limit"):
		return "you are sending too fast: wait a moment and run the command again"
	case code == codes.ResourceExhausted:
		return "a limit was reached (size, streams or quota): split the work or ask your operator to raise it"
	case strings.Contains(msg, "SHA-256 mismatch"):
		return "the bytes sent are not the bytes hashed: the file changed or was damaged; check it and upload again"
	case code == codes.Unavailable, code == codes.Aborted:
		return "a temporary failure: run the same command again; uploads resume where they stopped"
	}
	return ""
}

// noArgs parses the flags of a command that takes neither arguments nor
// flags of its own: -h still prints its help.
const roleHint = "your role cannot do this; see docs/AUTHORIZATION.md or ask your operator"

func noArgs(g globals, name string, args []string) error {
	pos, err := parseInterspersed(g, newFlagSet(name), args)
	if err != nil {
		return err
	}
	return positionals(name, pos, 0)
}

// printProto writes m as JSON (field names as in the proto).
func printProto(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{UseProtoNames: true, Multiline: true}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func runWhoAmI(ctx context.Context, g globals, args []string) error {
	if err := noArgs(g, "whoami", args); err != nil {
		return err
	}
	c, err := dial(ctx, g)
	if err != nil {
		return err
	}
	defer c.Close()
	me, err := c.WhoAmI(ctx)
	if err != nil {
		return rpcError("whoami", err)
	}
	// Text and JSON spell the role the same way: as the docs and the
	// credential folders name it (court, not ROLE_COURT).
	if g.output == "json" {
		return printJSON(g.stdout, cliJSON(me))
	}
	role := enumName(me.GetRole().Descriptor(), me.GetRole().Number())
	fmt.Fprintf(g.stdout, "identity: %s\nrole:     %s\nsubject:  %s\nserial:   %s\nexpires:  %s\n",
		me.GetIdentity(), role, me.GetSubject(), me.GetSerialNumber(), me.GetNotAfter().AsTime().Format("2006-01-02 15:04:05 MST"))
	return nil
}

func runCheckpoint(ctx context.Context, g globals, args []string) error {
	if err := noArgs(g, "checkpoint", args); err != nil {
		return err
	}
	c, err := dial(ctx, g)
	if err != nil {
		return err
	}
	defer c.Close()
	cp, err := c.Checkpoint(ctx)
	if err != nil {
		return rpcError("checkpoint", err)
	}
	if g.output == "json" {
		return printProto(g.stdout, cp)
	}
	_, err = g.stdout.Write(cp.GetCheckpoint())
	return err
}

func runKeys(ctx context.Context, g globals, args []string) error {
	fs := newFlagSet("keys")
	out := fs.String("out", "", "write the trust file (keys, CA chain, witness policy, timestamp authorities, fingerprints) to this file, for custody verify --trust")
	baseURL := fs.String("url", "", "custodyd's HTTPS address (default https://HOST:8080, HOST from --server); no client certificate is needed")
	pos, err := parseInterspersed(g, fs, args)
	if err != nil {
		return err
	}
	if err := positionals("keys", pos, 0); err != nil {
		return err
	}
	if *baseURL == "" {
		host, _, err := net.SplitHostPort(g.server)
		if err != nil {
			return usagef("--server %q: %v", g.server, err)
		}
		*baseURL = "https://" + net.JoinHostPort(host, "8080")
	}
	// The server's certificate: the credentials folder's CA when there is
	// one (the development CA), else the system's roots.
	var roots *x509.CertPool
	if g.creds != "" {
		if roots, err = certs.ReadCertPool(filepath.Join(g.creds, "ca.pem")); err != nil {
			return usageError{err.Error()}
		}
	}
	keys, err := client.FetchPublicKeys(ctx, *baseURL, roots)
	if err != nil {
		return fmt.Errorf("keys: %w\n  the keys are served at GET %s/v1/keys; give --url, or --creds DIR whose ca.pem signed the server's certificate", err, *baseURL)
	}
	var authorities []verify.TrustAuthority
	for _, a := range keys.GetTimestampAuthorities() {
		authorities = append(authorities, verify.TrustAuthority{URL: a.GetUrl(), ChainPEM: a.GetChainPem()})
	}
	trust, err := verify.NewTrust(keys.GetLogOrigin(), keys.GetLogVerifierKey(), keys.GetReceiptPublicKeyPem(), keys.GetClientCaPem(), keys.GetWitnessPolicy(), authorities)
	if err != nil {
		return fmt.Errorf("keys: the server's answer: %w", err)
	}
	doc, err := json.MarshalIndent(trust, "", "  ")
	if err != nil {
		return err
	}
	if *out != "" {
		if err := atomicfile.Write(*out, append(doc, '\n'), 0o644); err != nil {
			return err
		}
	}
	if g.output == "json" {
		_, err := g.stdout.Write(append(doc, '\n'))
		return err
	}
	printTrust(g.stdout, trust)
	if *out != "" {
		fmt.Fprintf(g.stdout, "\ntrust file written to %s: custody verify --bundle B --trust %s\n", *out, *out)
	}
	fmt.Fprint(g.stdout, "\nRead the fingerprints back to the operator over another channel (a phone call) before you rely on these keys:\nthis connection alone does not prove whose they are.\n")
	return nil
}

// printTrust writes a trust file's keys and their fingerprints.
func printTrust(w io.Writer, t *verify.Trust) {
	fp := t.Fingerprints
	fmt.Fprintf(w, "log origin:          %s\nlog verifier key:    %s\n  fingerprint:       %s\nreceipt public key:  fingerprint %s\n",
		t.LogOrigin, t.LogVerifierKey, fp.LogVerifierKey, fp.ReceiptPublicKey)
	for i, f := range fp.ClientCA {
		fmt.Fprintf(w, "client CA cert %d:    fingerprint %s\n", i+1, f)
	}
	if fp.WitnessPolicy != "" {
		fmt.Fprintf(w, "witness policy:      fingerprint %s\n", fp.WitnessPolicy)
	}
	for _, a := range t.TimestampAuthorities {
		fmt.Fprintf(w, "timestamp authority: %s\n", a.URL)
	}
	for i, f := range fp.TimestampAuthorities {
		fmt.Fprintf(w, "  TSA chain cert %d:  fingerprint %s\n", i+1, f)
	}
}
