package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/custody-dev/custody/historymap"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/custody-dev/custody/client"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/miniotest"
	"github.com/custody-dev/custody/internal/testenv/servertest"
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

// logSize is how many custody entries the log holds (custodyEntries).
func (s *stack) logSize(t *testing.T) uint64 { return custodyEntries(t, s.env) }

// custodyEntries is how many custody entries env's log holds once
// everything sequenced is integrated; the log's own history-map
// commitments, which it appends in the background, are not counted.
func custodyEntries(t *testing.T, env *servertest.Env) uint64 {
	t.Helper()
	l := env.Daemon.Log
	size, err := l.Settled(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	indexes := make([]uint64, size)
	for i := range indexes {
		indexes[i] = uint64(i)
	}
	entries, err := l.Entries(t.Context(), indexes, size)
	if err != nil {
		t.Fatal(err)
	}
	n := uint64(0)
	for i, e := range entries {
		if _, commitment, err := historymap.ParseEntry(e); err != nil {
			t.Fatalf("log entry %d: %v", i, err)
		} else if !commitment {
			n++
		}
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
