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
	"io"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc/experimental"

	"github.com/custody-dev/custody/internal/bufpool"
	"github.com/custody-dev/custody/internal/envflag"
)

func main() {
	// Upload chunks are marshalled into pooled buffers: skip zeroing them.
	experimental.SetDefaultBufferPool(&bufpool.Dirty{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := realMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// globalFlags are the flags that go before the command, into g.
func globalFlags(g *globals) *flag.FlagSet {
	fs := flag.NewFlagSet("custody", flag.ContinueOnError)
	fs.StringVar(&g.server, "server", "127.0.0.1:8443", "custodyd gRPC address (env CUSTODY_SERVER)")
	fs.StringVar(&g.creds, "creds", "", "credentials folder with ca.pem, cert.pem, key.pem (env CUSTODY_CREDS)")
	fs.StringVar(&g.output, "o", "text", "output format: text or json (json: one JSON document on stdout)")
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// realMain runs the command line args and returns the exit status.
func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := globals{stdout: stdout, stderr: stderr}
	fs := globalFlags(&g)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		topUsage(stdout, fs)
		return exitOK
	case err != nil:
		err = usagef("%v; run custody -h for the global flags and commands", err)
	default:
		if err = envflag.Apply(fs, "CUSTODY_"); err == nil {
			err = run(ctx, g, fs.Args())
		} else {
			err = usageError{err.Error()}
		}
	}
	if err != nil && !errors.Is(err, errHelp) {
		fmt.Fprintln(stderr, "custody:", err)
	}
	return exitCode(err)
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
	case err == nil, errors.Is(err, errHelp):
		return exitOK
	case errors.As(err, &u):
		return exitUsage
	default:
		return exitFailed
	}
}
