package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/api/storagev2"
	"github.com/cross-layer-telemetry/clt/ioamstore"
)

func TestMain(m *testing.M) {
	if os.Getenv(benchServerEnv) != "" {
		os.Exit(serveForBench())
	}
	goleak.VerifyTestMain(m)
}

// env is one in-process clt-storage on loopback ports with a real badger in
// a temporary directory, plus clients for its APIs.
type env struct {
	srv         *Server
	reader      storagev2.TraceReaderClient
	deps        storagev2.DependencyReaderClient
	otlp        coltracepb.TraceServiceClient
	collector   collectorv1.CollectorServiceClient
	collConn    *grpc.ClientConn
	storageConn *grpc.ClientConn
	admin       string
	serverPID   int // the server's process when it is not this one (startEnvProcess)
}

func testConfig(t testing.TB) Config { return testConfigIn(t.TempDir()) }

// testConfigIn is the test servers' configuration with its store in dir:
// loopback ports chosen by the kernel, small caches.
func testConfigIn(dir string) Config {
	cfg := DefaultConfig()
	cfg.Storage.Listen = "127.0.0.1:0"
	cfg.Collector.Listen = "127.0.0.1:0"
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Store.Dir = dir
	cfg.Store.GCInterval = 0
	cfg.Store.BlockCacheMB = 8
	cfg.Store.MemTableMB = 8
	cfg.ShutdownTimeout = 5 * time.Second
	return cfg
}

func startEnv(t testing.TB, mutate func(*Config)) *env {
	t.Helper()
	return startEnvWith(t, mutate, Settings{})
}

func startEnvWith(t testing.TB, mutate func(*Config), set Settings) *env {
	t.Helper()
	cfg := testConfig(t)
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := New(cfg, set)
	require.NoError(t, err)
	require.NoError(t, srv.Start(t.Context()))
	t.Cleanup(func() { require.NoError(t, srv.Close()) })
	e := envOf(dialTest(t, srv.StorageAddr().String()), dialTest(t, srv.CollectorAddr().String()))
	e.srv, e.admin = srv, "http://"+srv.AdminAddr().String()
	return e
}

// dialTest is a plaintext client connection to addr, closed when the test
// ends.
func dialTest(t testing.TB, addr string) *grpc.ClientConn {
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// envOf is the clients of a server on connections sc (storage port) and cc
// (collector port).
func envOf(sc, cc *grpc.ClientConn) *env {
	return &env{
		reader:      storagev2.NewTraceReaderClient(sc),
		deps:        storagev2.NewDependencyReaderClient(sc),
		otlp:        coltracepb.NewTraceServiceClient(sc),
		collector:   collectorv1.NewCollectorServiceClient(cc),
		collConn:    cc,
		storageConn: sc,
	}
}

// spanSpec describes a test span.
type spanSpec struct {
	trace, span byte
	service     string
	name        string
	kind        tracepb.Span_SpanKind
	start       time.Time
	dur         time.Duration
	attrs       []*commonpb.KeyValue
	status      tracepb.Status_StatusCode
	parent      byte
}

func tid(b byte) []byte { return []byte{0xab, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b} }
func sid(b byte) []byte { return []byte{0xcd, 0, 0, 0, 0, 0, 0, b} }

func (s spanSpec) resourceSpans() *tracepb.ResourceSpans {
	sp := &tracepb.Span{
		TraceId: tid(s.trace), SpanId: sid(s.span), Name: s.name, Kind: s.kind,
		StartTimeUnixNano: uint64(s.start.UnixNano()), EndTimeUnixNano: uint64(s.start.Add(s.dur).UnixNano()),
		Attributes: s.attrs, Status: &tracepb.Status{Code: s.status},
	}
	if s.parent != 0 {
		sp.ParentSpanId = sid(s.parent)
	}
	return &tracepb.ResourceSpans{
		Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{strAttr("service.name", s.service), strAttr("host.name", "node-a")}},
		ScopeSpans: []*tracepb.ScopeSpans{{Scope: &commonpb.InstrumentationScope{Name: "test", Version: "1"}, Spans: []*tracepb.Span{sp}}},
	}
}

func (e *env) export(t testing.TB, specs ...spanSpec) {
	t.Helper()
	req := &coltracepb.ExportTraceServiceRequest{}
	for _, s := range specs {
		req.ResourceSpans = append(req.ResourceSpans, s.resourceSpans())
	}
	_, err := e.otlp.Export(t.Context(), req)
	require.NoError(t, err)
}

// collect drains a TracesData stream, checking the chunk contract.
func collect(t testing.TB, recv func() (*tracepb.TracesData, error), maxSpans int) []*tracepb.TracesData {
	t.Helper()
	var out []*tracepb.TracesData
	for range 100000 {
		td, err := recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		n := 0
		var trace []byte
		for _, rs := range td.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					n++
					if trace == nil {
						trace = sp.TraceId
					}
					require.Equal(t, trace, sp.TraceId, "a chunk mixes traces")
				}
			}
		}
		require.Positive(t, n, "empty chunk")
		require.LessOrEqual(t, n, maxSpans, "chunk too large")
		out = append(out, td)
	}
	t.Fatal("stream did not end")
	return nil
}

// splitSynthetic separates the stored spans from the network spans.
func splitSynthetic(spans []*tracepb.Span) (real, synthetic []*tracepb.Span) {
	for _, sp := range spans {
		if attrMap(sp.Attributes)[AttrSynthetic].GetBoolValue() {
			synthetic = append(synthetic, sp)
		} else {
			real = append(real, sp)
		}
	}
	return real, synthetic
}

func spansOf(chunks []*tracepb.TracesData) []*tracepb.Span {
	var out []*tracepb.Span
	for _, td := range chunks {
		for _, rs := range td.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				out = append(out, ss.Spans...)
			}
		}
	}
	return out
}

// traceIDsOf returns each chunk's trace ID in stream order, collapsing runs.
func traceIDsOf(chunks []*tracepb.TracesData) [][]byte {
	var out [][]byte
	for _, sp := range spansOf(chunks) {
		if len(out) == 0 || !proto.Equal(&tracepb.Span{TraceId: out[len(out)-1]}, &tracepb.Span{TraceId: sp.TraceId}) {
			out = append(out, sp.TraceId)
		}
	}
	return out
}

func (e *env) getTraces(t testing.TB, ids ...[]byte) []*tracepb.TracesData {
	t.Helper()
	req := &storagev2.GetTracesRequest{}
	for _, id := range ids {
		req.Query = append(req.Query, &storagev2.GetTraceParams{TraceId: id})
	}
	st, err := e.reader.GetTraces(t.Context(), req)
	require.NoError(t, err)
	return collect(t, st.Recv, 1000)
}

func (e *env) findTraces(t testing.TB, q *storagev2.TraceQueryParameters) []*tracepb.TracesData {
	t.Helper()
	st, err := e.reader.FindTraces(t.Context(), &storagev2.FindTracesRequest{Query: q})
	require.NoError(t, err)
	return collect(t, st.Recv, 1000)
}

func strKV(k, v string) *storagev2.KeyValue {
	return &storagev2.KeyValue{Key: k, Value: &storagev2.AnyValue{Value: &storagev2.AnyValue_StringValue{StringValue: v}}}
}

func TestGetTracesRoundTripAndUnknown(t *testing.T) {
	e := startEnv(t, nil)
	now := time.Now().Truncate(time.Microsecond)
	s := spanSpec{trace: 1, span: 1, service: "svc", name: "op", kind: tracepb.Span_SPAN_KIND_SERVER, start: now, dur: time.Millisecond,
		attrs: []*commonpb.KeyValue{intAttr("http.status_code", 200)}}
	e.export(t, s)
	chunks := e.getTraces(t, tid(1))
	require.Len(t, chunks, 1)
	require.True(t, proto.Equal(s.resourceSpans(), chunks[0].ResourceSpans[0]), "lossless round trip")

	assert.Empty(t, e.getTraces(t, tid(99)), "unknown trace is an empty stream")
	assert.Len(t, e.getTraces(t, tid(99), tid(1), tid(1)), 1, "unknown skipped, duplicate IDs served once")

	_, err := e.reader.GetTraces(t.Context(), &storagev2.GetTracesRequest{Query: []*storagev2.GetTraceParams{{TraceId: []byte{1, 2}}}})
	require.NoError(t, err)
	st, _ := e.reader.GetTraces(t.Context(), &storagev2.GetTracesRequest{Query: []*storagev2.GetTraceParams{{TraceId: []byte{1, 2}}}})
	_, err = st.Recv()
	assert.Equal(t, codes.InvalidArgument, status.Code(err))
	assert.Contains(t, status.Convert(err).Message(), "query[0].trace_id: length 2, want 16")
}

func TestGetTracesChunking(t *testing.T) {
	e := startEnv(t, nil)
	now := time.Now()
	// One large trace in one Export and a small one; 2500 spans must come back
	// in at most 1000-span chunks that never mix the two traces.
	big := &coltracepb.ExportTraceServiceRequest{}
	rs := spanSpec{trace: 1, span: 1, service: "svc", name: "op", start: now, dur: time.Millisecond}.resourceSpans()
	tmpl := rs.ScopeSpans[0].Spans[0]
	rs.ScopeSpans[0].Spans = nil
	for i := range 2500 {
		sp := proto.Clone(tmpl).(*tracepb.Span)
		sp.SpanId = []byte{1, 0, 0, 0, 0, 0, byte(i >> 8), byte(i)} // never all zero (invalid)
		rs.ScopeSpans[0].Spans = append(rs.ScopeSpans[0].Spans, sp)
	}
	big.ResourceSpans = append(big.ResourceSpans, rs)
	_, err := e.otlp.Export(t.Context(), big)
	require.NoError(t, err)
	e.export(t, spanSpec{trace: 2, span: 1, service: "svc", name: "op", start: now, dur: time.Millisecond})

	chunks := e.getTraces(t, tid(1), tid(2))
	assert.Len(t, spansOf(chunks), 2501)
	assert.GreaterOrEqual(t, len(chunks), 4)
	assert.Equal(t, [][]byte{tid(1), tid(2)}, traceIDsOf(chunks), "traces are consecutive, not interleaved")
}

func TestDuplicateSpanIDsKept(t *testing.T) {
	e := startEnv(t, nil)
	now := time.Now()
	e.export(t, spanSpec{trace: 1, span: 1, service: "svc", name: "op", start: now, dur: time.Millisecond})
	e.export(t, spanSpec{trace: 1, span: 1, service: "svc", name: "op", start: now.Add(time.Second), dur: time.Millisecond})
	assert.Len(t, spansOf(e.getTraces(t, tid(1))), 2)
}

func TestServicesAndOperations(t *testing.T) {
	e := startEnv(t, nil)
	now := time.Now()
	e.export(t,
		spanSpec{trace: 1, span: 1, service: "a", name: "srv", kind: tracepb.Span_SPAN_KIND_SERVER, start: now, dur: time.Millisecond},
		spanSpec{trace: 1, span: 2, service: "a", name: "cli", kind: tracepb.Span_SPAN_KIND_CLIENT, start: now, dur: time.Millisecond, parent: 1},
		spanSpec{trace: 1, span: 3, service: "b", name: "x", start: now, dur: time.Millisecond, parent: 2},
	)
	svcs, err := e.reader.GetServices(t.Context(), &storagev2.GetServicesRequest{})
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, svcs.Services)

	ops := func(kind string) []string {
		r, err := e.reader.GetOperations(t.Context(), &storagev2.GetOperationsRequest{Service: "a", SpanKind: kind})
		require.NoError(t, err)
		var out []string
		for _, o := range r.Operations {
			out = append(out, o.Name+"/"+o.SpanKind)
		}
		return out
	}
	assert.Equal(t, []string{"cli/client", "srv/server"}, ops(""))
	assert.Equal(t, []string{"srv/server"}, ops("server"))
	assert.Empty(t, ops("producer"))

	deps, err := e.deps.GetDependencies(t.Context(), &storagev2.GetDependenciesRequest{
		StartTime: timestamppb.New(now.Add(-time.Hour)), EndTime: timestamppb.New(now.Add(time.Hour))})
	require.NoError(t, err)
	require.Len(t, deps.Dependencies, 1)
	assert.Equal(t, "a", deps.Dependencies[0].Parent)
	assert.Equal(t, "b", deps.Dependencies[0].Child)
	assert.Equal(t, uint64(1), deps.Dependencies[0].CallCount)

	_, err = e.deps.GetDependencies(t.Context(), &storagev2.GetDependenciesRequest{
		StartTime: timestamppb.New(now), EndTime: timestamppb.New(now.Add(-time.Hour))})
	assert.Equal(t, codes.InvalidArgument, status.Code(err))
}

func TestFindTracesQueryRules(t *testing.T) {
	e := startEnv(t, nil)
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	// Trace i starts at base+i min; trace 3 is an error, trace 4 is slow.
	for i := byte(1); i <= 5; i++ {
		s := spanSpec{trace: i, span: 1, service: "svc", name: "op", start: base.Add(time.Duration(i) * time.Minute), dur: 10 * time.Millisecond,
			attrs: []*commonpb.KeyValue{intAttr("n", int64(i)), boolAttr("even", i%2 == 0), {Key: "ratio", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 72.5}}}}}
		if i == 1 {
			s.attrs = append(s.attrs, &commonpb.KeyValue{Key: "tiny", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 1e-7}}})
		}
		if i == 3 {
			s.status = tracepb.Status_STATUS_CODE_ERROR
		}
		if i == 4 {
			s.dur = time.Second
			s.name = "slow"
		}
		e.export(t, s)
	}
	e.export(t, spanSpec{trace: 9, span: 1, service: "other", name: "op", start: base, dur: time.Millisecond})
	// Trace 6: the searched value sits on an event and on the scope.
	ev := spanSpec{trace: 6, span: 1, service: "svc", name: "op", start: base.Add(-time.Minute), dur: time.Millisecond}.resourceSpans()
	ev.ScopeSpans[0].Scope.Attributes = []*commonpb.KeyValue{strAttr("scope.k", "sv")}
	ev.ScopeSpans[0].Spans[0].Events = []*tracepb.Span_Event{{Name: "e", Attributes: []*commonpb.KeyValue{intAttr("event.k", 42)}}}
	_, err := e.otlp.Export(t.Context(), &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{ev}})
	require.NoError(t, err)

	ids := func(q *storagev2.TraceQueryParameters) []byte {
		var out []byte
		for _, id := range traceIDsOf(e.findTraces(t, q)) {
			out = append(out, id[15])
		}
		return out
	}
	q := func(mut func(*storagev2.TraceQueryParameters)) *storagev2.TraceQueryParameters {
		p := &storagev2.TraceQueryParameters{ServiceName: "svc", SearchDepth: 100,
			StartTimeMin: timestamppb.New(base.Add(-time.Hour)), StartTimeMax: timestamppb.New(time.Now().Add(time.Minute))}
		if mut != nil {
			mut(p)
		}
		return p
	}
	assert.Equal(t, []byte{5, 4, 3, 2, 1, 6}, ids(q(nil)), "newest first")
	assert.Equal(t, []byte{6}, ids(q(func(p *storagev2.TraceQueryParameters) { p.Attributes = []*storagev2.KeyValue{strKV("event.k", "42")} })), "event attribute")
	assert.Equal(t, []byte{6}, ids(q(func(p *storagev2.TraceQueryParameters) { p.Attributes = []*storagev2.KeyValue{strKV("scope.k", "sv")} })), "scope attribute")
	assert.Equal(t, []byte{5, 4}, ids(q(func(p *storagev2.TraceQueryParameters) { p.SearchDepth = 2 })), "search depth")
	assert.Equal(t, []byte{5, 4, 3, 2, 1, 6}, ids(q(func(p *storagev2.TraceQueryParameters) { p.SearchDepth = 0 })), "0 = default depth")
	assert.Equal(t, []byte{4}, ids(q(func(p *storagev2.TraceQueryParameters) { p.OperationName = "slow" })))
	assert.Equal(t, []byte{3}, ids(q(func(p *storagev2.TraceQueryParameters) { p.Attributes = []*storagev2.KeyValue{strKV("n", "3")} })), "int by string form")
	assert.Equal(t, []byte{4, 2}, ids(q(func(p *storagev2.TraceQueryParameters) { p.Attributes = []*storagev2.KeyValue{strKV("even", "true")} })), "bool by string form")
	assert.Equal(t, []byte{5, 4, 3, 2, 1}, ids(q(func(p *storagev2.TraceQueryParameters) { p.Attributes = []*storagev2.KeyValue{strKV("ratio", "72.5")} })), "double by string form")
	assert.Equal(t, []byte{5, 4, 3, 2, 1, 6}, ids(q(func(p *storagev2.TraceQueryParameters) {
		p.Attributes = []*storagev2.KeyValue{strKV("host.name", "node-a")}
	})), "resource attribute")
	assert.Empty(t, ids(q(func(p *storagev2.TraceQueryParameters) {
		p.Attributes = []*storagev2.KeyValue{strKV("n", "3"), strKV("even", "true")}
	})), "all attributes on one span")
	assert.Equal(t, []byte{3}, ids(q(func(p *storagev2.TraceQueryParameters) { p.Attributes = []*storagev2.KeyValue{strKV("error", "true")} })), "error=true")
	assert.Equal(t, []byte{5, 4, 2, 1, 6}, ids(q(func(p *storagev2.TraceQueryParameters) { p.Attributes = []*storagev2.KeyValue{strKV("error", "false")} })), "error=false")
	assert.Equal(t, []byte{4}, ids(q(func(p *storagev2.TraceQueryParameters) { p.DurationMin = durationpb.New(100 * time.Millisecond) })), "duration_min")
	assert.Equal(t, []byte{5, 3, 2, 1, 6}, ids(q(func(p *storagev2.TraceQueryParameters) { p.DurationMax = durationpb.New(100 * time.Millisecond) })), "duration_max")
	assert.Equal(t, []byte{3, 2}, ids(q(func(p *storagev2.TraceQueryParameters) {
		p.StartTimeMin = timestamppb.New(base.Add(2 * time.Minute))
		p.StartTimeMax = timestamppb.New(base.Add(3 * time.Minute))
	})), "start time bounds inclusive")
	typed := &storagev2.KeyValue{Key: "n", Value: &storagev2.AnyValue{Value: &storagev2.AnyValue_IntValue{IntValue: 2}}}
	assert.Equal(t, []byte{2}, ids(q(func(p *storagev2.TraceQueryParameters) { p.Attributes = []*storagev2.KeyValue{typed} })), "typed values become strings")
	typedDouble := &storagev2.KeyValue{Key: "tiny", Value: &storagev2.AnyValue{Value: &storagev2.AnyValue_DoubleValue{DoubleValue: 1e-7}}}
	assert.Equal(t, []byte{1}, ids(q(func(p *storagev2.TraceQueryParameters) { p.Attributes = []*storagev2.KeyValue{typedDouble} })), "typed doubles in the store's string form")

	found, err := e.reader.FindTraceIDs(t.Context(), &storagev2.FindTracesRequest{Query: q(func(p *storagev2.TraceQueryParameters) { p.SearchDepth = 1 })})
	require.NoError(t, err)
	require.Len(t, found.TraceIds, 1)
	assert.Equal(t, tid(5), found.TraceIds[0].TraceId)
	assert.Equal(t, base.Add(5*time.Minute).UnixNano(), found.TraceIds[0].Start.AsTime().UnixNano())
	assert.Equal(t, base.Add(5*time.Minute+10*time.Millisecond).UnixNano(), found.TraceIds[0].End.AsTime().UnixNano())

	for name, bad := range map[string]*storagev2.TraceQueryParameters{
		"negative depth": q(func(p *storagev2.TraceQueryParameters) { p.SearchDepth = -1 }),
		"no service":     q(func(p *storagev2.TraceQueryParameters) { p.ServiceName = "" }),
		"array value": q(func(p *storagev2.TraceQueryParameters) {
			p.Attributes = []*storagev2.KeyValue{{Key: "k", Value: &storagev2.AnyValue{Value: &storagev2.AnyValue_ArrayValue{}}}}
		}),
	} {
		_, err := e.reader.FindTraceIDs(t.Context(), &storagev2.FindTracesRequest{Query: bad})
		assert.Equal(t, codes.InvalidArgument, status.Code(err), name)
	}
}

func TestCollectorReportValidationAndIdempotence(t *testing.T) {
	e := startEnv(t, nil)
	good := func() *collectorv1.IOAMRecord {
		r := rec(3, 0, 1, 2, 3)
		r.TraceId = tid(1)
		r.SpanId = sid(1)
		return r
	}
	req := &collectorv1.ReportRequest{AgentId: "a", BatchId: 7, Records: []*collectorv1.IOAMRecord{good(), rec(2, 0, 1, 2)}}
	req.Records[1].TraceId, req.Records[1].SpanId = tid(1), sid(1)
	resp, err := e.collector.Report(t.Context(), req)
	require.NoError(t, err)
	assert.Equal(t, uint64(7), resp.BatchId)
	assert.Equal(t, uint32(2), resp.Accepted)
	assert.Zero(t, resp.Duplicates)

	resp, err = e.collector.Report(t.Context(), req) // a retry
	require.NoError(t, err)
	assert.Zero(t, resp.Accepted)
	assert.Equal(t, uint32(2), resp.Duplicates)

	bad := &collectorv1.ReportRequest{Records: []*collectorv1.IOAMRecord{good(), good(), good(), good()}}
	bad.Records[3].TraceId = bad.Records[3].TraceId[:15]
	bad.Records[1].Hops[0].Fields = 0x000001
	bad.Records[1].Hops[0].NodeId = 1 << 24
	_, err = e.collector.Report(t.Context(), bad)
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	msg := status.Convert(err).Message()
	assert.Contains(t, msg, "records[3].trace_id: length 15, want 16")
	assert.Contains(t, msg, "records[1].hops[0].fields: 0x000001 has bits not in trace_type 0xfa0000")
	assert.Contains(t, msg, "records[1].hops[0].node_id: 16777216 exceeds 24 bits")

	big := &collectorv1.ReportRequest{}
	for range 10001 {
		big.Records = append(big.Records, good())
	}
	_, err = e.collector.Report(t.Context(), big)
	assert.Equal(t, codes.InvalidArgument, status.Code(err))
	assert.Contains(t, status.Convert(err).Message(), "records: 10001 records, limit 10000")

	body := e.scrape(t)
	assert.Contains(t, body, "clt_storage_records_accepted_total 2")
	assert.Contains(t, body, "clt_storage_records_duplicate_total 2")
	assert.Contains(t, body, `clt_storage_records_rejected_total{reason="trace_id"} 1`)
	assert.Contains(t, body, `clt_storage_records_rejected_total{reason="trace_type"} 1`)
	assert.Contains(t, body, `clt_storage_records_rejected_total{reason="batch"} 2`)
	assert.Contains(t, body, `clt_storage_records_rejected_total{reason="batch_size"} 10001`)
}

func TestValidateRecordFields(t *testing.T) {
	tests := []struct {
		name string
		mut  func(r *collectorv1.IOAMRecord)
		want string
	}{
		{"span id", func(r *collectorv1.IOAMRecord) { r.SpanId = []byte{1} }, "r.span_id: length 1, want 8"},
		{"zero trace", func(r *collectorv1.IOAMRecord) { r.TraceId = make([]byte, 16) }, "r.trace_id: all zero"},
		{"namespace", func(r *collectorv1.IOAMRecord) { r.NamespaceId = 1 << 16 }, "r.namespace_id: 65536 exceeds 16 bits"},
		{"trace type", func(r *collectorv1.IOAMRecord) { r.TraceType = 1 << 24 }, "r.trace_type: 0x1000000 exceeds 24 bits"},
		{"packets", func(r *collectorv1.IOAMRecord) { r.Packets = 0 }, "r.packets: must be >= 1"},
		{"carrier", func(r *collectorv1.IOAMRecord) { r.Carrier = "x" }, `r.carrier: ioam6: unknown carrier "x" (want oss, tail or clt-v1)`},
		{"reporter_node_name", func(r *collectorv1.IOAMRecord) { r.ReporterNodeName = "bad\nname" }, `r.reporter_node_name: "bad\nname" has a non-printable character`},
		{"reporter_node_name length", func(r *collectorv1.IOAMRecord) { r.ReporterNodeName = strings.Repeat("a", 256) }, `r.reporter_node_name: length 256, limit 255`},
		{"times", func(r *collectorv1.IOAMRecord) { r.LastSeenUnixNano = r.FirstSeenUnixNano - 1 }, "r.last_seen_unix_nano"},
		{"hops", func(r *collectorv1.IOAMRecord) {
			for range 64 {
				r.Hops = append(r.Hops, r.Hops[0])
			}
		}, "r.hops: 65 hops, limit 64"},
		{"ingress", func(r *collectorv1.IOAMRecord) { r.Hops[0].IngressIf = 1 << 16 }, "r.hops[0].ingress_if: 65536 exceeds 16 bits"},
		{"snapshot", func(r *collectorv1.IOAMRecord) { r.Hops[0].SnapshotData = []byte{1, 2, 3} }, "r.hops[0].snapshot_data: length 3"},
		{"min max", func(r *collectorv1.IOAMRecord) { r.Hops[0].TransitDelayMin = 1 << 30 }, "r.hops[0].transit_delay_min"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := rec(2, 0, 1)
			require.Empty(t, validateRecord("r", r, 64))
			tc.mut(r)
			errs := validateRecord("r", r, 64)
			require.NotEmpty(t, errs)
			assert.Contains(t, errs[0].Error(), tc.want)
		})
	}
}

// TestEnrichmentJoinOrder writes records before the span, the span, then more
// records, and expects every read path to show the join.
func TestEnrichmentJoinOrder(t *testing.T) {
	e := startEnv(t, nil)
	now := time.Now().Add(-time.Minute)
	report := func(recs ...*collectorv1.IOAMRecord) {
		for _, r := range recs {
			r.TraceId, r.SpanId = tid(1), sid(1)
		}
		_, err := e.collector.Report(t.Context(), &collectorv1.ReportRequest{Records: recs})
		require.NoError(t, err)
	}
	report(rec(3, 0, 1, 2, 3)) // before the span
	orphan := rec(3, 0, 5, 6)  // for a span that never arrives
	orphan.TraceId, orphan.SpanId = tid(7), sid(7)
	_, err := e.collector.Report(t.Context(), &collectorv1.ReportRequest{Records: []*collectorv1.IOAMRecord{orphan}})
	require.NoError(t, err)
	e.export(t, spanSpec{trace: 1, span: 1, service: "svc", name: "op", start: now, dur: time.Millisecond},
		spanSpec{trace: 1, span: 2, service: "svc", name: "child", start: now, dur: time.Millisecond, parent: 1})
	report(rec(3, 5, 1, 4, 3), rec(2, 6, 1, 2)) // after the span

	check := func(all []*tracepb.Span) {
		spans, synthetic := splitSynthetic(all)
		require.Len(t, spans, 2)
		var names []string
		for _, sp := range synthetic {
			assert.Equal(t, sid(1), sp.ParentSpanId)
			names = append(names, sp.Name)
		}
		assert.Equal(t, []string{"ioam node 1 → node 2", "ioam node 2 → node 3",
			"ioam ⚠ path changed during the span: 1 > 2 > 3 then 1 > 4 > 3"}, names, "links of the canonical path, then the warning")
		for _, sp := range spans {
			a := attrMap(sp.Attributes)
			if sp.SpanId[7] == 2 {
				assert.NotContains(t, a, AttrPath, "records of span 1 stay on span 1")
				continue
			}
			assert.Equal(t, "1 > 2 > 3", a[AttrPath].GetStringValue())
			assert.Equal(t, int64(2), a[AttrReporters].GetIntValue())
			hops, _ := hopEvents(sp)
			assert.Len(t, hops, 3)
			assert.Contains(t, warningsOf(sp), "ioam: path changed during the span: 1 > 2 > 3 then 1 > 4 > 3")
		}
	}
	check(spansOf(e.getTraces(t, tid(1))))
	q := &storagev2.TraceQueryParameters{ServiceName: "svc", SearchDepth: 10}
	check(spansOf(e.findTraces(t, q)))

	byNode := func(node string) int {
		q := &storagev2.TraceQueryParameters{ServiceName: "svc", SearchDepth: 10, Attributes: []*storagev2.KeyValue{strKV(AttrNodeID, node)}}
		return len(traceIDsOf(e.findTraces(t, q)))
	}
	assert.Equal(t, 1, byNode("2"))
	assert.Equal(t, 1, byNode("4"))
	assert.Equal(t, 0, byNode("6"), "node 6 only saw the orphan span")
	assert.Equal(t, 0, byNode("42"))
	assert.Empty(t, e.getTraces(t, tid(7)), "records without a span are kept but show no trace")
}

func (e *env) scrape(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(e.admin + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return string(b)
}

func TestAdminEndpoints(t *testing.T) {
	e := startEnv(t, nil)
	e.export(t, spanSpec{trace: 1, span: 1, service: "svc", name: "op", start: time.Now(), dur: time.Millisecond})
	_, _ = e.reader.GetServices(t.Context(), &storagev2.GetServicesRequest{})
	body := e.scrape(t)
	for _, m := range []string{"clt_storage_spans_written_total 1", `clt_storage_query_duration_seconds_count{rpc="GetServices"} 1`,
		"clt_storage_badger_lsm_bytes", "clt_storage_badger_vlog_bytes", "clt_storage_gc_runs_total", "go_goroutines",
		"clt_storage_badger_block_cache_capacity_bytes 8.388608e+06", "clt_storage_badger_block_cache_bytes", "clt_storage_badger_index_cache_bytes",
		"clt_storage_memory_limit_bytes 5.36870912e+08", "clt_storage_process_rss_anon_bytes", "clt_storage_reclaim_runs_total", "clt_storage_search_waits_total", "clt_storage_table_pageouts_total", "clt_storage_table_pageout_errors_total"} {
		assert.Contains(t, body, m)
	}
	resp, err := http.Get(e.admin + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	for _, path := range []string{"/purge", "/debug/pprof/"} {
		resp, err := http.Post(e.admin+path, "text/plain", nil)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, "%s disabled by default", path)
	}
	assert.Len(t, e.getTraces(t, tid(1)), 1, "nothing purged")

	hc := healthpb.NewHealthClient(e.collConn)
	for _, svc := range []string{"", "clt.collector.v1.CollectorService", "ioam_trace.IOAMService"} {
		r, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{Service: svc})
		require.NoError(t, err)
		assert.Equal(t, healthpb.HealthCheckResponse_SERVING, r.Status, svc)
	}
}

func TestPurgeEnabled(t *testing.T) {
	e := startEnv(t, func(c *Config) { c.Admin.Purge, c.Admin.Pprof = true, true })
	e.export(t, spanSpec{trace: 1, span: 1, service: "svc", name: "op", start: time.Now(), dur: time.Millisecond})
	resp, err := http.Get(e.admin + "/purge")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "GET does not purge")
	require.Len(t, e.getTraces(t, tid(1)), 1)

	// What a cross-site page can make a browser send is refused (issue 12:
	// a form POST with Origin http://evil.example purged everything).
	for _, tc := range []struct {
		name, ct, origin, fetchSite string
		want                        int
	}{
		{"form", "application/x-www-form-urlencoded", "", "", http.StatusUnsupportedMediaType},
		{"multipart", "multipart/form-data; boundary=x", "", "", http.StatusUnsupportedMediaType},
		{"text/plain", "text/plain", "", "", http.StatusUnsupportedMediaType},
		{"json from another origin", "application/json", "http://evil.example", "", http.StatusForbidden},
		{"no type from another origin", "", "http://evil.example", "", http.StatusForbidden},
		{"cross-site fetch", "application/json", "", "cross-site", http.StatusForbidden},
	} {
		req, err := http.NewRequest(http.MethodPost, e.admin+"/purge", strings.NewReader("a=b"))
		require.NoError(t, err)
		if tc.ct != "" {
			req.Header.Set("Content-Type", tc.ct)
		} else {
			req.ContentLength, req.Body = 0, http.NoBody
		}
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		if tc.fetchSite != "" {
			req.Header.Set("Sec-Fetch-Site", tc.fetchSite)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, tc.want, resp.StatusCode, tc.name)
	}
	require.Len(t, e.getTraces(t, tid(1)), 1, "nothing purged by refused requests")

	resp, err = http.Post(e.admin+"/purge", "application/json", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.True(t, resp.Close, "Connection: close")
	assert.Empty(t, e.getTraces(t, tid(1)))
	svcs, err := e.reader.GetServices(t.Context(), &storagev2.GetServicesRequest{})
	require.NoError(t, err)
	assert.Empty(t, svcs.Services)

	resp, err = http.Get(e.admin + "/debug/pprof/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestServerLifecycle(t *testing.T) {
	srv, err := New(testConfig(t), Settings{})
	require.NoError(t, err)
	require.NoError(t, srv.Close(), "Close without Start")
	require.NoError(t, srv.Close())

	srv, err = New(testConfig(t), Settings{})
	require.NoError(t, err)
	require.NoError(t, srv.Start(t.Context()))
	addr := srv.StorageAddr().String()
	require.Error(t, srv.Start(t.Context()), "second Start")
	require.NoError(t, srv.Close())
	require.NoError(t, srv.Close(), "Close twice")
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	_, err = storagev2.NewTraceReaderClient(c).GetServices(ctx, &storagev2.GetServicesRequest{})
	assert.Error(t, err, "stopped server refuses")

	// A port in use fails Start and rolls back (the store is closed, so a
	// new server can open the same directory).
	cfg := testConfig(t)
	first, err := New(cfg, Settings{})
	require.NoError(t, err)
	require.NoError(t, first.Start(t.Context()))
	defer first.Close()
	cfg2 := testConfig(t)
	cfg2.Admin.Listen = first.AdminAddr().String()
	second, err := New(cfg2, Settings{})
	require.NoError(t, err)
	err = second.Start(t.Context())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "admin.listen")
	third, err := New(cfg2, Settings{})
	require.NoError(t, err)
	cfg2.Admin.Listen = "127.0.0.1:0"
	third.cfg = cfg2
	require.NoError(t, third.Start(t.Context()), "store dir released by the failed Start")
	require.NoError(t, third.Close())
}

func TestExportStoreErrorIsNotOK(t *testing.T) {
	e := startEnv(t, nil)
	require.NoError(t, e.srv.ownStore.Close()) // simulate a dead store
	_, err := e.otlp.Export(t.Context(), &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{
		spanSpec{trace: 1, span: 1, service: "svc", name: "op", start: time.Now(), dur: time.Millisecond}.resourceSpans()}})
	assert.Equal(t, codes.Unavailable, status.Code(err), fmt.Sprint(err))
	_, err = e.collector.Report(t.Context(), &collectorv1.ReportRequest{Records: []*collectorv1.IOAMRecord{func() *collectorv1.IOAMRecord {
		r := rec(2, 0, 1)
		return r
	}()}})
	assert.Equal(t, codes.Unavailable, status.Code(err), fmt.Sprint(err))
	assert.True(t, strings.Contains(e.scrape(t), "clt_storage_export_errors_total 1"))
}

// TestRestartKeepsData: what was acknowledged before a graceful Close is
// there after a restart on the same directory, spans and records alike.
func TestRestartKeepsData(t *testing.T) {
	cfg := testConfig(t)
	dir := cfg.Store.Dir
	e := startEnv(t, func(c *Config) { c.Store.Dir = dir })
	e.export(t, spanSpec{trace: 1, span: 1, service: "svc", name: "op", start: time.Now(), dur: time.Millisecond})
	r := rec(3, 0, 1, 2, 3)
	r.TraceId, r.SpanId = tid(1), sid(1)
	_, err := e.collector.Report(t.Context(), &collectorv1.ReportRequest{Records: []*collectorv1.IOAMRecord{r}})
	require.NoError(t, err)
	require.NoError(t, e.srv.Close())

	e2 := startEnv(t, func(c *Config) { c.Store.Dir = dir })
	spans, _ := splitSynthetic(spansOf(e2.getTraces(t, tid(1))))
	require.Len(t, spans, 1)
	assert.Equal(t, "1 > 2 > 3", attrMap(spans[0].Attributes)[AttrPath].GetStringValue())
}

// blockingStore holds WriteSpans until released (or its context ends), to
// observe what Close does with an RPC in flight.
type blockingStore struct {
	Store
	entered chan struct{}
	release chan struct{}
}

func (s *blockingStore) WriteSpans(ctx context.Context, rs []*tracepb.ResourceSpans) (int, error) {
	s.entered <- struct{}{}
	select {
	case <-s.release:
		return s.Store.WriteSpans(ctx, rs)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func startBlocking(t *testing.T, timeout time.Duration) (*Server, *blockingStore, coltracepb.TraceServiceClient) {
	cfg := testConfig(t)
	cfg.ShutdownTimeout = timeout
	st, err := ioamstore.Open(cfg.Store, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	bs := &blockingStore{Store: st, entered: make(chan struct{}, 1), release: make(chan struct{})}
	srv, err := New(cfg, Settings{})
	require.NoError(t, err)
	srv.store = bs // injected: not owned, so Close leaves it open
	require.NoError(t, srv.Start(t.Context()))
	t.Cleanup(func() { _ = srv.Close() })
	c, err := grpc.NewClient(srv.StorageAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return srv, bs, coltracepb.NewTraceServiceClient(c)
}

func TestCloseDrainsInFlight(t *testing.T) {
	srv, bs, otlp := startBlocking(t, 10*time.Second)
	exported := make(chan error, 1)
	go func() {
		_, err := otlp.Export(t.Context(), &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{
			spanSpec{trace: 1, span: 1, service: "svc", name: "op", start: time.Now(), dur: time.Millisecond}.resourceSpans()}})
		exported <- err
	}()
	<-bs.entered
	closed := make(chan error, 1)
	go func() { closed <- srv.Close() }()
	select {
	case <-closed:
		t.Fatal("Close returned with an RPC in flight")
	case <-time.After(200 * time.Millisecond):
	}
	close(bs.release)
	require.NoError(t, <-exported, "the in-flight write completes")
	require.NoError(t, <-closed)
}

func TestCloseCancelsAfterTimeout(t *testing.T) {
	srv, bs, otlp := startBlocking(t, 200*time.Millisecond)
	exported := make(chan error, 1)
	go func() {
		_, err := otlp.Export(t.Context(), &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{
			spanSpec{trace: 1, span: 1, service: "svc", name: "op", start: time.Now(), dur: time.Millisecond}.resourceSpans()}})
		exported <- err
	}()
	<-bs.entered
	start := time.Now()
	require.NoError(t, srv.Close())
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Error(t, <-exported, "a write cut by the timeout is not acknowledged")
}
