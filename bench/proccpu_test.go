package bench_test

import (
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// clockTicks is the kernel's USER_HZ, the unit of /proc/<pid>/stat's CPU
// times (100 on every Linux this runs on).
const clockTicks = 100

// procStat is what the CPU accounting reads of one process.
type procStat struct {
	pid, ppid int
	comm      string
	cpu       time.Duration // utime+stime: the process's own threads
	children  time.Duration // cutime+cstime: its reaped children
}

// readProcs reads /proc/<pid>/stat of every process.
func readProcs() map[int]procStat {
	out := map[int]procStat{}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(s[end+1:]) // f[0] is field 3 (state)
		if len(f) < 15 {
			continue
		}
		n := func(i int) time.Duration { // field i (1-based, as in proc(5))
			v, _ := strconv.ParseInt(f[i-3], 10, 64)
			return time.Duration(v) * time.Second / clockTicks
		}
		ppid, _ := strconv.Atoi(f[1])
		out[pid] = procStat{pid: pid, ppid: ppid, comm: s[open+1 : end], cpu: n(14) + n(15), children: n(16) + n(17)}
	}
	return out
}

// cpuGroups names what the replica benchmark accounts CPU time to: each
// engine, each custodyd (by pid) and the load client (this process).
type cpuGroups struct {
	daemons map[int]string // pid -> name
	pg      *sql.DB        // the replicas' catalog database, if any
}

// pgStats returns the catalog database's committed transactions and rows
// read (returned + fetched) so far.
func (g cpuGroups) pgStats() [2]int64 {
	var out [2]int64
	if g.pg != nil {
		g.pg.QueryRow(`SELECT xact_commit, tup_returned + tup_fetched FROM pg_stat_database WHERE datname = current_database()`).Scan(&out[0], &out[1])
	}
	return out
}

// engineOf names the engine a process belongs to by its command name, or
// "" for none.
func engineOf(comm string) string {
	switch {
	case comm == "postgres" || strings.HasPrefix(comm, "postgres"):
		return "postgres"
	case comm == "mariadbd" || comm == "mysqld":
		return "mariadb"
	case comm == "minio":
		return "minio"
	}
	return ""
}

// sample returns the CPU time spent so far by each group: an engine's is
// every process of that name descending from this one (PostgreSQL forks a
// backend per connection) plus the children they reaped; a daemon's is its
// own; the client's is this process's own.
func (g cpuGroups) sample() map[string]time.Duration {
	procs := readProcs()
	self := os.Getpid()
	out := map[string]time.Duration{"client": procs[self].cpu}
	descends := func(pid int) bool {
		for p, hops := procs[pid].ppid, 0; p > 1 && hops < 16; p, hops = procs[p].ppid, hops+1 {
			if p == self {
				return true
			}
		}
		return false
	}
	for pid, p := range procs {
		if name, ok := g.daemons[pid]; ok {
			out[name] += p.cpu
			continue
		}
		if e := engineOf(p.comm); e != "" && descends(pid) {
			out[e] += p.cpu
			// Children of the engine's root process that exited were
			// reaped by it (PostgreSQL's backends): count them once, at
			// the root (whose parent is not the same engine).
			if engineOf(procs[p.ppid].comm) != e {
				out[e] += p.children
			}
		}
	}
	return out
}

// cpuPerEvent is each group's CPU time between two samples, per event, in
// milliseconds.
func cpuPerEvent(before, after map[string]time.Duration, events int) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		out[k] = float64((v - before[k]).Microseconds()) / 1000 / float64(events)
	}
	return out
}

func formatCPU(m map[string]float64) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%.3f", k, m[k])
	}
	return b.String()
}

// pin sets the CPU affinity of every thread of the processes pids (and so
// of the children they fork later) to cpus, in taskset's list form.
func pin(tb testing.TB, cpus string, pids ...int) {
	tb.Helper()
	for _, pid := range pids {
		if out, err := exec.Command("taskset", "-a", "-p", "-c", cpus, strconv.Itoa(pid)).CombinedOutput(); err != nil {
			tb.Fatalf("taskset %s %d: %v\n%s", cpus, pid, err, out)
		}
	}
}

// enginePIDs lists the engine processes descending from this one.
func enginePIDs() []int {
	procs := readProcs()
	self := os.Getpid()
	var out []int
	for pid, p := range procs {
		if engineOf(p.comm) == "" {
			continue
		}
		for q, hops := p.ppid, 0; q > 1 && hops < 16; q, hops = procs[q].ppid, hops+1 {
			if q == self {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// loadAverage is the first field of /proc/loadavg, for the record beside
// each rate.
func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}
