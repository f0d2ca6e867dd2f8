// Package miniotest runs a real MinIO server for tests: it finds the binary
// ($MINIO_BIN, then minio on PATH, then a pinned build cached under the user
// cache folder, built with `go install` on first use), starts it on a free
// loopback port with its data in a temporary folder, and stops it when the
// test ends. Nothing skips for want of a server.
package miniotest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/custody-dev/custody/internal/testenv"
	"github.com/custody-dev/custody/internal/testenv/freeport"
)

// Version is the pinned MinIO server release (a Go pseudo-version).
const Version = "v0.0.0-20260212201848-7aac2a2c5b7c"

// Server is a running MinIO server.
type Server struct {
	Endpoint  string // host:port
	AccessKey string
	SecretKey string
	DataDir   string
	// Drives are the folders MinIO stores objects in (DataDir alone for
	// one drive).
	Drives []string

	cmd   *exec.Cmd
	netns string
	logs  *os.File
	bin   string
	done  chan struct{}
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary returns the path of a MinIO server binary, building the pinned
// version if no other is available.
func Binary() (string, error) {
	binOnce.Do(func() { binPath, binErr = findOrBuild() })
	return binPath, binErr
}

func findOrBuild() (string, error) {
	if os.Getenv("MINIO_BIN") == "" {
		if p, err := exec.LookPath("minio"); err == nil {
			return p, nil
		}
	}
	return testenv.Tool("MINIO_BIN", "minio", "github.com/minio/minio", Version)
}

// Start starts a MinIO server for the test and stops it at the end.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartDrives(t, 1)
}

// StartDrives starts a server erasure-coding its objects over n drives
// (folders DataDir/d1 … DataDir/dn, `minio server DataDir/d{1...n}`); with
// four drives it keeps serving reads and writes with one drive gone.
func StartDrives(t testing.TB, n int) *Server {
	t.Helper()
	return StartWith(t, Options{Drives: n})
}

// Options shape a server.
type Options struct {
	// Drives is how many drives it erasure-codes over (default 1).
	Drives int
	// Netns runs the server inside this network namespace (`ip netns
	// exec`), listening on Host, an address of that namespace.
	Netns, Host string
}

// StartWith starts a server as o says.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	testenv.RequireFull(t, "MinIO")
	n := max(o.Drives, 1)
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{
		AccessKey: "custody-test",
		SecretKey: "custody-test-secret",
		DataDir:   t.TempDir(),
		bin:       bin,
	}
	s.Drives = []string{s.DataDir}
	if n > 1 {
		s.Drives = nil
		for i := 1; i <= n; i++ {
			d := filepath.Join(s.DataDir, fmt.Sprintf("d%d", i))
			if err := os.MkdirAll(d, 0o700); err != nil {
				t.Fatal(err)
			}
			s.Drives = append(s.Drives, d)
		}
	}
	s.Endpoint = freeport.Addr(t)
	if o.Netns != "" {
		// A fresh namespace has every port free.
		s.netns, s.Endpoint = o.Netns, net.JoinHostPort(o.Host, "9000")
	}
	s.start(t)
	t.Cleanup(func() { s.Stop(t) })
	return s
}

func (s *Server) start(t testing.TB) {
	t.Helper()
	logs, err := os.CreateTemp("", "minio-log-")
	if err != nil {
		t.Fatal(err)
	}
	s.logs = logs
	args := []string{s.bin, "server", "--quiet", "--address", s.Endpoint, "--console-address", freeport.Addr(t), s.drivesArg()}
	if s.netns != "" {
		// ip execs the server in the namespace: the process is MinIO's.
		args = append([]string{"ip", "netns", "exec", s.netns, s.bin, "server", "--quiet", "--address", s.Endpoint, "--console-address", "127.0.0.1:9001"}, s.drivesArg())
	}
	s.cmd = exec.Command(args[0], args[1:]...)
	s.cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=1",
	)
	s.cmd.Stdout, s.cmd.Stderr = logs, logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.done = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(60 * time.Second)
	raw, err := minio.New(s.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	for time.Now().Before(deadline) {
		// Ready means an S3 call succeeds: /minio/health/ready can answer
		// before the object layer is initialised.
		resp, err := http.Get("http://" + s.Endpoint + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if _, err := raw.ListBuckets(context.Background()); err == nil {
					return
				}
			}
		}
		select {
		case <-s.done:
			out, _ := os.ReadFile(logs.Name())
			t.Fatalf("minio exited during start:\n%s", out)
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("minio not ready after 60s")
}

func (s *Server) drivesArg() string {
	if len(s.Drives) == 1 {
		return s.Drives[0]
	}
	return fmt.Sprintf("%s/d{1...%d}", s.DataDir, len(s.Drives))
}

// Stop stops the server (it can be started again with Restart).
func (s *Server) Stop(t testing.TB) {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
	s.logs.Close()
	os.Remove(s.logs.Name())
}

// Restart starts a stopped server again on the same address and data.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop(t)
	s.start(t)
}

// PID is the server's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }
