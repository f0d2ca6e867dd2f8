package evidence

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Kind says what an item is.
type Kind string

// The kinds.
const (
	KindPhoto                  Kind = "photo"
	KindVideo                  Kind = "video"
	KindAudio                  Kind = "audio"
	KindDocument               Kind = "document"
	KindBiometricSeizureRecord Kind = "biometric_seizure_record"
	KindOther                  Kind = "other"
)

// Kinds lists every kind.
var Kinds = []Kind{KindPhoto, KindVideo, KindAudio, KindDocument, KindBiometricSeizureRecord, KindOther}

// GeoPoint is a WGS 84 position.
type GeoPoint struct {
	Latitude  float64  `json:"latitude"`
	Longitude float64  `json:"longitude"`
	AltitudeM *float64 `json:"altitude_m,omitempty"`
	AccuracyM *float64 `json:"accuracy_m,omitempty"`
}

// Location is a description, a point, or both.
type Location struct {
	Description string    `json:"description,omitempty"`
	Point       *GeoPoint `json:"point,omitempty"`
}

// Device identifies a capture device.
type Device struct {
	Make         string `json:"make,omitempty"`
	Model        string `json:"model,omitempty"`
	SerialNumber string `json:"serial_number,omitempty"`
	UniqueID     string `json:"unique_id,omitempty"`
	Software     string `json:"software,omitempty"`
}

// Capture is how and where an item was captured.
type Capture struct {
	CapturedAt time.Time `json:"captured_at,omitzero"`
	Location   *Location `json:"location,omitempty"`
	Device     *Device   `json:"device,omitempty"`
	// Duration is read from media containers (never stated by clients).
	Duration time.Duration `json:"duration,omitzero"`
}

// UploadMeta is what the uploader states about an item.
type UploadMeta struct {
	CaseID            string
	Kind              Kind
	SHA256            string
	Size              int64
	Filename          string
	DeclaredMediaType string
	Description       string
	Capture           Capture
	Special           bool
	DerivedFrom       string
	// CollectorSignature is the collector's own signature over the
	// capture statement (events.CaptureStatement), if the client made one.
	CollectorSignature *Signature
	// seizureAttachments is set by CreateSeizureRecord only.
	seizureAttachments []string
}

// Metadata is an item's descriptive metadata as kept in the catalog (JSON,
// encrypted for special-category items): what the collector stated, and
// beside it, never merged, what the server read from the bytes.
type Metadata struct {
	Filename          string   `json:"filename,omitempty"`
	Description       string   `json:"description,omitempty"`
	DeclaredMediaType string   `json:"declared_media_type,omitempty"`
	Capture           Capture  `json:"capture"`
	Embedded          *Capture `json:"embedded,omitempty"`
	// SeizureAttachments are the attachment ids of a seizure record.
	SeizureAttachments []string `json:"seizure_attachments,omitempty"`
}

// Limits on metadata. Together they bound an item's metadata well under the
// 64 KiB a log entry may take, though only digests reach the log.
const (
	maxCaseID      = 128
	maxFilename    = 255
	maxDescription = 4096
	maxShortText   = 256
	maxMediaType   = 127
)

// Validate checks metadata and returns an error wrapping ErrInvalid that
// names the field at fault.
func (m *UploadMeta) Validate(maxSize int64) error {
	m.SHA256 = strings.ToLower(m.SHA256)
	if err := checkCaseID(m.CaseID); err != nil {
		return err
	}
	if !validKind(m.Kind) {
		return fmt.Errorf("%w: kind %q is not one of photo, video, audio, document, biometric_seizure_record, other", ErrInvalid, m.Kind)
	}
	if err := CheckSHA256(m.SHA256); err != nil {
		return err
	}
	if m.Size < 0 {
		return fmt.Errorf("%w: size_bytes %d is negative", ErrInvalid, m.Size)
	}
	if m.Size > maxSize {
		return fmt.Errorf("%w: %d bytes is over the limit of %d bytes", ErrTooLarge, m.Size, maxSize)
	}
	for _, f := range []struct {
		name, value string
		max         int
	}{
		{"filename", m.Filename, maxFilename},
		{"declared_media_type", m.DeclaredMediaType, maxMediaType},
		{"description", m.Description, maxDescription},
	} {
		if err := checkText(f.name, f.value, f.max); err != nil {
			return err
		}
	}
	if strings.ContainsAny(m.Filename, "/\\\x00") {
		return fmt.Errorf("%w: filename %q must be a base name without / or \\", ErrInvalid, truncate(m.Filename, 64))
	}
	if m.DerivedFrom != "" {
		if err := CheckID(m.DerivedFrom); err != nil {
			return fmt.Errorf("derived_from: %w", err)
		}
	}
	return m.Capture.validate("capture")
}

func validKind(k Kind) bool {
	for _, known := range Kinds {
		if k == known {
			return true
		}
	}
	return false
}

func checkCaseID(id string) error {
	if id == "" || len(id) > maxCaseID {
		return fmt.Errorf("%w: case_id must be 1 to %d characters", ErrInvalid, maxCaseID)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_.:/", c)) {
			return fmt.Errorf("%w: case_id %q has %q; allowed are letters, digits and - _ . : /", ErrInvalid, truncate(id, 40), c)
		}
	}
	return nil
}

// CheckSHA256 validates a lower-case hex SHA-256.
func CheckSHA256(s string) error {
	if len(s) != 64 {
		return fmt.Errorf("%w: sha256 must be 64 hex characters, got %d", ErrInvalid, len(s))
	}
	if _, err := hex.DecodeString(s); err != nil || strings.ToLower(s) != s {
		return fmt.Errorf("%w: sha256 %q is not lower-case hex", ErrInvalid, truncate(s, 70))
	}
	return nil
}

func checkText(field, v string, max int) error {
	if len(v) > max {
		return fmt.Errorf("%w: %s is %d bytes, at most %d", ErrInvalid, field, len(v), max)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, field)
	}
	for _, r := range v {
		if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f {
			return fmt.Errorf("%w: %s contains control character %U", ErrInvalid, field, r)
		}
	}
	return nil
}

func (c Capture) validate(field string) error {
	if !c.CapturedAt.IsZero() {
		if c.CapturedAt.Year() < 1990 || c.CapturedAt.After(time.Now().Add(24*time.Hour)) {
			return fmt.Errorf("%w: %s.captured_at %s is not a plausible capture time", ErrInvalid, field, c.CapturedAt.Format(time.RFC3339))
		}
	}
	if err := validateLocation(field+".location", c.Location); err != nil {
		return err
	}
	if d := c.Device; d != nil {
		for name, v := range map[string]string{"make": d.Make, "model": d.Model, "serial_number": d.SerialNumber, "unique_id": d.UniqueID, "software": d.Software} {
			if err := checkText(field+".device."+name, v, maxShortText); err != nil {
				return err
			}
		}
	}
	return nil
}
