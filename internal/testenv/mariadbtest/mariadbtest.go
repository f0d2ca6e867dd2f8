// Package mariadbtest runs a real MariaDB server for tests: Debian's
// mariadb-server binaries (mariadb-install-db, mariadbd) with a temporary
// data folder on a free loopback port, stopped when the test ends. It is
// the MySQL-compatible sequencing database of the shared custody log.
package mariadbtest

import (
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/custody-dev/custody/internal/testenv"
	"github.com/custody-dev/custody/internal/testenv/freeport"
)

// Server is a running MariaDB.
type Server struct {
	// Addr is host:port.
	Addr string
	dir  string
}

func binary() (string, error) {
	for _, p := range []string{"/usr/sbin/mariadbd", "/usr/sbin/mysqld"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no MariaDB server binary: apt-get install mariadb-server (scripts/test does)")
}

// Start starts a server with an empty data folder.
func Start(t testing.TB) *Server {
	t.Helper()
	testenv.RequireFull(t, "MariaDB")
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "mariadbtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	data := filepath.Join(dir, "data")
	user := "root"
	if os.Geteuid() != 0 {
		user = ""
	}
	install := exec.Command("mariadb-install-db", "--no-defaults", "--datadir="+data, "--auth-root-authentication-method=normal", "--skip-test-db")
	if user != "" {
		install.Args = append(install.Args, "--user="+user)
	}
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	port := freeport.Port(t)
	args := []string{"--no-defaults", "--datadir=" + data, "--bind-address=127.0.0.1", "--port=" + strconv.Itoa(port),
		"--socket=" + filepath.Join(dir, "sock"), "--pid-file=" + filepath.Join(dir, "pid"),
		"--skip-name-resolve", "--max-connections=500", "--innodb-flush-log-at-trx-commit=2",
		"--log-error=" + filepath.Join(dir, "log")}
	if user != "" {
		args = append(args, "--user="+user)
	}
	srv := exec.Command(bin, args...)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { srv.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			srv.Process.Kill()
		}
	})
	s := &Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), dir: dir}
	db, err := sql.Open("mysql", s.dsn("mysql"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(60 * time.Second)
	for db.Ping() != nil {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "log"))
			t.Fatalf("mariadb did not start:\n%s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return s
}

func (s *Server) dsn(db string) string {
	c := mysql.NewConfig()
	c.User, c.Net, c.Addr, c.DBName = "root", "tcp", s.Addr, db
	return c.FormatDSN()
}

// NewDatabase creates an empty database and returns its DSN.
func (s *Server) NewDatabase(t testing.TB, name string) string {
	t.Helper()
	db, err := sql.Open("mysql", s.dsn("mysql"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	return s.dsn(name)
}
