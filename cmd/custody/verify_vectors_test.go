package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/custody-dev/custody/verify/vectors"
)

// TestVerifyCommandOnEveryVector runs `custody verify`, the binary a court
// uses, on every published conformance vector (testdata/verify-vectors):
// the outcome, the first failing step and the exit status (0 verified, 1
// not, 2 not a bundle) must be the expected ones.
func TestVerifyCommandOnEveryVector(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the CLI 1,300 times; the full suite runs it")
	}
	dir, err := filepath.Abs("../../testdata/verify-vectors")
	if err != nil {
		t.Fatal(err)
	}
	set, err := vectors.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "custody")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	work := t.TempDir()
	trust := func(name string) string { return filepath.Join(dir, name) }
	run := func(i int, v vectors.Vector) error {
		text, err := vectors.BundleText(dir, v)
		if err != nil {
			return err
		}
		bundle := filepath.Join(work, fmt.Sprintf("%d.json", i))
		if err := os.WriteFile(bundle, text, 0o644); err != nil {
			return err
		}
		args := []string{"-o", "json", "verify", "--bundle", bundle}
		if v.Keys {
			args = append(args, "--log-key", trust(set.Trust.LogKey), "--receipt-key", trust(set.Trust.ReceiptKey))
		}
		if v.CA {
			args = append(args, "--ca", trust(set.Trust.CA))
		}
		if v.EarlierCheckpoint {
			args = append(args, "--checkpoint", trust(set.Trust.EarlierCheckpoint))
		}
		if v.Policy {
			args = append(args, "--policy", trust(set.Trust.Policy))
		}
		if v.TSAChain {
			args = append(args, "--tsa-chain", trust(set.Trust.TSAChain))
		}
		if v.File != "" {
			args = append(args, "--file", trust(v.File))
		}
		cmd := exec.Command(bin, args...)
		var stdout bytes.Buffer
		cmd.Stdout = &stdout
		err = cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			return err
		}
		var report struct {
			Outcome string `json:"outcome"`
			Checks  []struct {
				Step string `json:"step"`
				OK   bool   `json:"ok"`
			} `json:"checks"`
		}
		if err := json.Unmarshal(stdout.Bytes(), &report); err != nil {
			return fmt.Errorf("stdout is not one JSON report: %v\n%s", err, stdout.String())
		}
		step := ""
		for _, c := range report.Checks {
			if !c.OK {
				step = c.Step
				break
			}
		}
		wantCode := 0
		switch {
		case v.Expect.Step == "format":
			wantCode = 2
		case v.Expect.Outcome == "failed" || v.Expect.Outcome == "untrusted_keys":
			wantCode = 1
		}
		if report.Outcome != v.Expect.Outcome || step != v.Expect.Step || code != wantCode {
			return fmt.Errorf("outcome %s at %q exit %d, want %s at %q exit %d", report.Outcome, step, code, v.Expect.Outcome, v.Expect.Step, wantCode)
		}
		return nil
	}
	jobs := make(chan int)
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) * 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if err := run(i, set.Vectors[i]); err != nil {
					mu.Lock()
					failures = append(failures, set.Vectors[i].Name+": "+err.Error())
					mu.Unlock()
				}
			}
		}()
	}
	for i := range set.Vectors {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of %d vectors disagree:\n%s", len(failures), len(set.Vectors), strings.Join(failures[:min(len(failures), 20)], "\n"))
	}
	t.Logf("custody verify agrees on all %d vectors", len(set.Vectors))
}
