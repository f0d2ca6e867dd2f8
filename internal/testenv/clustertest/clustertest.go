// Package clustertest runs a replicated custody deployment for tests, all
// real and on loopback: MariaDB (log sequencing), PostgreSQL (catalog,
// journal, item locks, upload sessions: package postgres), MinIO erasure-coded over several drives (evidence
// objects and log tiles) and several custodyd processes sharing them, each
// with its own data folder holding only the shared keys and certificates.
// The replicas are real custodyd binaries given the same flags an operator
// would, so --catalog selects the replicated assembly (internal/daemon).
package clustertest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/custody-dev/custody/internal/testenv"
	"github.com/custody-dev/custody/internal/testenv/binaries"
	"github.com/custody-dev/custody/internal/testenv/mariadbtest"
	"github.com/custody-dev/custody/internal/testenv/miniotest"
	"github.com/custody-dev/custody/internal/testenv/pgtest"
)

// Cluster is a running deployment.
type Cluster struct {
	MinIO    *miniotest.Server
	MariaDB  *mariadbtest.Server
	Catalog  string // PostgreSQL DSN
	LogDSN   string // MariaDB DSN
	Replicas []*binaries.Daemon
	args     []string
}

// Options tune a cluster.
type Options struct {
	// Replicas is how many custodyd processes run (at least 1).
	Replicas int
	// Drives is how many drives MinIO erasure-codes over (default 4).
	Drives int
	// Args are extra custodyd flags for every replica.
	Args []string
}

// Start starts the engines and the replicas. Replica 0 starts first and
// creates the keys and the development PKI; the others get copies, as an
// operator would distribute them (or point --signing-key at a KMS).
func Start(t testing.TB, o Options) *Cluster {
	t.Helper()
	testenv.RequireFull(t, "custodyd cluster")
	if o.Drives == 0 {
		o.Drives = 4
	}
	c := &Cluster{MinIO: miniotest.StartDrives(t, o.Drives), MariaDB: mariadbtest.Start(t)}
	c.Catalog = pgtest.NewDatabase(t, pgtest.Start(t), "custody")
	c.LogDSN = c.MariaDB.NewDatabase(t, "custody_log")
	// Credentials go by environment, never by flag.
	t.Setenv("CUSTODY_S3_ACCESS_KEY", c.MinIO.AccessKey)
	t.Setenv("CUSTODY_S3_SECRET_KEY", c.MinIO.SecretKey)
	c.args = append([]string{
		"--s3-endpoint", c.MinIO.Endpoint, "--s3-insecure", "--s3-bucket", "evidence",
		"--catalog", c.Catalog, "--log-mysql", c.LogDSN, "--log-bucket", "custody-log",
		"--checkpoint-interval", "1s",
	}, o.Args...)
	for i := range max(o.Replicas, 1) {
		dir := t.TempDir()
		if i > 0 {
			first := c.Replicas[0].DataDir()
			for _, sub := range []string{"keys", "certs"} {
				copyDir(t, filepath.Join(first, sub), filepath.Join(dir, "custody-data", sub))
			}
		}
		c.Replicas = append(c.Replicas, binaries.StartCustodyd(t, dir, c.args...))
	}
	return c
}

// Restart starts replica i again on its addresses (after a kill).
func (c *Cluster) Restart(t testing.TB, i int) *binaries.Daemon {
	t.Helper()
	old := c.Replicas[i]
	c.Replicas[i] = binaries.StartCustodydAt(t, old.Dir, old.GRPCAddr, old.HTTPAddr, c.args...)
	return c.Replicas[i]
}

// copyDir copies a folder of regular files, keeping their modes (keys stay
// 0600).
func copyDir(t testing.TB, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		dst := filepath.Join(to, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}
