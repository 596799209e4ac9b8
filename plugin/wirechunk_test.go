package plugin

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/api/storagev2"
	"github.com/cross-layer-telemetry/clt/internal/otlpwire"
	"github.com/cross-layer-telemetry/clt/ioamstore"
)

// An Export retried in another batch shape (10 spans, then the same 10 plus
// 10 more) is stored under new chunk keys; reads used to serve the first 10
// twice, so Jaeger showed duplicate span ids. A span id with other content
// is still served as stored.
func TestRebatchedRetryServesEachSpanOnce(t *testing.T) {
	e := startEnv(t, nil)
	now := time.Now().Truncate(time.Microsecond)
	specs := make([]spanSpec, 21)
	for i := range 20 {
		specs[i] = spanSpec{trace: 1, span: byte(i + 1), service: "svc", name: "op", start: now, dur: time.Millisecond}
	}
	// Same id as span 1, another start time: a different span.
	specs[20] = spanSpec{trace: 1, span: 1, service: "svc", name: "op", start: now.Add(time.Second), dur: time.Millisecond}
	e.export(t, specs[:10]...)
	e.export(t, specs[:20]...)
	e.export(t, specs[20])
	r := rec(3, 0, 1, 2, 3)
	r.TraceId, r.SpanId = tid(1), sid(2)
	_, err := e.collector.Report(t.Context(), &collectorv1.ReportRequest{Records: []*collectorv1.IOAMRecord{r}})
	require.NoError(t, err)

	for name, chunks := range map[string][]*tracepb.TracesData{
		"GetTraces":  e.getTraces(t, tid(1)),
		"FindTraces": e.findTraces(t, &storagev2.TraceQueryParameters{ServiceName: "svc", SearchDepth: 10}),
	} {
		real, synthetic := splitSynthetic(spansOf(chunks))
		assert.Equal(t, 21, len(real), name)
		assert.Equal(t, 2, len(synthetic), name+": one enriched span, two links")
		count := map[string]int{}
		for _, sp := range real {
			count[string(sp.SpanId)+"@"+time.Unix(0, int64(sp.StartTimeUnixNano)).String()]++
			if string(sp.SpanId) == string(sid(2)) {
				assert.NotEmpty(t, sp.Events, name+": hops joined once")
			}
		}
		for k, n := range count {
			assert.Equal(t, 1, n, "%s: %q", name, k)
		}
	}
	assert.InDelta(t, 2*10, testutilCounter(t, e, "clt_storage_read_duplicate_spans_total"), 0)
}

// testutilCounter reads one counter from the admin /metrics page.
func testutilCounter(t *testing.T, e *env, name string) float64 {
	t.Helper()
	mfs, err := e.srv.metrics.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// The chunker copies stored spans without records to the wire as stored
// and decodes only the spans it enriches: a stored span the decoded path
// would re-encode differently (its fields in reverse order) arrives
// byte-identical, its enriched neighbour decoded and joined.
func TestStoredSpansPassThroughUndecoded(t *testing.T) {
	plain := newSpan()
	plain.SpanId = []byte{1, 2, 3, 4, 5, 6, 7, 8}
	plain.Attributes = []*commonpb.KeyValue{strAttr("k", "v")}
	enriched := newSpan()
	fwd, err := proto.Marshal(plain)
	require.NoError(t, err)
	rev := reverseFields(t, fwd)
	require.NotEqual(t, fwd, rev)
	encEnriched, err := proto.Marshal(enriched)
	require.NoError(t, err)

	ss := appendField(nil, otlpwire.FieldScopeSpansSpans, rev)
	ss = appendField(ss, otlpwire.FieldScopeSpansSpans, encEnriched)
	rs := appendField(mustMarshal(t, &tracepb.ResourceSpans{Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{strAttr("service.name", "svc")}}}),
		otlpwire.FieldResourceSpansScopeSpans, ss)
	stored := appendField(nil, otlpwire.FieldTracesDataResourceSpans, rs)

	var sent [][]byte
	r := &reader{cfg: StorageConfig{MaxSpansPerChunk: 1000}, metrics: newMetrics(nil), enrich: EnrichConfig{NetworkSpans: true}}
	c := r.newChunker(storedRecords(t, rec(3, 0, 1, 2, 3)), func(td *tracepb.TracesData) error {
		b, err := proto.Marshal(td)
		sent = append(sent, b)
		return err
	})
	require.NoError(t, c.addStored(stored))
	require.NoError(t, c.finish())
	require.Len(t, sent, 1)
	assert.True(t, bytes.Contains(sent[0], rev), "the plain span as stored")

	var td tracepb.TracesData
	require.NoError(t, proto.Unmarshal(sent[0], &td))
	real, synthetic := splitSynthetic(spansOf([]*tracepb.TracesData{&td}))
	require.Len(t, real, 2)
	assert.True(t, proto.Equal(plain, real[0]))
	assert.NotEmpty(t, real[1].Events, "hops joined")
	assert.Len(t, synthetic, 2)
}

// reverseFields re-encodes a message with its top-level fields reversed
// (valid protobuf, same message, other bytes).
func reverseFields(t *testing.T, b []byte) []byte {
	t.Helper()
	var fields [][]byte
	require.NoError(t, eachField(b, func(_ protowire.Number, field, _ []byte) error {
		fields = append(fields, field)
		return nil
	}))
	var out []byte
	for i := len(fields) - 1; i >= 0; i-- {
		out = append(out, fields[i]...)
	}
	return out
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	require.NoError(t, err)
	return b
}

func storedRecords(t *testing.T, recs ...*collectorv1.IOAMRecord) []ioamstore.Record {
	t.Helper()
	var out []ioamstore.Record
	for _, r := range recs {
		out = append(out, ioamstore.Record{SpanID: [8]byte(r.SpanId), Data: mustMarshal(t, r)})
	}
	return out
}

// The chunk's size accounting is exact: every chunk the chunker sends is
// the size it computed, within both limits, and the spans decode back in
// order under their resources and scopes, for random mixes of groups and
// span sizes.
func TestWireChunkSizesAreExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 200 {
		limit := 1 + rng.IntN(20)
		var want []*tracepb.ResourceSpans
		var stored []byte
		for i := range 1 + rng.IntN(4) {
			rs := &tracepb.ResourceSpans{Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{strAttr("service.name", "svc"+string(rune('a'+i)))}}}
			if rng.IntN(2) == 0 {
				rs.SchemaUrl = "https://schema/" + string(rune('a'+i))
			}
			for j := range 1 + rng.IntN(3) {
				ss := &tracepb.ScopeSpans{Scope: &commonpb.InstrumentationScope{Name: "s" + string(rune('a'+j))}}
				for k := range rng.IntN(30) {
					sp := newSpan()
					sp.SpanId = []byte{byte(round), byte(i), byte(j), byte(k), 0, 0, 0, 1}
					// Values up to 300 KiB: with 3 MiB chunks, some cuts by size.
					sp.Attributes = []*commonpb.KeyValue{strAttr("v", string(make([]byte, rng.IntN(300<<10))))}
					ss.Spans = append(ss.Spans, sp)
				}
				rs.ScopeSpans = append(rs.ScopeSpans, ss)
			}
			want = append(want, rs)
			stored = appendField(stored, otlpwire.FieldTracesDataResourceSpans, mustMarshal(t, rs))
		}
		var got []*tracepb.Span
		var scopes []string
		r := &reader{cfg: StorageConfig{MaxSpansPerChunk: limit}, metrics: newMetrics(nil)}
		c := r.newChunker(nil, func(td *tracepb.TracesData) error {
			size := proto.Size(td)
			var dec tracepb.TracesData
			require.NoError(t, proto.Unmarshal(td.ProtoReflect().GetUnknown(), &dec))
			require.Equal(t, size, proto.Size(&dec), "sizes agree")
			n := 0
			for _, rs := range dec.ResourceSpans {
				for _, ss := range rs.ScopeSpans {
					require.NotEmpty(t, ss.Spans, "no empty scope")
					for _, sp := range ss.Spans {
						got = append(got, sp)
						scopes = append(scopes, serviceName(rs)+"/"+ss.Scope.GetName()+"/"+rs.SchemaUrl)
						n++
					}
				}
			}
			require.LessOrEqual(t, n, limit)
			require.Positive(t, n)
			require.LessOrEqual(t, size, maxChunkBytes)
			return nil
		})
		require.NoError(t, c.addStored(stored))
		require.NoError(t, c.finish())
		var wantSpans []*tracepb.Span
		var wantScopes []string
		for _, rs := range want {
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					wantSpans = append(wantSpans, sp)
					wantScopes = append(wantScopes, serviceName(rs)+"/"+ss.Scope.GetName()+"/"+rs.SchemaUrl)
				}
			}
		}
		require.Len(t, got, len(wantSpans), "round %d", round)
		for i := range got {
			require.True(t, proto.Equal(wantSpans[i], got[i]), "round %d span %d", round, i)
		}
		require.Equal(t, wantScopes, scopes)
	}
}

func serviceName(rs *tracepb.ResourceSpans) string {
	for _, kv := range rs.GetResource().GetAttributes() {
		if kv.GetKey() == "service.name" {
			return kv.GetValue().GetStringValue()
		}
	}
	return ""
}

// spyStore records when the store hands a stored chunk over and when the
// reader sends, to show that reads stream.
type spyStore struct {
	*ioamstore.Store
	events []string
}

func (s *spyStore) GetTraceChunks(ctx context.Context, id [16]byte, buf ioamstore.Alloc, fn func([]byte) error) error {
	return s.Store.GetTraceChunks(ctx, id, buf, func(b []byte) error {
		s.events = append(s.events, "read")
		return fn(b)
	})
}

func (s *spyStore) FindTraceChunks(ctx context.Context, q ioamstore.Query, fn func(ioamstore.TraceMatch) error) error {
	return s.Store.FindTraceChunks(ctx, q, func(m ioamstore.TraceMatch) error {
		chunks := m.Chunks
		m.Chunks = func(buf ioamstore.Alloc, f func([]byte) error) error {
			return chunks(buf, func(b []byte) error {
				s.events = append(s.events, "read")
				return f(b)
			})
		}
		return fn(m)
	})
}

// GetTraces and FindTraces send a large trace while reading it, one stored
// chunk at a time (never the whole trace in memory): the first message goes
// out before the last stored chunk is read. FindTraces used to decode the
// whole trace first (a 1M-span trace took 1.07 GB).
func TestReadsStreamStoredChunks(t *testing.T) {
	e := startEnv(t, func(c *Config) { c.Storage.MaxSpansPerChunk = 100 })
	now := time.Now().Truncate(time.Microsecond)
	rs := spanSpec{trace: 1, span: 1, service: "svc", name: "op", start: now, dur: time.Millisecond}.resourceSpans()
	tmpl := rs.ScopeSpans[0].Spans[0]
	rs.ScopeSpans[0].Spans = nil
	for i := range 2000 { // 4 stored chunks of at most 512 spans
		sp := proto.Clone(tmpl).(*tracepb.Span)
		sp.SpanId = []byte{1, 0, 0, 0, 0, 0, byte(i >> 8), byte(i)}
		rs.ScopeSpans[0].Spans = append(rs.ScopeSpans[0].Spans, sp)
	}
	_, err := e.otlp.Export(t.Context(), &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{rs}})
	require.NoError(t, err)
	st, ok := e.srv.store.(*ioamstore.Store)
	require.True(t, ok)
	spy := &spyStore{Store: st}
	r := *e.srv.rd
	r.store = spy

	run := map[string]func(send func(*tracepb.TracesData) error) error{
		"GetTraces": func(send func(*tracepb.TracesData) error) error {
			return r.GetTraces(&storagev2.GetTracesRequest{Query: []*storagev2.GetTraceParams{{TraceId: tid(1)}}}, sendStream{ctx: t.Context(), send: send})
		},
		"FindTraces": func(send func(*tracepb.TracesData) error) error {
			return r.FindTraces(&storagev2.FindTracesRequest{Query: &storagev2.TraceQueryParameters{ServiceName: "svc", SearchDepth: 1}}, sendStream{ctx: t.Context(), send: send})
		},
	}
	for name, call := range run {
		spy.events = nil
		spans := 0
		require.NoError(t, call(func(td *tracepb.TracesData) error {
			spy.events = append(spy.events, "send")
			dec, err := decodeTracesData(td)
			spans += len(spansOf([]*tracepb.TracesData{dec}))
			return err
		}), name)
		assert.Equal(t, 2000, spans, name)
		reads, firstSend, lastRead := 0, -1, -1
		for i, ev := range spy.events {
			switch {
			case ev == "read":
				reads, lastRead = reads+1, i
			case firstSend < 0:
				firstSend = i
			}
		}
		assert.Equal(t, 4, reads, name)
		assert.Less(t, firstSend, lastRead, "%s: sent while reading: %v", name, spy.events)
	}
}

func appendField(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// sendStream is a server stream that hands each message to send.
type sendStream struct {
	grpc.ServerStream
	ctx  context.Context
	send func(*tracepb.TracesData) error
}

func (s sendStream) Context() context.Context          { return s.ctx }
func (s sendStream) Send(td *tracepb.TracesData) error { return s.send(td) }

// The chunker enriches a stored span by appending the encoded additions to
// its stored bytes; the result is the span Enrich makes of the decoded one,
// with or without warnings, and with the span's own @jaeger@warnings
// extended, not doubled.
func TestWireEnrichmentEqualsDecodedEnrichment(t *testing.T) {
	ownWarning := &commonpb.KeyValue{Key: AttrJaegerWarnings, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{
		ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{{Value: &commonpb.AnyValue_StringValue{StringValue: "app warning"}}}}}}}
	for name, tc := range map[string]struct {
		attrs []*commonpb.KeyValue
		recs  []*collectorv1.IOAMRecord
	}{
		"clean":                    {[]*commonpb.KeyValue{strAttr("k", "v")}, []*collectorv1.IOAMRecord{rec(3, 0, 1, 2, 3)}},
		"path changed":             {nil, []*collectorv1.IOAMRecord{rec(3, 0, 1, 2, 3), rec(3, 5, 1, 4, 3)}},
		"own warnings, none added": {[]*commonpb.KeyValue{ownWarning}, []*collectorv1.IOAMRecord{rec(3, 0, 1, 2, 3)}},
		"own warnings, one added":  {[]*commonpb.KeyValue{strAttr("k", "v"), ownWarning}, []*collectorv1.IOAMRecord{rec(3, 0, 1, 2, 3), rec(3, 5, 1, 4, 3)}},
		"records of another span": {nil, []*collectorv1.IOAMRecord{func() *collectorv1.IOAMRecord {
			r := rec(3, 0, 1, 2)
			r.SpanId = []byte{9, 9, 9, 9, 9, 9, 9, 9}
			return r
		}()}},
	} {
		t.Run(name, func(t *testing.T) {
			stored := newSpan()
			stored.Attributes = tc.attrs
			stored.Events = []*tracepb.Span_Event{{Name: "app event"}}
			want := proto.Clone(stored).(*tracepb.Span)
			Enrich(want, tc.recs, nil)

			c := (&reader{cfg: StorageConfig{MaxSpansPerChunk: 10}, metrics: newMetrics(nil)}).newChunker(nil, nil)
			c.bySpan = map[[8]byte][]*collectorv1.IOAMRecord{[8]byte(stored.SpanId): tc.recs}
			out, err := c.prepare(mustMarshal(t, stored), 0)
			require.NoError(t, err)
			var got tracepb.Span
			require.NoError(t, proto.Unmarshal(out, &got))
			assert.True(t, proto.Equal(want, &got), "got %v\nwant %v", &got, want)
		})
	}
}
