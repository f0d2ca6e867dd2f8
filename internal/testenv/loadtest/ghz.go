package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// Ghz is one ghz run's summary (its JSON report, the fields we read).
type Ghz struct {
	Count   int     `json:"count"`
	RPS     float64 `json:"rps"`
	Latency []struct {
		Percentage int           `json:"percentage"`
		Latency    time.Duration `json:"latency"`
	} `json:"latencyDistribution"`
	// StatusCodeDistribution counts calls by gRPC code name.
	StatusCodeDistribution map[string]int `json:"statusCodeDistribution"`
	ErrorDistribution      map[string]int `json:"errorDistribution"`
}

// Percentile returns the latency at percentage p (50, 99…) of the calls
// ghz counted, or 0.
func (g *Ghz) Percentile(p int) time.Duration {
	for _, l := range g.Latency {
		if l.Percentage == p {
			return l.Latency
		}
	}
	return 0
}

// GhzRun is one ghz invocation: method (package.Service.Method), its JSON
// request data, concurrency over a number of connections, for a duration,
// with a role's credentials (the server's reflection gives the schema).
type GhzRun struct {
	Tool        []string // the command that runs ghz, e.g. go tool -modfile=… ghz
	Dir         string   // where to run it (the repository root)
	Method      string
	Data        string
	Concurrency int
	Connections int
	Duration    time.Duration
	Role        string
}

// Run runs ghz against cfg's gRPC address and returns its summary.
func (r GhzRun) Run(ctx context.Context, cfg Config) (*Ghz, error) {
	creds := cfg.CredsDir(r.Role)
	args := append(append([]string(nil), r.Tool[1:]...),
		"--cacert", filepath.Join(creds, "ca.pem"), "--cert", filepath.Join(creds, "cert.pem"), "--key", filepath.Join(creds, "key.pem"),
		"--call", r.Method, "-d", r.Data,
		"-c", strconv.Itoa(r.Concurrency), "--connections", strconv.Itoa(r.Connections),
		"-z", r.Duration.String(), "--timeout", "60s", "--format", "json",
		cfg.GRPCAddr)
	cmd := exec.CommandContext(ctx, r.Tool[0], args...)
	cmd.Dir = r.Dir
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		return nil, fmt.Errorf("ghz: %v\n%s\n%s", err, out, stderr)
	}
	var g Ghz
	if err := json.Unmarshal(out, &g); err != nil {
		return nil, fmt.Errorf("ghz report: %v\n%s", err, out)
	}
	return &g, nil
}
