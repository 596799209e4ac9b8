package plugin

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/google/go-cmp/cmp"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/api/storagev2"
	"github.com/cross-layer-telemetry/clt/ioamstore"
)

// The upstream of these tests is an embedded clt-storage: it serves the
// same jaeger.storage.v2 + OTLP API as Jaeger's remote_storage and has no
// IOAM records of its own (it only ever receives spans), so it behaves as a
// plain Jaeger backend. plugin/e2e runs the real remote_storage.

func startUpstreamPair(t *testing.T, mutate func(*Config)) (front, up *env) {
	t.Helper()
	up = startEnv(t, func(c *Config) { c.Collector.Listen = "127.0.0.1:0" })
	front = startEnv(t, func(c *Config) {
		c.Upstream.Endpoint = up.srv.StorageAddr().String()
		c.Upstream.HealthInterval = 50 * time.Millisecond
		if mutate != nil {
			mutate(c)
		}
	})
	return front, up
}

// upRec is a record of span (trace 1, span 1) seen now.
func upRec(reporter uint32, start time.Time, path ...uint32) *collectorv1.IOAMRecord {
	r := rec(reporter, 0, path...)
	r.TraceId, r.SpanId = tid(1), sid(1)
	r.FirstSeenUnixNano = uint64(start.Add(time.Millisecond).UnixNano())
	r.LastSeenUnixNano = uint64(start.Add(2 * time.Millisecond).UnixNano())
	for _, h := range r.Hops {
		h.TimestampSec = uint32(start.Unix())
	}
	return r
}

// feed sends the same records and spans to e: records before and after
// the spans, and a retried batch.
func feed(t *testing.T, e *env, start time.Time) {
	t.Helper()
	first := &collectorv1.ReportRequest{AgentId: "a", Records: []*collectorv1.IOAMRecord{upRec(3, start, 1, 2, 3), upRec(2, start, 1, 2)}}
	_, err := e.collector.Report(t.Context(), first)
	require.NoError(t, err)
	e.export(t,
		spanSpec{trace: 1, span: 1, service: "web", name: "GET /", kind: tracepb.Span_SPAN_KIND_SERVER, start: start, dur: 50 * time.Millisecond},
		spanSpec{trace: 1, span: 2, parent: 1, service: "db", name: "query", kind: tracepb.Span_SPAN_KIND_SERVER, start: start.Add(time.Millisecond), dur: 5 * time.Millisecond},
		spanSpec{trace: 2, span: 3, service: "web", name: "GET /plain", kind: tracepb.Span_SPAN_KIND_SERVER, start: start, dur: time.Millisecond},
	)
	_, err = e.collector.Report(t.Context(), first) // a retry: no duplicate
	require.NoError(t, err)
	_, err = e.collector.Report(t.Context(), &collectorv1.ReportRequest{AgentId: "a", Records: []*collectorv1.IOAMRecord{upRec(3, start, 1, 4, 3)}})
	require.NoError(t, err)
}

func TestUpstreamModeMatchesEmbedded(t *testing.T) {
	start := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	front, up := startUpstreamPair(t, nil)
	embedded := startEnv(t, nil)
	feed(t, front, start)
	feed(t, embedded, start)

	// The same enriched trace, span for span (network spans included).
	want := embedded.getTraces(t, tid(1), tid(2))
	got := front.getTraces(t, tid(1), tid(2))
	require.NotEmpty(t, want)
	// Span for span, each under its resource and scope; the grouping into
	// chunks may differ (spans without records are passed through as they
	// came, in chunks of their own).
	assert.Empty(t, cmp.Diff(perSpan(t, want), perSpan(t, got), protocmp.Transform()), "upstream mode reads what the embedded store reads")
	real, synthetic := splitSynthetic(spansOf(got))
	assert.Len(t, real, 3, "no record span is shown")
	assert.NotEmpty(t, synthetic, "network spans")
	for _, sp := range real {
		if proto.Equal(&tracepb.Span{SpanId: sp.SpanId}, &tracepb.Span{SpanId: sid(1)}) {
			assert.Equal(t, "1 > 2 > 3", attrMap(sp.Attributes)[AttrPath].GetStringValue())
		}
	}

	// The records really are in the upstream, as spans of the internal service.
	upSvcs, err := up.reader.GetServices(t.Context(), &storagev2.GetServicesRequest{})
	require.NoError(t, err)
	assert.Contains(t, upSvcs.Services, "clt-ioam")
	svcs, err := front.reader.GetServices(t.Context(), &storagev2.GetServicesRequest{})
	require.NoError(t, err)
	wantSvcs, err := embedded.reader.GetServices(t.Context(), &storagev2.GetServicesRequest{})
	require.NoError(t, err)
	assert.Equal(t, wantSvcs.Services, svcs.Services, "services and routers, without clt-ioam")
	// A replica that received none of the records lists the same routers,
	// learned from the upstream.
	other := startEnv(t, func(c *Config) { c.Upstream.Endpoint = up.srv.StorageAddr().String() })
	otherSvcs, err := other.reader.GetServices(t.Context(), &storagev2.GetServicesRequest{})
	require.NoError(t, err)
	assert.Equal(t, wantSvcs.Services, otherSvcs.Services, "routers learned from the upstream")
	assert.Contains(t, otherSvcs.Services, "node 4")
	ops, err := front.reader.GetOperations(t.Context(), &storagev2.GetOperationsRequest{Service: "clt-ioam"})
	require.NoError(t, err)
	assert.Empty(t, ops.Operations)
	for _, router := range []string{"node 2", "node 4"} {
		got, err := front.reader.GetOperations(t.Context(), &storagev2.GetOperationsRequest{Service: router})
		require.NoError(t, err)
		want, err := embedded.reader.GetOperations(t.Context(), &storagev2.GetOperationsRequest{Service: router})
		require.NoError(t, err)
		assert.NotEmpty(t, want.Operations)
		assert.Empty(t, cmp.Diff(want, got, protocmp.Transform()), "router %s", router)
	}

	// Searches: plain, on records, on derived tags, on routers.
	lo, hi := timestamppb.New(start.Add(-time.Hour)), timestamppb.New(start.Add(time.Hour))
	found := 0
	for _, q := range []*storagev2.TraceQueryParameters{
		{ServiceName: "web"},
		{ServiceName: "web", Attributes: []*storagev2.KeyValue{strKV(AttrNodeID, "2")}},
		{ServiceName: "web", Attributes: []*storagev2.KeyValue{strKV(AttrNodeID, "4")}},
		{ServiceName: "web", Attributes: []*storagev2.KeyValue{strKV(AttrNodeID, "99")}},
		{ServiceName: "db", Attributes: []*storagev2.KeyValue{strKV(AttrNodeID, "2")}},
		{Attributes: []*storagev2.KeyValue{strKV(AttrNodeID, "3")}},
		{Attributes: []*storagev2.KeyValue{strKV(AttrNamespaceID, "123")}},
		{ServiceName: "web", Attributes: []*storagev2.KeyValue{strKV(AttrPathChanged, "true")}},
		{ServiceName: "web", Attributes: []*storagev2.KeyValue{strKV(AttrPath, "1 > 2 > 3")}},
		{ServiceName: "web", Attributes: []*storagev2.KeyValue{strKV(AttrOverflow, "true")}},
		{ServiceName: "node 2"},
		{ServiceName: "node 3", OperationName: NetworkSpanName("node 2", "node 3")},
		{ServiceName: "clt-ioam"},
	} {
		q.StartTimeMin, q.StartTimeMax = lo, hi
		want := traceIDsOf(embedded.findTraces(t, q))
		got := traceIDsOf(front.findTraces(t, q))
		assert.Equal(t, want, got, "query %v", q)
		if len(want) > 0 {
			found++
		}
	}
	assert.Equal(t, 9, found, "queries that find something")

	// Dependencies: drawn through the routers, clt-ioam nowhere.
	dq := &storagev2.GetDependenciesRequest{StartTime: lo, EndTime: hi}
	wantDeps, err := embedded.deps.GetDependencies(t.Context(), dq)
	require.NoError(t, err)
	gotDeps, err := front.deps.GetDependencies(t.Context(), dq)
	require.NoError(t, err)
	assert.NotEmpty(t, wantDeps.Dependencies)
	assert.ElementsMatch(t, wantDeps.Dependencies, gotDeps.Dependencies)
	for _, d := range gotDeps.Dependencies {
		assert.NotEqual(t, "clt-ioam", d.Parent)
		assert.NotEqual(t, "clt-ioam", d.Child)
	}
}

// perSpan flattens chunks into one ResourceSpans per span, in a canonical
// order.
func perSpan(t *testing.T, chunks []*tracepb.TracesData) []*tracepb.ResourceSpans {
	var out []*tracepb.ResourceSpans
	for _, td := range chunks {
		for _, rs := range td.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					out = append(out, &tracepb.ResourceSpans{Resource: rs.Resource, SchemaUrl: rs.SchemaUrl,
						ScopeSpans: []*tracepb.ScopeSpans{{Scope: ss.Scope, SchemaUrl: ss.SchemaUrl, Spans: []*tracepb.Span{sp}}}})
				}
			}
		}
	}
	key := func(rs *tracepb.ResourceSpans) string {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(rs)
		require.NoError(t, err)
		return string(b)
	}
	slices.SortFunc(out, func(a, b *tracepb.ResourceSpans) int { return strings.Compare(key(a), key(b)) })
	return out
}

// Pass-through chunks keep the chunk limits, never mix traces, and carry
// the same spans as the embedded store's.
func TestUpstreamGetTracesChunks(t *testing.T) {
	start := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	limit := func(c *Config) { c.Storage.MaxSpansPerChunk = 2 }
	front, _ := startUpstreamPair(t, limit)
	embedded := startEnv(t, limit)
	for _, e := range []*env{front, embedded} {
		feed(t, e, start)
		var specs []spanSpec
		for i := range 7 {
			specs = append(specs, spanSpec{trace: 1, span: byte(10 + i), parent: 1, service: []string{"web", "db", "cache"}[i%3],
				name: "op", kind: tracepb.Span_SPAN_KIND_CLIENT, start: start.Add(time.Duration(i) * time.Millisecond), dur: time.Millisecond})
		}
		e.export(t, specs...)
	}
	got := front.getTraces(t, tid(1), tid(2))
	want := embedded.getTraces(t, tid(1), tid(2))
	assert.Empty(t, cmp.Diff(perSpan(t, want), perSpan(t, got), protocmp.Transform()))
	var order []string
	for _, td := range got {
		n := 0
		traces := map[string]bool{}
		for _, rs := range td.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				n += len(ss.Spans)
				for _, sp := range ss.Spans {
					traces[string(sp.TraceId)] = true
				}
			}
		}
		assert.LessOrEqual(t, n, 2, "chunk limit")
		assert.Positive(t, n, "no empty chunk")
		require.Len(t, traces, 1, "one trace per chunk")
		for id := range traces {
			if len(order) == 0 || order[len(order)-1] != id {
				order = append(order, id)
			}
		}
	}
	assert.Len(t, order, 2, "each trace's chunks are consecutive")
}

func TestUpstreamDownIsUnavailable(t *testing.T) {
	front, up := startUpstreamPair(t, nil)
	health := healthpb.NewHealthClient(front.storageConn)
	waitHealth := func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		require.Eventually(t, func() bool {
			r, err := health.Check(t.Context(), &healthpb.HealthCheckRequest{Service: storagev2.TraceReader_ServiceDesc.ServiceName})
			return err == nil && r.Status == want
		}, 10*time.Second, 20*time.Millisecond)
	}
	waitHealth(healthpb.HealthCheckResponse_SERVING)
	assert.Contains(t, scrape(t, front.admin), "clt_storage_upstream_up 1")

	require.NoError(t, up.srv.Close())
	waitHealth(healthpb.HealthCheckResponse_NOT_SERVING)
	assert.Contains(t, scrape(t, front.admin), "clt_storage_upstream_up 0")
	resp, err := http.Get(front.admin + "/healthz")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.NotEqual(t, http.StatusOK, resp.StatusCode, "/healthz follows the upstream")
	_, err = front.collector.Report(t.Context(), &collectorv1.ReportRequest{Records: []*collectorv1.IOAMRecord{upRec(3, time.Now(), 1, 2, 3)}})
	assert.Equal(t, codes.Unavailable, status.Code(err), "records: %v", err)
	_, err = front.otlp.Export(t.Context(), &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{
		spanSpec{trace: 1, span: 1, service: "web", name: "x", start: time.Now(), dur: time.Millisecond}.resourceSpans()}})
	assert.Equal(t, codes.Unavailable, status.Code(err), "spans: %v", err)
	_, err = front.reader.GetServices(t.Context(), &storagev2.GetServicesRequest{})
	assert.Equal(t, codes.Unavailable, status.Code(err), "reads: %v", err)
	st, err := front.reader.GetTraces(t.Context(), &storagev2.GetTracesRequest{Query: []*storagev2.GetTraceParams{{TraceId: tid(1)}}})
	require.NoError(t, err)
	_, err = st.Recv()
	assert.Equal(t, codes.Unavailable, status.Code(err), "GetTraces: %v", err)
	assert.Equal(t, 0, int(front.srv.store.Stats().RecordsWritten), "nothing counted as written")
}

func TestUpstreamRefusesReservedService(t *testing.T) {
	front, _ := startUpstreamPair(t, nil)
	req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{
		spanSpec{trace: 1, span: 1, service: "clt-ioam", name: "x", start: time.Now(), dur: time.Millisecond}.resourceSpans(),
		spanSpec{trace: 1, span: 2, service: "web", name: "y", start: time.Now(), dur: time.Millisecond}.resourceSpans(),
	}}
	resp, err := front.otlp.Export(t.Context(), req)
	require.NoError(t, err)
	assert.Equal(t, int64(1), resp.GetPartialSuccess().GetRejectedSpans())
	assert.Contains(t, resp.GetPartialSuccess().GetErrorMessage(), `reserved service "clt-ioam"`)
	real, _ := splitSynthetic(spansOf(front.getTraces(t, tid(1))))
	require.Len(t, real, 1, "the other span is stored")
	assert.Equal(t, "y", real[0].Name)
}

func TestUpstreamPurgeNeedsURL(t *testing.T) {
	front, _ := startUpstreamPair(t, func(c *Config) { c.Admin.Purge = true })
	resp, err := http.Post(front.admin+"/purge", "application/json", nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	assert.Contains(t, string(body), "upstream.purge_url", "no silent success")
}

func TestRecordSpanRoundTrip(t *testing.T) {
	r, err := toStoreRecord(upRec(3, time.Unix(1700000000, 0), 1, 2, 3), time.Unix(1700000001, 5).UTC())
	require.NoError(t, err)
	sp := recordSpan(r)
	again := recordSpan(r)
	assert.Equal(t, sp.SpanId, again.SpanId, "the span id is the record's content: a retry rewrites the same span")
	other := r
	other.Data = append([]byte(nil), r.Data...)
	other.Data[len(other.Data)-1] ^= 1
	assert.NotEqual(t, sp.SpanId, recordSpan(other).SpanId)

	got, ok := spanRecord(r.TraceID, sp)
	require.True(t, ok)
	assert.Equal(t, r, got, "lossless")

	// Not a record span (an application using the reserved service).
	_, ok = spanRecord(r.TraceID, &tracepb.Span{Name: "GET /"})
	assert.False(t, ok)
	bad := proto.Clone(sp).(*tracepb.Span)
	bad.Attributes[0].Value.Value = nil
	_, ok = spanRecord(r.TraceID, bad)
	assert.False(t, ok)

	dup := dedupeRecords([]ioamstore.Record{got, r, got})
	assert.Len(t, dup, 1)
}

func TestUpstreamConfigValidate(t *testing.T) {
	cfg := DefaultConfig()
	require.NoError(t, cfg.Validate(), "off by default")
	cfg.Upstream.PurgeURL = "http://x/purge"
	assert.ErrorContains(t, cfg.Validate(), "upstream.endpoint: must be set")

	cfg = DefaultConfig()
	cfg.Upstream = UpstreamConfig{Endpoint: "nohost", OTLPEndpoint: "a:1", PurgeURL: "ftp://x", NodeRefresh: -1, TLS: UpstreamTLSConfig{CertFile: "c"}}
	err := cfg.Validate()
	require.Error(t, err)
	for _, key := range []string{
		"upstream.endpoint:", "upstream.timeout:", "upstream.max_recv_msg_size_mib:", "upstream.max_send_msg_size_mib:",
		"upstream.service:", "upstream.lookback:", "upstream.node_refresh:", "upstream.max_record_traces:", "upstream.health_interval:",
		"upstream.purge_url:", "upstream.tls:", "upstream.tls.cert_file",
	} {
		assert.Contains(t, err.Error(), key)
	}

	cfg = DefaultConfig()
	cfg.Upstream.Endpoint = "127.0.0.1:17281"
	require.NoError(t, cfg.Validate())
	assert.Equal(t, "127.0.0.1:17281", cfg.Upstream.otlpEndpoint())
	cfg.Upstream.MaxSendMsgSizeMiB = 8
	assert.ErrorContains(t, cfg.Validate(), "upstream.max_send_msg_size_mib: must be >= storage.max_recv_msg_size_mib")

	cfg, err = ParseConfig([]byte("upstream:\n  endpoint: up:17271\n  otlp_endpoint: up:4317\n  timeout: 3s\n"))
	require.NoError(t, err)
	require.NoError(t, cfg.Validate())
	assert.True(t, cfg.Upstream.Enabled())
	assert.Equal(t, "up:4317", cfg.Upstream.otlpEndpoint())
	assert.Equal(t, 3*time.Second, cfg.Upstream.Timeout)
	assert.Equal(t, "clt-ioam", cfg.Upstream.Service, "defaults kept")
}

func scrape(t *testing.T, admin string) string {
	t.Helper()
	resp, err := http.Get(admin + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}
