package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/custody-dev/custody/client"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/miniotest"
	"github.com/custody-dev/custody/internal/servertest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
	"github.com/custody-dev/custody/receipt"
)

// backend is one storage configuration the evidence tests run against.
type backend struct {
	name  string
	start func(t *testing.T, opts servertest.Options) *stack
}

// stack is a running service and a way to look at its storage directly.
type stack struct {
	env     *servertest.Env
	minio   *miniotest.Server
	bucket  string
	rawS3   *minio.Client
	dataDir string
}

var bucketSeq atomic.Int64

func backends() []backend {
	return []backend{
		{"disk", func(t *testing.T, opts servertest.Options) *stack {
			env := servertest.StartT(t, opts)
			return &stack{env: env, dataDir: env.DataDir}
		}},
		{"s3", func(t *testing.T, opts servertest.Options) *stack {
			srv := miniotest.Start(t)
			bucket := fmt.Sprintf("evidence-%d", bucketSeq.Add(1))
			opts.S3 = &servertest.S3{Endpoint: srv.Endpoint, Bucket: bucket, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}
			env := servertest.StartT(t, opts)
			raw, err := minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, "")})
			if err != nil {
				t.Fatal(err)
			}
			return &stack{env: env, minio: srv, bucket: bucket, rawS3: raw, dataDir: env.DataDir}
		}},
	}
}

// storedObjects counts every object version kept, pending or sealed.
func (s *stack) storedObjects(t *testing.T) int {
	t.Helper()
	if s.rawS3 != nil {
		n := 0
		for o := range s.rawS3.ListObjects(t.Context(), s.bucket, minio.ListObjectsOptions{Recursive: true, WithVersions: true}) {
			if o.Err != nil {
				t.Fatal(o.Err)
			}
			n++
		}
		return n
	}
	n := 0
	filepath.WalkDir(filepath.Join(s.dataDir, "blobs"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return err
	})
	return n
}

// logSize is how many entries the log has sequenced.
func (s *stack) logSize(t *testing.T) uint64 {
	t.Helper()
	n, err := s.env.Daemon.Log.Reader().NextIndex(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func meta(caseID string, data []byte) *custodyv1.UploadMetadata {
	return &custodyv1.UploadMetadata{
		CaseId: caseID, Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_DOCUMENT,
		Sha256: sha(data), SizeBytes: int64(len(data)), Filename: "statement.bin",
	}
}

func download(t *testing.T, c *client.Client, id string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := c.Download(t.Context(), &custodyv1.DownloadRequest{EvidenceId: id, Purpose: "test read-back"}, &buf); err != nil {
		t.Fatalf("download %s: %v", id, err)
	}
	return buf.Bytes()
}

var randomSeed atomic.Uint64

// randomBytes returns n bytes that differ from every other call's.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], randomSeed.Add(1))
	binary.LittleEndian.PutUint64(seed[8:], uint64(time.Now().UnixNano()))
	rand.NewChaCha8(seed).Read(b)
	return b
}

func TestUploadRoundTrip(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			s := be.start(t, servertest.Options{})
			c := s.env.Client(t, identity.RoleCollector)
			court := s.env.Client(t, identity.RoleCourt)
			keys, err := c.PublicKeys(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []int{0, 1, 5 << 20} {
				t.Run(fmt.Sprint(n), func(t *testing.T) {
					data := randomBytes(n)
					resp, err := c.Upload(t.Context(), meta("case-rt", data), bytes.NewReader(data), nil)
					if err != nil {
						t.Fatal(err)
					}
					ev := resp.GetEvidence()
					if ev.GetSha256() != sha(data) || ev.GetSizeBytes() != int64(n) || ev.GetCollector() != "urn:custody:collector:dev-collector" {
						t.Fatalf("evidence record %v", ev)
					}
					if got := download(t, court, ev.GetEvidenceId()); !bytes.Equal(got, data) {
						t.Fatalf("downloaded %d bytes differ from the %d uploaded", len(got), n)
					}
					fields, err := receipt.Verify([]byte(keys.GetReceiptPublicKeyPem()), receipt.Receipt{
						Payload: resp.GetReceipt().GetPayload(), Signature: resp.GetReceipt().GetSignature(), KeyID: resp.GetReceipt().GetKeyId(),
					})
					if err != nil {
						t.Fatalf("receipt: %v", err)
					}
					if fields["evidence_id"] != ev.GetEvidenceId() || fields["sha256"] != sha(data) || fields["size"].(json.Number).String() != fmt.Sprint(n) {
						t.Fatalf("receipt says %v", fields)
					}
					storage := fields["storage"].(map[string]any)
					if storage["version_id"] != ev.GetStorage().GetVersionId() || storage["key"] != ev.GetStorage().GetKey() {
						t.Fatalf("receipt storage %v, record %v", storage, ev.GetStorage())
					}
				})
			}
		})
	}
}

// generated is a deterministic pseudo-random stream of n bytes.
func generated(n int64, seed byte) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{seed}), n)
}

func hashStream(t *testing.T, r io.Reader) string {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestUploadOneGiB streams a generated 1 GiB item through the service and
// back, never holding it in memory.
func TestUploadOneGiB(t *testing.T) {
	const n = 1 << 30
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			s := be.start(t, servertest.Options{})
			c := s.env.Client(t, identity.RoleCollector)
			want := hashStream(t, generated(n, 7))
			md := &custodyv1.UploadMetadata{CaseId: "case-big", Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_VIDEO, Sha256: want, SizeBytes: n}
			resp, err := c.Upload(t.Context(), md, generated(n, 7), nil)
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			ev, err := s.env.Client(t, identity.RoleCourt).Download(t.Context(), &custodyv1.DownloadRequest{EvidenceId: resp.GetEvidence().GetEvidenceId(), Purpose: "1 GiB read-back"}, h)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(h.Sum(nil)); got != want || ev.GetSizeBytes() != n {
				t.Fatalf("read back %s, want %s", got, want)
			}
		})
	}
}

// rawUpload drives the Upload stream by hand to break it in chosen ways.
func rawUpload(ctx context.Context, c *client.Client, md *custodyv1.UploadMetadata, chunks ...[]byte) error {
	stream, err := custodyv1.NewEvidenceServiceClient(c.Conn()).Upload(ctx)
	if err != nil {
		return err
	}
	if err := stream.Send(&custodyv1.UploadRequest{Payload: &custodyv1.UploadRequest_Metadata{Metadata: md}}); err != nil {
		_, err = stream.CloseAndRecv()
		return err
	}
	for _, ch := range chunks {
		if err := stream.Send(&custodyv1.UploadRequest{Payload: &custodyv1.UploadRequest_Chunk{Chunk: ch}}); err != nil {
			break
		}
	}
	_, err = stream.CloseAndRecv()
	return err
}

func TestRefusedUploadsKeepNothing(t *testing.T) {
	const limit = 10 << 20
	data := randomBytes(3 << 20)
	other := randomBytes(3 << 20)
	tests := []struct {
		name    string
		call    func(ctx context.Context, c *client.Client) error
		code    codes.Code
		message string
	}{
		{"digest mismatch", func(ctx context.Context, c *client.Client) error {
			md := meta("case-bad", other)
			return rawUpload(ctx, c, md, data)
		}, codes.InvalidArgument, "received bytes hash to " + sha(data)},
		{"truncated stream", func(ctx context.Context, c *client.Client) error {
			return rawUpload(ctx, c, meta("case-bad", data), data[:1<<20])
		}, codes.DataLoss, "received 1048576 of the 3145728 bytes"},
		{"more bytes than declared", func(ctx context.Context, c *client.Client) error {
			return rawUpload(ctx, c, meta("case-bad", data[:1<<20]), data)
		}, codes.ResourceExhausted, "more than the 1048576 bytes declared"},
		{"over the size limit", func(ctx context.Context, c *client.Client) error {
			md := meta("case-bad", data)
			md.SizeBytes = limit + 1
			return rawUpload(ctx, c, md, data)
		}, codes.ResourceExhausted, "over the limit of 10485760 bytes"},
		{"missing metadata", func(ctx context.Context, c *client.Client) error {
			md := meta("", data)
			return rawUpload(ctx, c, md, data)
		}, codes.InvalidArgument, "case_id"},
		{"cancelled by the client", func(ctx context.Context, c *client.Client) error {
			ctx, cancel := context.WithCancel(ctx)
			pr, pw := io.Pipe()
			go func() {
				pw.Write(data[:2<<20])
				time.Sleep(200 * time.Millisecond)
				cancel()
				pw.CloseWithError(context.Canceled)
			}()
			_, err := c.Upload(ctx, meta("case-bad", data), pr, nil)
			return err
		}, codes.Canceled, ""},
	}
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			s := be.start(t, servertest.Options{MaxUploadBytes: limit})
			c := s.env.Client(t, identity.RoleCollector)
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					objects, entries := s.storedObjects(t), s.logSize(t)
					err := tc.call(t.Context(), c)
					if status.Code(err) != tc.code || !strings.Contains(status.Convert(err).Message(), tc.message) {
						t.Fatalf("error %v, want %v mentioning %q", err, tc.code, tc.message)
					}
					// The server may still be unwinding a cancelled call.
					deadline := time.Now().Add(10 * time.Second)
					for time.Now().Before(deadline) && s.storedObjects(t) != objects {
						time.Sleep(50 * time.Millisecond)
					}
					if got := s.storedObjects(t); got != objects {
						t.Errorf("storage holds %d objects, had %d before", got, objects)
					}
					if got := s.logSize(t); got != entries {
						t.Errorf("log has %d entries, had %d before", got, entries)
					}
					list, err := c.ListEvidence(t.Context(), &custodyv1.ListEvidenceRequest{CaseId: "case-bad"})
					if err != nil || len(list.GetEvidence()) != 0 {
						t.Errorf("catalog lists %v, %v for the refused case", list.GetEvidence(), err)
					}
				})
			}
		})
	}
}

func TestDuplicateContentStoredOnce(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			s := be.start(t, servertest.Options{})
			c := s.env.Client(t, identity.RoleCollector)
			data := randomBytes(1 << 20)
			first, err := c.Upload(t.Context(), meta("case-dup", data), bytes.NewReader(data), nil)
			if err != nil {
				t.Fatal(err)
			}
			second, err := c.Upload(t.Context(), meta("case-dup", data), bytes.NewReader(data), nil)
			if err != nil {
				t.Fatal(err)
			}
			a, b := first.GetEvidence(), second.GetEvidence()
			if a.GetEvidenceId() == b.GetEvidenceId() {
				t.Fatal("the second upload got the first's evidence id")
			}
			if a.GetStorage().GetKey() != b.GetStorage().GetKey() || a.GetStorage().GetVersionId() != b.GetStorage().GetVersionId() {
				t.Fatalf("two copies stored: %v and %v", a.GetStorage(), b.GetStorage())
			}
			if n := s.storedObjects(t); n != 1 {
				t.Fatalf("storage holds %d objects, want 1", n)
			}
			// A duplicate with the wrong bytes is still refused.
			wrong := bytes.Clone(data)
			wrong[0] ^= 1
			if err := rawUpload(t.Context(), c, meta("case-dup", data), wrong); status.Code(err) != codes.InvalidArgument {
				t.Fatalf("wrong bytes for known content: %v, want InvalidArgument", err)
			}
			if !bytes.Equal(download(t, s.env.Client(t, identity.RoleCourt), b.GetEvidenceId()), data) {
				t.Fatal("second item reads back wrong")
			}
		})
	}
}

// TestChangedBehindTheServiceNeverComesBack: a file edited on disk is
// refused with DATA_LOSS; an object overwritten in S3 adds a version the
// service never reads, and the retained version cannot be deleted.
func TestChangedBehindTheServiceNeverComesBack(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			s := be.start(t, servertest.Options{})
			c := s.env.Client(t, identity.RoleCollector)
			data := randomBytes(600 << 10)
			resp, err := c.Upload(t.Context(), meta("case-tamper", data), bytes.NewReader(data), nil)
			if err != nil {
				t.Fatal(err)
			}
			ev := resp.GetEvidence()
			forged := bytes.Clone(data)
			forged[len(forged)/2] ^= 0xff
			if s.rawS3 == nil {
				path := filepath.Join(s.dataDir, "blobs", filepath.FromSlash(ev.GetStorage().GetKey()))
				os.Chmod(path, 0o600)
				if err := os.WriteFile(path, forged, 0o600); err != nil {
					t.Fatal(err)
				}
				var got bytes.Buffer
				_, err := s.env.Client(t, identity.RoleCourt).Download(t.Context(), &custodyv1.DownloadRequest{EvidenceId: ev.GetEvidenceId(), Purpose: "check"}, &got)
				if status.Code(err) != codes.DataLoss {
					t.Fatalf("download of an edited file: %v, want DataLoss", err)
				}
				if got.Len() >= len(data) {
					t.Fatalf("the client received all %d bytes of a corrupted item", got.Len())
				}
				return
			}
			ctx := t.Context()
			if _, err := s.rawS3.PutObject(ctx, s.bucket, ev.GetStorage().GetKey(), bytes.NewReader(forged), int64(len(forged)), minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(download(t, s.env.Client(t, identity.RoleCourt), ev.GetEvidenceId()), data) {
				t.Fatal("an overwritten object came back as evidence")
			}
			err = s.rawS3.RemoveObject(ctx, s.bucket, ev.GetStorage().GetKey(), minio.RemoveObjectOptions{VersionID: ev.GetStorage().GetVersionId()})
			if err == nil {
				t.Fatal("deleting the retained evidence version succeeded")
			}
		})
	}
}

func TestPhotoEXIF(t *testing.T) {
	s := backends()[0].start(t, servertest.Options{})
	c := s.env.Client(t, identity.RoleCollector)
	photo, err := os.ReadFile("../evidence/testdata/gps.jpg")
	if err != nil {
		t.Fatal(err)
	}
	md := meta("case-photo", photo)
	md.Kind = custodyv1.EvidenceKind_EVIDENCE_KIND_PHOTO
	md.Capture = &custodyv1.Capture{Device: &custodyv1.Device{Make: "What the collector typed"}}
	resp, err := c.Upload(t.Context(), md, bytes.NewReader(photo), nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := resp.GetEvidence()
	if ev.GetMediaType() != "image/jpeg" {
		t.Errorf("media type %q, want image/jpeg", ev.GetMediaType())
	}
	// The fixture's EXIF: GPS 38.405194783° S, 144.188958° E, and the
	// software that last wrote it.
	emb := ev.GetEmbedded()
	if lat, lon := emb.GetPoint().GetLatitude(), emb.GetPoint().GetLongitude(); math.Abs(lat+38.405194783) > 1e-6 || math.Abs(lon-144.188958) > 1e-6 {
		t.Fatalf("EXIF position (%v, %v), want (-38.405194783, 144.188958)", lat, lon)
	}
	if emb.GetDevice().GetSoftware() != "Perfectly Clear Complete v3 3.6.3.1351" {
		t.Fatalf("EXIF software %q", emb.GetDevice().GetSoftware())
	}
	if ev.GetCapture().GetDevice().GetMake() != "What the collector typed" {
		t.Errorf("the collector's statement was overwritten: %v", ev.GetCapture())
	}
}

// TestSeizureRecordNeverInClear stores a seizure record with an attachment
// and checks that none of its fields nor the attachment's bytes can be
// found anywhere under the data dir (catalog included) or in MinIO's
// drive, while the court can read it back and an auditor cannot.
func TestSeizureRecordNeverInClear(t *testing.T) {
	doc, err := os.ReadFile("../examples/seizure-record.json")
	if err != nil {
		t.Fatal(err)
	}
	var rec custodyv1.SeizureRecord
	if err := protojson.Unmarshal(doc, &rec); err != nil {
		t.Fatal(err)
	}
	markers := []string{"KESTREL-3", "PS-30-004471", "subj-7f3a9c", "Bezimenne", "defector", "batch-0001.eft"}
	attachment := []byte("FINGERPRINT-TEMPLATE-BYTES " + strings.Repeat("minutiae ", 5000))
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			s := be.start(t, servertest.Options{})
			c := s.env.Client(t, identity.RoleCollector)
			md := meta("case-filtration", attachment)
			md.Kind = custodyv1.EvidenceKind_EVIDENCE_KIND_BIOMETRIC_SEIZURE_RECORD
			md.SpecialCategory = true
			md.Filename = "KESTREL-3-export.eft"
			att, err := c.Upload(t.Context(), md, bytes.NewReader(attachment), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !att.GetEvidence().GetStorage().GetEncrypted() {
				t.Fatal("special-category attachment stored unencrypted")
			}
			created, err := c.CreateSeizureRecord(t.Context(), &custodyv1.CreateSeizureRecordRequest{
				CaseId: "case-filtration", Record: &rec, AttachmentEvidenceIds: []string{att.GetEvidence().GetEvidenceId()},
			})
			if err != nil {
				t.Fatal(err)
			}
			id := created.GetEvidence().GetEvidenceId()

			court := s.env.Client(t, identity.RoleCourt)
			got, err := court.GetSeizureRecord(t.Context(), &custodyv1.GetSeizureRecordRequest{EvidenceId: id, Purpose: "trial preparation"})
			if err != nil {
				t.Fatal(err)
			}
			if got.GetRecord().GetSourceSystem().GetSerialNumber() != "PS-30-004471" || len(got.GetAttachmentEvidenceIds()) != 1 {
				t.Fatalf("court reads back %v", got)
			}
			if !bytes.Equal(download(t, court, att.GetEvidence().GetEvidenceId()), attachment) {
				t.Fatal("attachment reads back wrong")
			}
			auditor := s.env.Client(t, identity.RoleAuditor)
			_, err = auditor.GetSeizureRecord(t.Context(), &custodyv1.GetSeizureRecordRequest{EvidenceId: id, Purpose: "curiosity"})
			if status.Code(err) != codes.PermissionDenied {
				t.Fatalf("auditor read: %v, want PermissionDenied", err)
			}
			if ev, err := auditor.GetEvidence(t.Context(), att.GetEvidence().GetEvidenceId()); err != nil || ev.GetFilename() != "" {
				t.Fatalf("auditor sees attachment metadata %v, %v", ev, err)
			}

			// Stop the service so every file is flushed, then search.
			if err := s.env.Stop(); err != nil {
				t.Fatal(err)
			}
			dirs := []string{s.dataDir}
			if s.minio != nil {
				dirs = append(dirs, s.minio.DataDir)
			}
			searched := 0
			for _, dir := range dirs {
				filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
					if err != nil || d.IsDir() {
						return err
					}
					searched++
					b, err := os.ReadFile(path)
					if err != nil {
						return err
					}
					for _, m := range append(markers, "FINGERPRINT-TEMPLATE-BYTES", "minutiae minutiae") {
						if bytes.Contains(b, []byte(m)) {
							t.Errorf("%s contains %q in clear", path, m)
						}
					}
					return nil
				})
			}
			// The catalog, log tiles, keys and objects at least.
			if searched < 10 {
				t.Fatalf("searched only %d files", searched)
			}
		})
	}
}

// TestRESTUploadAndContent uses the raw-body HTTPS routes as curl would.
func TestRESTUploadAndContent(t *testing.T) {
	s := backends()[0].start(t, servertest.Options{})
	hc := s.env.HTTPClient(t, s.env.Creds(t, identity.RoleCollector).Certificate)
	data := randomBytes(700 << 10)
	post := func(query string, body []byte) (int, []byte) {
		req, _ := http.NewRequestWithContext(t.Context(), "POST", s.env.URL("/v1/evidence:upload?"+query), bytes.NewReader(body))
		req.Header.Set("Content-Type", "video/mp4")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	q := "case_id=case-rest&kind=video&filename=clip.mp4&sha256=" + sha(data)
	code, body := post(q, data)
	if code != http.StatusCreated {
		t.Fatalf("upload: %d %s", code, body)
	}
	var up struct {
		Evidence struct {
			EvidenceID        string `json:"evidence_id"`
			DeclaredMediaType string `json:"declared_media_type"`
		}
		Receipt struct{ Payload string }
	}
	if err := json.Unmarshal(body, &up); err != nil || up.Evidence.EvidenceID == "" || up.Evidence.DeclaredMediaType != "video/mp4" || up.Receipt.Payload == "" {
		t.Fatalf("upload response %s", body)
	}

	for _, tc := range []struct {
		name, query string
		body        []byte
		code        int
		message     string
	}{
		{"digest mismatch", "case_id=case-rest&kind=video&sha256=" + sha(data[1:]), data, 400, "SHA-256 mismatch"},
		{"unknown kind", "case_id=case-rest&kind=selfie&sha256=" + sha(data), data, 400, "selfie"},
		{"unknown parameter", "case_id=case-rest&kind=video&sha=1", data, 400, "unknown query parameter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := post(tc.query, tc.body)
			if code != tc.code || !strings.Contains(string(body), tc.message) {
				t.Fatalf("%d %s, want %d mentioning %q", code, body, tc.code, tc.message)
			}
		})
	}

	reader := s.env.HTTPClient(t, s.env.Creds(t, identity.RoleCourt).Certificate)
	get := func(path string) (*http.Response, []byte) {
		resp, err := reader.Get(s.env.URL(path))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, got := get("/v1/evidence/" + up.Evidence.EvidenceID + "/content?purpose=review")
	if resp.StatusCode != 200 || !bytes.Equal(got, data) || resp.Header.Get("X-Custody-Sha256") != sha(data) {
		t.Fatalf("content: %d, %d bytes, sha header %q", resp.StatusCode, len(got), resp.Header.Get("X-Custody-Sha256"))
	}
	resp, got = get("/v1/evidence/" + up.Evidence.EvidenceID + "/content")
	if resp.StatusCode != 400 || !strings.Contains(string(got), "purpose is required") {
		t.Fatalf("content without purpose: %d %s", resp.StatusCode, got)
	}
	// Both reads that went out are in the item's history; the refused one
	// is not.
	evs, err := s.env.Daemon.Evidence.Get(t.Context(), identityOf(t, identity.RoleCourt), up.Evidence.EvidenceID)
	if err != nil || evs.LastSeq != 1 {
		t.Fatalf("after one download the item is at event %d (%v), want 1", evs.LastSeq, err)
	}
}

func identityOf(t *testing.T, r identity.Role) identity.Identity {
	id, err := identity.New(r, "dev-"+string(r))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestReceiptVerifiesWithOpenSSL checks the documented recipe: the receipt
// payload, signature and public key verify with openssl alone.
func TestReceiptVerifiesWithOpenSSL(t *testing.T) {
	s := backends()[0].start(t, servertest.Options{})
	c := s.env.Client(t, identity.RoleCollector)
	data := randomBytes(1000)
	resp, err := c.Upload(t.Context(), meta("case-openssl", data), bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := c.PublicKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	payload := write("receipt.json", resp.GetReceipt().GetPayload())
	sig := write("receipt.sig", resp.GetReceipt().GetSignature())
	pub := write("receipt-key.pem", []byte(keys.GetReceiptPublicKeyPem()))
	out, err := exec.Command("openssl", "dgst", "-sha256", "-verify", pub, "-signature", sig, payload).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Verified OK") {
		t.Fatalf("openssl: %v %s", err, out)
	}
	// One flipped byte fails.
	tampered := bytes.Clone(resp.GetReceipt().GetPayload())
	tampered[10] ^= 1
	write("receipt.json", tampered)
	if out, err := exec.Command("openssl", "dgst", "-sha256", "-verify", pub, "-signature", sig, payload).CombinedOutput(); err == nil {
		t.Fatalf("openssl verified a tampered receipt: %s", out)
	}
}

// TestVerifyEvidenceFindsReplacedBytes changes the stored bytes under the
// service (the file on disk; the object's data on MinIO's drive) and
// expects the server-side check to fail, and to be logged.
func TestVerifyEvidenceFindsReplacedBytes(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			s := be.start(t, servertest.Options{})
			c := s.env.Client(t, identity.RoleCustodian)
			collector := s.env.Client(t, identity.RoleCollector)
			data := randomBytes(2 << 20) // large enough to be a part file in MinIO
			resp, err := collector.Upload(t.Context(), meta("case-verify", data), bytes.NewReader(data), nil)
			if err != nil {
				t.Fatal(err)
			}
			id := resp.GetEvidence().GetEvidenceId()
			v, err := c.VerifyEvidence(t.Context(), id)
			if err != nil || !v.GetOk() {
				t.Fatalf("untouched: %v %v", v, err)
			}
			// Replace bytes behind the service's back.
			root := filepath.Join(s.dataDir, "blobs")
			if s.minio != nil {
				root = filepath.Join(s.minio.DataDir, s.bucket)
			}
			replaced := 0
			filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() || (s.minio != nil && !strings.HasPrefix(d.Name(), "part.")) {
					return err
				}
				os.Chmod(path, 0o600)
				b, _ := os.ReadFile(path)
				b[len(b)/2] ^= 0xff
				replaced++
				return os.WriteFile(path, b, 0o600)
			})
			if replaced == 0 {
				t.Fatal("found no stored bytes to replace")
			}
			v, err = c.VerifyEvidence(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if v.GetOk() || v.GetChecks()[0].GetOk() {
				t.Fatalf("replaced bytes pass verification: %v", v)
			}
			// The background scrub finds it too.
			var flagged []string
			checked, bad, err := s.env.Daemon.Evidence.Scrub(t.Context(), func(id string, err error) {
				if err != nil {
					flagged = append(flagged, id)
				}
			})
			if err != nil || checked != 1 || bad != 1 || len(flagged) != 1 || flagged[0] != id {
				t.Fatalf("scrub: checked %d, bad %d, flagged %v, err %v", checked, bad, flagged, err)
			}
			hist := checkChain(t, c, id, nil)
			last := hist[len(hist)-1]
			if last.GetType() != custodyv1.EventType_EVENT_TYPE_VERIFICATION || last.GetOutcome() != custodyv1.Outcome_OUTCOME_FAILED {
				t.Fatalf("last event %v, want a failed verification", last)
			}
		})
	}
}

// TestVideoContainerMetadata: the server reads creation time and duration
// from an MP4's movie header and keeps them beside what the client stated.
func TestVideoContainerMetadata(t *testing.T) {
	s := backends()[0].start(t, servertest.Options{})
	c := s.env.Client(t, identity.RoleCollector)
	// ftyp, then moov/mvhd (version 0): created 2022-03-16T10:05:00Z,
	// timescale 600, duration 57000 (95 s), then some media data.
	mvhd := make([]byte, 100)
	created := uint32(time.Date(2022, 3, 16, 10, 5, 0, 0, time.UTC).Sub(time.Date(1904, 1, 1, 0, 0, 0, 0, time.UTC)) / time.Second)
	binary.BigEndian.PutUint32(mvhd[4:], created)
	binary.BigEndian.PutUint32(mvhd[12:], 600)
	binary.BigEndian.PutUint32(mvhd[16:], 57000)
	boxOf := func(typ string, payload []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(8+len(payload)))
		return append(append(b, typ...), payload...)
	}
	video := append(boxOf("ftyp", []byte("isom\x00\x00\x02\x00isomiso2mp41")), boxOf("moov", boxOf("mvhd", mvhd))...)
	video = append(video, boxOf("mdat", randomBytes(50000))...)
	md := meta("case-video", video)
	md.Kind = custodyv1.EvidenceKind_EVIDENCE_KIND_VIDEO
	resp, err := c.Upload(t.Context(), md, bytes.NewReader(video), nil)
	if err != nil {
		t.Fatal(err)
	}
	emb := resp.GetEvidence().GetEmbedded()
	if emb.GetCapturedAt().AsTime() != time.Date(2022, 3, 16, 10, 5, 0, 0, time.UTC) || emb.GetDuration().AsDuration() != 95*time.Second {
		t.Fatalf("embedded %v", emb)
	}
	if resp.GetEvidence().GetMediaType() != "video/mp4" {
		t.Errorf("media type %q", resp.GetEvidence().GetMediaType())
	}
}
