package evidence

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestUploadMetaValidate(t *testing.T) {
	good := func() UploadMeta {
		return UploadMeta{CaseID: "ICC-01/22", Kind: KindPhoto, SHA256: strings.Repeat("ab", 32), Size: 10, Filename: "IMG_0001.JPG"}
	}
	tests := []struct {
		name    string
		change  func(*UploadMeta)
		want    error
		message string
	}{
		{"valid", func(*UploadMeta) {}, nil, ""},
		{"upper-case digest is normalised", func(m *UploadMeta) { m.SHA256 = strings.Repeat("AB", 32) }, nil, ""},
		{"no case", func(m *UploadMeta) { m.CaseID = "" }, ErrInvalid, "case_id"},
		{"case with spaces", func(m *UploadMeta) { m.CaseID = "case 1" }, ErrInvalid, "case_id"},
		{"unknown kind", func(m *UploadMeta) { m.Kind = "selfie" }, ErrInvalid, "kind"},
		{"no kind (inferred at ingest)", func(m *UploadMeta) { m.Kind = "" }, nil, ""},
		{"short digest", func(m *UploadMeta) { m.SHA256 = "abc" }, ErrInvalid, "64 hex"},
		{"non-hex digest", func(m *UploadMeta) { m.SHA256 = strings.Repeat("zz", 32) }, ErrInvalid, "hex"},
		{"negative size", func(m *UploadMeta) { m.Size = -1 }, ErrInvalid, "negative"},
		{"over the limit", func(m *UploadMeta) { m.Size = 1001 }, ErrTooLarge, "over the limit"},
		{"path in filename", func(m *UploadMeta) { m.Filename = "../etc/passwd" }, ErrInvalid, "base name"},
		{"invalid UTF-8", func(m *UploadMeta) { m.Description = "\xff" }, ErrInvalid, "UTF-8"},
		{"control character", func(m *UploadMeta) { m.Description = "a\x1b[31m" }, ErrInvalid, "control"},
		{"long description", func(m *UploadMeta) { m.Description = strings.Repeat("x", 5000) }, ErrInvalid, "at most"},
		{"capture in the future", func(m *UploadMeta) { m.Capture.CapturedAt = time.Now().Add(48 * time.Hour) }, ErrInvalid, "plausible"},
		{"latitude out of range", func(m *UploadMeta) { m.Capture.Location = &Location{Point: &GeoPoint{Latitude: 91}} }, ErrInvalid, "WGS 84"},
		{"bad derived_from", func(m *UploadMeta) { m.DerivedFrom = "x" }, ErrInvalid, "evidence id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := good()
			tc.change(&m)
			err := m.Validate(1000)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("Validate = %v, want %v mentioning %q", err, tc.want, tc.message)
			}
		})
	}
}

func FuzzUploadMetaValidate(f *testing.F) {
	f.Add("case-1", "photo", strings.Repeat("ab", 32), int64(10), "a.jpg", "desc")
	f.Add("", "", "", int64(-1), "../x", "\xff")
	f.Fuzz(func(t *testing.T, caseID, kind, sha string, size int64, filename, desc string) {
		m := UploadMeta{CaseID: caseID, Kind: Kind(kind), SHA256: sha, Size: size, Filename: filename, Description: desc}
		if err := m.Validate(1 << 30); err == nil {
			// Whatever passes must be safe to store and show.
			if strings.ContainsAny(m.Filename, "/\\\x00") || len(m.SHA256) != 64 || m.Size < 0 || m.CaseID == "" {
				t.Fatalf("accepted %+v", m)
			}
		}
	})
}
