package readme

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/custody-dev/custody/internal/testenv"
	"github.com/custody-dev/custody/internal/testenv/binaries"
)

// How TestREADME reads README.md:
//
//   - Every fenced block tagged sh, bash or shell runs, in README order,
//     in one bash session (so a variable set in one block is there in the
//     next), with `set -uo pipefail`, in a fresh folder that holds the
//     repository's tracked files as links and is where custodyd runs: the
//     README's relative paths (custody-data/certs/…, examples/…,
//     tools/go.mod) mean there what they mean in a clone.
//   - A block is not run when the line just above its fence is the
//     marker
//
//     <!-- readme-test: skip: WHY -->
//
//     (an HTML comment, so readers of the rendered README do not see it).
//     The first block, which starts the service and runs the tests, is
//     one: the test itself starts custodyd as `go run ./cmd/custodyd`
//     would, in that folder on embedded defaults (only the ports are free
//     ones). A skipped block's ./ and scripts/ paths must still exist.
//   - One command is one logical line: lines ending in a backslash are
//     joined, and lines are added until bash can parse the command.
//     Comment lines are skipped. A command must exit 0.
//   - Placeholders: ev-… is the first evidence id an earlier command
//     printed (the README's first upload); any other … fails the test. A
//     block that needs another item's id can capture it in a shell
//     variable, as a reader would, or a placeholder can be added here. The
//     default addresses
//     127.0.0.1:8443 (gRPC) and 127.0.0.1:8080 (HTTPS) are replaced by the
//     test server's, and CUSTODY_SERVER is set to its gRPC address.
//   - `go build -o OUT ./cmd/NAME` copies the binary internal/testenv/
//     binaries built from the same source instead of building it again;
//     curl runs with --fail-with-body -sS, so an HTTP error fails the
//     command.
//   - Some commands' output is checked beyond the exit status (checks,
//     below), and files the README downloads must equal what it uploaded.

const skipMarker = "<!-- readme-test: skip:"

// evidenceID is how the service writes evidence ids.
var evidenceID = regexp.MustCompile(`\bev-[a-z2-7]{26}\b`)

// checks: a command containing match must print something that matches
// the regular expression want, and nothing that matches notWant. Each must
// match at least one README command, so a check cannot silently stop
// applying.
var checks = []struct{ match, want, notWant string }{
	{"whoami", `urn:custody:\w+:dev-\w+`, ""},
	{" upload ", `ev-[a-z2-7]{26}`, ""},
	{"/metrics", `(?m)^# HELP custody_`, ""},
	{"/v1/keys", `"log_verifier_key":\s*"custody\.local/log\+`, ""},
	{"/openapi.json", `"swagger":\s*"2\.0"`, ""},
	{"/healthz", `\S`, ""},
	{"case_id=ICC-01/22", `"case_id":\s*"ICC-01/22"`, ""},
	{"custody verify", `(?m)^VERIFIED`, `NOT VERIFIED`},
	{"custody report", `(?m)^VERIFIED(.|\n)*report written to report\.html`, `NOT VERIFIED`},
}

// downloads are files the README's commands write, each a copy of the
// README's example photo.
var downloads = []string{"exhibit.jpg", "copy.jpg"}

// block is one runnable fenced block.
type block struct {
	line     int // of the fence, 1-based
	commands []command
	skip     string // why it is not run, if it is not
}

type command struct {
	line int
	text string
}

// parseREADME returns README's shell blocks and their commands.
func parseREADME(t *testing.T, text string) []block {
	t.Helper()
	lines := strings.Split(text, "\n")
	var blocks []block
	for i := 0; i < len(lines); i++ {
		fence := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(fence, "```") {
			continue
		}
		lang := strings.TrimPrefix(fence, "```")
		end := i + 1
		for end < len(lines) && strings.TrimSpace(lines[end]) != "```" {
			end++
		}
		if end == len(lines) {
			t.Fatalf("README.md:%d: the block is never closed", i+1)
		}
		if lang == "sh" || lang == "bash" || lang == "shell" {
			b := block{line: i + 1}
			for j := i - 1; j >= 0; j-- {
				if prev := strings.TrimSpace(lines[j]); prev != "" {
					if why, ok := strings.CutPrefix(prev, skipMarker); ok {
						b.skip = strings.TrimSpace(strings.TrimSuffix(why, "-->"))
						if b.skip == "" {
							t.Fatalf("README.md:%d: a skip marker must say why", j+1)
						}
					}
					break
				}
			}
			b.commands = splitCommands(t, lines[i+1:end], i+2)
			blocks = append(blocks, b)
		}
		i = end
	}
	return blocks
}

// splitCommands joins a block's lines into commands, each as written.
func splitCommands(t *testing.T, lines []string, first int) []command {
	t.Helper()
	var out []command
	var cur []string
	start := 0
	for k, line := range lines {
		if len(cur) == 0 {
			if s := strings.TrimSpace(line); s == "" || strings.HasPrefix(s, "#") {
				continue
			}
			start = first + k
		}
		cur = append(cur, line)
		if strings.HasSuffix(line, "\\") {
			continue
		}
		text := strings.Join(cur, "\n")
		if err := exec.Command("bash", "-n", "-c", text).Run(); err != nil && k < len(lines)-1 {
			continue // not a whole command yet: a quote or construct spans lines
		}
		out = append(out, command{line: start, text: text})
		cur = nil
	}
	if len(cur) > 0 {
		t.Fatalf("README.md:%d: the block ends inside a command", start)
	}
	return out
}

func TestStripComments(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"upload x   # prints ev-…", "upload x   "},
		{"echo 'a # b' \"c#d\" e#f # g", "echo 'a # b' \"c#d\" e#f "},
		{"a \\\n  b # c\nd", "a \\\n  b \nd"},
	} {
		if got := stripComments(tc.in); got != tc.want {
			t.Errorf("stripComments(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestParseREADME: how blocks, markers and commands are read.
func TestParseREADME(t *testing.T) {
	md := "# T\n\n```sh\na=1   # set\n# a comment\necho $a \\\n  two\nif true; then\n  echo x\nfi\n```\n\n" +
		"<!-- readme-test: skip: needs a cluster -->\n```sh\nscripts/test\n```\n\n```json\n{}\n```\n\n```bash\necho 'a\nb'\n```\n"
	blocks := parseREADME(t, md)
	if len(blocks) != 3 {
		t.Fatalf("%d blocks, want 3: %+v", len(blocks), blocks)
	}
	want := []command{{4, "a=1   # set"}, {6, "echo $a \\\n  two"}, {8, "if true; then\n  echo x\nfi"}}
	if got := blocks[0].commands; fmt.Sprint(got) != fmt.Sprint(want) || blocks[0].skip != "" || blocks[0].line != 3 {
		t.Fatalf("block 1: %+v, want commands %+v", blocks[0], want)
	}
	if blocks[1].skip != "needs a cluster" || len(blocks[1].commands) != 1 {
		t.Fatalf("block 2: %+v", blocks[1])
	}
	if got := blocks[2].commands; len(got) != 1 || got[0].text != "echo 'a\nb'" {
		t.Fatalf("block 3: %+v", blocks[2])
	}
}

// TestREADME runs README.md's shell blocks, as written, against a fresh
// custodyd (see the rules above).
func TestREADME(t *testing.T) {
	testenv.RequireFull(t, "custodyd, the custody CLI, curl and grpcurl (README.md's commands)")
	for _, tool := range []string{"bash", "curl", "sha256sum", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed; README.md's commands need it", tool)
		}
	}
	root := binaries.RepoRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := parseREADME(t, string(readme))

	work := t.TempDir()
	linkRepo(t, root, work)
	bin := t.TempDir()
	for _, name := range []string{"custody", "custodyd"} {
		if err := os.Symlink(binaries.Build(t, name), filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	// The first block's `go run ./cmd/custodyd`: custodyd on embedded
	// defaults in the folder the commands run in.
	d := binaries.StartCustodyd(t, work)
	addrs := strings.NewReplacer("127.0.0.1:8443", d.GRPCAddr, "127.0.0.1:8080", d.HTTPAddr)

	sh := startShell(t, work, bin, d.GRPCAddr)
	ran := map[string]int{}
	firstID := ""
	for _, b := range blocks {
		if b.skip != "" {
			t.Logf("README.md:%d: not run: %s", b.line, b.skip)
			checkPaths(t, root, b)
			continue
		}
		for _, c := range b.commands {
			text := addrs.Replace(c.text)
			if strings.Contains(stripComments(text), "ev-…") {
				if firstID == "" {
					t.Fatalf("README.md:%d uses ev-… before any command printed an evidence id:\n%s", c.line, c.text)
				}
				text = strings.ReplaceAll(text, "ev-…", firstID)
			}
			if strings.Contains(stripComments(text), "…") {
				t.Fatalf("README.md:%d has a placeholder (…) this test cannot fill:\n%s", c.line, c.text)
			}
			out, rc := sh.run(t, text, 5*time.Minute)
			t.Logf("README.md:%d: %s\n%s", c.line, text, indent(out))
			if rc != 0 {
				t.Fatalf("README.md:%d exited %d:\n%s\n%s\ncustodyd's log:\n%s", c.line, rc, text, out, tail(d.Logs.String(), 40))
			}
			if firstID == "" {
				firstID = evidenceID.FindString(out)
			}
			for _, ck := range checks {
				if !strings.Contains(c.text, ck.match) {
					continue
				}
				ran[ck.match]++
				if !regexp.MustCompile(ck.want).MatchString(out) || (ck.notWant != "" && regexp.MustCompile(ck.notWant).MatchString(out)) {
					t.Errorf("README.md:%d (%s) printed no %q (or printed %q):\n%s", c.line, c.text, ck.want, ck.notWant, out)
				}
			}
		}
	}
	for _, ck := range checks {
		if ran[ck.match] == 0 {
			t.Errorf("no README command contains %q any more: update the checks in this test", ck.match)
		}
	}
	photo, err := os.ReadFile(filepath.Join(root, "examples", "photo.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range downloads {
		if got, err := os.ReadFile(filepath.Join(work, name)); err != nil || !bytes.Equal(got, photo) {
			t.Errorf("%s, which the README downloads, is not examples/photo.jpg (%v)", name, err)
		}
	}
}

// linkRepo makes dir look like a clone: a link to each of the
// repository's top-level tracked files and folders.
func linkRepo(t *testing.T, root, dir string) {
	t.Helper()
	out, err := exec.Command("git", "-C", root, "ls-files", "-z").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	seen := map[string]bool{}
	for _, f := range strings.Split(string(out), "\x00") {
		top, _, _ := strings.Cut(f, "/")
		if top == "" || seen[top] {
			continue
		}
		seen[top] = true
		if _, err := os.Stat(filepath.Join(root, top)); err != nil {
			continue // deleted in the work tree
		}
		if err := os.Symlink(filepath.Join(root, top), filepath.Join(dir, top)); err != nil {
			t.Fatal(err)
		}
	}
	for _, need := range []string{"go.mod", "examples", "cmd"} {
		if !seen[need] {
			t.Fatalf("git ls-files lists no %s", need)
		}
	}
}

// checkPaths: the repository paths a skipped block names exist.
func checkPaths(t *testing.T, root string, b block) {
	t.Helper()
	for _, c := range b.commands {
		for _, word := range strings.Fields(c.text) {
			if word == "#" {
				break
			}
			if strings.HasPrefix(word, "./") || strings.HasPrefix(word, "scripts/") {
				if _, err := os.Stat(filepath.Join(root, word)); err != nil {
					t.Errorf("README.md:%d names %s, which does not exist", c.line, word)
				}
			}
		}
	}
}

// shell is one bash session that runs commands one at a time.
type shell struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	status *bufio.Scanner
	outDir string
	n      int
}

func startShell(t *testing.T, work, bin, grpcAddr string) *shell {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "bash", "--noprofile", "--norc")
	cmd.Dir = work
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CUSTODY_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "CUSTODY_SERVER="+grpcAddr, "README_TEST_BIN="+bin)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cancel()
		cmd.Wait()
		if stderr.Len() > 0 {
			t.Logf("the shell's own errors:\n%s", stderr.String())
		}
	})
	s := &shell{cmd: cmd, stdin: stdin, status: bufio.NewScanner(stdout), outDir: t.TempDir()}
	prelude := `set -uo pipefail
go() {
  if [ "$#" -eq 4 ] && [ "$1" = build ] && [ "$2" = -o ] && [ "${4#./cmd/}" != "$4" ] && [ -x "$README_TEST_BIN/${4#./cmd/}" ]; then
    cp "$README_TEST_BIN/${4#./cmd/}" "$3"
  else
    command go "$@"
  fi
}
curl() { command curl --fail-with-body -sS "$@"; }
`
	if _, rc := s.run(t, prelude, time.Minute); rc != 0 {
		t.Fatalf("the prelude failed: %d", rc)
	}
	return s
}

// run runs text in the session and returns what it printed (stdout and
// stderr) and its exit status.
func (s *shell) run(t *testing.T, text string, timeout time.Duration) (string, int) {
	t.Helper()
	s.n++
	out := filepath.Join(s.outDir, strconv.Itoa(s.n))
	fmt.Fprintf(s.stdin, "{\n%s\n} </dev/null >%q 2>&1; printf '\\n__readme_status=%%d\\n' $?\n", text, out)
	type result struct {
		rc  int
		err error
	}
	done := make(chan result, 1)
	go func() {
		for s.status.Scan() {
			if v, ok := strings.CutPrefix(s.status.Text(), "__readme_status="); ok {
				rc, err := strconv.Atoi(v)
				done <- result{rc, err}
				return
			}
		}
		done <- result{-1, fmt.Errorf("the shell ended: %v", s.status.Err())}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(timeout):
		s.cmd.Process.Kill()
		r = <-done
		r.err = fmt.Errorf("still running after %v", timeout)
	}
	printed, _ := os.ReadFile(out)
	if r.err != nil {
		t.Fatalf("%s\n%v\n%s", text, r.err, printed)
	}
	return string(printed), r.rc
}

// stripComments drops a command's comments: from a # that starts a word,
// outside quotes, to the end of its line.
func stripComments(text string) string {
	var b strings.Builder
	var quote rune
	comment := false
	prev := ' '
	for _, r := range text {
		switch {
		case comment:
			if r == '\n' {
				comment = false
				b.WriteRune(r)
			}
		case quote != 0:
			if r == quote {
				quote = 0
			}
			b.WriteRune(r)
		case r == '\'' || r == '"':
			quote = r
			b.WriteRune(r)
		case r == '#' && (prev == ' ' || prev == '\t' || prev == '\n'):
			comment = true
		default:
			b.WriteRune(r)
		}
		prev = r
	}
	return b.String()
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return "    (nothing)"
	}
	return "    " + strings.ReplaceAll(tail(s, 30), "\n", "\n    ")
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > lines {
		l = append([]string{fmt.Sprintf("(%d lines before)", len(l)-lines)}, l[len(l)-lines:]...)
	}
	return strings.Join(l, "\n")
}
