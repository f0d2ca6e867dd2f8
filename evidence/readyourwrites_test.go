package evidence

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/custody-dev/custody/identity"
)

// With the SQLite catalog taking events without the writer waiting for
// their commit, an acknowledged event is in every read that follows it:
// the item (Get) and its history (Events), under concurrent writers on
// several items and on one.
func TestEventsReadYourWrites(t *testing.T) {
	dir := t.TempDir()
	base, cat, _ := newTestServiceIn(t, dir)
	d := depsOf(base)
	d.Catalog = cat.Catalog // the SQLite catalog itself, not the test's wrapper
	s := New(d, Config{UploadDir: filepath.Join(dir, "upload-sessions")})
	collector := mustIdentity(t, identity.RoleCollector, "c")
	court := mustIdentity(t, identity.RoleCourt, "judge")
	var ids []string
	for i := range 4 {
		item, err := ingestDoc(t, s, collector, fmt.Sprintf("read your writes %d", i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, item.ID)
	}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			id := ids[g%len(ids)]
			for n := range 15 {
				ev, err := s.RecordEvent(t.Context(), court, id, EventInput{Type: "annotation", Note: fmt.Sprintf("%d/%d", g, n)})
				if err != nil {
					t.Error(err)
					return
				}
				item, err := s.Get(t.Context(), court, id)
				if err != nil || item.LastSeq < ev.Seq {
					t.Errorf("%s: Get right after event %d shows %d, %v", id, ev.Seq, item.LastSeq, err)
					return
				}
				recs, rows, _, err := s.Events(t.Context(), court, id, ev.Seq, 1)
				if err != nil || len(rows) != 1 || rows[0].LogIndex != ev.LogIndex || recs[0].Sequence != ev.Seq {
					t.Errorf("%s: Events right after event %d: %d rows, %v", id, ev.Seq, len(rows), err)
					return
				}
			}
		})
	}
	wg.Wait()
}
