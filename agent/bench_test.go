package agent

import (
	"testing"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// BenchmarkDecodeAggregate is the per-event CPU of the agent's hot path: one
// ioam6_events message of a 3-hop oss trace decoded and folded into its
// aggregate; 1000 distinct spans, each 64 packets per window, records
// flushed (and converted to protobuf) every 64k events.
func BenchmarkDecodeAggregate(b *testing.B) {
	cfg := testConfig()
	m := NewMetrics()
	var n int
	p := NewPipeline(cfg, LocalNode{ID: 3}, SourceNetlink, m, emitTo(func(r []*collectorv1.IOAMRecord) { n += len(r) }))
	const spans = 1000
	events := make([]Event, spans)
	for i := range events {
		ids := testIDs
		ids.SpanID[6], ids.SpanID[7] = byte(i>>8), byte(i)
		events[i] = Event{NamespaceID: 123, NodeLen: 4, TraceType: uint32(typeOSS), SeenUnixNano: 1,
			Data: eventData(b, linuxNode(3, 62, 10), linuxNode(2, 63, 5), ownNode(b, 1, ids, ioam6.DefaultSchemaID))}
	}
	batch := make([]Event, 1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		batch[0] = events[i%spans]
		p.Handle(batch)
		if i%(64*spans) == 64*spans-1 {
			p.Flush()
		}
	}
	p.Flush()
	b.StopTimer()
	if n == 0 {
		b.Fatal("no records")
	}
}
