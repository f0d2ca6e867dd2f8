package evidence

import (
	"github.com/custody-dev/custody/catalog"
	"github.com/custody-dev/custody/events"
)

// historyShape is what an auditor gets of a special-category item's event
// (docs/AUTHORIZATION.md): what the public log shows of it — the item, the
// sequence, the type, the time, the log position and leaf hash, and the
// link to the previous event — and nothing the record alone holds: no
// performer, counterparty, purpose or details (notes, reasons, authority,
// instrument, location, outcome, signatures), no content digest or salt,
// neither the record's bytes nor its receipt (which names the performer).
func historyShape(rec events.Record, row catalog.Event) (events.Record, catalog.Event) {
	shape := events.Record{EvidenceID: rec.EvidenceID, Sequence: rec.Sequence, Type: rec.Type, RecordedAt: rec.RecordedAt}
	if p := rec.Previous; p != nil {
		link := *p
		shape.Previous = &link
	}
	return shape, catalog.Event{
		EvidenceID: row.EvidenceID, Seq: row.Seq, Type: row.Type, RecordedAt: row.RecordedAt,
		LogIndex: row.LogIndex, LeafHash: row.LeafHash,
	}
}
