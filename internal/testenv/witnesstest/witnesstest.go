// Package witnesstest runs real C2SP tlog-witness servers for tests: the
// transparency-dev omniwitness, pinned and built with `go install` on first
// use (or $OMNIWITNESS_BIN), configured for one log (its origin and
// checkpoint key) and no outside feeders, on a loopback port, keeping its
// state in a SQLite file so that a stopped witness comes back remembering
// the last checkpoint it cosigned.
package witnesstest

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	f_note "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/custody-dev/custody/internal/testenv"
	"github.com/custody-dev/custody/internal/testenv/freeport"
)

// Version is the pinned omniwitness (github.com/transparency-dev/witness).
const Version = "v0.0.0-20260720115447-2e1c6971d19e"

// Witness is a running (or stopped) omniwitness.
type Witness struct {
	// Name is the witness's key name; VKey its cosignature/v1 verifier
	// key, as a witness policy names it; URL its base URL (POST
	// URL+"/add-checkpoint").
	Name, VKey, URL string

	dir, addr string
	bin       string
	cmd       *exec.Cmd
	done      chan struct{}
	logs      *os.File
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary returns the path of the omniwitness binary, building the pinned
// version if no other is available.
func Binary() (string, error) {
	binOnce.Do(func() { binPath, binErr = findOrBuild() })
	return binPath, binErr
}

func findOrBuild() (string, error) {
	return testenv.Tool("OMNIWITNESS_BIN", "omniwitness", "github.com/transparency-dev/witness/cmd/omniwitness", Version)
}

// Start starts a witness named name that witnesses the log with origin and
// checkpoint verifier key logVKey, and stops it when the test ends.
func Start(t testing.TB, name, origin, logVKey string) *Witness {
	t.Helper()
	testenv.RequireFull(t, "omniwitness")
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	cosigVKey, err := f_note.VKeyToCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	w := &Witness{Name: name, VKey: cosigVKey, dir: t.TempDir(), bin: bin, addr: freeport.Addr(t)}
	w.URL = "http://" + w.addr
	if err := os.WriteFile(filepath.Join(w.dir, "witness.key"), []byte(skey), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := fmt.Sprintf("Logs:\n  - Origin: %q\n    PublicKey: %q\n    URL: %q\n", origin, logVKey, "https://"+origin+"/")
	if err := os.WriteFile(filepath.Join(w.dir, "logs.yaml"), []byte(logs), 0o600); err != nil {
		t.Fatal(err)
	}
	w.Restart(t)
	t.Cleanup(w.Stop)
	return w
}

// Restart starts a stopped witness again on the same address, with the
// state it had.
func (w *Witness) Restart(t testing.TB) {
	t.Helper()
	logs, err := os.OpenFile(filepath.Join(w.dir, "omniwitness.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	w.logs = logs
	w.cmd = exec.Command(w.bin,
		"--listen", w.addr,
		"--metrics_listen", "",
		"--db_file", filepath.Join(w.dir, "witness.db"),
		"--private_key_path", filepath.Join(w.dir, "witness.key"),
		"--additional_logs", filepath.Join(w.dir, "logs.yaml"),
	)
	w.cmd.Stdout, w.cmd.Stderr = logs, logs
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.done = make(chan struct{})
	go func() { w.cmd.Wait(); close(w.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		// The handler answers a GET on the POST-only route with 405 once
		// it serves.
		resp, err := http.Get(w.URL + "/add-checkpoint")
		if err == nil {
			resp.Body.Close()
			return
		}
		select {
		case <-w.done:
			out, _ := os.ReadFile(logs.Name())
			t.Fatalf("omniwitness exited at start:\n%s", out)
		case <-time.After(50 * time.Millisecond):
		}
	}
	out, _ := os.ReadFile(logs.Name())
	t.Fatalf("omniwitness did not start within 30s:\n%s", out)
}

// Stop stops the witness (it keeps its state for Restart).
func (w *Witness) Stop() {
	if w.cmd == nil || w.cmd.Process == nil {
		return
	}
	select {
	case <-w.done:
	default:
		w.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-w.done:
		case <-time.After(10 * time.Second):
			w.cmd.Process.Kill()
			<-w.done
		}
	}
	w.cmd = nil
	w.logs.Close()
}

// Logs returns what the witness has printed.
func (w *Witness) Logs() string {
	b, _ := os.ReadFile(filepath.Join(w.dir, "omniwitness.log"))
	return string(b)
}

// PolicyLine is the witness's line in a witness policy file.
func (w *Witness) PolicyLine() string {
	return fmt.Sprintf("witness %s %s %s", w.Name, w.VKey, w.URL)
}
