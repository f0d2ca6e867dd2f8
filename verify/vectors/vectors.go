// Package vectors reads the verifier conformance vectors in
// testdata/verify-vectors (README.md there says what they are): base
// bundles from a real service, and variants of them, each with the outcome
// a verifier written from docs/VERIFY.md must reach. The Go verifier, the
// custody CLI and the /verify page are all tested against them.
package vectors

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/custody-dev/custody/canonicaljson"
)

// Set is vectors.json.
type Set struct {
	// Trust names the files holding the trust anchors a court brings.
	Trust   Trust    `json:"trust"`
	Vectors []Vector `json:"vectors"`
}

// Trust is where the court's trusted material lives, relative to the set.
type Trust struct {
	LogKey            string `json:"log_key"`
	ReceiptKey        string `json:"receipt_key"`
	CA                string `json:"ca"`
	EarlierCheckpoint string `json:"earlier_checkpoint"`
	// Policy is the court's witness policy; TSAChain the timestamp
	// authority's certificate chain.
	Policy   string `json:"policy"`
	TSAChain string `json:"tsa_chain"`
}

// Vector is one verification to run.
type Vector struct {
	Name string `json:"name"`
	// Bundle is the base bundle's file; Raw, if set, is a whole variant
	// file to verify instead of Bundle with Patch.
	Bundle string `json:"bundle,omitempty"`
	Raw    string `json:"raw,omitempty"`
	// Patch is applied to the base bundle (RFC 6902 add, remove,
	// replace; paths are RFC 6901 JSON pointers).
	Patch []Op `json:"patch,omitempty"`
	// File is the evidence file to give, if any.
	File string `json:"file,omitempty"`
	// Keys: give the trusted log and receipt keys. CA: give the CA.
	// EarlierCheckpoint: give the earlier checkpoint.
	Keys              bool `json:"keys"`
	CA                bool `json:"ca"`
	EarlierCheckpoint bool `json:"earlier_checkpoint"`
	// Policy: give the witness policy. TSAChain: give the authority's
	// chain.
	Policy   bool   `json:"policy"`
	TSAChain bool   `json:"tsa_chain"`
	Expect   Expect `json:"expect"`
}

// Op is one RFC 6902 operation.
type Op struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// Expect is what the verifier must conclude.
type Expect struct {
	// Outcome: verified, verified_with_limits, untrusted_keys or failed.
	Outcome string `json:"outcome"`
	// Step is the docs/VERIFY.md step of the first failed check, when the
	// outcome is failed.
	Step string `json:"step,omitempty"`
	// Unauthenticated lists the fields reported as context only.
	Unauthenticated []string `json:"unauthenticated,omitempty"`
}

// Load reads dir/vectors.json.
func Load(dir string) (*Set, error) {
	b, err := os.ReadFile(filepath.Join(dir, "vectors.json"))
	if err != nil {
		return nil, err
	}
	var s Set
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("vectors.json: %w", err)
	}
	return &s, nil
}

// BundleText returns the bytes to verify for v.
func BundleText(dir string, v Vector) ([]byte, error) {
	if v.Raw != "" {
		return os.ReadFile(filepath.Join(dir, v.Raw))
	}
	base, err := os.ReadFile(filepath.Join(dir, v.Bundle))
	if err != nil {
		return nil, err
	}
	if len(v.Patch) == 0 {
		return base, nil
	}
	doc, err := canonicaljson.Parse(base)
	if err != nil {
		return nil, err
	}
	for _, op := range v.Patch {
		if doc, err = Apply(doc, op); err != nil {
			return nil, fmt.Errorf("%s: %w", v.Name, err)
		}
	}
	return json.Marshal(doc)
}

// Apply applies one operation to a document decoded by canonicaljson.Parse.
func Apply(doc any, op Op) (any, error) {
	if op.Path == "" {
		return nil, errors.New("the whole document cannot be patched")
	}
	parts := strings.Split(op.Path, "/")[1:]
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(p, "~1", "/"), "~0", "~")
	}
	return apply(doc, parts, op)
}

func apply(node any, path []string, op Op) (any, error) {
	key := path[0]
	last := len(path) == 1
	switch n := node.(type) {
	case canonicaljson.Object:
		child, ok := n[key]
		if last {
			switch op.Op {
			case "add":
				n[key] = op.Value
			case "replace":
				if !ok {
					return nil, fmt.Errorf("replace: no %q", key)
				}
				n[key] = op.Value
			case "remove":
				if !ok {
					return nil, fmt.Errorf("remove: no %q", key)
				}
				delete(n, key)
			default:
				return nil, fmt.Errorf("unknown op %q", op.Op)
			}
			return n, nil
		}
		if !ok {
			return nil, fmt.Errorf("no %q", key)
		}
		c, err := apply(child, path[1:], op)
		n[key] = c
		return n, err
	case []any:
		i, err := strconv.Atoi(key)
		if err != nil || i < 0 || i > len(n) || (i == len(n) && (!last || op.Op != "add")) {
			return nil, fmt.Errorf("bad index %q", key)
		}
		if last {
			switch op.Op {
			case "add":
				n = append(n[:i], append([]any{op.Value}, n[i:]...)...)
			case "replace":
				n[i] = op.Value
			case "remove":
				n = append(n[:i], n[i+1:]...)
			default:
				return nil, fmt.Errorf("unknown op %q", op.Op)
			}
			return n, nil
		}
		c, err := apply(n[i], path[1:], op)
		n[i] = c
		return n, err
	}
	return nil, fmt.Errorf("%q: not an object or array", key)
}
