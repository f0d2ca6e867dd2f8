// Package tsatest runs a real RFC 3161 timestamp authority for tests:
// sigstore's timestamp-server (github.com/sigstore/timestamp-authority/v2),
// pinned and built with `go install` on first use (or $TIMESTAMP_SERVER_BIN),
// with a file signer and a fresh test chain (a root CA and a leaf for
// time stamping), on a loopback port.
package tsatest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/custody-dev/custody/internal/testenv"
	"github.com/custody-dev/custody/internal/testenv/freeport"
)

// Version is the pinned timestamp-authority release (v2.1 needs Go 1.27).
const Version = "v2.0.6"

// Authority is a running timestamp authority.
type Authority struct {
	// URL is the RFC 3161 endpoint (POST application/timestamp-query).
	URL string
	// Chain is the authority's certificate chain, leaf first; ChainFile
	// holds it as PEM; Root is its root.
	Chain     []*x509.Certificate
	ChainFile string
	Root      *x509.Certificate
	// Key signs the leaf; tests use it to make tokens the server would
	// not (another time, another message).
	Key *ecdsa.PrivateKey

	dir, addr, bin string
	cmd            *exec.Cmd
	done           chan struct{}
	lock           *os.File
}

// metricsLock serializes timestamp-servers on this machine: every one
// binds its metrics listener to the fixed port 2112 and exits if it is
// taken, so at most one runs at a time, across test processes. A test
// starts at most one.
const metricsLock = "custody-timestamp-server-2112.lock"

func lockMetricsPort(t testing.TB) *os.File {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), metricsLock), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Minute)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f
		}
		if time.Now().After(deadline) {
			f.Close()
			t.Fatalf("another test held the timestamp-server (port 2112) for 10 minutes: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary returns the timestamp-server binary, building the pinned version
// if no other is available.
func Binary() (string, error) {
	binOnce.Do(func() { binPath, binErr = findOrBuild() })
	return binPath, binErr
}

func findOrBuild() (string, error) {
	return testenv.Tool("TIMESTAMP_SERVER_BIN", "timestamp-server", "github.com/sigstore/timestamp-authority/v2/cmd/timestamp-server", Version)
}

// Chain makes a test TSA chain named name: a root CA and a leaf with the
// critical timeStamping extended key usage, valid from notBefore to
// notAfter. It returns the chain, leaf first, and the leaf's key.
func Chain(t testing.TB, name string, notBefore, notAfter time.Time) ([]*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " root", Organization: []string{"custody tests"}},
		NotBefore: time.Now().Add(-10 * 365 * 24 * time.Hour), NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(rootDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name, Organization: []string{"custody tests"}},
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping},
		BasicConstraintsValid: true,
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, root, &leafKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(leafDER)
	// Go marks the EKU extension critical only if asked; RFC 3161 §2.3
	// requires it critical, and the verifier checks.
	if !ekuCritical(leaf) {
		leafTmpl.ExtraExtensions = criticalEKU(t)
		leafTmpl.ExtKeyUsage = nil
		if leafDER, err = x509.CreateCertificate(rand.Reader, leafTmpl, root, &leafKey.PublicKey, rootKey); err != nil {
			t.Fatal(err)
		}
		leaf, _ = x509.ParseCertificate(leafDER)
	}
	return []*x509.Certificate{leaf, root}, leafKey
}

// Start starts a timestamp authority and stops it when the test ends. Only
// one runs at a time on a machine (see metricsLock).
func Start(t testing.TB, name string) *Authority {
	t.Helper()
	testenv.RequireFull(t, "timestamp authority")
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	chain, key := Chain(t, name, time.Now().Add(-time.Hour), time.Now().Add(365*24*time.Hour))
	a := &Authority{Chain: chain, Root: chain[len(chain)-1], Key: key, dir: t.TempDir(), bin: bin, addr: freeport.Addr(t)}
	a.URL = "http://" + a.addr + "/api/v1/timestamp"
	var chainPEM []byte
	for _, c := range chain {
		chainPEM = append(chainPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	a.ChainFile = filepath.Join(a.dir, "chain.pem")
	if err := os.WriteFile(a.ChainFile, chainPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(a.dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	a.Restart(t)
	t.Cleanup(a.Stop)
	return a
}

// Restart starts a stopped authority again on the same address.
func (a *Authority) Restart(t testing.TB) {
	t.Helper()
	host, port, _ := splitHostPort(a.addr)
	a.lock = lockMetricsPort(t)
	logs, err := os.OpenFile(filepath.Join(a.dir, "tsa.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	a.cmd = exec.Command(a.bin, "serve", "--host", host, "--port", port,
		"--timestamp-signer", "file", "--file-signer-key-path", filepath.Join(a.dir, "key.pem"),
		"--certificate-chain-path", a.ChainFile, "--disable-ntp-monitoring", "--enable-pprof=false")
	a.cmd.Stdout, a.cmd.Stderr = logs, logs
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a.done = make(chan struct{})
	go func() { a.cmd.Wait(); logs.Close(); a.lock.Close(); close(a.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + a.addr + "/api/v1/timestamp/certchain")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-a.done:
			t.Fatalf("timestamp-server exited at start:\n%s", a.Logs())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("timestamp-server did not start within 30s:\n%s", a.Logs())
}

// Stop stops the authority.
func (a *Authority) Stop() {
	if a.cmd == nil || a.cmd.Process == nil {
		return
	}
	select {
	case <-a.done:
	default:
		a.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-a.done:
		case <-time.After(10 * time.Second):
			a.cmd.Process.Kill()
			<-a.done
		}
	}
	a.cmd = nil
}

// Logs returns what the server printed.
func (a *Authority) Logs() string {
	b, _ := os.ReadFile(filepath.Join(a.dir, "tsa.log"))
	return string(b)
}

func splitHostPort(addr string) (string, string, error) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			if _, err := strconv.Atoi(addr[i+1:]); err != nil {
				return "", "", err
			}
			return addr[:i], addr[i+1:], nil
		}
	}
	return "", "", fmt.Errorf("no port in %q", addr)
}
