package server

import (
	"mime"
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
	f.Add("case_id=c&declared_media_type=text/plain;charset=utf-8", int64(3), "application/octet-stream")
	f.Add("case_id=c&declared_media_type=video/mp4", int64(3), "video/quicktime")
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
		if d := md.GetDeclaredMediaType(); d != "" {
			mt, _, err := mime.ParseMediaType(d)
			if err != nil || mt == "application/octet-stream" || d != strings.ToValidUTF8(d, "") {
				t.Fatalf("declared media type %q is no explicit declaration", d)
			}
			if q.Get("declared_media_type") == "" && corsSafelisted[mt] {
				t.Fatalf("Content-Type %q recorded as a declaration", contentType)
			}
		}
	})
}

// Only an explicit declaration is recorded as the declared media type:
// the declared_media_type parameter, or a Content-Type that is neither
// application/octet-stream nor a form or text type (curl's default
// among them), normalised.
func TestDeclaredMediaType(t *testing.T) {
	for _, tc := range []struct {
		name, param, contentType string
		want, err                string
	}{
		{"a media type", "", "video/mp4", "video/mp4", ""},
		{"normalised", "", "Video/MP4; Codecs=avc1", "video/mp4; codecs=avc1", ""},
		{"octet-stream declares nothing", "", "application/octet-stream", "", ""},
		{"curl's default declares nothing", "", "application/x-www-form-urlencoded", "", ""},
		{"multipart declares nothing", "", "multipart/form-data; boundary=x", "", ""},
		{"text/plain as a header declares nothing", "", "text/plain", "", ""},
		{"no Content-Type", "", "", "", ""},
		{"unparsable Content-Type", "", "video/", "", ""},
		{"the parameter", "text/plain; charset=utf-8", "application/octet-stream", "text/plain; charset=utf-8", ""},
		{"the parameter and the same header", "video/mp4", "video/MP4", "video/mp4", ""},
		{"the parameter and a form header", "image/jpeg", "application/x-www-form-urlencoded", "image/jpeg", ""},
		{"the parameter against the header", "video/mp4", "video/quicktime", "", "differ"},
		{"a parameter that is no media type", "movie", "", "", "not a media type"},
		{"a parameter that does not parse", "video/mp4; =", "", "", "not a media type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := declaredMediaType(tc.param, tc.contentType)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("declaredMediaType = %q, %v; want an error mentioning %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("declaredMediaType = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
