package awslog

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// TestNotExist: a missing S3 object is os.ErrNotExist however it arrives —
// typed, or flattened into a message by Tessera's partial-or-full fetch —
// so partial-tile fallbacks and 404s work on the shared log.
func TestNotExist(t *testing.T) {
	typed := &types.NoSuchKey{Message: new(string)}
	for name, err := range map[string]error{
		"typed":     fmt.Errorf("getObject: %w", typed),
		"flattened": fmt.Errorf("failed to fetch partial resource: %v", fmt.Errorf("getObject: %w", typed)),
	} {
		if !errors.Is(notExist(err), os.ErrNotExist) {
			t.Errorf("%s: %v is not os.ErrNotExist", name, notExist(err))
		}
	}
	if other := errors.New("connection refused"); errors.Is(notExist(other), os.ErrNotExist) {
		t.Error("an unrelated error became os.ErrNotExist")
	}
	if notExist(nil) != nil {
		t.Error("nil became an error")
	}
}
