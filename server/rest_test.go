package server

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzUploadQuery: the REST upload handler's parameter parsing never
// panics, and what it accepts is bounded and well-formed.
func FuzzUploadQuery(f *testing.F) {
	f.Add("case_id=c&kind=photo&sha256=ab&filename=a.jpg", int64(10), "image/jpeg")
	f.Add("kind=selfie&special_category=maybe&captured_at=yesterday", int64(-1), "")
	f.Add("size_bytes=-5&case_id=a&case_id=b", int64(0), "x")
	f.Fuzz(func(t *testing.T, query string, contentLength int64, contentType string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		md, err := uploadMetadataFromQuery(q, contentLength, contentType)
		if err != nil {
			if err.Error() == "" || strings.Contains(err.Error(), "\n") {
				t.Fatalf("unclear error %q", err)
			}
			return
		}
		if md.GetSizeBytes() < 0 {
			t.Fatalf("accepted a negative size: %v", md)
		}
		if md.GetKind() < 0 || md.GetKind() > 6 {
			t.Fatalf("accepted kind %v", md.GetKind())
		}
	})
}
