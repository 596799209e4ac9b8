package plugin

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	storagev2 "github.com/cross-layer-telemetry/clt/api/storagev2"
)

// Spans Jaeger cannot serve are refused with partial_success, never stored:
// stored, one of them made every read of the trace and every search of the
// service fail ("invalid SpanID length"). The valid spans of the same request
// are stored and served.
func TestExportRejectsPoisonSpans(t *testing.T) {
	e := startEnv(t, nil)
	now := time.Now().Truncate(time.Microsecond)
	good := func(span byte) *tracepb.ResourceSpans {
		return spanSpec{trace: 1, span: span, service: "svc", name: "op", start: now, dur: time.Millisecond}.resourceSpans()
	}
	poison := []struct {
		field string
		mod   func(sp *tracepb.Span)
	}{
		{"span_id", func(sp *tracepb.Span) { sp.SpanId = make([]byte, 16); sp.SpanId[0] = 1 }},
		{"span_id", func(sp *tracepb.Span) { sp.SpanId = make([]byte, 8) }},
		{"parent_span_id", func(sp *tracepb.Span) { sp.ParentSpanId = []byte{1, 2, 3, 4} }},
		{"trace_id", func(sp *tracepb.Span) { sp.TraceId = sp.TraceId[:8] }},
		{"trace_id", func(sp *tracepb.Span) { sp.TraceId = make([]byte, 16) }},
		{"links[0].span_id", func(sp *tracepb.Span) {
			sp.Links = []*tracepb.Span_Link{{TraceId: tid(1), SpanId: []byte{1}}}
		}},
	}
	req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{good(1)}}
	for i, p := range poison {
		rs := good(byte(10 + i))
		p.mod(rs.ScopeSpans[0].Spans[0])
		req.ResourceSpans = append(req.ResourceSpans, rs)
	}
	// A group mixing a good and a poison span keeps the good one.
	mixed := good(2)
	bad := good(3).ScopeSpans[0].Spans[0]
	bad.SpanId = nil
	mixed.ScopeSpans[0].Spans = append(mixed.ScopeSpans[0].Spans, bad)
	req.ResourceSpans = append(req.ResourceSpans, mixed)

	resp, err := e.otlp.Export(t.Context(), req)
	require.NoError(t, err)
	ps := resp.GetPartialSuccess()
	require.NotNil(t, ps, "OTLP: partial_success must be set when spans are rejected")
	assert.EqualValues(t, len(poison)+1, ps.GetRejectedSpans())
	assert.Contains(t, ps.GetErrorMessage(), "resource_spans[1].scope_spans[0].spans[0].span_id: length 16, want 8")
	assert.Contains(t, ps.GetErrorMessage(), "and 4 more")

	spans := spansOf(e.getTraces(t, tid(1)))
	var ids []byte
	for _, sp := range spans {
		ids = append(ids, sp.SpanId[7])
	}
	assert.ElementsMatch(t, []byte{1, 2}, ids, "the valid spans, and only they, are served")
	found := spansOf(e.findTraces(t, &storagev2.TraceQueryParameters{ServiceName: "svc", SearchDepth: 10}))
	assert.Len(t, found, 2, "the service's search still works")
	m := e.scrape(t)
	for _, want := range []string{`clt_storage_spans_rejected_total{reason="span_id"} 3`, `clt_storage_spans_rejected_total{reason="trace_id"} 2`,
		`clt_storage_spans_rejected_total{reason="parent_span_id"} 1`, `clt_storage_spans_rejected_total{reason="link_span_id"} 1`} {
		assert.True(t, strings.Contains(m, want), want)
	}

	// A valid request has no partial_success.
	resp, err = e.otlp.Export(t.Context(), &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{good(4)}})
	require.NoError(t, err)
	assert.Nil(t, resp.GetPartialSuccess())
}
