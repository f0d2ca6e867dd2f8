// Command custody is the command-line client of the Custody service, for
// forensic teams and courts. Global flags go before the command:
//
//	custody [--server ADDR] [--creds DIR] [-o text|json] COMMAND [ARGS]
//
// Exit status: 0 done, 1 a check or operation failed, 2 unusable input or
// usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/custody-dev/custody/internal/envflag"
)

const usage = `custody talks to a Custody service.

Usage:
  custody [global flags] COMMAND [ARGS]

Commands:
  whoami       identity and role as the server sees them
  checkpoint   the log's current signed checkpoint
  keys         the log's signed-note verifier key and the receipt public key
  upload FILE|DIR... --case C [--kind photo|video|audio|document|other] [--manifest FILE]
               hash locally, upload, print each file's id and status (uploaded,
               already-held, skipped, failed); one file: its sha256 and signed receipt;
               adds to the case's manifest, custody-manifest-<case>.json
  seizure create --record FILE.json [--attach FILE]... [--case C]
               a biometric-data seizure record, stored encrypted; its record_digests
               must list the sha256 of each attached file (checked before uploading)
  download ID --out FILE --purpose TEXT
               the exact stored bytes, verified while streaming; logged as an access
  history ID   the custody chain
  release ID --to IDENTITY --reason TEXT
               offer an item you hold to a named recipient (signed with your key)
  accept ID    take over an item released to you (signed with your key)
  event ID --type TYPE --note TEXT
               analysis, derivation, submission_to_court or annotation
  bundle ID --out FILE [--checkpoint OLD] [--stream]
               the court bundle: one JSON file that verifies offline (JSON lines,
               the stream form, for histories longer than the server's document limit)
  verify --bundle FILE [--file EVIDENCE] [--log-key KEY] [--receipt-key PEM] [--checkpoint OLD] [--ca PEM] [--policy FILE] [--tsa-chain PEM]...
               offline verification, no network; either bundle form; exit 0 verified
               (with or without limits), 1 not verified, 2 not a well-formed bundle

Global flags:
`

func main() {
	var g globals
	fs := flag.NewFlagSet("custody", flag.ContinueOnError)
	fs.StringVar(&g.server, "server", "127.0.0.1:8443", "custodyd gRPC address (env CUSTODY_SERVER)")
	fs.StringVar(&g.creds, "creds", "", "credentials folder with ca.pem, cert.pem, key.pem (env CUSTODY_CREDS)")
	fs.StringVar(&g.output, "o", "text", "output format: text or json (json: one JSON document on stdout)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(exitUsage)
	}
	if err := envflag.Apply(fs, "CUSTODY_"); err != nil {
		fmt.Fprintln(os.Stderr, "custody:", err)
		os.Exit(exitUsage)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, g, fs.Args())
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "custody:", err)
	}
	os.Exit(exitCode(err))
}

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// usageError marks unusable input: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return usageError{fmt.Sprintf(format, args...)}
}

func exitCode(err error) int {
	var u usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &u):
		return exitUsage
	default:
		return exitFailed
	}
}
