package evidence

import (
	"encoding/hex"
	"fmt"
	"math"
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
	CaseID string
	// Kind is what the uploader says the item is; empty means the service
	// infers it from the media type sniffed from the bytes (kind.go).
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
	// seizureRecord and seizureAttachments are set by CreateSeizureRecord
	// only: no other upload makes an item of kind biometric_seizure_record.
	seizureRecord      bool
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
// names the field at fault. The digest is required: only a resumable
// upload may leave it for its trailer (IngestResumable).
func (m *UploadMeta) Validate(maxSize int64) error {
	return m.validate(maxSize, true)
}

// validate is Validate; with digestRequired false an empty SHA256 passes
// (a resumable upload whose trailer will carry it).
func (m *UploadMeta) validate(maxSize int64, digestRequired bool) error {
	m.SHA256 = strings.ToLower(m.SHA256)
	if err := checkCaseID(m.CaseID); err != nil {
		return err
	}
	if m.Kind != "" && !validKind(m.Kind) {
		return fmt.Errorf("%w: kind %q is not one of photo, video, audio, document, biometric_seizure_record, other", ErrInvalid, m.Kind)
	}
	if m.Kind == KindBiometricSeizureRecord && !m.seizureRecord {
		return fmt.Errorf("%w: items of kind biometric_seizure_record are made only by CreateSeizureRecord (POST /v1/seizure-records), which validates the record; upload a record's attachments with special_category set and another kind (e.g. other)", ErrInvalid)
	}
	switch {
	case m.SHA256 == "" && digestRequired:
		return fmt.Errorf("%w: sha256 is required; only a resumable upload (upload_id set) may leave it empty and send it in a trailer after its last chunk", ErrInvalid)
	case m.SHA256 != "" || digestRequired:
		if err := CheckSHA256(m.SHA256); err != nil {
			return err
		}
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
	if err := checkCaptureTime(field+".captured_at", c.CapturedAt); err != nil {
		return err
	}
	if err := c.Location.validate(field + ".location"); err != nil {
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

// Bounds of a GeoPoint besides latitude and longitude: altitudes from
// below the deepest ocean trench to the edge of space, an accuracy radius
// from exact to half the Earth's circumference.
const (
	minAltitudeM = -12_000
	maxAltitudeM = 100_000
	maxAccuracyM = 20_000_000
)

// validate checks a location: bounded UTF-8 text and, for a point, finite
// numbers within WGS 84 (latitude ±90, longitude ±180) and the bounds
// above. NaN and ±Inf are refused: they compare false with every bound,
// and JSON cannot carry them.
func (l *Location) validate(field string) error {
	if l == nil {
		return nil
	}
	if err := checkText(field+".description", l.Description, maxDescription); err != nil {
		return err
	}
	p := l.Point
	if p == nil {
		return nil
	}
	check := func(name string, v, lo, hi float64) error {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < lo || v > hi {
			return fmt.Errorf("%w: %s.point.%s %v is outside WGS 84 bounds: want a finite number from %v to %v", ErrInvalid, field, name, v, lo, hi)
		}
		return nil
	}
	if err := check("latitude", p.Latitude, -90, 90); err != nil {
		return err
	}
	if err := check("longitude", p.Longitude, -180, 180); err != nil {
		return err
	}
	if p.AltitudeM != nil {
		if err := check("altitude_m", *p.AltitudeM, minAltitudeM, maxAltitudeM); err != nil {
			return err
		}
	}
	if p.AccuracyM != nil {
		if err := check("accuracy_m", *p.AccuracyM, 0, maxAccuracyM); err != nil {
			return err
		}
	}
	return nil
}

// Times callers state. Every time kept must be within RFC 3339's years
// (0000-9999) to be written at all; these bounds are narrower.
var (
	// minCaptureTime is the earliest capture (or signing) time accepted:
	// nothing Custody holds was captured digitally before it.
	minCaptureTime = time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)
	// minEmbeddedTime is the earliest time read from a file's own header
	// (EXIF, MP4): earlier ones are unset clocks (the MP4 epoch, 1904) or
	// overflows, and are dropped.
	minEmbeddedTime = time.Unix(0, 0).UTC()
	// minRecordTime and maxRecordTime bound other times stated in records
	// (authority validity): any real date, never outside RFC 3339.
	minRecordTime = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	maxRecordTime = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
)

// maxFutureSkew is how far in the future a capture, signing or event time
// may be (clocks in the field are wrong by hours, not days).
const maxFutureSkew = 24 * time.Hour

// checkCaptureTime refuses a capture time (zero means unset) before 1990
// or more than a day in the future.
func checkCaptureTime(field string, t time.Time) error {
	if t.IsZero() {
		return nil
	}
	return checkTimeIn(field, t, minCaptureTime, time.Now().Add(maxFutureSkew))
}

// checkTimeIn refuses t outside [lo, hi].
func checkTimeIn(field string, t, lo, hi time.Time) error {
	if t.Before(lo) || t.After(hi) {
		return fmt.Errorf("%w: %s %s is not a plausible time (from %s to %s)", ErrInvalid, field, formatAnyTime(t), lo.Format(time.DateOnly), hi.Format(time.DateOnly))
	}
	return nil
}

// formatAnyTime writes t for a message, whatever its year.
func formatAnyTime(t time.Time) string {
	if y := t.Year(); y < 0 || y > 9999 {
		return fmt.Sprintf("(year %d)", y)
	}
	return t.UTC().Format(time.RFC3339)
}

// plausibleEmbedded is t if it is a time a device could have written
// (from 1970 to a day from now), else the zero time.
func plausibleEmbedded(t time.Time) time.Time {
	if t.Before(minEmbeddedTime) || t.After(time.Now().Add(maxFutureSkew)) {
		return time.Time{}
	}
	return t
}
