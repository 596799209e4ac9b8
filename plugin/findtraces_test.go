package plugin

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/api/storagev2"
)

// TestFindTracesStreamsLikeGetTraces checks that FindTraces streams, chunk
// for chunk, what GetTraces streams for the IDs FindTraceIDs returns: same
// order, same chunking (a trace larger than max_spans_per_chunk, stored in
// two batches), same IOAM enrichment.
func TestFindTracesStreamsLikeGetTraces(t *testing.T) {
	const limit = 300
	e := startEnv(t, func(c *Config) { c.Storage.MaxSpansPerChunk = limit })
	now := time.Now()
	// Trace 1: 700 spans in two Exports (two stored groups); traces 2 and 3
	// small, newer.
	for batch := range 2 {
		rs := spanSpec{trace: 1, span: 1, service: "svc", name: "op", start: now, dur: time.Millisecond}.resourceSpans()
		tmpl := rs.ScopeSpans[0].Spans[0]
		rs.ScopeSpans[0].Spans = nil
		for i := range 350 {
			sp := proto.Clone(tmpl).(*tracepb.Span)
			n := batch*350 + i
			sp.SpanId = []byte{0xcd, 0, 0, 0, 0, 0, byte(n >> 8), byte(n)}
			rs.ScopeSpans[0].Spans = append(rs.ScopeSpans[0].Spans, sp)
		}
		_, err := e.otlp.Export(t.Context(), &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{rs}})
		require.NoError(t, err)
	}
	e.export(t, spanSpec{trace: 2, span: 1, service: "svc", name: "op", start: now.Add(time.Second), dur: time.Millisecond})
	e.export(t, spanSpec{trace: 3, span: 1, service: "svc", name: "op", start: now.Add(2 * time.Second), dur: time.Millisecond})
	// Records on a span of each stored group of trace 1, and on trace 3.
	var recs []*collectorv1.IOAMRecord
	for _, at := range []struct {
		trace  []byte
		spanID []byte
	}{
		{tid(1), []byte{0xcd, 0, 0, 0, 0, 0, 0, 5}},
		{tid(1), []byte{0xcd, 0, 0, 0, 0, 0, 2, 0x9a}}, // span 666
		{tid(3), sid(1)},
	} {
		r := rec(3, 0, 1, 2, 3)
		r.TraceId, r.SpanId = at.trace, at.spanID
		recs = append(recs, r)
	}
	_, err := e.collector.Report(t.Context(), &collectorv1.ReportRequest{Records: recs})
	require.NoError(t, err)

	for _, q := range []*storagev2.TraceQueryParameters{
		{ServiceName: "svc"},
		{ServiceName: "svc", SearchDepth: 2},
		{ServiceName: "svc", Attributes: []*storagev2.KeyValue{strKV(AttrNodeID, "2")}},
	} {
		ids, err := e.reader.FindTraceIDs(t.Context(), &storagev2.FindTracesRequest{Query: q})
		require.NoError(t, err)
		var want [][]byte
		for _, f := range ids.TraceIds {
			want = append(want, f.TraceId)
		}
		require.NotEmpty(t, want)
		wantChunks := e.getTraces(t, want...)
		got := e.findTraces(t, q)
		require.Len(t, got, len(wantChunks), "query %v", q)
		for i := range got {
			require.True(t, proto.Equal(wantChunks[i], got[i]), "query %v: chunk %d differs", q, i)
			assert.LessOrEqual(t, len(spansOf(got[i:i+1])), limit)
		}
		assert.Equal(t, want, traceIDsOf(got), "query %v: traces consecutive, in FindTraceIDs order", q)
	}
	// The big trace really was split and enriched.
	chunks := e.findTraces(t, &storagev2.TraceQueryParameters{ServiceName: "svc", SearchDepth: 3})
	spans, synthetic := splitSynthetic(spansOf(chunks))
	assert.Len(t, spans, 702)
	assert.Len(t, synthetic, 6, "two links for each of the 3 spans with records")
	enriched := 0
	for _, sp := range spans {
		if _, ok := attrMap(sp.Attributes)[AttrPath]; ok {
			enriched++
		}
	}
	assert.Equal(t, 3, enriched, "records joined on their spans")
	assert.GreaterOrEqual(t, len(chunks), 5, "700 spans in chunks of at most 300")
}
