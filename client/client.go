// Package client is the Go library for talking to custodyd: forensic tools
// embed it, and the custody CLI is built on it. A Client holds one mutual-TLS
// gRPC connection and offers typed methods for the service's calls.
//
//	creds, err := client.LoadCredentials("custody-data/certs/collector")
//	c, err := client.Dial(ctx, "127.0.0.1:8443", creds)
//	defer c.Close()
//	me, err := c.WhoAmI(ctx)
package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"path/filepath"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/custody-dev/custody/certs"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
)

// Credentials are what a caller presents and trusts: its client certificate
// and key, and the CA that issued the server's certificate.
type Credentials struct {
	Certificate tls.Certificate
	// Leaf is the parsed client certificate.
	Leaf *x509.Certificate
	// RootCAs verifies the server.
	RootCAs *x509.CertPool
}

// LoadCredentials reads a credential folder: ca.pem (the CA that issued the
// server certificate), cert.pem and key.pem (the caller's certificate and
// key; the key must not be readable by group or others).
func LoadCredentials(dir string) (*Credentials, error) {
	if dir == "" {
		return nil, errors.New("no credentials folder given (use --creds DIR or CUSTODY_CREDS)")
	}
	roots, err := certs.ReadCertPool(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	chain, err := certs.ReadCertificates(filepath.Join(dir, "cert.pem"))
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	key, err := certs.ReadPrivateKey(filepath.Join(dir, "key.pem"))
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	tc := tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, c := range chain {
		tc.Certificate = append(tc.Certificate, c.Raw)
	}
	return &Credentials{Certificate: tc, Leaf: chain[0], RootCAs: roots}, nil
}

// TLSConfig returns the TLS 1.3 client configuration for serverName.
func (c *Credentials) TLSConfig(serverName string) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{c.Certificate},
		RootCAs:      c.RootCAs,
		ServerName:   serverName,
	}
}

// Client is a connection to custodyd. It is safe for concurrent use.
type Client struct {
	creds    *Credentials
	conn     *grpc.ClientConn
	evidence custodyv1.EvidenceServiceClient
	custody  custodyv1.CustodyServiceClient
	log      custodyv1.LogServiceClient
	identity custodyv1.IdentityServiceClient
}

// Dial returns a Client for the gRPC server at addr (host:port). The
// connection is made lazily, on the first call; opts are added to the
// defaults (mutual TLS 1.3 with creds).
func Dial(ctx context.Context, addr string, creds *Credentials, opts ...grpc.DialOption) (*Client, error) {
	if creds == nil {
		return nil, errors.New("client: no credentials")
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("client: server address %q: %w", addr, err)
	}
	opts = append([]grpc.DialOption{
		grpc.WithTransportCredentials(credentials.NewTLS(creds.TLSConfig(host))),
		// Evidence streams are large: big windows and buffers cut
		// syscalls and flow-control stalls.
		grpc.WithInitialWindowSize(4 << 20),
		grpc.WithInitialConnWindowSize(16 << 20),
		grpc.WithReadBufferSize(256 << 10),
		grpc.WithWriteBufferSize(256 << 10),
	}, opts...)
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return &Client{
		creds:    creds,
		conn:     conn,
		evidence: custodyv1.NewEvidenceServiceClient(conn),
		custody:  custodyv1.NewCustodyServiceClient(conn),
		log:      custodyv1.NewLogServiceClient(conn),
		identity: custodyv1.NewIdentityServiceClient(conn),
	}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Conn returns the underlying connection, for calls this package does not
// wrap.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// WhoAmI returns the caller's identity and role as the server sees them.
func (c *Client) WhoAmI(ctx context.Context) (*custodyv1.WhoAmIResponse, error) {
	return c.identity.WhoAmI(ctx, &custodyv1.WhoAmIRequest{})
}

// Checkpoint returns the log's latest signed checkpoint.
func (c *Client) Checkpoint(ctx context.Context) (*custodyv1.GetCheckpointResponse, error) {
	return c.log.GetCheckpoint(ctx, &custodyv1.GetCheckpointRequest{})
}

// PublicKeys returns the log verifier key and receipt public key the server
// publishes. A court should obtain these out of band as well.
func (c *Client) PublicKeys(ctx context.Context) (*custodyv1.GetPublicKeysResponse, error) {
	return c.log.GetPublicKeys(ctx, &custodyv1.GetPublicKeysRequest{})
}

// Evidence returns the raw EvidenceService client, for calls this package
// does not wrap.
func (c *Client) Evidence() custodyv1.EvidenceServiceClient { return c.evidence }

// UploadStatus reports how far a resumable upload got.
func (c *Client) UploadStatus(ctx context.Context, uploadID string) (*custodyv1.GetUploadStatusResponse, error) {
	return c.evidence.GetUploadStatus(ctx, &custodyv1.GetUploadStatusRequest{UploadId: uploadID})
}

// InclusionProof asks for the proof that log entry index is in the tree of
// treeSize entries (0: the latest checkpoint's, returned with it). Verify
// it yourself, e.g. with transparency-dev/merkle/proof.VerifyInclusion.
func (c *Client) InclusionProof(ctx context.Context, index, treeSize uint64) (*custodyv1.GetInclusionProofResponse, error) {
	return c.log.GetInclusionProof(ctx, &custodyv1.GetInclusionProofRequest{Index: index, TreeSize: treeSize})
}

// ConsistencyProof asks for the proof that the log of firstSize entries is
// a prefix of the log of secondSize (0: the latest).
func (c *Client) ConsistencyProof(ctx context.Context, firstSize, secondSize uint64) (*custodyv1.GetConsistencyProofResponse, error) {
	return c.log.GetConsistencyProof(ctx, &custodyv1.GetConsistencyProofRequest{FirstSize: firstSize, SecondSize: secondSize})
}

// Entry returns the raw bytes of log entry index.
func (c *Client) Entry(ctx context.Context, index uint64) (*custodyv1.GetEntryResponse, error) {
	return c.log.GetEntry(ctx, &custodyv1.GetEntryRequest{Index: index})
}
