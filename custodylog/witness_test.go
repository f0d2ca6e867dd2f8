package custodylog_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/custody-dev/custody/custodylog"
	"github.com/custody-dev/custody/custodylog/posixlog"
	"github.com/custody-dev/custody/internal/testenv/witnesstest"
	"github.com/custody-dev/custody/witness"
)

// TestWitnessedCheckpoints runs the log with two real witnesses
// (omniwitness on loopback): checkpoints carry both cosignatures; a fork
// of the log (same size, another root, signed with the real log key) is
// refused by a witness; with one witness stopped, checkpoints go on being
// published with the other's cosignature, and the stopped one catches up
// when it is back.
func TestWitnessedCheckpoints(t *testing.T) {
	const origin = "custody.test/witnessed"
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	a := witnesstest.Start(t, "witness.test/a", origin, vkey)
	b := witnesstest.Start(t, "witness.test/b", origin, vkey)
	policy, err := witness.ParsePolicy([]byte(a.PolicyLine() + "\n" + b.PolicyLine() + "\ngroup both all A B\nquorum both\n"))
	if err == nil {
		t.Fatal("policy names are A and B, not the witnesses' key names: want an error")
	}
	text := fmt.Sprintf("witness A %s %s\nwitness B %s %s\ngroup both all A B\nquorum both\n", a.VKey, a.URL, b.VKey, b.URL)
	if policy, err = witness.ParsePolicy([]byte(text)); err != nil {
		t.Fatal(err)
	}
	backend, err := posixlog.New(t.Context(), filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := custodylog.Open(t.Context(), custodylog.Config{Backend: backend, Signer: signer, Verifier: verifier,
		CheckpointInterval: 200 * time.Millisecond, Witnesses: policy, NoHistoryMap: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(context.Background()) })
	appendN := func(n int) {
		for i := range n {
			if _, err := l.Append(t.Context(), fmt.Appendf(nil, "entry %d %d", time.Now().UnixNano(), i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// waitFor polls the published checkpoint until it has at least size
	// entries and want(result) holds.
	waitFor := func(size uint64, what string, want func(witness.Result) bool) []byte {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			cp, err := l.Checkpoint(t.Context())
			if err == nil {
				n, err := note.Open(cp, note.VerifierList(verifier))
				if err != nil {
					t.Fatalf("published checkpoint does not verify under the log key: %v", err)
				}
				if sizeOf(n.Text) >= size && want(policy.Check(cp)) {
					return cp
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no checkpoint of %d+ entries %s within 30s; last:\n%s\nwitness A:\n%s", size, what, cp, a.Logs())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	signedBy := func(names ...string) func(witness.Result) bool {
		return func(r witness.Result) bool {
			var got []string
			for _, c := range r.Signed {
				got = append(got, c.Witness)
			}
			return strings.Join(got, ",") == strings.Join(names, ",") && len(r.Invalid) == 0
		}
	}

	appendN(5)
	cp := waitFor(5, "cosigned by A and B", signedBy("A", "B"))
	if r := policy.Check(cp); !r.Satisfied {
		t.Fatalf("quorum not satisfied: %+v", r)
	}
	states, err := l.Witnesses(t.Context())
	if err != nil || len(states) != 2 || states[0].Lag != 0 || states[1].Lag != 0 {
		t.Fatalf("Witnesses = %+v, %v; want both with lag 0", states, err)
	}

	t.Run("fork refused", func(t *testing.T) {
		n, _ := note.Open(cp, note.VerifierList(verifier))
		lines := strings.Split(n.Text, "\n")
		root, _ := base64.StdEncoding.DecodeString(lines[2])
		root[0] ^= 1
		lines[2] = base64.StdEncoding.EncodeToString(root)
		fork, err := note.Sign(&note.Note{Text: strings.Join(lines, "\n")}, signer)
		if err != nil {
			t.Fatal(err)
		}
		if r := policy.Check(fork); r.Satisfied || len(r.Signed) != 0 {
			t.Fatalf("a fork with no cosignature satisfies the policy: %+v", r)
		}
		body := fmt.Sprintf("old %s\n\n%s", lines[1], fork)
		resp, err := http.Post(a.URL+"/add-checkpoint", "text/plain", bytes.NewBufferString(body))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatalf("witness cosigned a fork: %s", got)
		}
		t.Logf("witness refused the fork: %d %s", resp.StatusCode, strings.TrimSpace(string(got)))
	})

	b.Stop()
	appendN(5)
	waitFor(10, "cosigned by A alone (B is down)", signedBy("A"))
	states, err = l.Witnesses(t.Context())
	if err != nil || states[1].Name != "B" || states[1].Lag < 5 || states[0].Lag != 0 {
		t.Fatalf("Witnesses with B down = %+v, %v; want B behind by 5+", states, err)
	}

	b.Restart(t)
	appendN(1)
	waitFor(11, "cosigned by A and B again", signedBy("A", "B"))
	states, err = l.Witnesses(t.Context())
	if err != nil || states[1].Lag != 0 {
		t.Fatalf("Witnesses after B is back = %+v, %v; want lag 0", states, err)
	}
}

func sizeOf(text string) uint64 {
	var n uint64
	fmt.Sscan(strings.Split(text, "\n")[1], &n)
	return n
}
