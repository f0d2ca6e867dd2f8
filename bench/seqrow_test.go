package bench_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/custody-dev/custody/internal/testenv/clustertest"
)

// seqRowRate measures the serial rate of the shared log's sequencing row:
// writers, each on its own connection as each replica's sequencer is,
// run Tessera's sequencing transaction (the AWS driver's assignEntries:
// read IntCoord, then in one transaction lock SeqCoord's row FOR UPDATE,
// insert the batch into Seq, advance SeqCoord, commit) back to back for
// d, on a scratch database of the cluster's MariaDB. Every transaction
// takes the same row, so they run one at a time whatever the writers:
// transactions/s times the batch size is the most entries/s the log can
// sequence, from any number of replicas. It returns transactions/s and the
// mean time each held the row (from its FOR UPDATE to its commit).
func seqRowRate(b *testing.B, c *clustertest.Cluster, writers int, batchBytes int, d time.Duration) (float64, time.Duration) {
	ctx := context.Background()
	db, err := sql.Open("mysql", c.MariaDB.NewDatabase(b, fmt.Sprintf("seqrow%d", time.Now().UnixNano())))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(writers + 1)
	db.SetMaxIdleConns(writers + 1)
	for _, q := range []string{
		`CREATE TABLE SeqCoord (id INT UNSIGNED NOT NULL, next BIGINT UNSIGNED NOT NULL, PRIMARY KEY (id))`,
		`CREATE TABLE Seq (id INT UNSIGNED NOT NULL, seq BIGINT UNSIGNED NOT NULL, v LONGBLOB, PRIMARY KEY (id, seq))`,
		`CREATE TABLE IntCoord (id INT UNSIGNED NOT NULL, seq BIGINT UNSIGNED NOT NULL, rootHash TINYBLOB NOT NULL, PRIMARY KEY (id))`,
		`INSERT INTO SeqCoord (id, next) VALUES (0, 0)`,
		`INSERT INTO IntCoord (id, seq, rootHash) VALUES (0, 0, '')`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	batch := make([]byte, batchBytes)
	var txs, held atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				var size uint64
				if err := db.QueryRowContext(ctx, `SELECT seq FROM IntCoord WHERE id = ?`, 0).Scan(&size); err != nil {
					b.Error(err)
					return
				}
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					b.Error(err)
					return
				}
				var id, next uint64
				if err := tx.QueryRowContext(ctx, `SELECT id, next FROM SeqCoord WHERE id = ? FOR UPDATE`, 0).Scan(&id, &next); err != nil {
					tx.Rollback()
					b.Error(err)
					return
				}
				locked := time.Now()
				if _, err := tx.ExecContext(ctx, `INSERT INTO Seq(id, seq, v) VALUES(?, ?, ?)`, 0, next, batch); err != nil {
					tx.Rollback()
					b.Error(err)
					return
				}
				if _, err := tx.ExecContext(ctx, `UPDATE SeqCoord SET next = ? WHERE ID = ?`, next+30, 0); err != nil {
					tx.Rollback()
					b.Error(err)
					return
				}
				if err := tx.Commit(); err != nil {
					b.Error(err)
					return
				}
				held.Add(int64(time.Since(locked)))
				txs.Add(1)
			}
		}()
	}
	start := time.Now()
	wg.Wait()
	n := txs.Load()
	if n == 0 {
		return 0, 0
	}
	return float64(n) / time.Since(start).Seconds(), time.Duration(held.Load() / n)
}
