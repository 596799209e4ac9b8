package plugin

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	storagev2 "github.com/cross-layer-telemetry/clt/api/storagev2"
)

// A trace of 1000 spans with a 4.5 KB stack-trace event each (4.7 MB) used
// to stream as one chunk over gRPC's default 4 MiB limit: the trace and every
// search finding it failed. The test's client keeps that default limit.
func TestLargeTraceStreamsInChunksBelowTheMessageLimit(t *testing.T) {
	e := startEnv(t, nil)
	now := time.Now().Truncate(time.Microsecond)
	rs := spanSpec{trace: 1, span: 1, service: "svc", name: "op", start: now, dur: time.Millisecond}.resourceSpans()
	tmpl := rs.ScopeSpans[0].Spans[0]
	rs.ScopeSpans[0].Spans = nil
	stack := strings.Repeat("at frame(file.go:123)\n", 205) // ≈ 4.5 KB
	for i := range 1000 {
		sp := proto.Clone(tmpl).(*tracepb.Span)
		sp.SpanId = []byte{1, 0, 0, 0, 0, 0, byte(i >> 8), byte(i)}
		sp.Events = []*tracepb.Span_Event{{Name: "exception", TimeUnixNano: sp.StartTimeUnixNano,
			Attributes: []*commonpb.KeyValue{strAttr("exception.stacktrace", stack)}}}
		rs.ScopeSpans[0].Spans = append(rs.ScopeSpans[0].Spans, sp)
	}
	req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{rs}}
	require.Greater(t, proto.Size(req), 4<<20, "the request itself exceeds one default gRPC message")
	_, err := e.otlp.Export(t.Context(), req)
	require.NoError(t, err)

	chunks := e.getTraces(t, tid(1))
	assert.Len(t, spansOf(chunks), 1000)
	assert.Greater(t, len(chunks), 1)
	for i, c := range chunks {
		assert.LessOrEqual(t, proto.Size(c), maxChunkBytes, "chunk %d", i)
	}
	found := spansOf(e.findTraces(t, &storagev2.TraceQueryParameters{ServiceName: "svc", SearchDepth: 10}))
	assert.Len(t, found, 1000, "the service's search still reads the trace")
}

// An enriched 100-span trace (about 60 KB) streams in messages of at most
// targetChunkBytes, none empty, with every span: each lands in a 32 KiB
// buffer of Jaeger's client instead of a 1 MiB one.
func TestMessagesCutAtTargetSize(t *testing.T) {
	e := startEnv(t, nil)
	ids := loadEnrichedTraces(t, e, 1, true)
	chunks := e.getTraces(t, ids[0])
	assert.Len(t, spansOf(chunks), 120)
	total := 0
	for i, c := range chunks {
		total += proto.Size(c)
		assert.LessOrEqual(t, proto.Size(c), targetChunkBytes, "message %d", i)
		assert.NotEmpty(t, spansOf([]*tracepb.TracesData{c}), "message %d", i)
	}
	assert.Greater(t, total, targetChunkBytes, "the trace is larger than one message")
}

// A single span larger than a message is served truncated with a warning,
// never as an unreadable trace.
func TestOversizedSpanIsTruncatedWithAWarning(t *testing.T) {
	e := startEnv(t, nil)
	now := time.Now().Truncate(time.Microsecond)
	big := strings.Repeat("x", 1<<20)
	rs := spanSpec{trace: 2, span: 1, service: "svc", name: "op", start: now, dur: time.Millisecond,
		attrs: []*commonpb.KeyValue{strAttr("a", big), strAttr("b", big), strAttr("c", big), strAttr("d", big), strAttr("small", "kept")}}.resourceSpans()
	sp := rs.ScopeSpans[0].Spans[0]
	for range 3 {
		sp.Events = append(sp.Events, &tracepb.Span_Event{Name: "e", Attributes: []*commonpb.KeyValue{strAttr("v", big[:100<<10])}})
	}
	_, err := e.otlp.Export(t.Context(), &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{rs}})
	require.NoError(t, err)

	got := spansOf(e.getTraces(t, tid(2)))
	require.Len(t, got, 1)
	s := got[0]
	attrs := map[string]*commonpb.AnyValue{}
	for _, kv := range s.Attributes {
		attrs[kv.Key] = kv.Value
	}
	assert.True(t, attrs[AttrTruncated].GetBoolValue())
	assert.Equal(t, "kept", attrs["small"].GetStringValue())
	assert.LessOrEqual(t, len(attrs["a"].GetStringValue()), truncValueBytes+len("…"))
	assert.Empty(t, s.Events, "events go first")
	assert.EqualValues(t, 3, s.DroppedEventsCount)
	ws := attrs[AttrJaegerWarnings].GetArrayValue().GetValues()
	require.NotEmpty(t, ws)
	assert.True(t, strings.HasPrefix(ws[len(ws)-1].GetStringValue(), WarnTruncated), ws[len(ws)-1].GetStringValue())
}
