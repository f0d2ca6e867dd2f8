package evidence

import (
	"context"

	"github.com/custody-dev/custody/canonicaljson"
	"github.com/custody-dev/custody/catalog"
	"github.com/custody-dev/custody/custodylog"
	"github.com/custody-dev/custody/events"
)

// domain is what the write protocol (package ledger) asks of the service:
// the receipts it signs, the rows and custody states of records it
// replays.
type domain struct{ s *Service }

// Receipt implements ledger.Domain.
func (d domain) Receipt(rec events.Record, item *catalog.Evidence, index uint64, leaf [32]byte) canonicaljson.Object {
	if item != nil {
		return ingestReceipt(*item, index, leaf, d.s.log.Origin())
	}
	return eventReceipt(rec, custodylog.Appended{Index: index, LeafHash: leaf}, d.s.log.Origin())
}

// ReplayedItem implements ledger.Domain.
func (d domain) ReplayedItem(ctx context.Context, rec events.Record, record []byte, index uint64, entry []byte, row catalog.Evidence) catalog.Evidence {
	return d.s.replayedRow(ctx, rec, record, index, entry, row)
}

// NextState implements ledger.Domain.
func (d domain) NextState(st catalog.ItemState, rec events.Record) (catalog.ItemState, error) {
	return nextState(st, rec)
}
