package evidence_test

import (
	"testing"

	"github.com/custody-dev/custody/evidence"
	"github.com/custody-dev/custody/evidence/sessionstest"
)

func TestDirSessions(t *testing.T) {
	sessionstest.Run(t, func(t *testing.T) evidence.UploadSessions { return evidence.DirSessions{Dir: t.TempDir()} })
}
