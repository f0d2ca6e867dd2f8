package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"testing"

	"github.com/custody-dev/custody/client"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/servertest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// The examples run against a real server started by TestMain; in your code,
// serverAddr is custodyd's --grpc-addr and credsDir a folder holding
// ca.pem, cert.pem and key.pem, such as custody-data/certs/court.
var (
	serverAddr string
	env        *servertest.Env
)

func credsDir(r identity.Role) string { return env.PKI.RoleDir(r) }

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		// The examples print what a real server answers: they run in the
		// full suite (scripts/test); -short runs the unit tests alone.
		skip := "^Example"
		if s := flag.Lookup("test.skip").Value.String(); s != "" {
			skip = s + "|" + skip
		}
		flag.Set("test.skip", skip)
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "custody-client-example-")
	if err != nil {
		log.Fatal(err)
	}
	env, err = servertest.Start(dir, servertest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	serverAddr = env.GRPCAddr
	code := m.Run()
	env.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

func ExampleDial() {
	ctx := context.Background()
	creds, err := client.LoadCredentials(credsDir(identity.RoleCourt))
	if err != nil {
		log.Fatal(err)
	}
	c, err := client.Dial(ctx, serverAddr, creds)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	me, err := c.WhoAmI(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(me.GetIdentity(), me.GetRole())
	// Output: urn:custody:court:dev-court ROLE_COURT
}

// A collector uploads a photo: the file is hashed, the capture statement is
// signed with the collector's key, and the receipt comes back signed by the
// service.
func ExampleClient_UploadFile() {
	ctx := context.Background()
	creds, _ := client.LoadCredentials(credsDir(identity.RoleCollector))
	c, _ := client.Dial(ctx, serverAddr, creds)
	defer c.Close()

	dir, _ := os.MkdirTemp("", "example-")
	defer os.RemoveAll(dir)
	photo := filepath.Join(dir, "IMG_0001.jpg")
	os.WriteFile(photo, []byte("photo of the shelter entrance"), 0o600)

	resp, err := c.UploadFile(ctx, photo, &custodyv1.UploadMetadata{
		CaseId: "ICC-01/22", Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_PHOTO,
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	ev := resp.GetEvidence()
	fmt.Println(ev.GetSha256(), ev.GetSizeBytes(), ev.GetCustodian())
	// Output: 6b77aac543ea5ee1c3147802283dff97585e7e188aaf3e63c1715d5005b2b462 29 urn:custody:collector:dev-collector
}

// A field team hands over a folder resumably: the manifest records each
// file once the service has signed its receipt, so the second run (after a
// lost link, say) sends nothing again.
func ExampleClient_UploadBatch() {
	ctx := context.Background()
	creds, _ := client.LoadCredentials(credsDir(identity.RoleCollector))
	c, _ := client.Dial(ctx, serverAddr, creds)
	defer c.Close()

	dir, _ := os.MkdirTemp("", "example-")
	defer os.RemoveAll(dir)
	os.MkdirAll(filepath.Join(dir, "DCIM"), 0o755)
	os.WriteFile(filepath.Join(dir, "DCIM", "IMG_0001.jpg"), []byte("north wall, batch example"), 0o600)
	os.WriteFile(filepath.Join(dir, "DCIM", "IMG_0002.jpg"), []byte("south wall, batch example"), 0o600)
	manifestPath := filepath.Join(dir, client.DefaultManifestName("ICC-01/22-B"))

	for run := 1; run <= 2; run++ {
		files, _ := client.ExpandFiles([]string{filepath.Join(dir, "DCIM")}, manifestPath)
		man, err := client.LoadManifest(manifestPath)
		if err != nil {
			log.Fatal(err)
		}
		results, err := c.UploadBatch(ctx, files, client.Batch{
			Metadata: &custodyv1.UploadMetadata{CaseId: "ICC-01/22-B", Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_PHOTO},
			Manifest: man,
			Parallel: 4,
		})
		if err != nil {
			log.Fatal(err)
		}
		for _, r := range results {
			fmt.Println(run, filepath.Base(r.File), r.Status)
		}
	}
	// Output:
	// 1 IMG_0001.jpg uploaded
	// 1 IMG_0002.jpg uploaded
	// 2 IMG_0001.jpg skipped
	// 2 IMG_0002.jpg skipped
}

// A court downloads an item, stating why; the bytes are verified against
// the recorded digest while they stream, and the read is logged.
func ExampleClient_DownloadFile() {
	ctx := context.Background()
	collectorCreds, _ := client.LoadCredentials(credsDir(identity.RoleCollector))
	collector, _ := client.Dial(ctx, serverAddr, collectorCreds)
	defer collector.Close()
	data := []byte("statement of witness 7")
	sum := sha256.Sum256(data)
	up, _ := collector.Upload(ctx, &custodyv1.UploadMetadata{CaseId: "ICC-01/22", Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_DOCUMENT,
		Sha256: hex.EncodeToString(sum[:]), SizeBytes: int64(len(data))}, bytes.NewReader(data), nil)

	courtCreds, _ := client.LoadCredentials(credsDir(identity.RoleCourt))
	court, _ := client.Dial(ctx, serverAddr, courtCreds)
	defer court.Close()
	dir, _ := os.MkdirTemp("", "example-")
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "exhibit.txt")
	if _, err := court.DownloadFile(ctx, &custodyv1.DownloadRequest{EvidenceId: up.GetEvidence().GetEvidenceId(), Purpose: "exhibit P-12"}, out); err != nil {
		log.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	history, _ := court.History(ctx, up.GetEvidence().GetEvidenceId())
	fmt.Println(string(got))
	fmt.Println(len(history), history[1].GetType(), history[1].GetPurpose())
	// Output:
	// statement of witness 7
	// 2 EVENT_TYPE_ACCESS exhibit P-12
}

func TestLoadCredentialsErrors(t *testing.T) {
	if _, err := client.LoadCredentials(""); err == nil {
		t.Error("empty folder name accepted")
	}
	if _, err := client.LoadCredentials(t.TempDir()); err == nil {
		t.Error("folder without credentials accepted")
	}
	if _, err := client.Dial(t.Context(), "no-port", nil); err == nil {
		t.Error("Dial without credentials accepted")
	}
}
