package client_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"testing"

	"github.com/custody-dev/custody/client"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/servertest"
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
