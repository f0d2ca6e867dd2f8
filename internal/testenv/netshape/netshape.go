// Package netshape gives a test a real, kernel-shaped network link: a
// network namespace joined to the host's by a veth pair on private
// addresses the test creates, with a token-bucket filter (tc tbf) limiting
// the rate each way. A server started in the namespace (ip netns exec) is
// then reached only over that slow link. Needs root (CI runs as root);
// the kernel here has no netem, so delay and loss come from
// internal/faultproxy instead.
package netshape

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/custody-dev/custody/internal/testenv"
)

// Link is a shaped link to a namespace.
type Link struct {
	// Netns is the namespace; NetnsAddr its address, HostAddr the host's.
	Netns, NetnsAddr, HostAddr string
}

func run(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// New creates a namespace linked to the host at rate (tc syntax, e.g.
// "16mbit") each way, removed when the test ends.
func New(t testing.TB, rate string) *Link {
	t.Helper()
	testenv.RequireFull(t, "shaped network link (tc)")
	id := os.Getpid() % 10000
	ns := fmt.Sprintf("custody-%d", id)
	host, peer := fmt.Sprintf("cs%da", id), fmt.Sprintf("cs%db", id)
	subnet := fmt.Sprintf("10.%d.%d", 100+id/256%100, id%256)
	l := &Link{Netns: ns, HostAddr: subnet + ".1", NetnsAddr: subnet + ".2"}
	// Leftovers of a killed earlier run with the same pid.
	exec.Command("ip", "netns", "del", ns).Run()
	exec.Command("ip", "link", "del", host).Run()
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", ns).Run()
		exec.Command("ip", "link", "del", host).Run()
	})
	run(t, "ip", "link", "add", host, "type", "veth", "peer", "name", peer)
	run(t, "ip", "link", "set", peer, "netns", ns)
	run(t, "ip", "addr", "add", l.HostAddr+"/30", "dev", host)
	run(t, "ip", "link", "set", host, "up")
	run(t, "ip", "netns", "exec", ns, "ip", "addr", "add", l.NetnsAddr+"/30", "dev", peer)
	run(t, "ip", "netns", "exec", ns, "ip", "link", "set", peer, "up")
	run(t, "ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
	tbf := []string{"root", "tbf", "rate", rate, "burst", "32kb", "latency", "400ms"}
	run(t, append([]string{"tc", "qdisc", "add", "dev", host}, tbf...)...)
	run(t, append([]string{"ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", peer}, tbf...)...)
	return l
}
