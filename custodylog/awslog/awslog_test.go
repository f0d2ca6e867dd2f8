package awslog_test

import (
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/custody-dev/custody/custodylog"
	"github.com/custody-dev/custody/custodylog/awslog"
	"github.com/custody-dev/custody/internal/testenv/mariadbtest"
	"github.com/custody-dev/custody/internal/testenv/miniotest"
)

// TestSharedLogTwoAppenders opens the shared log (Tessera's AWS driver on a
// real MinIO and MariaDB) twice, as two replicas would, appends from both at
// once, and checks that every entry got its own index, reads back from
// either replica, and is proven included under a checkpoint both serve.
func TestSharedLogTwoAppenders(t *testing.T) {
	minio := miniotest.Start(t)
	db := mariadbtest.Start(t)
	dsn := db.NewDatabase(t, "custody_log")
	skey, vkey, err := note.GenerateKey(rand.Reader, "custody.test/shared-log")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	open := func() *custodylog.Log {
		backend, err := awslog.New(t.Context(), awslog.Config{
			S3Endpoint: minio.Endpoint, Insecure: true, AccessKey: minio.AccessKey, SecretKey: minio.SecretKey,
			Bucket: "custody-log", MySQLDSN: dsn,
		})
		if err != nil {
			t.Fatal(err)
		}
		l, err := custodylog.Open(t.Context(), custodylog.Config{
			Backend: backend, Signer: signer, Verifier: verifier, CheckpointInterval: time.Second,
			NoHistoryMap: true, // the entries are not custody entries; sizes are exact
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close(t.Context()) })
		return l
	}
	replicas := []*custodylog.Log{open(), open()}

	const perReplica = 300
	var mu sync.Mutex
	byIndex := map[uint64]string{}
	var wg sync.WaitGroup
	for r, l := range replicas {
		for w := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := range perReplica / 10 {
					entry := fmt.Sprintf("replica %d writer %d entry %d", r, w, n)
					a, err := l.Append(t.Context(), []byte(entry))
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					if other, dup := byIndex[a.Index]; dup {
						t.Errorf("index %d given to %q and %q", a.Index, other, entry)
					}
					byIndex[a.Index] = entry
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if len(byIndex) != 2*perReplica {
		t.Fatalf("%d distinct indices, want %d", len(byIndex), 2*perReplica)
	}
	size, err := replicas[1].Settled(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if size != 2*perReplica {
		t.Fatalf("settled size %d, want %d", size, 2*perReplica)
	}
	// Wait for a checkpoint covering everything, read through the other
	// replica's public resource path.
	var cp *log.Checkpoint
	for deadline := time.Now().Add(30 * time.Second); ; {
		raw, err := replicas[0].Resource(t.Context(), "checkpoint")
		if err == nil {
			if cp, _, _, err = log.ParseCheckpoint(raw, "custody.test/shared-log", verifier); err != nil {
				t.Fatal(err)
			}
			if cp.Size == size {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint of size %d within 30s (last %v, %v)", size, cp, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, i := range []uint64{0, 1, 255, 256, size - 1} {
		l := replicas[i%2]
		entry, err := l.Entry(t.Context(), i, size)
		if err != nil {
			t.Fatal(err)
		}
		if string(entry) != byIndex[i] {
			t.Fatalf("entry %d reads %q, was appended as %q", i, entry, byIndex[i])
		}
		p, err := l.InclusionProof(t.Context(), i, size)
		if err != nil {
			t.Fatal(err)
		}
		leaf := custodylog.LeafHash(entry)
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, i, size, leaf[:], p, cp.Hash); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
	// Public resources: a full tile and an entry bundle.
	if b, err := replicas[1].Resource(t.Context(), "tile/0/000"); err != nil || len(b) != 256*32 {
		t.Fatalf("tile/0/000: %d bytes, %v", len(b), err)
	}
	if b, err := replicas[1].Resource(t.Context(), "tile/entries/002.p/88"); err != nil || len(b) == 0 {
		t.Fatalf("tile/entries/002.p/88: %d bytes, %v", len(b), err)
	}
	if _, err := replicas[1].Resource(t.Context(), "tile/entries/009"); err == nil {
		t.Fatal("a bundle past the tree was served")
	}
}
