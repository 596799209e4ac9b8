package plugin

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/api/storagev2"
	"github.com/cross-layer-telemetry/clt/ioamstore"
)

// Routers as services through the real server and badger: frontend (span 1)
// calls backend (span 2) over athos (node 1, hop 0) → porthos (2, named in
// the config) → aramis (3, named by its agent).
func TestRoutersAsServices(t *testing.T) {
	e := startEnv(t, func(c *Config) { c.Nodes = map[string]string{"2": "porthos"} })
	now := time.Now()
	e.export(t, spanSpec{trace: 1, span: 1, service: "frontend", name: "GET /check", kind: 3, start: now, dur: 10 * time.Millisecond},
		spanSpec{trace: 1, span: 2, service: "backend", name: "check", kind: 2, start: now, dur: 5 * time.Millisecond, parent: 1},
		// Trace 2 has no records: it keeps the direct edge.
		spanSpec{trace: 2, span: 1, service: "frontend", name: "GET /other", start: now, dur: time.Millisecond},
		spanSpec{trace: 2, span: 2, service: "backend", name: "other", start: now, dur: time.Millisecond, parent: 1},
		// A service with the name of a router.
		spanSpec{trace: 3, span: 1, service: "aramis", name: "serve", start: now, dur: time.Millisecond})
	r := rec(3, 0, 1, 2, 3)
	r.TraceId, r.SpanId, r.ReporterNodeName = tid(1), sid(1), "aramis"
	_, err := e.collector.Report(t.Context(), &collectorv1.ReportRequest{AgentId: "aramis", Records: []*collectorv1.IOAMRecord{r}})
	require.NoError(t, err)

	svcs, err := e.reader.GetServices(t.Context(), &storagev2.GetServicesRequest{})
	require.NoError(t, err)
	assert.Equal(t, []string{"aramis", "backend", "frontend", "porthos"}, svcs.Services, "hop 0 (node 1) only sent: not a service")

	ops, err := e.reader.GetOperations(t.Context(), &storagev2.GetOperationsRequest{Service: "porthos"})
	require.NoError(t, err)
	require.Len(t, ops.Operations, 1)
	assert.Equal(t, NetworkSpanName("node 1", "porthos"), ops.Operations[0].Name)
	assert.Equal(t, "ioam node 1 → porthos", ops.Operations[0].Name)
	assert.Equal(t, "internal", ops.Operations[0].SpanKind)
	ops, err = e.reader.GetOperations(t.Context(), &storagev2.GetOperationsRequest{Service: "porthos", SpanKind: "server"})
	require.NoError(t, err)
	assert.Empty(t, ops.Operations)
	ops, err = e.reader.GetOperations(t.Context(), &storagev2.GetOperationsRequest{Service: "frontend"})
	require.NoError(t, err)
	assert.Len(t, ops.Operations, 2, "services keep their own operations only")
	ops, err = e.reader.GetOperations(t.Context(), &storagev2.GetOperationsRequest{Service: "aramis"})
	require.NoError(t, err)
	assert.Equal(t, []string{"ioam porthos → aramis", "serve"}, []string{ops.Operations[0].Name, ops.Operations[1].Name}, "a service and a router: both")

	ids := func(q *storagev2.TraceQueryParameters) [][]byte {
		resp, err := e.reader.FindTraceIDs(t.Context(), &storagev2.FindTracesRequest{Query: q})
		require.NoError(t, err)
		var out [][]byte
		for _, f := range resp.TraceIds {
			out = append(out, f.TraceId)
		}
		return out
	}
	assert.Equal(t, [][]byte{tid(1)}, ids(&storagev2.TraceQueryParameters{ServiceName: "porthos"}), "traces through the router")
	assert.Equal(t, [][]byte{tid(1)}, ids(&storagev2.TraceQueryParameters{ServiceName: "porthos", OperationName: "ioam node 1 → porthos"}))
	assert.Equal(t, [][]byte{tid(1)}, ids(&storagev2.TraceQueryParameters{ServiceName: "node 2"}), "the fallback label finds its node")
	assert.Empty(t, ids(&storagev2.TraceQueryParameters{ServiceName: "porthos", OperationName: "GET /check"}), "routers have only network operations")
	assert.Len(t, ids(&storagev2.TraceQueryParameters{ServiceName: "frontend"}), 2, "a service with spans searches spans")
	assert.Empty(t, ids(&storagev2.TraceQueryParameters{ServiceName: "frontend", OperationName: "ioam porthos → aramis"}),
		"that network span belongs to aramis, not frontend")
	assert.Empty(t, ids(&storagev2.TraceQueryParameters{ServiceName: "porthos", OperationName: "ioam aramis → porthos"}), "no such link")
	assert.Empty(t, ids(&storagev2.TraceQueryParameters{ServiceName: "porthos", OperationName: "ioam porthos → aramis"}), "that link is aramis's")
	assert.Equal(t, [][]byte{tid(3)}, ids(&storagev2.TraceQueryParameters{ServiceName: "aramis"}), "a stored service searches its spans")
	assert.Equal(t, [][]byte{tid(1)}, ids(&storagev2.TraceQueryParameters{ServiceName: "aramis", OperationName: "ioam porthos → aramis"}),
		"its network operation searches the records through the node")
	found := e.findTraces(t, &storagev2.TraceQueryParameters{ServiceName: "porthos"})
	real, synthetic := splitSynthetic(spansOf(found))
	assert.Len(t, real, 2, "FindTraces returns the whole trace")
	var services []string
	for _, td := range found {
		for _, rs := range td.ResourceSpans {
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.GetKey() == "service.name" && attrMap(rs.ScopeSpans[0].Spans[0].Attributes)[AttrSynthetic].GetBoolValue() {
					services = append(services, kv.GetValue().GetStringValue())
				}
			}
		}
	}
	assert.Len(t, synthetic, 2)
	assert.Equal(t, []string{"porthos", "aramis"}, services, "network spans under the same router services")

	deps, err := e.deps.GetDependencies(t.Context(), &storagev2.GetDependenciesRequest{
		StartTime: timestamppb.New(now.Add(-time.Minute)), EndTime: timestamppb.New(now.Add(time.Minute))})
	require.NoError(t, err)
	got := map[string]uint64{}
	for _, d := range deps.Dependencies {
		got[d.Parent+" → "+d.Child] = d.CallCount
	}
	assert.Equal(t, map[string]uint64{
		"frontend → porthos": 1, "porthos → aramis": 1, "aramis → backend": 1, // trace 1, through the network
		"frontend → backend": 1, // trace 2, no records
	}, got)
}

// After a purge the routers are gone with the records.
func TestRoutersPurged(t *testing.T) {
	e := startEnv(t, func(c *Config) { c.Admin.Purge = true })
	r := rec(3, 0, 1, 3)
	r.TraceId, r.SpanId = tid(1), sid(1)
	_, err := e.collector.Report(t.Context(), &collectorv1.ReportRequest{AgentId: "a", Records: []*collectorv1.IOAMRecord{r}})
	require.NoError(t, err)
	svcs, err := e.reader.GetServices(t.Context(), &storagev2.GetServicesRequest{})
	require.NoError(t, err)
	assert.Equal(t, []string{"node 3"}, svcs.Services)
	e.purge(t)
	svcs, err = e.reader.GetServices(t.Context(), &storagev2.GetServicesRequest{})
	require.NoError(t, err)
	assert.Empty(t, svcs.Services)
}

func (e *env) purge(t *testing.T) {
	t.Helper()
	resp, err := http.Post(e.admin+"/purge", "application/json", nil) // text/plain is refused (CSRF)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// The dependency graph follows enrichment's canonical path: the longest,
// then the most packets; direct edges of calls drawn through the network go.
func TestRouterDependenciesCanonicalPath(t *testing.T) {
	short := rec(3, 0, 1, 3)
	short.Packets = 100
	long := rec(3, 1, 1, 2, 3)
	longer := rec(4, 2, 1, 5, 6, 4)
	longer.Packets = 1
	other := rec(4, 3, 1, 7, 8, 4)
	other.Packets = 2
	assert.Equal(t, []NodeKey{{ID: 1}, {ID: 2}, {ID: 3}}, mainPath([]*collectorv1.IOAMRecord{short, long}))
	assert.Equal(t, []NodeKey{{ID: 1}, {ID: 7}, {ID: 8}, {ID: 4}}, mainPath([]*collectorv1.IOAMRecord{long, longer, other}))
	assert.Nil(t, mainPath([]*collectorv1.IOAMRecord{rec(1, 0, 1)}), "one hop: no link")

	data := func(rs ...*collectorv1.IOAMRecord) [][]byte {
		var out [][]byte
		for _, r := range rs {
			b, err := proto.Marshal(r)
			require.NoError(t, err)
			out = append(out, b)
		}
		return out
	}
	rd := &reader{}
	got := rd.routerDependencies(
		[]ioamstore.Dependency{{Parent: "a", Child: "b", CallCount: 3}, {Parent: "b", Child: "c", CallCount: 1}},
		[]ioamstore.RecordedSpan{
			{Service: "a", Children: []string{"b", "b"}, Records: data(short, long)},
			{Service: "b", Records: data(rec(9, 0, 1))}, // no link: nothing drawn
		})
	assert.Equal(t, []ioamstore.Dependency{
		{Parent: "a", Child: "b", CallCount: 1}, // the call without records stays direct
		{Parent: "a", Child: "node 2", CallCount: 2},
		{Parent: "b", Child: "c", CallCount: 1},
		{Parent: "node 2", Child: "node 3", CallCount: 2},
		{Parent: "node 3", Child: "b", CallCount: 2},
	}, got)
}
