package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// cmdDoc is what the help says of a command: `custody -h` lists them all,
// `custody help NAME` and `custody NAME -h` print one with its flags.
type cmdDoc struct {
	name    string // as typed: "upload", "seizure create"
	args    string // what follows the name in its usage line
	summary string // what it does, wrapped to fit beside the list
}

// docs lists every command in the order `custody -h` shows them.
var docs = []cmdDoc{
	{"whoami", "", "identity and role as the server sees them"},
	{"checkpoint", "", "the log's current signed checkpoint"},
	{"keys", "[--out TRUST.json] [--url URL]",
		"the trust file: log key, receipt key, client CA chain, witness policy\n" +
			"and timestamp authorities, with fingerprints to read back to the\n" +
			"operator; from the public GET /v1/keys, no client certificate needed"},
	{"list", "--case C [--limit N] [--page-token TOKEN]",
		"a case's items, oldest first: id, kind, file name, size, current\n" +
			"custodian and last event; every page, or --limit items and a token\n" +
			"for the rest"},
	{"show", "ID", "one item: its record, custodian, pending release and last event"},
	{"upload", "FILE|DIR... --case C [--kind photo|video|audio|document|other] [--manifest FILE]\n" +
		"       [--captured-at TIME] [--location TEXT|geo:LAT,LON] [--derived-from ID]",
		"hash locally, upload, print each file's id and status (uploaded,\n" +
			"already-held, skipped, failed); one file: its sha256 and signed receipt;\n" +
			"adds to the case's manifest, custody-manifest-<case>.json"},
	{"seizure create", "--record FILE.json [--attach FILE]... [--case C]",
		"a biometric-data seizure record, stored encrypted; its record_digests\n" +
			"must list the sha256 of each attached file (checked before uploading)"},
	{"seizure get", "ID --purpose TEXT",
		"a seizure record, for those allowed to read it; logged as an access"},
	{"download", "ID --out FILE --purpose TEXT [--force]",
		"the exact stored bytes, verified while streaming; logged as an access;\n" +
			"an existing FILE is kept unless --force"},
	{"history", "ID", "the custody chain"},
	{"release", "ID --to IDENTITY --reason TEXT",
		"offer an item you hold to a named recipient (signed with your key)"},
	{"accept", "ID", "take over an item released to you (signed with your key)"},
	{"cancel", "ID [--reason TEXT]", "withdraw your own pending release of an item"},
	{"event", "ID --type TYPE --note TEXT",
		"analysis, derivation, submission_to_court or annotation"},
	{"bundle", "ID --out FILE [--checkpoint OLD] [--stream]",
		"the court bundle: one JSON file that verifies offline (JSON lines,\n" +
			"the stream form, for histories longer than the server's document limit)"},
	{"verify", "--bundle FILE [--file EVIDENCE] [--trust TRUST.json | --log-key KEY --receipt-key PEM --ca PEM]\n" +
		"       [--policy FILE] [--tsa-chain PEM]... [--checkpoint OLD]",
		"offline verification, no network; either bundle form; exit 0 verified\n" +
			"(with or without limits), 1 not verified, 2 unusable input (a bundle\n" +
			"that is not well-formed, a malformed key or file)"},
	{"report", "--bundle FILE [--file EVIDENCE] [--trust TRUST.json | --log-key KEY --receipt-key PEM --ca PEM]\n" +
		"       [--policy FILE] [--tsa-chain PEM]... [--checkpoint OLD] --out REPORT.html",
		"verify as custody verify does and write the court's custody report: one\n" +
			"self-contained, printable HTML page (verdict in plain words, the item's\n" +
			"facts, a timeline of who held it, every event, the keys' fingerprints,\n" +
			"what was not checked); exit status as custody verify's"},
	{"help", "[COMMAND]", "a command's usage and flags (also: custody COMMAND -h)"},
}

// groups are commands made of subcommands, as `seizure create`.
var groups = map[string]string{"seizure": "biometric-data seizure records"}

const (
	listIndent = "               " // where summaries start in the list
	usageHead  = `custody talks to a Custody service.

Usage:
  custody [global flags] COMMAND [ARGS]

Commands:
`
)

// commandList is the Commands section of `custody -h`.
func commandList(w io.Writer, docs []cmdDoc) {
	for _, d := range docs {
		head := strings.TrimSpace(d.name + " " + strings.ReplaceAll(d.args, "\n       ", "\n"+listIndent))
		lines := strings.Split(d.summary, "\n")
		if len(head) < len(listIndent)-3 && !strings.Contains(head, "\n") {
			fmt.Fprintf(w, "  %-*s%s\n", len(listIndent)-2, head, lines[0])
			lines = lines[1:]
		} else {
			fmt.Fprintf(w, "  %s\n", head)
		}
		for _, l := range lines {
			fmt.Fprintf(w, "%s%s\n", listIndent, l)
		}
	}
}

// topUsage writes `custody -h`: the commands, then the global flags of fs.
func topUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, usageHead)
	commandList(w, docs)
	fmt.Fprint(w, "\nGlobal flags:\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

func docOf(name string) (cmdDoc, bool) {
	for _, d := range docs {
		if d.name == name {
			return d, true
		}
	}
	return cmdDoc{}, false
}

// usageLine is a command's usage line, for help and usage errors.
func usageLine(name string) string {
	d, ok := docOf(name)
	if !ok {
		return "custody " + name
	}
	return strings.TrimSpace("custody " + d.name + " " + strings.ReplaceAll(d.args, "\n       ", "\n        "))
}

// commandHelp writes `custody help NAME`: usage, what it does, its flags.
func commandHelp(w io.Writer, name string, fs *flag.FlagSet) {
	if sub, ok := groups[name]; ok {
		fmt.Fprintf(w, "custody %s: %s\n\nUsage:\n", name, sub)
		var members []cmdDoc
		for _, d := range docs {
			if strings.HasPrefix(d.name, name+" ") {
				members = append(members, d)
			}
		}
		commandList(w, members)
		fmt.Fprintf(w, "\nRun custody help %s SUBCOMMAND for its flags.\n", name)
		return
	}
	d, _ := docOf(name)
	fmt.Fprintf(w, "usage: %s\n\n%s\n", usageLine(name), d.summary)
	hasFlags := false
	if fs != nil {
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	}
	if hasFlags {
		fmt.Fprint(w, "\nFlags (before or after the arguments):\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	fmt.Fprint(w, "\nGlobal flags (--server, --creds, -o) go before the command; custody -h lists them.\n")
}

// errHelp means help was asked for and printed: exit status 0, nothing
// more to say.
var errHelp = errors.New("help shown")

// newFlagSet returns the flag set of command name ("seizure create"). It
// prints nothing itself: parseInterspersed prints the help when asked for
// it and turns other flag errors into usage errors.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseInterspersed parses flags that may come before, between or after
// positional arguments, as in `custody upload a.jpg b.jpg --case C`. -h
// and --help print the command's help to g.stdout and return errHelp.
func parseInterspersed(g globals, fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			commandHelp(g.stdout, fs.Name(), fs)
			return nil, errHelp
		}
		if err != nil {
			return nil, usagef("%s: %v; run custody help %s", fs.Name(), err, fs.Name())
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// required names the first of flags (name, value pairs) left empty, as a
// usage error with the command's usage line.
func required(name string, flags ...string) error {
	for i := 0; i+1 < len(flags); i += 2 {
		if flags[i+1] == "" {
			return usagef("--%s is required\nusage: %s", flags[i], usageLine(name))
		}
	}
	return nil
}

// positionals checks the number of arguments a command takes besides its
// flags.
func positionals(name string, pos []string, want int) error {
	if len(pos) == want {
		return nil
	}
	what := "arguments"
	if d, ok := docOf(name); ok && want == 1 && strings.HasPrefix(d.args, "ID") {
		what = "an item id"
	}
	switch {
	case want == 0:
		return usagef("%s takes no arguments, got %q\nusage: %s", name, pos, usageLine(name))
	case len(pos) == 0:
		return usagef("%s needs %s\nusage: %s", name, what, usageLine(name))
	default:
		return usagef("%s takes %d argument(s), got %d: %q\nusage: %s", name, want, len(pos), pos, usageLine(name))
	}
}

// runHelp is `custody help [COMMAND [SUBCOMMAND]]`. A command's help is
// what `custody COMMAND -h` prints, so for those it returns the arguments
// to run with -h; groups and the list it prints itself.
func runHelp(g globals, args []string) ([]string, error) {
	name := strings.Join(args, " ")
	switch _, group := groups[name]; {
	case len(args) == 0:
		topUsage(g.stdout, globalFlags(&globals{}))
		return nil, errHelp
	case group || name == "help":
		commandHelp(g.stdout, name, nil)
		return nil, errHelp
	}
	if _, ok := docOf(name); !ok {
		return nil, usagef("help: unknown command %q; run custody -h for the list", name)
	}
	return append(append([]string{}, args...), "-h"), nil
}
