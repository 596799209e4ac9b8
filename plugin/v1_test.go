package plugin

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/api/storagev1"
	"github.com/cross-layer-telemetry/clt/api/storagev2"
)

type v1Env struct {
	*env
	writer  storagev1.SpanWriterPluginClient
	stream  storagev1.StreamingSpanWriterPluginClient
	reader  storagev1.SpanReaderPluginClient
	deps    storagev1.DependenciesReaderPluginClient
	capable storagev1.PluginCapabilitiesClient
}

func startV1Env(t testing.TB) *v1Env {
	e := startEnv(t, nil)
	c := e.storageConn
	return &v1Env{env: e, writer: storagev1.NewSpanWriterPluginClient(c), stream: storagev1.NewStreamingSpanWriterPluginClient(c),
		reader: storagev1.NewSpanReaderPluginClient(c), deps: storagev1.NewDependenciesReaderPluginClient(c),
		capable: storagev1.NewPluginCapabilitiesClient(c)}
}

func recvV1(t *testing.T, recv func() (*storagev1.SpansResponseChunk, error)) (spans []*storagev1.Span, chunks int, err error) {
	t.Helper()
	for {
		c, err := recv()
		if err == io.EOF {
			return spans, chunks, nil
		}
		if err != nil {
			return spans, chunks, err
		}
		require.NotEmpty(t, c.Spans, "empty chunk")
		chunks++
		spans = append(spans, c.Spans...)
	}
}

func (e *v1Env) getTrace(t *testing.T, id []byte) ([]*storagev1.Span, error) {
	st, err := e.reader.GetTrace(t.Context(), &storagev1.GetTraceRequest{TraceId: id})
	require.NoError(t, err)
	spans, _, err := recvV1(t, st.Recv)
	return spans, err
}

func (e *v1Env) findTraces(t *testing.T, q *storagev1.TraceQueryParameters) []*storagev1.Span {
	st, err := e.reader.FindTraces(t.Context(), &storagev1.FindTracesRequest{Query: q})
	require.NoError(t, err)
	spans, _, err := recvV1(t, st.Recv)
	require.NoError(t, err)
	return spans
}

func TestV1WriteReadRoundTrip(t *testing.T) {
	e := startV1Env(t)
	caps, err := e.capable.Capabilities(t.Context(), &storagev1.CapabilitiesRequest{})
	require.NoError(t, err)
	assert.False(t, caps.StreamingSpanWriter, "off by default")

	want := map[byte]*storagev1.Span{}
	var n byte
	stream, err := e.stream.WriteSpanStream(t.Context())
	require.NoError(t, err)
	for name, s := range v1RoundTripCases() {
		if name == "epoch" { // outside the store's retention
			continue
		}
		n++
		s.SpanId = sid(0x10 + n)
		s.StartTime = timestamppb.New(time.Now().Add(-time.Duration(n) * time.Minute))
		want[0x10+n] = s
		if n%2 == 0 {
			_, err := e.writer.WriteSpan(t.Context(), &storagev1.WriteSpanRequest{Span: s})
			require.NoError(t, err, name)
		} else {
			require.NoError(t, stream.Send(&storagev1.WriteSpanRequest{Span: s}), name)
		}
	}
	_, err = stream.CloseAndRecv()
	require.NoError(t, err)
	_, err = e.writer.Close(t.Context(), &storagev1.CloseWriterRequest{})
	require.NoError(t, err)

	got, err := e.getTrace(t, tid(1))
	require.NoError(t, err)
	require.Len(t, got, len(want))
	for _, s := range got {
		w := want[s.SpanId[7]]
		require.NotNil(t, w, "span %x", s.SpanId)
		if !bytes.Equal(detMarshal(canonV1(w)), detMarshal(canonV1(s))) {
			t.Errorf("span %x differs:\nwrote: %v\n read: %v", s.SpanId, canonV1(w), canonV1(s))
		}
	}
	// v1 writes read through v2 as OTLP.
	assert.Len(t, spansOf(e.env.getTraces(t, tid(1))), len(want))
}

func TestV1StreamingWriterAdvertised(t *testing.T) {
	e := startEnv(t, func(c *Config) { c.Storage.V1StreamingWriter = true })
	caps, err := storagev1.NewPluginCapabilitiesClient(e.storageConn).Capabilities(t.Context(), &storagev1.CapabilitiesRequest{})
	require.NoError(t, err)
	assert.True(t, caps.StreamingSpanWriter)
}

func TestV1WriteRejectsInvalidSpans(t *testing.T) {
	e := startV1Env(t)
	for name, mut := range map[string]func(*storagev1.Span){
		"short trace id":    func(s *storagev1.Span) { s.TraceId = []byte{1, 2, 3} },
		"zero span id":      func(s *storagev1.Span) { s.SpanId = make([]byte, 8) },
		"negative duration": func(s *storagev1.Span) { s.Duration = durationpb.New(-time.Second) },
	} {
		_, err := e.writer.WriteSpan(t.Context(), &storagev1.WriteSpanRequest{Span: v1Span(mut)})
		assert.Equal(t, codes.InvalidArgument, status.Code(err), name)
	}
	_, err := e.writer.WriteSpan(t.Context(), &storagev1.WriteSpanRequest{})
	assert.Equal(t, codes.InvalidArgument, status.Code(err))

	// A stream skips the bad span, stores the others and reports the refusal.
	stream, err := e.stream.WriteSpanStream(t.Context())
	require.NoError(t, err)
	for i, mut := range []func(*storagev1.Span){nil, func(s *storagev1.Span) { s.TraceId = nil },
		func(s *storagev1.Span) { s.Duration = durationpb.New(-time.Second) }, nil} {
		s := v1Span(mut)
		s.SpanId, s.StartTime = sid(byte(i+1)), timestamppb.Now()
		require.NoError(t, stream.Send(&storagev1.WriteSpanRequest{Span: s}))
	}
	_, err = stream.CloseAndRecv()
	assert.Equal(t, codes.InvalidArgument, status.Code(err))
	assert.Contains(t, status.Convert(err).Message(), "2 span(s) rejected")
	spans, err := e.getTrace(t, tid(1))
	require.NoError(t, err)
	assert.Len(t, spans, 2)
	assert.Contains(t, e.scrape(t), `clt_storage_spans_rejected_total{reason="v1_span"} 3`)
}

func TestV1GetTraceNotFound(t *testing.T) {
	e := startV1Env(t)
	_, err := e.getTrace(t, tid(9))
	require.Equal(t, codes.NotFound, status.Code(err))
	assert.Equal(t, errTraceNotFound, status.Convert(err).Message(), "Jaeger v1 matches the message")
}

// Chunks stay below the 4 MiB a Jaeger v1 client accepts, however large the
// trace (the test client has gRPC's default limit too).
func TestV1GetTraceChunksBelow4MiB(t *testing.T) {
	e := startV1Env(t)
	stream, err := e.stream.WriteSpanStream(t.Context())
	require.NoError(t, err)
	big := strings.Repeat("x", 8<<10)
	const spans = 1200 // ~10 MiB
	now := time.Now().Add(-time.Minute)
	for i := range spans {
		s := v1Span(func(s *storagev1.Span) {
			s.SpanId = []byte{0xcd, 0, 0, 0, 0, 0, byte(i >> 8), byte(i) + 1}
			s.StartTime = timestamppb.New(now.Add(time.Duration(i) * time.Microsecond))
			s.Tags = []*storagev1.KeyValue{v1KV("payload", big)}
		})
		require.NoError(t, stream.Send(&storagev1.WriteSpanRequest{Span: s}))
	}
	_, err = stream.CloseAndRecv()
	require.NoError(t, err)

	st, err := e.reader.GetTrace(t.Context(), &storagev1.GetTraceRequest{TraceId: tid(1)})
	require.NoError(t, err)
	got, chunks, err := recvV1(t, st.Recv)
	require.NoError(t, err)
	assert.Len(t, got, spans)
	assert.GreaterOrEqual(t, chunks, 3)
}

// v1 reads show what v2 reads show: the same enriched spans (IOAM tags, hop
// logs, warnings), searchable by ioam.node_id.
func TestV1ReadsShowEnrichment(t *testing.T) {
	e := startV1Env(t)
	now := time.Now().Add(-time.Minute)
	e.export(t, spanSpec{trace: 1, span: 1, service: "svc", name: "op", kind: tracepb.Span_SPAN_KIND_SERVER, start: now, dur: time.Millisecond},
		spanSpec{trace: 1, span: 2, service: "db", name: "query", kind: tracepb.Span_SPAN_KIND_CLIENT, start: now, dur: time.Millisecond, parent: 1})
	recs := []*collectorv1.IOAMRecord{rec(3, 0, 1, 2, 3), rec(3, 5, 1, 4, 3)}
	for _, r := range recs {
		r.TraceId, r.SpanId = tid(1), sid(1)
	}
	_, err := e.collector.Report(t.Context(), &collectorv1.ReportRequest{Records: recs})
	require.NoError(t, err)

	got, err := e.getTrace(t, tid(1))
	require.NoError(t, err)
	want := otlpToV1(nil, &tracepb.TracesData{ResourceSpans: func() (rs []*tracepb.ResourceSpans) {
		for _, td := range e.env.getTraces(t, tid(1)) {
			rs = append(rs, td.ResourceSpans...)
		}
		return rs
	}()})
	require.Greater(t, len(got), 2, "the spans and the enrichment's network spans")
	require.Len(t, got, len(want))
	for i := range want {
		assert.True(t, proto.Equal(want[i], got[i]), "span %d: v1 %v\nv2 %v", i, got[i], want[i])
	}
	var server *storagev1.Span
	for _, s := range got {
		if s.SpanId[7] == 1 {
			server = s
		}
	}
	require.NotNil(t, server)
	tags := map[string]*storagev1.KeyValue{}
	for _, kv := range server.Tags {
		tags[kv.Key] = kv
	}
	assert.Equal(t, "1 > 2 > 3", tags[AttrPath].GetVStr())
	assert.Equal(t, storagev1.ValueType_INT64, tags[AttrHopCount].GetVType())
	assert.Equal(t, "server", tags[tagSpanKind].GetVStr())
	hops := 0
	for _, l := range server.Logs {
		if f := l.Fields[0]; f.Key == logEventField && IsHopEvent(f.VStr) {
			hops++
		}
	}
	assert.Equal(t, 3, hops, "one hop log per hop of 1 > 2 > 3")
	assert.Contains(t, server.Warnings, "ioam: path changed during the span: 1 > 2 > 3 then 1 > 4 > 3")
	assert.Equal(t, "svc", server.Process.ServiceName)

	byNode := func(node string) int {
		traces := map[string]bool{}
		for _, s := range e.findTraces(t, &storagev1.TraceQueryParameters{ServiceName: "svc", NumTraces: 10,
			Tags: map[string]string{AttrNodeID: node}, StartTimeMin: timestamppb.New(time.Time{}), DurationMin: durationpb.New(0)}) {
			traces[string(s.TraceId)] = true
		}
		return len(traces)
	}
	assert.Equal(t, 1, byNode("2"))
	assert.Equal(t, 1, byNode("4"))
	assert.Equal(t, 0, byNode("42"))
	ids, err := e.reader.FindTraceIDs(t.Context(), &storagev1.FindTraceIDsRequest{Query: &storagev1.TraceQueryParameters{
		ServiceName: "svc", Tags: map[string]string{AttrNodeID: "2"}, StartTimeMax: timestamppb.Now()}})
	require.NoError(t, err)
	assert.Equal(t, [][]byte{tid(1)}, ids.TraceIds)

	svcs, err := e.reader.GetServices(t.Context(), &storagev1.GetServicesRequest{})
	require.NoError(t, err)
	assert.Subset(t, svcs.Services, []string{"svc", "db"})
	ops, err := e.reader.GetOperations(t.Context(), &storagev1.GetOperationsRequest{Service: "db", SpanKind: "client"})
	require.NoError(t, err)
	require.Len(t, ops.Operations, 1)
	assert.Equal(t, "query", ops.Operations[0].Name)
	assert.Equal(t, []string{"query"}, ops.OperationNames)

	// The dependencies are v2's (routers as services included).
	from, to := timestamppb.New(now.Add(-time.Hour)), timestamppb.Now()
	deps, err := e.deps.GetDependencies(t.Context(), &storagev1.GetDependenciesRequest{StartTime: from, EndTime: to})
	require.NoError(t, err)
	v2deps, err := e.env.deps.GetDependencies(t.Context(), &storagev2.GetDependenciesRequest{StartTime: from, EndTime: to})
	require.NoError(t, err)
	require.NotEmpty(t, v2deps.Dependencies)
	require.Len(t, deps.Dependencies, len(v2deps.Dependencies))
	for i, d := range v2deps.Dependencies {
		assert.Equal(t, []any{d.Parent, d.Child, d.CallCount, d.Source},
			[]any{deps.Dependencies[i].Parent, deps.Dependencies[i].Child, deps.Dependencies[i].CallCount, deps.Dependencies[i].Source})
	}
}

func TestV1QueryBounds(t *testing.T) {
	q, err := v1Query(&storagev1.TraceQueryParameters{StartTimeMin: timestamppb.New(time.Time{}), DurationMax: durationpb.New(0),
		StartTimeMax: timestamppb.New(time.Unix(100, 0)), DurationMin: durationpb.New(time.Second), NumTraces: 5})
	require.NoError(t, err)
	assert.Nil(t, q.StartTimeMin)
	assert.Nil(t, q.DurationMax)
	assert.Equal(t, int64(100), q.StartTimeMax.AsTime().Unix())
	assert.Equal(t, time.Second, q.DurationMin.AsDuration())
	assert.Equal(t, int32(5), q.SearchDepth)
	_, err = v1Query(nil)
	assert.Equal(t, codes.InvalidArgument, status.Code(err))
}

// Jaeger keeps its write streams open: a span must be stored while the
// stream stays open, not when it closes.
func TestV1StreamWritesWhileOpen(t *testing.T) {
	e := startV1Env(t)
	stream, err := e.stream.WriteSpanStream(t.Context())
	require.NoError(t, err)
	require.NoError(t, stream.Send(&storagev1.WriteSpanRequest{Span: v1Span(func(s *storagev1.Span) { s.StartTime = timestamppb.Now() })}))
	require.Eventually(t, func() bool {
		spans, err := e.getTrace(t, tid(1))
		return err == nil && len(spans) == 1
	}, 5*time.Second, 20*time.Millisecond)
	_, err = stream.CloseAndRecv()
	require.NoError(t, err)
}

// The archive keeps the span as Jaeger v1 read it (enriched), in its own
// store: not in the main store, not enriched twice.
func TestV1Archive(t *testing.T) {
	e := startEnv(t, func(c *Config) { c.Archive.Enabled = true })
	c := e.storageConn
	caps, err := storagev1.NewPluginCapabilitiesClient(c).Capabilities(t.Context(), &storagev1.CapabilitiesRequest{})
	require.NoError(t, err)
	//lint:ignore SA1019 what the v1.57 host reads
	assert.True(t, caps.ArchiveSpanReader && caps.ArchiveSpanWriter)

	now := time.Now().Add(-time.Minute)
	e.export(t, spanSpec{trace: 1, span: 1, service: "svc", name: "op", start: now, dur: time.Millisecond})
	r := rec(3, 0, 1, 2, 3)
	r.TraceId, r.SpanId = tid(1), sid(1)
	_, err = e.collector.Report(t.Context(), &collectorv1.ReportRequest{Records: []*collectorv1.IOAMRecord{r}})
	require.NoError(t, err)
	v := &v1Env{env: e, reader: storagev1.NewSpanReaderPluginClient(c)}
	shown, err := v.getTrace(t, tid(1))
	require.NoError(t, err)
	require.NotEmpty(t, shown) // the span and the enrichment's network spans

	aw := storagev1.NewArchiveSpanWriterPluginClient(c)
	for _, sp := range shown { // as Jaeger v1's archive handler does
		_, err = aw.WriteArchiveSpan(t.Context(), &storagev1.WriteSpanRequest{Span: sp})
		require.NoError(t, err)
	}
	_, err = aw.WriteArchiveSpan(t.Context(), &storagev1.WriteSpanRequest{Span: v1Span(func(s *storagev1.Span) { s.TraceId = nil })})
	assert.Equal(t, codes.InvalidArgument, status.Code(err))

	st, err := storagev1.NewArchiveSpanReaderPluginClient(c).GetArchiveTrace(t.Context(), &storagev1.GetTraceRequest{TraceId: tid(1)})
	require.NoError(t, err)
	got, _, err := recvV1(t, st.Recv)
	require.NoError(t, err)
	require.Len(t, got, len(shown))
	byID := map[string]*storagev1.Span{}
	for _, sp := range shown {
		byID[string(sp.SpanId)] = sp
	}
	for _, sp := range got {
		w := byID[string(sp.SpanId)]
		require.NotNil(t, w, "span %x", sp.SpanId)
		assert.True(t, bytes.Equal(detMarshal(canonV1(w)), detMarshal(canonV1(sp))), "archived %v\nread %v", w, sp)
	}

	st, err = storagev1.NewArchiveSpanReaderPluginClient(c).GetArchiveTrace(t.Context(), &storagev1.GetTraceRequest{TraceId: tid(2)})
	require.NoError(t, err)
	_, _, err = recvV1(t, st.Recv)
	assert.Equal(t, codes.NotFound, status.Code(err))

	// Without archive.enabled nothing is advertised or served.
	e2 := startEnv(t, nil)
	caps, err = storagev1.NewPluginCapabilitiesClient(e2.storageConn).Capabilities(t.Context(), &storagev1.CapabilitiesRequest{})
	require.NoError(t, err)
	//lint:ignore SA1019 what the v1.57 host reads
	assert.False(t, caps.ArchiveSpanReader)
	_, err = storagev1.NewArchiveSpanWriterPluginClient(e2.storageConn).WriteArchiveSpan(t.Context(), &storagev1.WriteSpanRequest{Span: shown[0]})
	assert.Equal(t, codes.Unimplemented, status.Code(err))
}

// TestV1ArchivePort: archive.listen serves the archive as a storage of its
// own (Jaeger v1.58+ --grpc-storage-archive.server): the plain storage_v1
// writer and reader there write and read the archive, not the main store.
func TestV1ArchivePort(t *testing.T) {
	e := startEnv(t, func(c *Config) { c.Archive.Enabled, c.Archive.Listen = true, "127.0.0.1:0" })
	require.NotNil(t, e.srv.ArchiveAddr())
	ac, err := grpc.NewClient(e.srv.ArchiveAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = ac.Close() })
	caps, err := storagev1.NewPluginCapabilitiesClient(ac).Capabilities(t.Context(), &storagev1.CapabilitiesRequest{})
	require.NoError(t, err)
	//lint:ignore SA1019 the archive port has no archive of its own
	assert.False(t, caps.StreamingSpanWriter || caps.ArchiveSpanReader || caps.ArchiveSpanWriter)

	archive := &v1Env{writer: storagev1.NewSpanWriterPluginClient(ac), reader: storagev1.NewSpanReaderPluginClient(ac)}
	primary := &v1Env{reader: storagev1.NewSpanReaderPluginClient(e.storageConn)}
	want := v1Span(nil)
	_, err = archive.writer.WriteSpan(t.Context(), &storagev1.WriteSpanRequest{Span: want})
	require.NoError(t, err)
	got, err := archive.getTrace(t, tid(1))
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.True(t, bytes.Equal(detMarshal(canonV1(want)), detMarshal(canonV1(got[0]))), "archived %v\nread %v", want, got[0])
	_, err = primary.getTrace(t, tid(1))
	assert.Equal(t, codes.NotFound, status.Code(err), "not in the main store")
	// The archive port is the same archive the go-plugin services use.
	st, err := storagev1.NewArchiveSpanReaderPluginClient(e.storageConn).GetArchiveTrace(t.Context(), &storagev1.GetTraceRequest{TraceId: tid(1)})
	require.NoError(t, err)
	got, _, err = recvV1(t, st.Recv)
	require.NoError(t, err)
	assert.Len(t, got, 1)

	// Without archive.listen there is no second port.
	assert.Nil(t, startEnv(t, func(c *Config) { c.Archive.Enabled = true }).srv.ArchiveAddr())
}

func TestArchiveListenNeedsEnabled(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Archive.Listen = "127.0.0.1:17272"
	require.ErrorContains(t, cfg.Validate(), "archive.listen: needs archive.enabled: true")
	cfg.Archive.Enabled, cfg.Archive.Listen = true, "17272"
	require.ErrorContains(t, cfg.Validate(), "archive.listen:")
	cfg.Archive.Listen = "127.0.0.1:17272"
	require.NoError(t, cfg.Validate())
}
