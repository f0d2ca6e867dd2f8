package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/test/bufconn"

	"github.com/custody-dev/custody/identity"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// The REST gateway reaches the gRPC server over an in-memory listener that
// only this process can dial. Connections from it skip TLS and are marked
// with gatewayAuthInfo; for them, and only for them, the authenticator reads
// the HTTPS caller's certificate chain from the forwardedChainKey metadata,
// which the gateway sets from the TLS connection state (never from a
// header). Everything else goes through TLS 1.3.
const forwardedChainKey = "x-custody-forwarded-client-chain-bin"

type internalListener struct {
	*bufconn.Listener
}

func newInternalListener() *internalListener {
	return &internalListener{bufconn.Listen(1 << 20)}
}

// Accept marks every connection as coming from the in-process gateway.
func (l *internalListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return gatewayConn{c}, nil
}

func (l *internalListener) dial(ctx context.Context, _ string) (net.Conn, error) {
	return l.DialContext(ctx)
}

type gatewayConn struct{ net.Conn }

type gatewayAuthInfo struct{ credentials.CommonAuthInfo }

func (gatewayAuthInfo) AuthType() string { return "custody-internal-gateway" }

// serverCredentials is TLS for network connections and a pass-through for
// the in-memory gateway connections.
type serverCredentials struct {
	credentials.TransportCredentials
}

func newServerCredentials(cfg *tls.Config) credentials.TransportCredentials {
	return serverCredentials{credentials.NewTLS(cfg)}
}

func (c serverCredentials) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	if gc, ok := conn.(gatewayConn); ok {
		return gc, gatewayAuthInfo{credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}, nil
	}
	return c.TransportCredentials.ServerHandshake(conn)
}

func (c serverCredentials) Clone() credentials.TransportCredentials {
	return serverCredentials{c.TransportCredentials.Clone()}
}

// encodeChain concatenates DER certificates, as x509.ParseCertificates reads.
func encodeChain(chain []*x509.Certificate) string {
	var b bytes.Buffer
	for _, c := range chain {
		b.Write(c.Raw)
	}
	return b.String()
}

// publicMethods need no client certificate: health checks and the public
// log and keys (the same data /log/ serves to anyone).
var publicMethods = map[string]bool{
	healthpb.Health_Check_FullMethodName:                    true,
	healthpb.Health_Watch_FullMethodName:                    true,
	healthpb.Health_List_FullMethodName:                     true,
	custodyv1.LogService_GetCheckpoint_FullMethodName:       true,
	custodyv1.LogService_GetInclusionProof_FullMethodName:   true,
	custodyv1.LogService_GetConsistencyProof_FullMethodName: true,
	custodyv1.LogService_GetEntry_FullMethodName:            true,
	custodyv1.LogService_GetPublicKeys_FullMethodName:       true,
}

// authenticator verifies the caller's certificate on every call and puts the
// resulting identity in the context.
type authenticator struct {
	verifier *identity.Verifier
	log      *slog.Logger
}

// peerChain returns the certificate chain the caller presented, through TLS
// or forwarded by the gateway.
func peerChain(ctx context.Context) ([]*x509.Certificate, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, nil
	}
	switch info := p.AuthInfo.(type) {
	case credentials.TLSInfo:
		return info.State.PeerCertificates, nil
	case gatewayAuthInfo:
		values := metadata.ValueFromIncomingContext(ctx, forwardedChainKey)
		switch len(values) {
		case 0:
			return nil, nil
		case 1:
			chain, err := x509.ParseCertificates([]byte(values[0]))
			if err != nil {
				return nil, fmt.Errorf("%w: the client certificate cannot be parsed", identity.ErrUnauthenticated)
			}
			return chain, nil
		default:
			return nil, fmt.Errorf("%w: more than one forwarded client certificate", identity.ErrUnauthenticated)
		}
	default:
		return nil, nil
	}
}

func (a *authenticator) authenticate(ctx context.Context, method string) (context.Context, error) {
	chain, err := peerChain(ctx)
	if err == nil {
		if len(chain) == 0 && publicMethods[method] {
			return ctx, nil
		}
		var id identity.Identity
		id, err = a.verifier.Verify(chain)
		if err == nil {
			setLogIdentity(ctx, id)
			if !publicMethods[method] {
				err = authorize(id, method)
				logAuthorization(ctx, a.log, id, method, err)
			}
			if err != nil {
				return ctx, err
			}
			return identity.NewContext(ctx, id), nil
		}
	}
	attrs := []any{"method", method, "err", err}
	if len(chain) > 0 {
		attrs = append(attrs, "cert_subject", chain[0].Subject.String(), "cert_serial", chain[0].SerialNumber.Text(16))
	}
	if p, ok := peer.FromContext(ctx); ok {
		attrs = append(attrs, "peer", p.Addr.String())
	}
	a.log.WarnContext(ctx, "authentication refused", attrs...)
	return ctx, err
}

func (a *authenticator) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := a.authenticate(ctx, info.FullMethod)
	if err != nil {
		return nil, toStatus(ctx, a.log, info.FullMethod, err)
	}
	return handler(ctx, req)
}

func (a *authenticator) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := a.authenticate(ss.Context(), info.FullMethod)
	if err != nil {
		return toStatus(ctx, a.log, info.FullMethod, err)
	}
	return handler(srv, &contextStream{ServerStream: ss, ctx: ctx})
}

// contextStream replaces a stream's context.
type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *contextStream) Context() context.Context { return s.ctx }

// requireIdentity returns the caller's identity, or an error for a public
// method called without one.
func requireIdentity(ctx context.Context) (identity.Identity, error) {
	id, ok := identity.FromContext(ctx)
	if !ok {
		return identity.Identity{}, errNoIdentity
	}
	return id, nil
}

var errNoIdentity = fmt.Errorf("%w: this call needs a client certificate", identity.ErrUnauthenticated)
