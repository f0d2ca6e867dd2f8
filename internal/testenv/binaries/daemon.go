package binaries

import (
	"crypto/tls"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/custody-dev/custody/internal/testenv/freeport"
	"github.com/custody-dev/custody/internal/testenv/servertest"
)

// Daemon is a custodyd child process.
type Daemon struct {
	Cmd      *exec.Cmd
	Dir      string // working directory; the data dir is Dir/custody-data
	GRPCAddr string
	HTTPAddr string
	Logs     *servertest.SyncBuffer
	exited   chan error
}

// StartCustodyd runs custodyd in dir with free loopback ports plus args, and
// waits until its HTTPS /healthz answers. The process is killed when the
// test ends if it still runs.
func StartCustodyd(t testing.TB, dir string, args ...string) *Daemon {
	t.Helper()
	return StartCustodydAt(t, dir, freeport.Addr(t), freeport.Addr(t), args...)
}

// StartCustodydAt is StartCustodyd on given addresses, e.g. to restart a
// killed daemon where its clients expect it.
func StartCustodydAt(t testing.TB, dir, grpcAddr, httpAddr string, args ...string) *Daemon {
	t.Helper()
	bin := Build(t, "custodyd")
	d := &Daemon{Dir: dir, GRPCAddr: grpcAddr, HTTPAddr: httpAddr, Logs: &servertest.SyncBuffer{}, exited: make(chan error, 1)}
	d.Cmd = exec.Command(bin, append([]string{"--grpc-addr", d.GRPCAddr, "--http-addr", d.HTTPAddr}, args...)...)
	d.Cmd.Dir = dir
	d.Cmd.Stdout = d.Logs
	d.Cmd.Stderr = d.Logs
	if err := d.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.exited <- d.Cmd.Wait() }()
	t.Cleanup(func() {
		d.Cmd.Process.Kill()
		<-d.exited
	})
	d.waitHealthy(t)
	return d
}

// DataDir is the daemon's default data folder.
func (d *Daemon) DataDir() string { return filepath.Join(d.Dir, "custody-data") }

// CredsDir is the development credential folder of a role.
func (d *Daemon) CredsDir(role string) string { return filepath.Join(d.DataDir(), "certs", role) }

func (d *Daemon) waitHealthy(t testing.TB) {
	t.Helper()
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{
		// Only readiness is probed here; the tests verify the certificate.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-d.exited:
			d.exited <- err
			t.Fatalf("custodyd exited during start: %v\n%s", err, d.Logs)
		default:
		}
		resp, err := hc.Get("https://" + d.HTTPAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("custodyd not healthy after 60s\n%s", d.Logs)
}

// Signal sends sig and waits up to timeout for the process to exit,
// returning its exit error.
func (d *Daemon) Signal(t testing.TB, sig os.Signal, timeout time.Duration) error {
	t.Helper()
	if err := d.Cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.exited:
		d.exited <- err
		return err
	case <-time.After(timeout):
		t.Fatalf("custodyd did not exit within %v of %v\n%s", timeout, sig, d.Logs)
		return nil
	}
}

// Kill kills the process with SIGKILL and waits for it.
func (d *Daemon) Kill(t testing.TB) {
	t.Helper()
	d.Signal(t, syscall.SIGKILL, 10*time.Second)
}
