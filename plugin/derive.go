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
// a search finds exactly the traces whose enriched spans carry the value.
// ioam.node_id and ioam.namespace_id stay answered by the record index.
type deriver struct {
	corrupt func() // counts a record that does not decode
}

var _ ioamstore.Deriver = deriver{}

func (deriver) Derives(key string) bool {
	return strings.HasPrefix(key, "ioam.") && key != AttrNodeID && key != AttrNamespaceID
}

func (d deriver) Attributes(span *tracepb.Span, stored []ioamstore.Record) []*commonpb.KeyValue {
	recs := make([]*collectorv1.IOAMRecord, 0, len(stored))
	for _, s := range stored {
		r := &collectorv1.IOAMRecord{}
		if err := proto.Unmarshal(s.Data, r); err != nil {
			if d.corrupt != nil {
				d.corrupt()
			}
			continue
		}
		recs = append(recs, r)
	}
	a := analyzeSpan(span, recs)
	if a == nil {
		return nil
	}
	// Names are not attributes: the default labels do.
	scratch := &tracepb.Span{SpanId: span.GetSpanId(), StartTimeUnixNano: span.GetStartTimeUnixNano()}
	a.apply(scratch, nil)
	out := scratch.Attributes
	for _, ev := range scratch.Events {
		out = append(out, ev.Attributes...)
	}
	return out
}
