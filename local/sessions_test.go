package local_test

import (
	"testing"

	"github.com/custody-dev/custody/evidence"
	"github.com/custody-dev/custody/evidence/sessionstest"
	"github.com/custody-dev/custody/local"
)

func TestSessions(t *testing.T) {
	sessionstest.Run(t, func(t *testing.T) evidence.UploadSessions { return local.Sessions{Dir: t.TempDir()} })
}
