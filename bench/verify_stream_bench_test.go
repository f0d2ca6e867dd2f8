package bench_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"

	"github.com/custody-dev/custody/canonicaljson"
	"github.com/custody-dev/custody/events"
	"github.com/custody-dev/custody/historymap"
	"github.com/custody-dev/custody/identity"
	"github.com/custody-dev/custody/internal/testenv/binaries"
	"github.com/custody-dev/custody/internal/testenv/servertest"
	custodyv1 "github.com/custody-dev/custody/proto/custody/v1"
	"github.com/custody-dev/custody/verify"
)

// BenchmarkVerify100kEventStream verifies bundles in the stream form of
// items with 10,000 and 100,000 events and reports the verifier's memory:
// in-process, the largest live heap any GC cycle found during
// verify.VerifyStream (and the heap's high-water mark, garbage included),
// and the heap the finished report holds; as a separate process, the peak
// RSS of `custody verify --bundle STREAM`. Together they show what stays
// bounded (a batch of lines) and what grows with the history (the report,
// which lists four checks per event).
//
// Recording 100,000 events through a service takes most of an hour, so
// the stream is built the way a dishonest operator would (verify's
// operator_test.go): a real service records an ingest and one annotation
// of the size TestLongHistoryStaysExportable uses (a 4,000-byte note);
// then, with the service's own log and receipt keys, the annotation is
// repeated n-1 times in a log of its own making, every entry, proof,
// checkpoint, history map and receipt validly signed.
//
//	go test ./bench -run '^$' -bench Verify100kEventStream -benchtime 1x -timeout 30m
func BenchmarkVerify100kEventStream(b *testing.B) {
	tmpl := streamTemplate(b)
	custody := binaries.Build(b, "custody")
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			// CUSTODY_STREAM_DIR keeps the streams (and the keys to verify
			// them) there, to run custody verify on them by hand.
			dir := os.Getenv("CUSTODY_STREAM_DIR")
			if dir == "" {
				dir = b.TempDir()
			}
			path := filepath.Join(dir, fmt.Sprintf("stream-%d.jsonl", n))
			os.WriteFile(filepath.Join(dir, "log-key.txt"), []byte(tmpl.logVKey+"\n"), 0o644)
			os.WriteFile(filepath.Join(dir, "receipt-key.pem"), tmpl.receiptPEM, 0o644)
			start := time.Now()
			size := tmpl.write(b, path, n)
			b.Logf("%d events: %d MiB stream written in %v", n, size>>20, time.Since(start).Round(time.Second))
			opts := func() verify.Options {
				return verify.Options{LogVerifierKey: tmpl.logVKey, ReceiptKeyPEM: tmpl.receiptPEM}
			}
			var m streamMemory
			for b.Loop() {
				m = verifyStreamMeasured(b, path, opts(), n)
				m.rss = verifyStreamCLI(b, custody, path, tmpl)
			}
			b.ReportMetric(float64(size)/(1<<20), "stream-MiB")
			b.ReportMetric(m.seconds, "verify-s")
			b.ReportMetric(float64(m.maxLive)/(1<<20), "max-live-heap-MiB")
			b.ReportMetric(float64(m.maxHeap)/(1<<20), "max-heap-MiB")
			b.ReportMetric(float64(m.report)/(1<<20), "report-MiB")
			b.ReportMetric(float64(m.report)/float64(n), "report-B/event")
			b.ReportMetric(float64(m.rss)/(1<<20), "cli-peak-RSS-MiB")
		})
	}
}

type streamMemory struct {
	seconds                  float64
	maxLive, maxHeap, report uint64
	rss                      int64
}

// verifyStreamMeasured verifies the stream in path in-process, sampling
// the runtime's heap metrics every millisecond.
func verifyStreamMeasured(b *testing.B, path string, opts verify.Options, n int) streamMemory {
	samples := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}}
	runtime.GC()
	metrics.Read(samples)
	base := samples[0].Value.Uint64()
	var m streamMemory
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(samples)
			m.maxLive = max(m.maxLive, samples[0].Value.Uint64()-min(base, samples[0].Value.Uint64()))
			m.maxHeap = max(m.maxHeap, samples[1].Value.Uint64()-min(base, samples[1].Value.Uint64()))
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	start := time.Now()
	r := verify.VerifyStream(f, opts)
	m.seconds = time.Since(start).Seconds()
	close(done)
	wg.Wait()
	if r.Outcome != verify.OutcomeVerifiedWithLimits || len(r.Checks) < 4*n {
		b.Fatalf("stream: %s, %d checks: %v %v", r.Outcome, len(r.Checks), r.Failures(), r.NotChecked)
	}
	runtime.GC()
	metrics.Read(samples)
	m.report = samples[0].Value.Uint64() - min(base, samples[0].Value.Uint64())
	runtime.KeepAlive(r)
	return m
}

// verifyStreamCLI runs custody verify on the stream and returns its peak
// RSS, as GNU time reports it (the child's own rusage from os/exec would
// count this process's memory too: the child is started by vfork, and
// Linux counts the peak of the address space it replaced at exec), or 0
// without /usr/bin/time.
func verifyStreamCLI(b *testing.B, custody, path string, tmpl *streamTmpl) int64 {
	dir := b.TempDir()
	keyFile := filepath.Join(dir, "receipt-key.pem")
	os.WriteFile(keyFile, tmpl.receiptPEM, 0o644)
	args := []string{custody, "verify", "--bundle", path, "--log-key", tmpl.logVKey, "--receipt-key", keyFile}
	timeFile := filepath.Join(dir, "maxrss")
	gnuTime := "/usr/bin/time"
	if _, err := os.Stat(gnuTime); err == nil {
		args = append([]string{gnuTime, "-f", "%M", "-o", timeFile}, args...)
	}
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("VERIFIED, WITH LIMITS")) {
		b.Fatalf("custody verify: %v\n%s", err, out[:min(len(out), 2000)])
	}
	kib, err := os.ReadFile(timeFile)
	if err != nil {
		b.Log("no /usr/bin/time: the CLI's peak RSS is not measured")
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(kib)), 10, 64)
	if err != nil {
		b.Fatalf("/usr/bin/time: %q", kib)
	}
	return n << 10
}

// streamTmpl is what a real service issued for one item (an ingest and
// an annotation), and the service's keys.
type streamTmpl struct {
	header                verify.StreamHeader
	ingest, annotation    events.Record
	ingestRcpt, annotRcpt canonicaljson.Object
	logSigner             note.Signer
	logVKey               string
	receiptKey            *ecdsa.PrivateKey
	receiptPEM            []byte
	keyID                 string
}

func streamTemplate(b *testing.B) *streamTmpl {
	env := servertest.StartT(b)
	ctx := context.Background()
	collector := env.Client(b, identity.RoleCollector)
	court := env.Client(b, identity.RoleCourt)
	data := []byte("a long-contested photo")
	up, err := collector.Upload(ctx, &custodyv1.UploadMetadata{CaseId: "bench-stream", Kind: custodyv1.EvidenceKind_EVIDENCE_KIND_DOCUMENT, Sha256: sum(data), SizeBytes: int64(len(data))}, bytes.NewReader(data), nil)
	if err != nil {
		b.Fatal(err)
	}
	id := up.GetEvidence().GetEvidenceId()
	note4k := strings.Repeat("reviewed again; ", 250)[:4000]
	if _, err := court.RecordEvent(ctx, &custodyv1.RecordEventRequest{EvidenceId: id, Type: custodyv1.EventType_EVENT_TYPE_ANNOTATION, Note: note4k,
		Instrument: &custodyv1.Instrument{Name: strings.Repeat("t", 256), Version: strings.Repeat("v", 256)}}); err != nil {
		b.Fatal(err)
	}
	keys, err := court.PublicKeys(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var stream bytes.Buffer
	if _, err := court.StreamBundle(ctx, id, 0, &stream); err != nil {
		b.Fatal(err)
	}
	if err := env.Stop(); err != nil {
		b.Fatal(err)
	}
	t := &streamTmpl{logVKey: keys.GetLogVerifierKey(), receiptPEM: []byte(keys.GetReceiptPublicKeyPem())}
	lines := bytes.Split(bytes.TrimSpace(stream.Bytes()), []byte("\n"))
	if len(lines) != 3 {
		b.Fatalf("%d lines", len(lines))
	}
	if err := json.Unmarshal(lines[0], &t.header); err != nil {
		b.Fatal(err)
	}
	for i, line := range lines[1:] {
		var ev verify.Event
		if err := json.Unmarshal(line, &ev); err != nil {
			b.Fatal(err)
		}
		rec, err := events.ParseRecord([]byte(ev.Record))
		if err != nil {
			b.Fatal(err)
		}
		p, err := events.ParseCanonical([]byte(ev.Receipt.Payload))
		if err != nil {
			b.Fatal(err)
		}
		t.keyID = ev.Receipt.KeyID
		if i == 0 {
			t.ingest, t.ingestRcpt = rec, p
		} else {
			t.annotation, t.annotRcpt = rec, p
		}
	}
	skey, err := os.ReadFile(filepath.Join(env.DataDir, "keys", "log-key"))
	if err != nil {
		b.Fatal(err)
	}
	if t.logSigner, err = note.NewSigner(strings.TrimSpace(string(skey))); err != nil {
		b.Fatal(err)
	}
	kp, err := os.ReadFile(filepath.Join(env.DataDir, "keys", "receipt-key.pem"))
	if err != nil {
		b.Fatal(err)
	}
	block, _ := pem.Decode(kp)
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		b.Fatal(err)
	}
	t.receiptKey = k.(*ecdsa.PrivateKey)
	return t
}

// write writes the stream form of an n-event history to path and returns
// its size in bytes.
func (t *streamTmpl) write(b *testing.B, path string, n int) int64 {
	recs := make([]events.Record, n)
	entries := make([][]byte, n)
	tree := testonly.New(rfc6962.DefaultHasher)
	builder := historymap.NewBuilder()
	for i := range recs {
		r := t.annotation
		if i == 0 {
			r = t.ingest
		}
		r.Sequence = uint64(i)
		r.RecordedAt = t.ingest.RecordedAt.Add(time.Duration(i) * time.Millisecond)
		r.Salt = sha256.Sum256([]byte("salt " + strconv.Itoa(i)))
		if i > 0 {
			var prev [32]byte
			copy(prev[:], tree.LeafHash(uint64(i-1)))
			r.Previous = &events.Link{Index: uint64(i - 1), LeafHash: prev}
		}
		entry, err := r.Entry()
		if err != nil {
			b.Fatal(err)
		}
		recs[i], entries[i] = r, entry
		tree.AppendData(entry)
		if err := builder.Add(uint64(i), entry); err != nil {
			b.Fatal(err)
		}
	}
	m, err := builder.Map(uint64(n))
	if err != nil {
		b.Fatal(err)
	}
	commitment := historymap.EntryFor(m)
	tree.AppendData(commitment)
	size := tree.Size()
	mapLeaf, mapProof, err := m.Proof(t.ingest.EvidenceID)
	if err != nil {
		b.Fatal(err)
	}
	commitProof, err := tree.InclusionProof(uint64(n), size)
	if err != nil {
		b.Fatal(err)
	}
	body := t.header.Log.Origin + "\n" + strconv.FormatUint(size, 10) + "\n" + base64.StdEncoding.EncodeToString(tree.Hash()) + "\n"
	cp, err := note.Sign(&note.Note{Text: body}, t.logSigner)
	if err != nil {
		b.Fatal(err)
	}
	h := t.header
	h.Log.Checkpoint, h.Log.TreeSize, h.Log.Timestamps, h.Consistency = string(cp), size, nil, nil
	h.Completeness = &verify.Completeness{Entry: string(commitment), LogIndex: uint64(n), InclusionProof: commitProof,
		MapLeaf: string(mapLeaf), MapIndex: mapProof.Index, MapProof: mapProof.Hashes}
	h.EventCount = uint64(n)

	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	line, err := json.Marshal(h)
	if err != nil {
		b.Fatal(err)
	}
	w.Write(append(line, '\n'))
	// Receipts are signed on every core, written in order.
	lines := make([][]byte, n)
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				lines[i] = t.eventLine(b, recs[i], entries[i], tree, size)
			}
		})
	}
	wg.Wait()
	for _, l := range lines {
		w.Write(append(l, '\n'))
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	st, _ := f.Stat()
	f.Close()
	return st.Size()
}

func (t *streamTmpl) eventLine(b *testing.B, r events.Record, entry []byte, tree *testonly.Tree, size uint64) []byte {
	i := r.Sequence
	canon, err := r.Canonical()
	if err != nil {
		b.Error(err)
	}
	proof, err := tree.InclusionProof(i, size)
	if err != nil {
		b.Error(err)
	}
	p := canonicaljson.Object{}
	src := t.annotRcpt
	if i == 0 {
		src = t.ingestRcpt
	}
	for k, v := range src {
		p[k] = v
	}
	p["log_index"], p["leaf_hash"], p["time"] = int64(i), hex.EncodeToString(tree.LeafHash(i)), events.FormatTime(r.RecordedAt)
	if i > 0 {
		p["seq"] = int64(i)
	}
	payload, err := canonicaljson.Marshal(p)
	if err != nil {
		b.Error(err)
	}
	digest := sha256.Sum256(payload)
	sig, err := ecdsa.SignASN1(rand.Reader, t.receiptKey, digest[:])
	if err != nil {
		b.Error(err)
	}
	line, err := json.Marshal(verify.Event{Seq: i, LogIndex: i, Entry: string(entry), Record: string(canon), InclusionProof: proof,
		Receipt: &verify.Receipt{Payload: string(payload), Signature: sig, KeyID: t.keyID}})
	if err != nil {
		b.Error(err)
	}
	return line
}
