package s3

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/minio/minio-go/v7"
)

// Timeouts of the connections to S3. A link that stalls — a partition, a
// peer that vanished without a reset — shows up as a connection on which
// no byte moves; such a connection fails after the idle timeout
// (Config.IdleTimeout, default DefaultIdleTimeout) instead of waiting for
// the kernel's retransmission limit (many minutes), so the call fails with
// ErrUnavailable (or minio-go retries it) while the client still listens.
const (
	DialTimeout        = 10 * time.Second
	DefaultIdleTimeout = 30 * time.Second
)

// transport is minio-go's default transport with the dial and idle
// timeouts.
func transport(insecure bool, idle time.Duration) (http.RoundTripper, error) {
	t, err := minio.DefaultTransport(!insecure)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: DialTimeout, KeepAlive: 15 * time.Second}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &idleConn{Conn: c, idle: idle}, nil
	}
	t.ResponseHeaderTimeout = time.Minute
	return t, nil
}

// idleConn fails a Read or Write that makes no progress for idle.
type idleConn struct {
	net.Conn
	idle time.Duration
}

func (c *idleConn) Read(b []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	return c.Conn.Read(b)
}

func (c *idleConn) Write(b []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.idle))
	return c.Conn.Write(b)
}
