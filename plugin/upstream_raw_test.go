package plugin

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/cross-layer-telemetry/clt/internal/otlpwire"
)

// decodedVerdict is what writer.Export + WriteSpans decide on the decoded
// request: forwardable as is (well formed, no invalid span, no span of the
// reserved service) and its span count.
func decodedVerdict(b []byte, reserved string) (int, bool) {
	var req coltracepb.ExportTraceServiceRequest
	if proto.Unmarshal(b, &req) != nil || anyInvalid(req.ResourceSpans) {
		return 0, false
	}
	n := 0
	for _, rs := range req.ResourceSpans {
		if resourceService(rs.GetResource()) == reserved {
			return 0, false
		}
		n += countSpans(rs)
	}
	return n, true
}

func exportBytes(t testing.TB, rs ...*tracepb.ResourceSpans) []byte {
	b, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: rs})
	require.NoError(t, err)
	return b
}

// scanCases are the table of TestScanExport and the fuzz seeds.
func scanCases(t testing.TB) map[string][]byte {
	now := time.Now()
	ok := func(trace, span byte, svc string) *tracepb.ResourceSpans {
		return spanSpec{trace: trace, span: span, service: svc, name: "op", start: now, dur: time.Millisecond}.resourceSpans()
	}
	mut := func(f func(sp *tracepb.Span)) []byte {
		rs := ok(1, 1, "web")
		f(rs.ScopeSpans[0].Spans[0])
		return exportBytes(t, ok(1, 2, "web"), rs)
	}
	valid := exportBytes(t, ok(1, 1, "web"), ok(1, 2, "db"))
	// A span whose trace_id occurs twice: the last one counts when decoded.
	spanWith := func(extra []byte) []byte {
		sp, err := proto.Marshal(ok(1, 1, "web").ScopeSpans[0].Spans[0])
		require.NoError(t, err)
		ss := protowire.AppendBytes(protowire.AppendTag(nil, otlpwire.FieldScopeSpansSpans, protowire.BytesType), append(sp, extra...))
		rs := protowire.AppendBytes(protowire.AppendTag(nil, otlpwire.FieldResourceSpansScopeSpans, protowire.BytesType), ss)
		return protowire.AppendBytes(protowire.AppendTag(nil, otlpwire.FieldExportRequestResourceSpans, protowire.BytesType), rs)
	}
	traceField := func(id []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, otlpwire.FieldSpanTraceID, protowire.BytesType), id)
	}
	return map[string][]byte{
		"valid":              valid,
		"empty":              nil,
		"no spans":           exportBytes(t, &tracepb.ResourceSpans{}),
		"short trace id":     mut(func(sp *tracepb.Span) { sp.TraceId = sp.TraceId[:15] }),
		"zero span id":       mut(func(sp *tracepb.Span) { sp.SpanId = make([]byte, 8) }),
		"no span id":         mut(func(sp *tracepb.Span) { sp.SpanId = nil }),
		"parent of 3 bytes":  mut(func(sp *tracepb.Span) { sp.ParentSpanId = []byte{1, 2, 3} }),
		"parent of 8 bytes":  mut(func(sp *tracepb.Span) { sp.ParentSpanId = sid(9) }),
		"bad link":           mut(func(sp *tracepb.Span) { sp.Links = []*tracepb.Span_Link{{TraceId: tid(1), SpanId: []byte{1}}} }),
		"good link":          mut(func(sp *tracepb.Span) { sp.Links = []*tracepb.Span_Link{{TraceId: tid(2), SpanId: sid(3)}} }),
		"reserved service":   exportBytes(t, ok(1, 1, "web"), ok(1, 2, "clt-ioam")),
		"trace id fixed":     spanWith(traceField(tid(7))),
		"trace id broken":    spanWith(traceField([]byte{1})),
		"truncated":          valid[:len(valid)-3],
		"varint trace field": spanWith(protowire.AppendVarint(protowire.AppendTag(nil, otlpwire.FieldSpanTraceID, protowire.VarintType), 5)),
	}
}

func TestScanExport(t *testing.T) {
	want := map[string]bool{"valid": true, "empty": true, "no spans": true, "parent of 8 bytes": true, "good link": true, "trace id fixed": true,
		"varint trace field": true} // a wrong wire type is an unknown field when decoded
	for name, b := range scanCases(t) {
		n, ok := scanExport(b, []byte("clt-ioam"))
		assert.Equal(t, want[name], ok, name)
		dn, dok := decodedVerdict(b, "clt-ioam")
		assert.Equal(t, dok, ok, "%s: the bytes are judged as the decoded request", name)
		if ok {
			assert.Equal(t, dn, n, name)
		}
	}
	// A resource that merely mentions the reserved name goes the decoded way.
	rs := spanSpec{trace: 1, span: 1, service: "web", name: "op", start: time.Now(), dur: time.Millisecond}.resourceSpans()
	rs.Resource.Attributes = append(rs.Resource.Attributes, strAttr("team", "clt-ioam"))
	_, ok := scanExport(exportBytes(t, rs), []byte("clt-ioam"))
	assert.False(t, ok)

	// Forwarded bytes are the received bytes.
	b := scanCases(t)["valid"]
	var raw emptypb.Empty
	require.NoError(t, proto.Unmarshal(b, &raw))
	out, err := proto.Marshal(&raw)
	require.NoError(t, err)
	assert.Equal(t, b, out)
}

// FuzzScanExport: scanExport never panics, and what it lets through
// unparsed is exactly what the decoded path would have forwarded whole.
func FuzzScanExport(f *testing.F) {
	for _, b := range scanCases(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, ok := scanExport(b, []byte("clt-ioam"))
		if !ok {
			return
		}
		dn, dok := decodedVerdict(b, "clt-ioam")
		require.True(t, dok, "scanned ok but the decoded request is refused or not forwardable whole")
		require.Equal(t, dn, n)
	})
}

// Upstream mode answers invalid spans exactly as the embedded store does
// (the decoded path), and stores the valid ones.
func TestUpstreamRawExportInvalidSpans(t *testing.T) {
	front, _ := startUpstreamPair(t, nil)
	embedded := startEnv(t, nil)
	now := time.Now()
	good := spanSpec{trace: 1, span: 1, service: "web", name: "ok", start: now, dur: time.Millisecond}.resourceSpans()
	bad := spanSpec{trace: 1, span: 2, service: "web", name: "bad", start: now, dur: time.Millisecond}.resourceSpans()
	bad.ScopeSpans[0].Spans[0].SpanId = []byte{1, 2}
	req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{good, bad}}
	want, err := embedded.otlp.Export(t.Context(), req)
	require.NoError(t, err)
	got, err := front.otlp.Export(t.Context(), req)
	require.NoError(t, err)
	assert.True(t, proto.Equal(want, got), "want %v, got %v", want, got)
	assert.EqualValues(t, 1, got.GetPartialSuccess().GetRejectedSpans())
	real, _ := splitSynthetic(spansOf(front.getTraces(t, tid(1))))
	require.Len(t, real, 1)
	assert.Equal(t, "ok", real[0].Name)
	assert.EqualValues(t, 1, front.srv.store.Stats().SpansWritten)
}

// rawRoundTrip parses one encoded ResourceSpans and sends all its spans
// through a rawChunker as one chunk: what Jaeger receives for it.
func rawRoundTrip(t testing.TB, b []byte) (*tracepb.TracesData, error) {
	res, _, _, err := parseResourceSpans(b)
	if err != nil {
		return nil, err
	}
	var sent []*tracepb.TracesData
	c := rawChunker{limit: 1 << 20, send: func(m any) error {
		out, err := proto.Marshal(m.(proto.Message))
		require.NoError(t, err)
		td := &tracepb.TracesData{}
		require.NoError(t, proto.Unmarshal(out, td))
		sent = append(sent, td)
		return nil
	}}
	for si, sc := range res.scopes {
		for _, sp := range sc.spans {
			require.NoError(t, c.add(0, si, res, sc, sp))
		}
	}
	require.NoError(t, c.flush())
	if len(sent) == 0 {
		return &tracepb.TracesData{}, nil
	}
	require.Len(t, sent, 1)
	return sent[0], nil
}

func TestRawChunkerRoundTrip(t *testing.T) {
	now := time.Now()
	rs := spanSpec{trace: 1, span: 1, service: "web", name: "a", start: now, dur: time.Millisecond,
		attrs: []*commonpb.KeyValue{strAttr("k", "v")}}.resourceSpans()
	rs.SchemaUrl = "https://schema"
	rs.ScopeSpans = append(rs.ScopeSpans, spanSpec{trace: 1, span: 2, service: "web", name: "b", start: now, dur: time.Millisecond}.resourceSpans().ScopeSpans...)
	rs.ScopeSpans[1].SchemaUrl = "scope-schema"
	rs.ScopeSpans[0].Spans = append(rs.ScopeSpans[0].Spans, spanSpec{trace: 1, span: 3, name: "c", start: now, dur: time.Millisecond}.resourceSpans().ScopeSpans[0].Spans...)
	b, err := proto.Marshal(rs)
	require.NoError(t, err)
	b = protowire.AppendVarint(protowire.AppendTag(b, 99, protowire.VarintType), 7) // an unknown field is kept
	want := &tracepb.ResourceSpans{}
	require.NoError(t, proto.Unmarshal(b, want))

	td, err := rawRoundTrip(t, b)
	require.NoError(t, err)
	require.Len(t, td.ResourceSpans, 1)
	assert.True(t, proto.Equal(want, td.ResourceSpans[0]), "want %v\ngot  %v", want, td.ResourceSpans[0])

	res, id, ok, err := parseResourceSpans(b)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, [16]byte(tid(1)), id)
	assert.Equal(t, "web", resourceService(res.decoded.Resource))
	_, _, _, err = parseResourceSpans(b[:len(b)-4])
	assert.Error(t, err, "truncated")
}

// FuzzRawChunker: whatever the upstream sends that decodes as a
// ResourceSpans is passed through to Jaeger as the same ResourceSpans.
func FuzzRawChunker(f *testing.F) {
	for _, b := range scanCases(f) {
		var req coltracepb.ExportTraceServiceRequest
		if proto.Unmarshal(b, &req) == nil {
			for _, rs := range req.ResourceSpans {
				rb, err := proto.Marshal(rs)
				require.NoError(f, err)
				f.Add(rb)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want := &tracepb.ResourceSpans{}
		if proto.Unmarshal(b, want) != nil {
			return
		}
		td, err := rawRoundTrip(t, b)
		require.NoError(t, err, "decodable input is parsed")
		if countSpans(want) == 0 {
			assert.Empty(t, td.ResourceSpans)
			return
		}
		require.Len(t, td.ResourceSpans, 1)
		got := td.ResourceSpans[0]
		// Scopes without spans are not sent.
		want.ScopeSpans = slices.DeleteFunc(want.ScopeSpans, func(ss *tracepb.ScopeSpans) bool { return len(ss.Spans) == 0 })
		require.True(t, proto.Equal(want, got), "want %v\ngot  %v", want, got)
	})
}

// A span too large for a pass-through chunk takes the decoded path and
// comes back whole; small spans around it pass through.
func TestUpstreamGetTracesLargeSpan(t *testing.T) {
	front, _ := startUpstreamPair(t, nil)
	now := time.Now().Add(-time.Minute)
	big := make([]byte, 2<<20)
	for i := range big {
		big[i] = 'a' + byte(i%26)
	}
	front.export(t,
		spanSpec{trace: 1, span: 1, service: "web", name: "big", start: now, dur: time.Millisecond, attrs: []*commonpb.KeyValue{strAttr("payload", string(big))}},
		spanSpec{trace: 1, span: 2, parent: 1, service: "web", name: "small", start: now, dur: time.Millisecond},
	)
	chunks := front.getTraces(t, tid(1))
	real, _ := splitSynthetic(spansOf(chunks))
	require.Len(t, real, 2)
	for _, sp := range real {
		if sp.Name == "big" {
			assert.Equal(t, string(big), attrMap(sp.Attributes)["payload"].GetStringValue())
		}
	}
	for _, td := range chunks {
		assert.Less(t, proto.Size(td), maxChunkBytes+1)
	}
}
