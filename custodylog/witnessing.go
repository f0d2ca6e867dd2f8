package custodylog

import (
	"context"
	"strconv"
	"strings"
	"sync"

	"github.com/custody-dev/custody/witness"
)

// WitnessState is how far one witness of the policy has followed the log.
type WitnessState struct {
	Name string
	// Cosigned is the largest tree size this witness cosigned since the
	// process started (0: none seen yet); Lag is the published
	// checkpoint's size minus Cosigned.
	Cosigned, Lag uint64
}

// witnessLag remembers, per witness, the largest checkpoint it cosigned.
type witnessLag struct {
	policy *witness.Policy
	mu     sync.Mutex
	last   map[string]uint64
}

// Witnesses reads the published checkpoint and says how far behind it
// each witness of the policy is; nil when the log has no witnesses.
func (l *Log) Witnesses(ctx context.Context) ([]WitnessState, error) {
	wl := l.witnesses
	if wl == nil {
		return nil, nil
	}
	cp, err := l.reader.ReadCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	size := checkpointSize(cp)
	res := wl.policy.Check(cp)
	wl.mu.Lock()
	defer wl.mu.Unlock()
	for _, c := range res.Signed {
		wl.last[c.Witness] = max(wl.last[c.Witness], size)
	}
	out := make([]WitnessState, len(wl.policy.Witnesses))
	for i, w := range wl.policy.Witnesses {
		n := wl.last[w.Name]
		out[i] = WitnessState{Name: w.Name, Cosigned: n, Lag: size - min(n, size)}
	}
	return out, nil
}

// checkpointSize is the size line of a checkpoint note (0 if unreadable:
// the note was written by this log's own driver).
func checkpointSize(cp []byte) uint64 {
	lines := strings.SplitN(string(cp), "\n", 3)
	if len(lines) < 2 {
		return 0
	}
	n, _ := strconv.ParseUint(lines[1], 10, 64)
	return n
}
