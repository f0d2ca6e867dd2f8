package mem_test

import (
	"testing"

	"github.com/custody-dev/custody/storage"
	"github.com/custody-dev/custody/storage/mem"
	"github.com/custody-dev/custody/storage/storagetest"
)

func TestSuite(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store { return mem.New() })
}
