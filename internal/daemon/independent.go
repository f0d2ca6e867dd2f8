package daemon

import (
	"fmt"
	"os"
	"time"

	"github.com/custody-dev/custody/certs"
	"github.com/custody-dev/custody/custodylog"
	"github.com/custody-dev/custody/witness"
)

// readWitnessPolicy reads --witness-policy (nil when unset).
func readWitnessPolicy(path string) (*witness.Policy, error) {
	if path == "" {
		return nil, nil
	}
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--witness-policy: %w", err)
	}
	p, err := witness.ParsePolicy(text)
	if err != nil {
		return nil, fmt.Errorf("--witness-policy %s: %w", path, err)
	}
	for _, w := range p.Witnesses {
		if w.URL == "" {
			return nil, fmt.Errorf("--witness-policy %s: witness %s has no URL: custodyd must know where to submit checkpoints", path, w.Name)
		}
	}
	return p, nil
}

// readAuthorities pairs each --tsa URL with its --tsa-chain PEM file.
func readAuthorities(urls, chains []string) ([]custodylog.Authority, error) {
	if len(urls) != len(chains) {
		return nil, fmt.Errorf("--tsa given %d times and --tsa-chain %d: give each authority's chain after its URL", len(urls), len(chains))
	}
	var out []custodylog.Authority
	for i, u := range urls {
		chain, err := certs.ReadCertificates(chains[i])
		if err != nil {
			return nil, fmt.Errorf("--tsa-chain %s: %w", chains[i], err)
		}
		out = append(out, custodylog.Authority{URL: u, Chain: chain})
	}
	return out, nil
}

// stampRequestTime is what stampWait allows for the timestamp request
// itself.
const stampRequestTime = 2 * time.Second

// stampWait is how long a bundle waits for a timestamped checkpoint: two
// checkpoint intervals and a request, when there are authorities.
func stampWait(cfg LogConfig) time.Duration {
	if len(cfg.TSA) == 0 {
		return 0
	}
	return 2*cfg.CheckpointInterval + stampRequestTime
}

// historyWait is how long a bundle waits for a history-map commitment
// covering its item's last event, under a checkpoint: the event's
// checkpoint, the map's next commitment and the checkpoint covering it —
// three checkpoint intervals and a second for the map itself.
func historyWait(cfg LogConfig) time.Duration {
	return 3*cfg.CheckpointInterval + time.Second
}
