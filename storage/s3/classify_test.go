package s3

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"syscall"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/custody-dev/custody/storage"
)

// TestClassify: whatever a stopping or failing S3 server makes minio-go
// return is ErrUnavailable (callers answer UNAVAILABLE: retry), never an
// unclassified error (INTERNAL); the request's own faults are not.
func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want error // nil: neither unavailable nor not found
	}{
		{"503", minio.ErrorResponse{StatusCode: 503, Code: "ServiceUnavailable"}, storage.ErrUnavailable},
		{"502 from a proxy", minio.ErrorResponse{StatusCode: 502}, storage.ErrUnavailable},
		{"500 without a code", minio.ErrorResponse{StatusCode: 500}, storage.ErrUnavailable},
		{"server not initialized", minio.ErrorResponse{StatusCode: 503, Code: "XMinioServerNotInitialized"}, storage.ErrUnavailable},
		{"connection refused", &url.Error{Op: "Put", URL: "http://x", Err: syscall.ECONNREFUSED}, storage.ErrUnavailable},
		{"reset mid-answer", fmt.Errorf("read body: %w", syscall.ECONNRESET), storage.ErrUnavailable},
		{"answer cut short", fmt.Errorf("xml: %w", io.ErrUnexpectedEOF), storage.ErrUnavailable},
		{"broken pipe", fmt.Errorf("write: %w", syscall.EPIPE), storage.ErrUnavailable},
		{"not found", minio.ErrorResponse{StatusCode: 404, Code: "NoSuchKey"}, storage.ErrNotFound},
		{"access denied", minio.ErrorResponse{StatusCode: 403, Code: "AccessDenied"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(tc.err, "put %s", "k")
			for _, kind := range []error{storage.ErrUnavailable, storage.ErrNotFound} {
				if errors.Is(got, kind) != (kind == tc.want) {
					t.Fatalf("classify(%v) = %v: errors.Is(%v) = %v", tc.err, got, kind, errors.Is(got, kind))
				}
			}
		})
	}
}
