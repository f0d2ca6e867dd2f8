package server_test

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/custody-dev/custody/certs"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/servertest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

func TestWhoAmIEveryRole(t *testing.T) {
	env := servertest.StartT(t)
	want := map[identity.Role]custodyv1.Role{
		identity.RoleCollector: custodyv1.Role_ROLE_COLLECTOR,
		identity.RoleCustodian: custodyv1.Role_ROLE_CUSTODIAN,
		identity.RoleCourt:     custodyv1.Role_ROLE_COURT,
		identity.RoleAuditor:   custodyv1.Role_ROLE_AUDITOR,
		identity.RoleAdmin:     custodyv1.Role_ROLE_ADMIN,
	}
	for role, wantRole := range want {
		t.Run(string(role), func(t *testing.T) {
			me, err := env.Client(t, role).WhoAmI(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if me.GetRole() != wantRole || me.GetIdentity() != "urn:custody:"+string(role)+":dev-"+string(role) {
				t.Fatalf("WhoAmI = %v %q, want %v urn:custody:%s:dev-%s", me.GetRole(), me.GetIdentity(), wantRole, role, role)
			}
		})
	}
}

// badCredentials are client credentials the server must refuse, each with
// the words its refusal must contain.
func badCredentials(t *testing.T, env *servertest.Env) []struct {
	name    string
	cert    *tls.Certificate
	message string
} {
	t.Helper()
	now := time.Now()
	court := certs.DevIdentity(identity.RoleCourt)

	foreignCA, err := certs.NewAuthority("someone else's CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	foreign := issue(t, foreignCA, court, now.Add(-time.Hour), now.Add(time.Hour))

	ourCA, err := env.PKI.Authority()
	if err != nil {
		t.Fatal(err)
	}
	expired := issue(t, ourCA, court, now.Add(-48*time.Hour), now.Add(-24*time.Hour))

	return []struct {
		name    string
		cert    *tls.Certificate
		message string
	}{
		{"no certificate", nil, "no client certificate"},
		{"another CA", &foreign, "not issued by this service's client CA"},
		{"expired", &expired, "expired"},
	}
}

func issue(t *testing.T, ca *certs.Authority, id identity.Identity, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	issued, err := ca.IssueClient(id, notBefore, notAfter)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(issued.CertPEM, issued.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestGRPCRefusesBadCertificates(t *testing.T) {
	env := servertest.StartT(t)
	for _, tc := range badCredentials(t, env) {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: env.RootCAs(t), ServerName: "127.0.0.1"}
			if tc.cert != nil {
				cfg.Certificates = []tls.Certificate{*tc.cert}
			}
			conn, err := grpc.NewClient(env.GRPCAddr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_, err = custodyv1.NewIdentityServiceClient(conn).WhoAmI(t.Context(), &custodyv1.WhoAmIRequest{})
			if status.Code(err) != codes.Unauthenticated || !strings.Contains(status.Convert(err).Message(), tc.message) {
				t.Fatalf("WhoAmI error = %v, want Unauthenticated mentioning %q", err, tc.message)
			}
			// Health checks need no certificate, but a bad one is refused
			// all the same rather than silently ignored.
			_, err = healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
			if tc.cert == nil && err != nil {
				t.Fatalf("health check without certificate: %v", err)
			}
			if tc.cert != nil && status.Code(err) != codes.Unauthenticated {
				t.Fatalf("health check with bad certificate: %v, want Unauthenticated", err)
			}
		})
	}
	if logs := env.Logs.String(); strings.Count(logs, "authentication refused") < 3 {
		t.Fatalf("want a log line per refusal, logs:\n%s", logs)
	}
	// The server is still serving.
	if _, err := env.Client(t, identity.RoleAuditor).WhoAmI(t.Context()); err != nil {
		t.Fatalf("after refusals: %v", err)
	}
}

func TestHTTPSRefusesBadCertificates(t *testing.T) {
	env := servertest.StartT(t)
	for _, tc := range badCredentials(t, env) {
		t.Run(tc.name, func(t *testing.T) {
			var hc *http.Client
			if tc.cert != nil {
				hc = env.HTTPClient(t, *tc.cert)
			} else {
				hc = env.HTTPClient(t)
			}
			code, body := get(t, hc, env.URL("/v1/whoami"))
			if code != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401; body %s", code, body)
			}
			var e struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(body, &e); err != nil || e.Code != int(codes.Unauthenticated) || !strings.Contains(e.Message, tc.message) {
				t.Fatalf("body %s, want JSON code 16 mentioning %q", body, tc.message)
			}
		})
	}
	if logs := env.Logs.String(); strings.Count(logs, "authentication refused") < 3 {
		t.Fatalf("want a log line per refusal, logs:\n%s", logs)
	}
}

func TestHTTPSIdentityComesFromCertificateOnly(t *testing.T) {
	env := servertest.StartT(t)
	creds := env.Creds(t, identity.RoleCourt)
	admin := env.Creds(t, identity.RoleAdmin)
	// Binary metadata travels base64-encoded in HTTP headers.
	adminDER := base64.StdEncoding.EncodeToString(admin.Leaf.Raw)
	forge := func(req *http.Request) {
		// Every spelling a caller might try for the gateway's internal key.
		req.Header.Set("X-Custody-Forwarded-Client-Chain-Bin", adminDER)
		req.Header.Set("Grpc-Metadata-X-Custody-Forwarded-Client-Chain-Bin", adminDER)
		req.Header.Set("X-Custody-Identity", "urn:custody:admin:dev-admin")
		req.Header.Set("Grpc-Metadata-X-Custody-Identity", "urn:custody:admin:dev-admin")
	}

	t.Run("with a court certificate", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", env.URL("/v1/whoami"), nil)
		forge(req)
		resp, err := env.HTTPClient(t, creds.Certificate).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var me struct{ Identity, Role string }
		if err := json.NewDecoder(resp.Body).Decode(&me); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || me.Role != "ROLE_COURT" || me.Identity != "urn:custody:court:dev-court" {
			t.Fatalf("got %d %+v, want the court identity", resp.StatusCode, me)
		}
	})
	t.Run("without a certificate", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", env.URL("/v1/whoami"), nil)
		forge(req)
		resp, err := env.HTTPClient(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("forged headers without a certificate: status %d, want 401", resp.StatusCode)
		}
	})
}

func TestHTTPSRoutes(t *testing.T) {
	env := servertest.StartT(t)
	anon := env.HTTPClient(t)
	court := env.HTTPClient(t, env.Creds(t, identity.RoleCourt).Certificate)
	collector := env.HTTPClient(t, env.Creds(t, identity.RoleCollector).Certificate)
	admin := env.HTTPClient(t, env.Creds(t, identity.RoleAdmin).Certificate)
	// One authenticated call so the metrics have something to count.
	if code, body := get(t, court, env.URL("/v1/whoami")); code != 200 {
		t.Fatalf("whoami: %d %s", code, body)
	}
	tests := []struct {
		path     string
		hc       *http.Client
		code     int
		contains string
	}{
		{"/healthz", anon, 200, `"status":"ok"`},
		{"/openapi.json", anon, 200, `"/v1/evidence/{evidence_id}/bundle"`},
		{"/v1/keys", anon, 200, `"log_verifier_key":"custody.test/log+`},
		{"/v1/keys", anon, 200, `"receipt_public_key_pem":"-----BEGIN PUBLIC KEY-----`},
		{"/metrics", anon, 401, `admin client certificate`},
		{"/metrics", admin, 200, `custody_grpc_handled_total{code="OK",method="/custody.v1.IdentityService/WhoAmI"}`},
		{"/no/such/route", anon, 404, `"code":5`},
		{"/v1/no/such/route", court, 404, `"code":5`},
		{"/v1/evidence/abc", court, 400, `not of the form ev-`},
		{"/v1/uploads/some-upload", collector, 404, `no upload session some-upload`},
		{"/v1/uploads/some-upload", court, 403, `the court role may not call GetUploadStatus`},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			code, body := get(t, tc.hc, env.URL(tc.path))
			if code != tc.code || !strings.Contains(string(body), tc.contains) {
				t.Fatalf("GET %s = %d %s, want %d containing %s", tc.path, code, body, tc.code, tc.contains)
			}
		})
	}
}

func TestReflectionListsServices(t *testing.T) {
	env := servertest.StartT(t)
	c := env.Client(t, identity.RoleCollector)
	stream, err := reflectionpb.NewServerReflectionClient(c.Conn()).ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{"custody.v1.EvidenceService", "custody.v1.CustodyService", "custody.v1.LogService", "grpc.health.v1.Health"} {
		if !slices.Contains(names, want) {
			t.Errorf("reflection lists %v, missing %s", names, want)
		}
	}
}

func TestRequestIDEchoedAndLogged(t *testing.T) {
	env := servertest.StartT(t)
	hc := env.HTTPClient(t, env.Creds(t, identity.RoleAuditor).Certificate)
	req, _ := http.NewRequestWithContext(t.Context(), "GET", env.URL("/v1/whoami"), nil)
	req.Header.Set("X-Request-Id", "trace-42")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-Id"); got != "trace-42" {
		t.Errorf("X-Request-Id = %q, want trace-42", got)
	}
	logs := env.Logs.String()
	if !strings.Contains(logs, "request_id=trace-42") || !strings.Contains(logs, "identity=urn:custody:auditor:dev-auditor") {
		t.Errorf("log lacks request id or identity:\n%s", logs)
	}
}

func get(t *testing.T, hc *http.Client, url string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}
