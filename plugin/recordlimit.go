package plugin

import (
	"fmt"

	"github.com/cross-layer-telemetry/clt/ioamstore"
)

// AttrRecordsNotJoined is the span attribute (and records-limit warning
// attribute) counting the span's IOAM records a read left out beyond
// storage.max_records_per_span.
const AttrRecordsNotJoined = "ioam.records_not_joined"

// storageService is the service of the warning span of a records-limit
// warning: clt-storage, not a node, left the records out.
const storageService = "clt-storage"

// notJoined sums, per span, the records the store left out of a read
// (ioamstore.Record.Excess) and counts them in
// clt_storage_records_not_joined_total. Nil when none was.
func (r *reader) notJoined(stored []ioamstore.Record) map[[8]byte]int {
	var out map[[8]byte]int
	for _, s := range stored {
		if s.Excess <= 0 {
			continue
		}
		if out == nil {
			out = map[[8]byte]int{}
		}
		out[s.SpanID] += s.Excess
		r.metrics.recordsNotJoined.Add(float64(s.Excess))
	}
	return out
}

// recordsLimited adds the warning that n more records of the span were not
// joined because of limit (storage.max_records_per_span); nothing when n is
// 0. The records joined are a stable subset, so every read says the same.
func (a *analysis) recordsLimited(n, limit int) {
	if n <= 0 {
		return
	}
	a.notJoined = n
	more := fmt.Sprint(n)
	if n > ioamstore.MaxExcessCounted {
		more = fmt.Sprintf("more than %d", ioamstore.MaxExcessCounted)
	}
	a.warnings = append(a.warnings, warning{kind: WarningRecordsLimit, path: a.canon.path, service: storageService, notJoined: n,
		text: fmt.Sprintf("%s%s more records for this span not joined (limit %d, storage.max_records_per_span)", WarnRecordsLimit, more, limit)})
}
