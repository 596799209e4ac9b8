//go:build e2e

package e2e

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
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
	"google.golang.org/grpc/credentials/insecure"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/api/storagev2"
	"github.com/cross-layer-telemetry/clt/plugin"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// jaegerBin finds the Jaeger binary: $JAEGER_BIN, else <repo>/.cache/bin/jaeger.
func jaegerBin(t testing.TB) string {
	p := os.Getenv("JAEGER_BIN")
	if p == "" {
		wd, err := os.Getwd()
		require.NoError(t, err)
		p = filepath.Join(wd, "..", "..", ".cache", "bin", "jaeger")
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CLT_REQUIRE_PRIVILEGED") == "1" {
			t.Fatalf("no Jaeger binary at %s (make jaeger)", p)
		}
		t.Skipf("no Jaeger binary at %s (make jaeger)", p)
	}
	return p
}

// freeAddr returns a loopback address with a port that was free a moment ago.
// dialLoopback is a plaintext client connection to addr, closed when the
// test ends, accepting responses up to 64 MiB.
func dialLoopback(t testing.TB, addr string) *grpc.ClientConn {
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// spansOfTrace reads trace id through c and counts its spans.
func spansOfTrace(t testing.TB, ctx context.Context, c storagev2.TraceReaderClient, id []byte) int {
	st, err := c.GetTraces(ctx, &storagev2.GetTracesRequest{Query: []*storagev2.GetTraceParams{{TraceId: id}}})
	require.NoError(t, err)
	n := 0
	for {
		td, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return n
		}
		require.NoError(t, err)
		for _, rs := range td.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				n += len(ss.GetSpans())
			}
		}
	}
}

func freeAddr(t testing.TB) string {
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		_ = l.Close()
		// The kernel may hand a closed port out again: two flags of one
		// Jaeger once got the same one, and it exited.
		if _, dup := handedOut.LoadOrStore(addr, true); !dup {
			return addr
		}
	}
}

// handedOut holds the addresses freeAddr has returned in this process.
var handedOut sync.Map

// proc is a started process being waited for: done is closed when it has
// exited, err is then Wait's result. Any number of callers may wait on
// done (a buffered channel read by a startup check left a later stop
// waiting forever).
type proc struct {
	done chan struct{}
	err  error
}

func waitProc(cmd *exec.Cmd) *proc {
	p := &proc{done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p
}

const jaegerConfig = `service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: %[1]s
  jaeger_query:
    storage:
      traces: clt
    http:
      endpoint: %[2]s
    grpc:
      endpoint: %[3]s
  jaeger_storage:
    backends:
      clt:
        grpc:
          endpoint: %[4]s
          tls:
            insecure: true
          timeout: 5s
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %[5]s
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: clt
`

type stack struct {
	queryHTTP string
	otlpGRPC  string
	collector string
	srv       *plugin.Server
}

// remoteStorageConfig is the upstream tier of upstream mode: Jaeger's
// remote_storage extension over its memory backend (%[4]s), serving
// jaeger.storage.v2 and OTLP Export on one port. The pipeline only exists
// because a collector needs one; clt-storage writes to remote_storage's own
// OTLP, which stores before it answers.
const remoteStorageConfig = `service:
  extensions: [jaeger_storage, remote_storage, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: %[1]s
  jaeger_storage:
    backends:
      up:
%[4]s
  remote_storage:
    endpoint: %[2]s
    storage: up
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %[3]s
exporters:
  jaeger_storage_exporter:
    trace_storage: up
`

// startTier runs a remote_storage Jaeger over backend (upstreamMemory, or
// upstreamBadger filled in) with its files in dir, and returns its endpoint.
func startTier(t testing.TB, bin, dir, backend string) (remote string) {
	remote, health := freeAddr(t), freeAddr(t)
	conf := filepath.Join(dir, "remote.yaml")
	require.NoError(t, os.WriteFile(conf, fmt.Appendf(nil, remoteStorageConfig, health, remote, freeAddr(t), backend), 0o644))
	startJaeger(t, bin, conf, health, filepath.Join(dir, "remote.log"))
	return remote
}

// upstreamMemory and upstreamBadger are the backends of the upstream tier.
const (
	upstreamMemory = `        memory:
          max_traces: 100000`
	upstreamBadger = `        badger:
          directories:
            keys: %[1]s/keys
            values: %[1]s/values
          ephemeral: false`
)

// startStack starts clt-storage (embedded badger, or in upstream mode in
// front of a remote_storage Jaeger over backend when backend is not "")
// behind a Jaeger v2 front.
func startStack(t *testing.T, backend string) *stack {
	bin := jaegerBin(t)
	dir := t.TempDir()
	cfg := plugin.DefaultConfig()
	cfg.Storage.Listen = "127.0.0.1:0"
	cfg.Collector.Listen = "127.0.0.1:0"
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Store.Dir = filepath.Join(dir, "data")
	cfg.Store.BlockCacheMB, cfg.Store.MemTableMB = 16, 8
	if backend != "" {
		cfg.Upstream.Endpoint = startTier(t, bin, dir, backend)
		cfg.Upstream.HealthInterval = 200 * time.Millisecond
	}
	srv, err := plugin.New(cfg, plugin.Settings{})
	require.NoError(t, err)
	require.NoError(t, srv.Start(t.Context()))
	t.Cleanup(func() { require.NoError(t, srv.Close()) })

	s := &stack{queryHTTP: freeAddr(t), otlpGRPC: freeAddr(t), collector: srv.CollectorAddr().String(), srv: srv}
	conf := filepath.Join(dir, "jaeger.yaml")
	health := freeAddr(t)
	require.NoError(t, os.WriteFile(conf, fmt.Appendf(nil, jaegerConfig, health, s.queryHTTP, freeAddr(t), srv.StorageAddr(), s.otlpGRPC), 0o644))
	startJaeger(t, bin, conf, health, filepath.Join(dir, "jaeger.log"))
	return s
}

// startJaeger runs the Jaeger binary on conf until the test ends (or stop,
// idempotent), and returns once its healthcheckv2 at health answers.
func startJaeger(t testing.TB, bin, conf, health, logPath string) (stop func()) {
	logf, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(bin, "--config", conf)
	cmd.Env = append(os.Environ(), "OTEL_TRACES_SAMPLER=always_off")
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	exited := waitProc(cmd)
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited.done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited.done
			}
			_ = logf.Close()
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("%s:\n%s", filepath.Base(logPath), tail(b, 4000))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + health + "/status")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-exited.done:
			t.Fatalf("jaeger exited: %v", exited.err)
		default:
		}
		require.True(t, time.Now().Before(deadline), "jaeger not healthy after 60s")
		time.Sleep(200 * time.Millisecond)
	}
	return stop
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

var (
	traceID    = mustHex("c17e2e00000000000000000000000001")
	serverSpan = mustHex("00000000000000a1")
	childSpan  = mustHex("00000000000000a2")
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func record(reporter uint32, seen time.Time, path ...uint32) *collectorv1.IOAMRecord {
	const tt = 0xf00000 | 1<<(23-4) // node, interfaces, timestamps, transit delay
	r := &collectorv1.IOAMRecord{TraceId: traceID, SpanId: serverSpan, NamespaceId: 123, TraceType: tt,
		ReporterNodeId: reporter, ReporterWrote: true, Packets: 2, Carrier: "oss",
		FirstSeenUnixNano: uint64(seen.UnixNano()), LastSeenUnixNano: uint64(seen.Add(time.Millisecond).UnixNano())}
	for i, id := range path {
		r.Hops = append(r.Hops, &collectorv1.Hop{Fields: tt, HopLimit: uint32(64 - i), NodeId: id, IngressIf: id*10 + 1, EgressIf: id*10 + 2,
			TimestampSec: uint32(seen.Unix()), TimestampFrac: uint32(seen.Nanosecond()/1000 + i*10), TransitDelay: 1000 * id})
	}
	return r
}

// uiTrace is the part of Jaeger's v1 UI JSON the test reads.
type uiTrace struct {
	TraceID   string `json:"traceID"`
	Processes map[string]struct {
		ServiceName string `json:"serviceName"`
	} `json:"processes"`
	Spans []struct {
		SpanID        string `json:"spanID"`
		OperationName string `json:"operationName"`
		ProcessID     string `json:"processID"`
		References    []struct {
			SpanID string `json:"spanID"`
		} `json:"references"`
		Tags []struct {
			Key   string `json:"key"`
			Type  string `json:"type"`
			Value any    `json:"value"`
		} `json:"tags"`
		Logs []struct {
			Fields []struct {
				Key   string `json:"key"`
				Value any    `json:"value"`
			} `json:"fields"`
		} `json:"logs"`
		Warnings []string `json:"warnings"`
	} `json:"spans"`
}

func getJSON(t *testing.T, u string) []uiTrace {
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if resp.StatusCode == http.StatusNotFound {
		return nil
	}
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	var out struct {
		Data []uiTrace `json:"data"`
	}
	require.NoError(t, json.Unmarshal(b, &out), string(b))
	return out.Data
}

func TestJaegerShowsIOAM(t *testing.T) { checkShowsIOAM(t, startStack(t, "")) }

// Upstream mode: the same trace, the same assertions, with clt-storage
// stateless in front of a real Jaeger remote_storage tier.
func TestJaegerShowsIOAMUpstream(t *testing.T) {
	t.Run("memory", func(t *testing.T) { checkShowsIOAM(t, startStack(t, upstreamMemory)) })
	t.Run("badger", func(t *testing.T) {
		checkShowsIOAM(t, startStack(t, fmt.Sprintf(upstreamBadger, t.TempDir())))
	})
}

func checkShowsIOAM(t *testing.T, s *stack) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	dial := func(addr string) *grpc.ClientConn { return dialLoopback(t, addr) }
	col := collectorv1.NewCollectorServiceClient(dial(s.collector))
	report := func(recs ...*collectorv1.IOAMRecord) {
		_, err := col.Report(ctx, &collectorv1.ReportRequest{AgentId: "e2e", Records: recs})
		require.NoError(t, err)
	}
	start := time.Now().Add(-2 * time.Second)

	// Before the span: the destination (3) and router 2 saw 1 > 2 > 3.
	report(record(3, start, 1, 2, 3), record(2, start, 1, 2))

	// The span goes in through Jaeger's OTLP receiver.
	otlp := coltracepb.NewTraceServiceClient(dial(s.otlpGRPC))
	str := func(k, v string) *commonpb.KeyValue {
		return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
	}
	_, err := otlp.Export(ctx, &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", "clt-e2e")}},
		ScopeSpans: []*tracepb.ScopeSpans{{Scope: &commonpb.InstrumentationScope{Name: "e2e"}, Spans: []*tracepb.Span{
			{TraceId: traceID, SpanId: serverSpan, Name: "GET /api", Kind: tracepb.Span_SPAN_KIND_SERVER,
				StartTimeUnixNano: uint64(start.UnixNano()), EndTimeUnixNano: uint64(start.Add(50 * time.Millisecond).UnixNano())},
			{TraceId: traceID, SpanId: childSpan, ParentSpanId: serverSpan, Name: "db", Kind: tracepb.Span_SPAN_KIND_CLIENT,
				StartTimeUnixNano: uint64(start.Add(time.Millisecond).UnixNano()), EndTimeUnixNano: uint64(start.Add(5 * time.Millisecond).UnixNano())},
		}}},
	}}})
	require.NoError(t, err)

	// After the span: the path changed to 1 > 4 > 3, and router 5 reported a
	// path nobody downstream confirmed.
	report(record(3, start.Add(time.Second), 1, 4, 3), record(5, start.Add(time.Second), 1, 5))

	base := "http://" + s.queryHTTP
	idHex := hex.EncodeToString(traceID)
	var traces []uiTrace
	deadline := time.Now().Add(30 * time.Second)
	for {
		traces = getJSON(t, base+"/api/traces/"+idHex)
		if len(traces) == 1 && len(traces[0].Spans) > 2 {
			break
		}
		require.True(t, time.Now().Before(deadline), "trace not visible in Jaeger after 30s")
		time.Sleep(200 * time.Millisecond)
	}

	var checked bool
	var network, warningSpans []string // "service: operation"
	for _, sp := range traces[0].Spans {
		tags := map[string]any{}
		for _, tg := range sp.Tags {
			tags[tg.Key] = tg.Value
		}
		if tags[plugin.AttrSynthetic] == true {
			require.Len(t, sp.References, 1)
			assert.Equal(t, hex.EncodeToString(serverSpan), sp.References[0].SpanID, "network spans are children of the span")
			entry := traces[0].Processes[sp.ProcessID].ServiceName + ": " + sp.OperationName
			if strings.HasPrefix(sp.OperationName, "ioam ⚠ ") {
				assert.Equal(t, true, tags["error"], "a warning span is flagged as an error in the UI")
				warningSpans = append(warningSpans, entry)
			} else {
				network = append(network, entry)
			}
			continue
		}
		if sp.SpanID != hex.EncodeToString(serverSpan) {
			assert.NotContains(t, tags, plugin.AttrPath, "child span has no records")
			continue
		}
		checked = true
		assert.Equal(t, "1 > 2 > 3", tags[plugin.AttrPath])
		assert.EqualValues(t, 3, tags[plugin.AttrHopCount])
		assert.EqualValues(t, 123, tags[plugin.AttrNamespaceID])
		assert.EqualValues(t, 3, tags[plugin.AttrReporters], "nodes 2, 3 and 5")
		assert.EqualValues(t, 4, tags[plugin.AttrPackets], "the destination saw 2 packets on each path; the routers saw the same ones")
		assert.EqualValues(t, 3000, tags[plugin.AttrTransitDelayMaxNs])
		assert.Equal(t, "0xf80000", tags[plugin.AttrTraceType])
		assert.Equal(t, true, tags[plugin.AttrPathChanged])
		assert.Equal(t, true, tags[plugin.AttrUnconfirmed])
		assert.NotContains(t, tags, plugin.AttrOverflow)
		assert.NotContains(t, tags, "@jaeger@warnings", "Jaeger moves it to warnings")

		var hops []float64
		var summaries []string
		for _, l := range sp.Logs {
			f := map[string]any{}
			for _, kv := range l.Fields {
				f[kv.Key] = kv.Value
			}
			if name, _ := f["event"].(string); plugin.IsHopEvent(name) {
				summaries = append(summaries, name)
				hops = append(hops, f[plugin.AttrNodeID].(float64))
				assert.Contains(t, f, plugin.AttrIngressIf)
				assert.Contains(t, f, plugin.AttrTimestamp)
				assert.EqualValues(t, 2, f[plugin.AttrPackets])
			}
		}
		assert.Equal(t, []float64{1, 2, 3}, hops)
		require.Len(t, summaries, 3)
		assert.Equal(t, "hop 0 · node 1 · if 11 → 12", summaries[0], "the event name is the collapsed summary")
		assert.Equal(t, "hop 1 · node 2 · if 21 → 22 · +0.010 ms", summaries[1])

		assert.Equal(t, []string{
			"ioam: path changed during the span: 1 > 2 > 3 then 1 > 4 > 3",
			"ioam: report from node 5 not confirmed downstream (path 1 > 5)",
		}, sp.Warnings, "one warning per event")
	}
	assert.True(t, checked, "server span present")
	// The order of the span groups in Jaeger's JSON is Jaeger's (it varied
	// between runs in upstream mode); the UI sorts spans by time.
	assert.ElementsMatch(t, []string{"node 2: ioam node 1 → node 2", "node 3: ioam node 2 → node 3"}, network)
	assert.ElementsMatch(t, []string{
		"node 4: ioam ⚠ path changed during the span: 1 > 2 > 3 then 1 > 4 > 3",
		"node 5: ioam ⚠ report from node 5 not confirmed downstream (path 1 > 5)",
	}, warningSpans)

	searchTag := func(key, value string) int {
		tags, err := json.Marshal(map[string]string{key: value})
		require.NoError(t, err)
		v := url.Values{"service": {"clt-e2e"}, "tags": {string(tags)}, "limit": {"20"}, "lookback": {"1h"}}
		return len(getJSON(t, base+"/api/traces?"+v.Encode()))
	}
	assert.Equal(t, 1, searchTag(plugin.AttrPathChanged, "true"))
	assert.Equal(t, 1, searchTag(plugin.AttrUnconfirmed, "true"))
	assert.Equal(t, 0, searchTag(plugin.AttrOverflow, "true"))
	assert.Equal(t, 1, searchTag(plugin.AttrPath, "1 > 2 > 3"))
	assert.Equal(t, 1, searchTag(plugin.AttrHopCount, "3"))
	assert.Equal(t, 0, searchTag(plugin.AttrHopCount, "4"))
	assert.Equal(t, 1, searchTag(plugin.AttrReporters, "3"))

	search := func(node string) int {
		v := url.Values{"service": {"clt-e2e"}, "tag": {"ioam.node_id:" + node}, "limit": {"20"}, "lookback": {"1h"}}
		return len(getJSON(t, base+"/api/traces?"+v.Encode()))
	}
	assert.Equal(t, 1, search("2"), "crossed node 2")
	assert.Equal(t, 1, search("4"), "crossed node 4 after the path change")
	assert.Equal(t, 0, search("99"), "never crossed node 99")
}
