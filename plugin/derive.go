package plugin

import (
	"strings"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/ioamstore"
)

// deriver makes the enrichment searchable: a FindTraces / FindTraceIDs
// predicate on an ioam.* key (ioam.overflow, ioam.path_changed,
// ioam.unconfirmed, ioam.path, ioam.hop_count, ioam.reporters, ...) is
// checked against what Enrich adds to each candidate span with records, so
// a search finds exactly the traces whose enriched spans carry the value
// (the ioam. prefix belongs to clt-storage: applications' own ioam.*
// attributes are not searched). ioam.node_id and ioam.namespace_id stay
// answered by the record index.
type deriver struct {
	corrupt func() // counts a record that does not decode
}

// derivedCandidatesPerResult bounds the cost of a search on ioam.* tags:
// at most search_depth × this many candidate traces with records are
// enriched (newest first), then the search ends with what it found.
const derivedCandidatesPerResult = 100

var _ ioamstore.Deriver = deriver{}

func (deriver) Derives(key string) bool {
	return strings.HasPrefix(key, "ioam.") && key != AttrNodeID && key != AttrNamespaceID
}

func (d deriver) Attributes(spanID [8]byte, stored []ioamstore.Record) []*commonpb.KeyValue {
	recs := make([]*collectorv1.IOAMRecord, 0, len(stored))
	excess := 0
	for _, s := range stored {
		excess += s.Excess
		r := &collectorv1.IOAMRecord{}
		if err := proto.Unmarshal(s.Data, r); err != nil {
			if d.corrupt != nil {
				d.corrupt()
			}
			continue
		}
		recs = append(recs, r)
	}
	scratch := &tracepb.Span{SpanId: spanID[:]}
	a := analyzeSpan(scratch, recs)
	if a == nil {
		return nil
	}
	a.recordsLimited(excess, len(stored)) // a span with excess has exactly the limit's records
	// Names and timestamps are not attributes: a bare span and the default
	// labels do.
	a.apply(scratch, nil)
	out := scratch.Attributes
	for _, ev := range scratch.Events {
		out = append(out, ev.Attributes...)
	}
	return out
}
