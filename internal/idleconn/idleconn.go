// Package idleconn makes network connections fail when no byte moves for a
// while. A link that stalls — a partition, a peer gone without a reset —
// otherwise holds a call until the kernel's retransmission limit (many
// minutes); with an idle timeout the call fails soon and can be retried or
// reported as unavailable. The S3 clients (evidence store, shared log) use
// it.
package idleconn

import (
	"context"
	"net"
	"time"
)

// Dialer returns a DialContext whose connections fail a Read or Write that
// makes no progress for idle.
func Dialer(d *net.Dialer, idle time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &conn{Conn: c, idle: idle}, nil
	}
}

type conn struct {
	net.Conn
	idle time.Duration
}

func (c *conn) Read(b []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	return c.Conn.Read(b)
}

func (c *conn) Write(b []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.idle))
	return c.Conn.Write(b)
}
