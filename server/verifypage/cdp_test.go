package verifypage_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custody-dev/custody/internal/testenv"
)

// A minimal Chrome DevTools Protocol client over --remote-debugging-pipe
// (fd 3: commands in, fd 4: replies and events out, NUL-separated JSON),
// so the tests drive headless Chromium with no dependency: open a page,
// evaluate JavaScript in it, pick files for its inputs, take screenshots.

// chromium finds Debian's chromium; .ci/run installs it.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: apt-get install chromium (the CI script does)")
	return ""
}

type browser struct {
	t      *testing.T
	cmd    *exec.Cmd
	in     *os.File
	mu     sync.Mutex
	nextID int64
	calls  map[int64]chan cdpMessage
	logMu  sync.Mutex
	logs   []string // console messages, exceptions and log entries
	done   chan struct{}
}

type cdpMessage struct {
	ID        int64           `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// startBrowser starts headless Chromium; it is stopped when the test ends.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	testenv.RequireFull(t, "headless Chromium")
	path := chromium(t)
	cmdR, cmdW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--no-default-browser-check", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--disable-extensions", "--mute-audio",
		"--hide-scrollbars", "--user-data-dir="+t.TempDir(), "--remote-debugging-pipe", "about:blank")
	cmd.ExtraFiles = []*os.File{cmdR, outW}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmdR.Close()
	outW.Close()
	b := &browser{t: t, cmd: cmd, in: cmdW, calls: map[int64]chan cdpMessage{}, done: make(chan struct{})}
	go b.read(outR)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b.call(ctx, "", "Browser.close", nil, nil)
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		cmdW.Close()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("chromium stderr (tail): %s", tail(stderr.String(), 2000))
		}
	})
	return b
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (b *browser) read(r *os.File) {
	defer close(b.done)
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		raw, err := br.ReadBytes(0)
		if err != nil {
			return
		}
		var m cdpMessage
		if err := json.Unmarshal(raw[:len(raw)-1], &m); err != nil {
			continue
		}
		if m.ID != 0 {
			b.mu.Lock()
			ch := b.calls[m.ID]
			delete(b.calls, m.ID)
			b.mu.Unlock()
			if ch != nil {
				ch <- m
			}
			continue
		}
		switch m.Method {
		case "Runtime.consoleAPICalled", "Runtime.exceptionThrown", "Log.entryAdded":
			b.logMu.Lock()
			b.logs = append(b.logs, m.Method+": "+tail(string(m.Params), 1000))
			b.logMu.Unlock()
		}
	}
}

// call sends a command (to the browser if session is "", else to a page
// session) and decodes its result into result, if not nil.
func (b *browser) call(ctx context.Context, session, method string, params, result any) error {
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ch := make(chan cdpMessage, 1)
	b.calls[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if session != "" {
		msg["sessionId"] = session
	}
	raw, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	b.mu.Lock()
	_, err = b.in.Write(append(raw, 0))
	b.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			return fmt.Errorf("%s: %s", method, m.Error.Message)
		}
		if result != nil {
			return json.Unmarshal(m.Result, result)
		}
		return nil
	case <-b.done:
		return fmt.Errorf("%s: chromium exited", method)
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// Logs returns the console messages, exceptions and log entries so far.
func (b *browser) Logs() []string {
	b.logMu.Lock()
	defer b.logMu.Unlock()
	return append([]string(nil), b.logs...)
}

type tab struct {
	b       *browser
	session string
}

// open opens url in a new tab of width×height CSS pixels and waits until
// it has loaded.
func (b *browser) open(ctx context.Context, url string, width, height int) *tab {
	b.t.Helper()
	var target struct{ TargetID string }
	if err := b.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		b.t.Fatal(err)
	}
	var att struct{ SessionID string }
	if err := b.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att); err != nil {
		b.t.Fatal(err)
	}
	tb := &tab{b: b, session: att.SessionID}
	for _, m := range []string{"Runtime.enable", "Log.enable", "Page.enable"} {
		tb.must(ctx, m, nil, nil)
	}
	tb.must(ctx, "Emulation.setDeviceMetricsOverride", map[string]any{"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}, nil)
	tb.navigate(ctx, url)
	return tb
}

func (tb *tab) must(ctx context.Context, method string, params, result any) {
	tb.b.t.Helper()
	if err := tb.b.call(ctx, tb.session, method, params, result); err != nil {
		tb.b.t.Fatal(err)
	}
}

func (tb *tab) navigate(ctx context.Context, url string) {
	tb.b.t.Helper()
	tb.must(ctx, "Page.navigate", map[string]any{"url": url}, nil)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var state string
		if err := tb.eval(ctx, `document.readyState + " " + location.href`, &state); err == nil && strings.HasPrefix(state, "complete ") && strings.HasSuffix(state, " "+url) {
			return
		}
		if time.Now().After(deadline) {
			tb.b.t.Fatalf("%s did not load", url)
		}
	}
}

// eval evaluates a JavaScript expression in the page, awaits it if it is a
// promise, and decodes its JSON value into out (if not nil).
func (tb *tab) eval(ctx context.Context, expr string, out any) error {
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	err := tb.b.call(ctx, tb.session, "Runtime.evaluate", map[string]any{"expression": expr, "awaitPromise": true, "returnByValue": true}, &res)
	if err != nil {
		return err
	}
	if e := res.ExceptionDetails; e != nil {
		return errors.New(e.Text + " " + e.Exception.Description)
	}
	if out != nil {
		return json.Unmarshal(res.Result.Value, out)
	}
	return nil
}

func (tb *tab) mustEval(ctx context.Context, expr string, out any) {
	tb.b.t.Helper()
	if err := tb.eval(ctx, expr, out); err != nil {
		tb.b.t.Fatalf("evaluating %.200s: %v", expr, err)
	}
}

// setFiles picks files (paths on disk) for the file input with that id.
func (tb *tab) setFiles(ctx context.Context, id string, paths ...string) {
	tb.b.t.Helper()
	var obj struct {
		Result struct {
			ObjectID string `json:"objectId"`
		} `json:"result"`
	}
	tb.must(ctx, "Runtime.evaluate", map[string]any{"expression": fmt.Sprintf("document.getElementById(%q)", id)}, &obj)
	if obj.Result.ObjectID == "" {
		tb.b.t.Fatalf("no element #%s", id)
	}
	tb.must(ctx, "DOM.enable", nil, nil)
	tb.must(ctx, "DOM.setFileInputFiles", map[string]any{"files": paths, "objectId": obj.Result.ObjectID}, nil)
}

// screenshotOf returns a PNG of the element with that id.
func (tb *tab) screenshotOf(ctx context.Context, id string) []byte {
	tb.b.t.Helper()
	var box struct{ X, Y, Width, Height float64 }
	tb.mustEval(ctx, fmt.Sprintf(`(() => { const r = document.getElementById(%q).getBoundingClientRect();
		return { X: r.left + scrollX, Y: r.top + scrollY, Width: r.width, Height: r.height }; })()`, id), &box)
	const pad = 12
	clip := map[string]any{"x": max(box.X-pad, 0), "y": max(box.Y-pad, 0), "width": box.Width + 2*pad, "height": box.Height + 2*pad, "scale": 1}
	var res struct{ Data string }
	tb.must(ctx, "Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true, "clip": clip}, &res)
	png, err := base64.StdEncoding.DecodeString(res.Data)
	if err != nil {
		tb.b.t.Fatal(err)
	}
	return png
}
