package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/servertest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// documented is docs/AUTHORIZATION.md's table, written out again so a
// change to the code's table that the documentation does not share fails
// here. "public" methods need no certificate.
var documented = map[string]string{
	"EvidenceService/Upload":              "collector custodian",
	"EvidenceService/GetUploadStatus":     "collector custodian",
	"EvidenceService/GetEvidence":         "collector custodian court auditor admin",
	"EvidenceService/ListEvidence":        "collector custodian court auditor admin",
	"EvidenceService/Download":            "custodian court",
	"EvidenceService/CreateSeizureRecord": "collector",
	"EvidenceService/GetSeizureRecord":    "custodian court",
	"CustodyService/ReleaseCustody":       "collector custodian court",
	"CustodyService/AcceptCustody":        "collector custodian court",
	"CustodyService/CancelRelease":        "collector custodian court",
	"CustodyService/RecordEvent":          "custodian court",
	"CustodyService/ListEvents":           "collector custodian court auditor admin",
	"CustodyService/GetBundle":            "custodian court auditor",
	"CustodyService/StreamBundle":         "custodian court auditor",
	"CustodyService/VerifyEvidence":       "custodian court auditor admin",
	"LogService/GetCheckpoint":            "public",
	"LogService/GetInclusionProof":        "public",
	"LogService/GetConsistencyProof":      "public",
	"LogService/GetEntry":                 "public",
	"LogService/GetPublicKeys":            "public",
	"IdentityService/WhoAmI":              "collector custodian court auditor admin",
}

// refused says whether an error is the authentication or authorization
// layer saying no (anything else means the call got through to the
// service, which may then refuse the empty request on its own terms).
func refused(err error) bool {
	c := status.Code(err)
	return c == codes.Unauthenticated || (c == codes.PermissionDenied && strings.Contains(status.Convert(err).Message(), "role may not call"))
}

// call invokes method with an empty request, unary or streaming.
func call(ctx context.Context, conn *grpc.ClientConn, method string, streaming bool) error {
	if !streaming {
		return conn.Invoke(ctx, method, &emptypb.Empty{}, &emptypb.Empty{})
	}
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, method)
	if err != nil {
		return err
	}
	st.SendMsg(&emptypb.Empty{})
	st.CloseSend()
	return st.RecvMsg(&emptypb.Empty{})
}

// TestAuthorizationMatrix calls every RPC as every role and without a
// certificate, and checks the allowed set is exactly the documented one.
func TestAuthorizationMatrix(t *testing.T) {
	env := servertest.StartT(t)
	conns := map[string]*grpc.ClientConn{}
	for _, r := range identity.Roles {
		conns[string(r)] = env.Client(t, r).Conn()
	}
	anon, err := grpc.NewClient(env.GRPCAddr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: env.RootCAs(t), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13})))
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	conns["unauthenticated"] = anon

	seen := map[string]bool{}
	for _, sd := range []grpc.ServiceDesc{custodyv1.EvidenceService_ServiceDesc, custodyv1.CustodyService_ServiceDesc, custodyv1.LogService_ServiceDesc, custodyv1.IdentityService_ServiceDesc} {
		var methods []struct {
			name      string
			streaming bool
		}
		for _, m := range sd.Methods {
			methods = append(methods, struct {
				name      string
				streaming bool
			}{m.MethodName, false})
		}
		for _, s := range sd.Streams {
			methods = append(methods, struct {
				name      string
				streaming bool
			}{s.StreamName, true})
		}
		for _, m := range methods {
			short := strings.TrimPrefix(sd.ServiceName, "custody.v1.") + "/" + m.name
			allowed, ok := documented[short]
			if !ok {
				t.Errorf("%s is not in the documented table", short)
				continue
			}
			seen[short] = true
			for who, conn := range conns {
				t.Run(short+"/"+who, func(t *testing.T) {
					err := call(t.Context(), conn, "/"+sd.ServiceName+"/"+m.name, m.streaming)
					want := allowed == "public" || (who != "unauthenticated" && slices.Contains(strings.Fields(allowed), who))
					if got := !refused(err); got != want {
						t.Fatalf("allowed=%v, documented %v (%q); error: %v", got, want, allowed, err)
					}
				})
			}
		}
	}
	for m := range documented {
		if !seen[m] {
			t.Errorf("documented %s does not exist", m)
		}
	}
}

// TestRESTRawRoutesAuthorization: the raw-body upload and content routes
// answer each role as the table says, with 401/403.
func TestRESTRawRoutesAuthorization(t *testing.T) {
	env := servertest.StartT(t)
	data := []byte("authorization matrix item")
	up, err := env.Client(t, identity.RoleCollector).Upload(t.Context(), meta("case-authz", data), bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	id := up.GetEvidence().GetEvidenceId()
	clients := map[string]*http.Client{"unauthenticated": env.HTTPClient(t)}
	for _, r := range identity.Roles {
		clients[string(r)] = env.HTTPClient(t, env.Creds(t, r).Certificate)
	}
	for who, hc := range clients {
		t.Run(who, func(t *testing.T) {
			body := []byte(fmt.Sprintf("from %s", who))
			req, _ := http.NewRequestWithContext(t.Context(), "POST", env.URL("/v1/evidence:upload?case_id=case-authz&kind=other&sha256="+sha(body)), bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/octet-stream")
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := map[string]int{"unauthenticated": 401, "collector": 201, "custodian": 201}[who]
			if want == 0 {
				want = 403
			}
			if resp.StatusCode != want {
				t.Errorf("upload: %d, want %d", resp.StatusCode, want)
			}
			resp, err = hc.Get(env.URL("/v1/evidence/" + id + "/content?purpose=matrix"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want = map[string]int{"unauthenticated": 401, "custodian": 200, "court": 200}[who]
			if want == 0 {
				want = 403
			}
			if resp.StatusCode != want {
				t.Errorf("content: %d, want %d", resp.StatusCode, want)
			}
		})
	}
}
