package agent

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
	"github.com/cross-layer-telemetry/clt/kernel/sysctl"
)

// fakeSource hands its batches to the pipeline, then waits for Close.
type fakeSource struct {
	batches [][]Event
	stop    chan struct{}
	once    sync.Once
}

func newFakeSource(b ...[]Event) *fakeSource {
	return &fakeSource{batches: b, stop: make(chan struct{})}
}

func (f *fakeSource) Name() string { return "fake" }
func (f *fakeSource) Run(ctx context.Context, handle func([]Event)) error {
	for _, b := range f.batches {
		handle(b)
	}
	select {
	case <-ctx.Done():
	case <-f.stop:
	}
	return nil
}
func (f *fakeSource) Close() error { f.once.Do(func() { close(f.stop) }); return nil }

func TestAgentEndToEndWithFakes(t *testing.T) {
	f := newFakeCollector(t)
	cfg := testConfig()
	node := uint32(3)
	cfg.NodeID = &node
	cfg.AgentID = "r2"
	cfg.NodeName = "porthos"
	cfg.Aggregation.Window = time.Minute // only shutdown flushes
	cfg.Export = testExportConfig(f.addr)
	cfg.Admin.Listen = "127.0.0.1:0"

	own := ownNode(t, 1, testIDs, ioam6.DefaultSchemaID)
	good := Event{NamespaceID: 123, NodeLen: 4, TraceType: uint32(typeOSS),
		Data: eventData(t, linuxNode(3, 62, 1), linuxNode(2, 63, 1), own)}
	bad := Event{NamespaceID: 123, NodeLen: 5, TraceType: uint32(typeOSS), Data: good.Data}
	src := newFakeSource([]Event{good, good, bad}, []Event{good})

	a, err := New(cfg, Settings{Source: src})
	require.NoError(t, err)
	require.NoError(t, a.Start(t.Context()))
	waitFor(t, "events decoded", func() bool { return testutil.ToFloat64(a.Metrics().EventsDecoded) == 3 })
	assert.Equal(t, 1.0, testutil.ToFloat64(a.Metrics().EventsMalformed.WithLabelValues(ReasonNodeLen)))

	resp, err := http.Get("http://" + a.AdminAddr() + "/healthz")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	resp.Body.Close()
	resp, err = http.Get("http://" + a.AdminAddr() + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"clt_agent_events_received_total{source=\"fake\"} 4",
		"clt_agent_events_malformed_total{reason=\"node_len\"} 1", "clt_agent_aggregates_open 1",
		"clt_agent_records_dropped_total{reason=\"queue_full\"} 0", "clt_agent_export_latency_seconds_bucket",
		"go_goroutines"} {
		assert.Contains(t, string(body), name)
	}
	require.Empty(t, f.records(), "nothing flushed before shutdown")

	require.NoError(t, a.Close())
	require.NoError(t, a.Close())
	recs := f.records()
	require.Len(t, recs, 1, "shutdown flushes the open aggregate and drains the queue")
	assert.Equal(t, uint64(3), recs[0].Packets)
	assert.Equal(t, uint32(3), recs[0].ReporterNodeId)
	assert.Equal(t, "porthos", recs[0].ReporterNodeName, "node_name")
	assert.True(t, recs[0].ReporterWrote)
	assert.Len(t, recs[0].Hops, 3)
}

func TestRunStopsOnContextAndReportsConfigErrors(t *testing.T) {
	cfg := testConfig()
	cfg.Export.Collector = ""
	err := Run(t.Context(), cfg, Settings{Source: newFakeSource()})
	require.ErrorContains(t, err, "export")

	var out strings.Builder
	cfg.Export.Stdout = true
	cfg.Admin.Listen = ""
	node := uint32(3)
	cfg.NodeID = &node
	data := eventData(t, linuxNode(3, 62, 1), ownNode(t, 1, testIDs, ioam6.DefaultSchemaID))
	src := newFakeSource([]Event{{NamespaceID: 123, NodeLen: 4, TraceType: uint32(typeOSS), Data: data}})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	require.NoError(t, Run(ctx, cfg, Settings{Source: src, Stdout: &out}))
	assert.Contains(t, out.String(), `"span_id":"WloAAAAAAAE="`)
	host, err := os.Hostname()
	require.NoError(t, err)
	assert.Contains(t, out.String(), `"reporter_node_name":"`+host+`"`, "node_name defaults to the host name")
	assert.Equal(t, 1, strings.Count(out.String(), "\n"))
}

func TestAgentCloseWithoutStart(t *testing.T) {
	a, err := New(testConfig(), Settings{})
	require.NoError(t, err)
	require.NoError(t, a.Close())
}

// TestAgentLearnsWideNodeID: node_id_wide from the config, else from the
// net.ipv6.ioam6_id_wide sysctl of the node's namespace.
func TestAgentLearnsWideNodeID(t *testing.T) {
	start := func(cfg Config) *Agent {
		t.Helper()
		cfg.Admin.Listen = ""
		cfg.Export.Collector = ""
		cfg.Export.Stdout = true
		a, err := New(cfg, Settings{Source: newFakeSource(), Stdout: io.Discard})
		require.NoError(t, err)
		require.NoError(t, a.Start(t.Context()))
		t.Cleanup(func() { _ = a.Close() })
		return a
	}
	cfg := testConfig()
	node, wide := uint32(3), uint64(0x1000003)
	cfg.NodeID, cfg.NodeIDWide = &node, &wide
	assert.Equal(t, wide, start(cfg).LocalWideNodeID(), "node_id_wide")

	cfg.NodeIDWide = nil
	want, err := sysctl.Default.WideNodeID()
	require.NoError(t, err, "net.ipv6.ioam6_id_wide is readable without privilege")
	assert.Equal(t, want, start(cfg).LocalWideNodeID(), "the sysctl")
}
