package verify

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"strconv"
	"sync/atomic"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/custody-dev/custody/canonicaljson"
)

// The strict decoding of a bundle (Parse, and each event line of the
// stream form) is three passes: canonicaljson.Parse (UTF-8, syntax, no
// key twice, no lone surrogate, depth, number range), the shape check
// (known and required keys, no null, strict base64), then json.Unmarshal
// into the typed structs. decodeBundle and decodeEventLine do all three
// in one pass over the bytes, as a fast path: they accept a document only
// if every one of the three passes accepts it, and then yield exactly
// what json.Unmarshal yields. For anything else (a document the passes
// refuse, or one this fast path does not follow, such as a number where a
// string is due) they report false, and the caller runs the three passes
// for the verdict and its message. verify/decode_test.go checks the two
// against each other.

// decodeBundle decodes a bundle document.
func decodeBundle(b []byte) (*Bundle, bool) {
	if !utf8.Valid(b) {
		return nil, false
	}
	d := &decoder{b: b, block: 512}
	var bundle Bundle
	if !d.bundle(&bundle) || !d.end() {
		return nil, false
	}
	return &bundle, true
}

// eventLine decodes one event line of the stream form; d keeps only its
// buffers from one line to the next.
func (d *decoder) eventLine(b []byte, ev *Event) bool {
	if !utf8.Valid(b) {
		return false
	}
	d.b, d.i = b, 0
	var e Event
	if !d.event(&e) || !d.end() {
		return false
	}
	*ev = e
	return true
}

// decodeEventLine decodes one event line of the stream form.
func decodeEventLine(b []byte, ev *Event) bool {
	var d decoder
	return d.eventLine(b, ev)
}

type decoder struct {
	b       []byte
	i       int
	scratch []byte // an escaped string's value
	// Blocks that hashes cuts lists of hashes from (of block hashes at
	// least), and its scratch list.
	block       int
	hashBlock   []byte
	listBlock   [][]byte
	listScratch [][]byte
}

// keySet is an object's keys as the shape lists them, with a bit mask of
// the required ones.
type keySet struct {
	keys     []string
	required uint32
}

func newKeySet(path string) keySet {
	ks := keySet{keys: schema[path]}
	for _, r := range required[path] {
		for i, k := range ks.keys {
			if k == r {
				ks.required |= 1 << i
			}
		}
	}
	return ks
}

var (
	rootKeys        = newKeySet("")
	evidenceKeys    = newKeySet("evidence")
	logKeys         = newKeySet("log")
	timestampKeys   = newKeySet("log.timestamps[]")
	eventKeys       = newKeySet("events[]")
	receiptKeys     = newKeySet("events[].receipt")
	keysKeys        = newKeySet("keys")
	consistencyKeys = newKeySet("consistency")
	completeKeys    = newKeySet("completeness")
)

func (d *decoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// next skips whitespace and returns the next byte (0 at the end).
func (d *decoder) next() byte {
	d.ws()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

func (d *decoder) consume(c byte) bool {
	if d.next() != c {
		return false
	}
	d.i++
	return true
}

// end: nothing but whitespace follows the value.
func (d *decoder) end() bool {
	d.ws()
	return d.i == len(d.b)
}

// object reads an object whose keys are among ks (none twice, every
// required one present), calling field with each key's index for its
// value.
func (d *decoder) object(ks keySet, field func(k int) bool) bool {
	if !d.consume('{') {
		return false
	}
	var seen uint32
	if d.next() == '}' {
		d.i++
	} else {
		for {
			name, ok := d.stringBytes()
			if !ok || !d.consume(':') {
				return false
			}
			k := -1
			for j, known := range ks.keys {
				if string(name) == known {
					k = j
					break
				}
			}
			if k < 0 || seen&(1<<k) != 0 {
				return false
			}
			seen |= 1 << k
			if !field(k) {
				return false
			}
			if d.consume(',') {
				continue
			}
			if !d.consume('}') {
				return false
			}
			break
		}
	}
	return seen&ks.required == ks.required
}

// array reads an array, calling elem for each element.
func (d *decoder) array(elem func() bool) bool {
	if !d.consume('[') {
		return false
	}
	if d.next() == ']' {
		d.i++
		return true
	}
	for {
		if !elem() {
			return false
		}
		if d.consume(',') {
			continue
		}
		return d.consume(']')
	}
}

func (d *decoder) str(out *string) bool {
	s, ok := d.stringBytes()
	*out = string(s)
	return ok
}

// stringBytes reads a string and returns its value: a slice of the input
// when it has no escape, else of d.scratch (valid until the next call).
func (d *decoder) stringBytes() ([]byte, bool) {
	if !d.consume('"') {
		return nil, false
	}
	start := d.i
	if !d.plain() {
		return nil, false
	}
	if d.b[d.i] == '"' {
		d.i++
		return d.b[start : d.i-1], true
	}
	buf := bytes.NewBuffer(append(d.scratch[:0], d.b[start:d.i]...))
	ok := d.escaped(buf)
	d.scratch = buf.Bytes()
	return d.scratch, ok
}

// plain skips the bytes of a string up to its end or its next escape,
// and reports false at a control character or the end of the input.
func (d *decoder) plain() bool {
	for d.i < len(d.b) {
		if c := d.b[d.i]; !plainByte[c] {
			return c == '"' || c == '\\'
		}
		d.i++
	}
	return false
}

// plainByte: the bytes a string holds as they are (not a quote, a
// backslash or a control character).
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// escaped reads the rest of a string from an escape, writing its value
// to w. It refuses a control character, an unknown escape and a lone
// UTF-16 surrogate (a \u escape of a high surrogate must be followed at
// once by one of a low one), as canonicaljson.Parse does.
func (d *decoder) escaped(w interface {
	io.ByteWriter
	io.Writer
}) bool {
	for {
		start := d.i
		if !d.plain() {
			return false
		}
		w.Write(d.b[start:d.i])
		if d.b[d.i] == '"' {
			d.i++
			return true
		}
		if d.i+1 >= len(d.b) {
			return false
		}
		e := d.b[d.i+1]
		d.i += 2
		switch e {
		case '"', '\\', '/':
			w.WriteByte(e)
		case 'b':
			w.WriteByte('\b')
		case 'f':
			w.WriteByte('\f')
		case 'n':
			w.WriteByte('\n')
		case 'r':
			w.WriteByte('\r')
		case 't':
			w.WriteByte('\t')
		case 'u':
			r, ok := d.hex4()
			if !ok {
				return false
			}
			switch {
			case r >= 0xDC00 && r <= 0xDFFF:
				return false // a low surrogate alone
			case r >= 0xD800 && r <= 0xDBFF:
				if len(d.b)-d.i < 2 || d.b[d.i] != '\\' || d.b[d.i+1] != 'u' {
					return false
				}
				d.i += 2
				r2, ok := d.hex4()
				if !ok || r2 < 0xDC00 || r2 > 0xDFFF {
					return false
				}
				r = utf16.DecodeRune(r, r2)
			}
			var enc [utf8.UTFMax]byte
			w.Write(utf8.AppendRune(enc[:0], r))
		default:
			return false
		}
	}
}

func (d *decoder) hex4() (rune, bool) {
	if len(d.b)-d.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range d.b[d.i : d.i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	d.i += 4
	return r, true
}

// integer reads a number written as an integer (JSON syntax: an optional
// minus, no leading zero, no fraction or exponent) and returns its text.
// A number with a fraction or an exponent is refused: json.Unmarshal
// takes none into an integer field.
func (d *decoder) integer() (string, bool) {
	d.ws()
	start := d.i
	if d.i < len(d.b) && d.b[d.i] == '-' {
		d.i++
	}
	digits := d.i
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
	}
	switch {
	case d.i == digits, d.i-digits > 1 && d.b[digits] == '0':
		return "", false
	}
	if d.i < len(d.b) && (d.b[d.i] == '.' || d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		return "", false
	}
	return string(d.b[start:d.i]), true
}

// uint64 and int64 parse as json.Unmarshal does into those types.
func (d *decoder) uint64(out *uint64) bool {
	s, ok := d.integer()
	if !ok {
		return false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	*out = n
	return err == nil
}

func (d *decoder) int64(out *int64) bool {
	s, ok := d.integer()
	if !ok {
		return false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	*out = n
	return err == nil
}

func (d *decoder) int(out *int) bool {
	s, ok := d.integer()
	if !ok {
		return false
	}
	n, err := strconv.ParseInt(s, 10, strconv.IntSize)
	*out = int(n)
	return err == nil
}

func (d *decoder) literal(word string) bool {
	d.ws()
	if len(d.b)-d.i < len(word) || string(d.b[d.i:d.i+len(word)]) != word {
		return false
	}
	d.i += len(word)
	return true
}

func (d *decoder) bool(out *bool) bool {
	switch d.next() {
	case 't':
		*out = true
		return d.literal("true")
	case 'f':
		*out = false
		return d.literal("false")
	}
	return false
}

// bytes reads strict standard base64, as the shape requires and
// json.Unmarshal decodes it.
func (d *decoder) bytes(out *[]byte) bool {
	s, ok := d.stringBytes()
	if !ok {
		return false
	}
	buf := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Strict().Decode(buf, s)
	*out = buf[:n]
	return err == nil
}

// hashes reads a list of strict base64 strings, as bytes does each. The
// values, and the lists, are cut from blocks shared by the whole document
// (each capped at its length, so an append to one does not reach the
// next): a bundle holds a dozen hashes per event.
func (d *decoder) hashes(out *[][]byte) bool {
	list := d.listScratch[:0]
	ok := d.array(func() bool {
		s, ok := d.stringBytes()
		if !ok {
			return false
		}
		n := base64.StdEncoding.DecodedLen(len(s))
		if d.hashBlock == nil || cap(d.hashBlock)-len(d.hashBlock) < n {
			d.hashBlock = make([]byte, 0, max(n, d.block*32))
		}
		buf := d.hashBlock[len(d.hashBlock) : len(d.hashBlock)+n]
		m, err := base64.StdEncoding.Strict().Decode(buf, s)
		d.hashBlock = d.hashBlock[:len(d.hashBlock)+m]
		list = append(list, buf[:m:m])
		return err == nil
	})
	d.listScratch = list
	n := len(list)
	if d.listBlock == nil || cap(d.listBlock)-len(d.listBlock) < n {
		d.listBlock = make([][]byte, 0, max(n, d.block))
	}
	*out = append(d.listBlock[len(d.listBlock):len(d.listBlock):len(d.listBlock)+n], list...)
	d.listBlock = d.listBlock[:len(d.listBlock)+n]
	return ok
}

// raw reads any JSON object, strictly (canonicaljson.Parse's checks,
// depth counted from the document's root), and returns a copy of its
// bytes, as json.RawMessage holds them.
func (d *decoder) raw(out *json.RawMessage, depth int) bool {
	if d.next() != '{' {
		return false
	}
	start := d.i
	if !d.any(depth) {
		return false
	}
	*out = append(json.RawMessage(nil), d.b[start:d.i]...)
	return true
}

// any reads any JSON value; depth is the nesting of an object or array
// that starts here (the root's is 1).
func (d *decoder) any(depth int) bool {
	switch c := d.next(); {
	case c == '{':
		if depth > canonicaljson.MaxDepth {
			return false
		}
		d.i++
		if d.next() == '}' {
			d.i++
			return true
		}
		var seen map[string]bool
		for {
			k, ok := d.stringBytes()
			if !ok || !d.consume(':') || seen[string(k)] {
				return false
			}
			if seen == nil {
				seen = map[string]bool{}
			}
			seen[string(k)] = true
			if !d.any(depth + 1) {
				return false
			}
			if d.consume(',') {
				continue
			}
			return d.consume('}')
		}
	case c == '[':
		if depth > canonicaljson.MaxDepth {
			return false
		}
		return d.array(func() bool { return d.any(depth + 1) })
	case c == '"':
		_, ok := d.stringBytes()
		return ok
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	}
	return false
}

// number reads a JSON number that canonicaljson.Parse takes: finite as a
// float64.
func (d *decoder) number() bool {
	start := d.i
	if d.b[d.i] == '-' {
		d.i++
	}
	digits := func() int {
		from := d.i
		for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
			d.i++
		}
		return d.i - from
	}
	intStart := d.i
	switch n := digits(); {
	case n == 0, n > 1 && d.b[intStart] == '0':
		return false
	}
	if d.i < len(d.b) && d.b[d.i] == '.' {
		d.i++
		if digits() == 0 {
			return false
		}
	}
	if d.i < len(d.b) && (d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		d.i++
		if d.i < len(d.b) && (d.b[d.i] == '+' || d.b[d.i] == '-') {
			d.i++
		}
		if digits() == 0 {
			return false
		}
	}
	_, err := strconv.ParseFloat(string(d.b[start:d.i]), 64)
	return err == nil
}

func (d *decoder) bundle(b *Bundle) bool {
	return d.object(rootKeys, func(k int) bool {
		switch rootKeys.keys[k] {
		case "format":
			return d.str(&b.Format)
		case "v":
			return d.int(&b.Version)
		case "created_at":
			return d.str(&b.CreatedAt)
		case "evidence":
			return d.evidence(&b.Evidence)
		case "log":
			return d.log(&b.Log)
		case "events":
			return d.events(&b.Events)
		case "keys":
			return d.keys(&b.Keys)
		case "consistency":
			b.Consistency = new(Consistency)
			return d.consistency(b.Consistency)
		case "completeness":
			b.Completeness = new(Completeness)
			return d.completeness(b.Completeness)
		}
		return false
	})
}

// events reads the events array. A long one is read in two halves at
// once: a second decoder starts at what looks like an event in the middle
// (an object whose first key is "seq", as the service writes them), and
// its events are taken only if this decoder, reading in order, arrives at
// exactly that place as the start of an element. Then the second decoder
// read what this one would have, and the array is what reading it in order
// gives; else its work is dropped and this one reads on.
func (d *decoder) events(out *[]Event) bool {
	if !d.consume('[') {
		return false
	}
	evs := []Event{}
	if d.next() == ']' {
		d.i++
		*out = evs
		return true
	}
	type half struct {
		events []Event
		end    int
		ok     bool
	}
	seam := -1
	var second chan half
	var stop atomic.Bool
	defer stop.Store(true)
	if rest := len(d.b) - d.i; d.block > 0 && rest >= splitEvents {
		seam = eventStart(d.b, d.i+rest/2)
	}
	if seam >= 0 {
		second = make(chan half, 1)
		go func() {
			e := &decoder{b: d.b, i: seam, block: d.block}
			evs := []Event{}
			for !stop.Load() {
				evs = append(evs, Event{})
				if !e.event(&evs[len(evs)-1]) {
					break
				}
				if !e.consume(',') {
					ok := e.consume(']')
					second <- half{evs, e.i, ok}
					return
				}
			}
			second <- half{}
		}()
	}
	for {
		evs = append(evs, Event{})
		if !d.event(&evs[len(evs)-1]) {
			return false
		}
		if !d.consume(',') {
			*out = evs
			return d.consume(']')
		}
		if d.next(); d.i == seam {
			h := <-second
			*out = append(evs, h.events...)
			d.i = h.end
			return h.ok
		}
	}
}

// splitEvents is how long the rest of a document must be for its events
// to be read in two halves.
var splitEvents = 64 << 10

// eventStart returns the index of the first '{' from from on that begins
// an object whose first key is "seq", or -1.
func eventStart(b []byte, from int) int {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	for {
		j := bytes.Index(b[from:], []byte(`"seq"`))
		if j < 0 {
			return -1
		}
		q := from + j
		k := q - 1
		for k >= 0 && isSpace(b[k]) {
			k--
		}
		m := q + len(`"seq"`)
		for m < len(b) && isSpace(b[m]) {
			m++
		}
		if k >= 0 && b[k] == '{' && m < len(b) && b[m] == ':' {
			return k
		}
		from = m
	}
}

func (d *decoder) evidence(e *Evidence) bool {
	return d.object(evidenceKeys, func(k int) bool {
		switch evidenceKeys.keys[k] {
		case "evidence_id":
			return d.str(&e.EvidenceID)
		case "sha256":
			return d.str(&e.SHA256)
		case "size":
			return d.int64(&e.Size)
		case "media_type":
			return d.str(&e.MediaType)
		case "kind":
			return d.str(&e.Kind)
		case "case_id":
			return d.str(&e.CaseID)
		case "metadata":
			return d.raw(&e.Metadata, 3) // the root, evidence, metadata
		case "withheld":
			return d.bool(&e.Withheld)
		}
		return false
	})
}

func (d *decoder) log(l *Log) bool {
	return d.object(logKeys, func(k int) bool {
		switch logKeys.keys[k] {
		case "origin":
			return d.str(&l.Origin)
		case "checkpoint":
			return d.str(&l.Checkpoint)
		case "tree_size":
			return d.uint64(&l.TreeSize)
		case "timestamps":
			ts := []Timestamp{}
			ok := d.array(func() bool {
				ts = append(ts, Timestamp{})
				t := &ts[len(ts)-1]
				return d.object(timestampKeys, func(k int) bool {
					switch timestampKeys.keys[k] {
					case "authority":
						return d.str(&t.Authority)
					case "response":
						return d.bytes(&t.Response)
					}
					return false
				})
			})
			l.Timestamps = ts
			return ok
		}
		return false
	})
}

func (d *decoder) event(e *Event) bool {
	return d.object(eventKeys, func(k int) bool {
		switch eventKeys.keys[k] {
		case "seq":
			return d.uint64(&e.Seq)
		case "log_index":
			return d.uint64(&e.LogIndex)
		case "entry":
			return d.str(&e.Entry)
		case "record":
			return d.str(&e.Record)
		case "inclusion_proof":
			return d.hashes(&e.InclusionProof)
		case "receipt":
			r := new(Receipt)
			e.Receipt = r
			return d.object(receiptKeys, func(k int) bool {
				switch receiptKeys.keys[k] {
				case "payload":
					return d.str(&r.Payload)
				case "signature":
					return d.bytes(&r.Signature)
				case "key_id":
					return d.str(&r.KeyID)
				}
				return false
			})
		}
		return false
	})
}

func (d *decoder) keys(k *Keys) bool {
	return d.object(keysKeys, func(i int) bool {
		switch keysKeys.keys[i] {
		case "log_verifier_key":
			return d.str(&k.LogVerifierKey)
		case "receipt_public_key_pem":
			return d.str(&k.ReceiptPublicKeyPEM)
		}
		return false
	})
}

func (d *decoder) consistency(c *Consistency) bool {
	return d.object(consistencyKeys, func(k int) bool {
		switch consistencyKeys.keys[k] {
		case "from_size":
			return d.uint64(&c.FromSize)
		case "proof":
			return d.hashes(&c.Proof)
		}
		return false
	})
}

func (d *decoder) completeness(c *Completeness) bool {
	return d.object(completeKeys, func(k int) bool {
		switch completeKeys.keys[k] {
		case "entry":
			return d.str(&c.Entry)
		case "log_index":
			return d.uint64(&c.LogIndex)
		case "inclusion_proof":
			return d.hashes(&c.InclusionProof)
		case "map_leaf":
			return d.str(&c.MapLeaf)
		case "map_index":
			return d.uint64(&c.MapIndex)
		case "map_proof":
			return d.hashes(&c.MapProof)
		}
		return false
	})
}
