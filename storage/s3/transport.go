package s3

import (
	"net"
	"net/http"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/custody-dev/custody/internal/idleconn"
)

// Timeouts of the connections to S3: a stalled connection fails after the
// idle timeout (Config.IdleTimeout, default DefaultIdleTimeout), so the
// call fails with ErrUnavailable (or minio-go retries it) while the client
// still listens.
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
	t.DialContext = idleconn.Dialer(&net.Dialer{Timeout: DialTimeout, KeepAlive: 15 * time.Second}, idle)
	t.ResponseHeaderTimeout = time.Minute
	return t, nil
}
