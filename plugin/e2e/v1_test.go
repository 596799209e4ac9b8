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
	"strconv"
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
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/api/storagev1"
	"github.com/cross-layer-telemetry/clt/plugin"
)

// binOr finds a built binary: $env, else <repo>/.cache/bin/<name>.
func binOr(t *testing.T, env, name, target string) string {
	p := os.Getenv(env)
	if p == "" {
		wd, err := os.Getwd()
		require.NoError(t, err)
		p = filepath.Join(wd, "..", "..", ".cache", "bin", name)
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CLT_REQUIRE_PRIVILEGED") == "1" {
			t.Fatalf("no %s at %s (make %s)", name, p, target)
		}
		t.Skipf("no %s at %s (make %s)", name, p, target)
	}
	return p
}

type v1Stack struct {
	query     string // Jaeger v1 query HTTP
	otlpGRPC  string // Jaeger v1 collector OTLP gRPC
	collector string // clt-storage IOAM collector
	admin     string // clt-storage admin HTTP ("" when not in-process)
	jaeger    *exec.Cmd
	stop      func() // stops Jaeger v1 (idempotent)
}

// startClt starts an in-process clt-storage on free loopback ports.
func startClt(t *testing.T) *plugin.Server { return startCltWith(t, nil) }

// startCltWith is startClt with mutate applied to the config.
func startCltWith(t *testing.T, mutate func(*plugin.Config)) *plugin.Server {
	cfg := plugin.DefaultConfig()
	cfg.Storage.Listen = "127.0.0.1:0"
	cfg.Collector.Listen = "127.0.0.1:0"
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Store.Dir = filepath.Join(t.TempDir(), "data")
	cfg.Store.BlockCacheMB, cfg.Store.MemTableMB = 16, 8
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := plugin.New(cfg, plugin.Settings{})
	require.NoError(t, err)
	require.NoError(t, srv.Start(t.Context()))
	t.Cleanup(func() { require.NoError(t, srv.Close()) })
	return srv
}

// startJaegerV1 runs a Jaeger v1 all-in-one with every port free and on
// loopback; env picks the storage, args add version-specific flags.
func startJaegerV1(t *testing.T, bin string, env, args []string) *v1Stack {
	s := &v1Stack{query: freeAddr(t), otlpGRPC: freeAddr(t)}
	admin := freeAddr(t)
	logf, err := os.Create(filepath.Join(t.TempDir(), "jaeger-v1.log"))
	require.NoError(t, err)
	cmd := exec.Command(bin, append([]string{
		"--admin.http.host-port=" + admin,
		"--collector.grpc-server.host-port=" + freeAddr(t),
		"--collector.http-server.host-port=" + freeAddr(t),
		"--collector.otlp.grpc.host-port=" + s.otlpGRPC,
		"--collector.otlp.http.host-port=" + freeAddr(t),
		"--query.grpc-server.host-port=" + freeAddr(t),
		"--query.http-server.host-port=" + s.query,
	}, args...)...)
	cmd.Env = append(append(os.Environ(), "OTEL_TRACES_SAMPLER=always_off"), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	s.jaeger = cmd
	exited := waitProc(cmd)
	var once sync.Once
	s.stop = func() {
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
		s.stop()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("jaeger v1 log:\n%s", tail(b, 4000))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + admin + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-exited.done:
			t.Fatalf("jaeger v1 exited: %v", exited.err)
		default:
		}
		require.True(t, time.Now().Before(deadline), "jaeger v1 not healthy after 60s")
		time.Sleep(200 * time.Millisecond)
	}
	return s
}

// TestJaegerV1ArchiveRemote: Jaeger v1.76 with its archive configured as a
// second remote storage (--grpc-storage-archive.server, v1.58+) on
// clt-storage's archive.listen. The UI's archive button stores the trace
// as shown (IOAM tags, hop logs, warnings, network spans); once the trace
// has expired from the main store, Jaeger still shows it, from the archive.
func TestJaegerV1ArchiveRemote(t *testing.T) {
	const ttl = 30 * time.Second // the main store's: long enough for checkV1IOAM
	srv := startCltWith(t, func(c *plugin.Config) {
		c.Archive.Enabled, c.Archive.Listen = true, "127.0.0.1:0"
		c.Store.SpanTTL, c.Store.RecordTTL = ttl, ttl
	})
	s := startJaegerV1(t, binOr(t, "JAEGER_V1_BIN", "jaeger-v1", "jaeger-v1"), []string{"SPAN_STORAGE_TYPE=grpc"}, []string{
		"--grpc-storage.server=" + srv.StorageAddr().String(),
		"--grpc-storage-archive.enabled=true",
		"--grpc-storage-archive.server=" + srv.ArchiveAddr().String(),
	})
	s.collector, s.admin = srv.CollectorAddr().String(), srv.AdminAddr().String()
	checkV1IOAM(t, s)
	id := hex.EncodeToString(v1TraceID)
	resp, err := http.Post("http://"+s.query+"/api/archive/"+id, "application/json", nil)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)

	// The archive port holds the trace as it was shown.
	dial := func(addr string) *grpc.ClientConn { return dialLoopback(t, addr) }
	getTrace := func(addr string) ([]*storagev1.Span, error) {
		st, err := storagev1.NewSpanReaderPluginClient(dial(addr)).GetTrace(t.Context(), &storagev1.GetTraceRequest{TraceId: v1TraceID})
		require.NoError(t, err)
		var spans []*storagev1.Span
		for {
			c, err := st.Recv()
			if errors.Is(err, io.EOF) {
				return spans, nil
			}
			if err != nil {
				return nil, err
			}
			spans = append(spans, c.GetSpans()...)
		}
	}
	archived, err := getTrace(srv.ArchiveAddr().String())
	require.NoError(t, err)
	require.Greater(t, len(archived), 2, "the two spans and the network spans")
	hasPath := func(spans []*storagev1.Span) bool {
		for _, sp := range spans {
			for _, kv := range sp.GetTags() {
				if kv.GetKey() == plugin.AttrPath && kv.GetVStr() == "1 > 2 > 3" && len(sp.GetWarnings()) > 0 {
					return true
				}
			}
		}
		return false
	}
	assert.True(t, hasPath(archived), "the archived server span keeps its IOAM tags and warnings")

	// Expired from the main store...
	require.Eventually(t, func() bool {
		_, err := getTrace(srv.StorageAddr().String())
		return status.Code(err) == codes.NotFound
	}, ttl+30*time.Second, 500*time.Millisecond, "trace still in the main store after its TTL")
	// ...Jaeger finds it in the archive, as it was.
	traces := getJSON(t, "http://"+s.query+"/api/traces/"+id)
	require.Len(t, traces, 1)
	assert.Len(t, traces[0].Spans, len(archived))
	var shown bool
	for _, sp := range traces[0].Spans {
		for _, tg := range sp.Tags {
			if tg.Key == plugin.AttrPath && tg.Value == "1 > 2 > 3" {
				shown = true
				assert.NotEmpty(t, sp.Warnings)
			}
		}
	}
	assert.True(t, shown, "Jaeger shows the archived trace with its IOAM tags")
}

var (
	v1TraceID    = mustHex("c17e2e00000000000000000000000011")
	v1ServerSpan = mustHex("00000000000000b1")
	v1ChildSpan  = mustHex("00000000000000b2")
)

// TestJaegerV1ShowsIOAM: Jaeger v1.76's own HTTP API, over clt-storage's
// remote storage_v1 API (SPAN_STORAGE_TYPE=grpc --grpc-storage.server).
func TestJaegerV1ShowsIOAM(t *testing.T) {
	srv := startClt(t)
	s := startJaegerV1(t, binOr(t, "JAEGER_V1_BIN", "jaeger-v1", "jaeger-v1"),
		[]string{"SPAN_STORAGE_TYPE=grpc"}, []string{"--grpc-storage.server=" + srv.StorageAddr().String()})
	s.collector, s.admin = srv.CollectorAddr().String(), srv.AdminAddr().String()
	checkV1IOAM(t, s)
}

// checkV1IOAM: Jaeger v1's own HTTP API shows what Jaeger v2 shows: the IOAM
// tags, the hop logs and the warnings; finds the trace by ioam.node_id;
// lists the dependency. An OTLP trace goes in through Jaeger, its IOAM
// records through clt-storage's collector API.
func checkV1IOAM(t *testing.T, s *v1Stack) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	dial := func(addr string) *grpc.ClientConn { return dialLoopback(t, addr) }
	col := collectorv1.NewCollectorServiceClient(dial(s.collector))
	report := func(recs ...*collectorv1.IOAMRecord) {
		for _, r := range recs {
			r.TraceId, r.SpanId = v1TraceID, v1ServerSpan
		}
		_, err := col.Report(ctx, &collectorv1.ReportRequest{AgentId: "e2e-v1", Records: recs})
		require.NoError(t, err)
	}
	start := time.Now().Add(-2 * time.Second)
	report(record(3, start, 1, 2, 3), record(2, start, 1, 2))

	str := func(k, v string) *commonpb.KeyValue {
		return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
	}
	otlp := coltracepb.NewTraceServiceClient(dial(s.otlpGRPC))
	span := func(svc string, sp *tracepb.Span) *tracepb.ResourceSpans {
		return &tracepb.ResourceSpans{
			Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", svc)}},
			ScopeSpans: []*tracepb.ScopeSpans{{Scope: &commonpb.InstrumentationScope{Name: "e2e"}, Spans: []*tracepb.Span{sp}}},
		}
	}
	_, err := otlp.Export(ctx, &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{
		span("clt-e2e-v1", &tracepb.Span{TraceId: v1TraceID, SpanId: v1ServerSpan, Name: "GET /api", Kind: tracepb.Span_SPAN_KIND_SERVER,
			StartTimeUnixNano: uint64(start.UnixNano()), EndTimeUnixNano: uint64(start.Add(50 * time.Millisecond).UnixNano())}),
		span("clt-e2e-v1-db", &tracepb.Span{TraceId: v1TraceID, SpanId: v1ChildSpan, ParentSpanId: v1ServerSpan, Name: "query", Kind: tracepb.Span_SPAN_KIND_CLIENT,
			StartTimeUnixNano: uint64(start.Add(time.Millisecond).UnixNano()), EndTimeUnixNano: uint64(start.Add(5 * time.Millisecond).UnixNano())}),
	}})
	require.NoError(t, err)
	report(record(3, start.Add(time.Second), 1, 4, 3), record(5, start.Add(time.Second), 1, 5))

	base := "http://" + s.query
	var traces []uiTrace
	deadline := time.Now().Add(30 * time.Second)
	for {
		traces = getJSON(t, base+"/api/traces/"+hex.EncodeToString(v1TraceID))
		if len(traces) == 1 && len(traces[0].Spans) >= 2 {
			break
		}
		if time.Now().After(deadline) && s.admin == "" {
			t.Fatalf("trace not visible in Jaeger v1 after 30s (%d traces)", len(traces))
		}
		if time.Now().After(deadline) {
			resp, err := http.Get("http://" + s.admin + "/metrics")
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var m []string
			for _, l := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(l, "clt_storage_spans") || strings.HasPrefix(l, "clt_storage_query_errors") {
					m = append(m, l)
				}
			}
			t.Fatalf("trace not visible in Jaeger v1 after 30s (%d traces); clt-storage: %s", len(traces), strings.Join(m, "; "))
		}
		time.Sleep(200 * time.Millisecond)
	}
	var checked bool
	var network []string // "service: operation" of the enrichment's network spans
	for _, sp := range traces[0].Spans {
		tags := map[string]any{}
		for _, tg := range sp.Tags {
			tags[tg.Key] = tg.Value
		}
		if tags[plugin.AttrSynthetic] == true {
			network = append(network, traces[0].Processes[sp.ProcessID].ServiceName+": "+sp.OperationName)
			continue
		}
		if sp.SpanID != hex.EncodeToString(v1ServerSpan) {
			continue
		}
		checked = true
		assert.Equal(t, "1 > 2 > 3", tags[plugin.AttrPath])
		assert.EqualValues(t, 3, tags[plugin.AttrHopCount])
		assert.EqualValues(t, 123, tags[plugin.AttrNamespaceID])
		assert.EqualValues(t, 3000, tags[plugin.AttrTransitDelayMaxNs])
		assert.Equal(t, "server", tags["span.kind"])
		assert.NotContains(t, tags, "@jaeger@warnings", "v1 carries them as span warnings")
		var hops []float64
		for _, l := range sp.Logs {
			f := map[string]any{}
			for _, kv := range l.Fields {
				f[kv.Key] = kv.Value
			}
			if name, _ := f["event"].(string); plugin.IsHopEvent(name) {
				hops = append(hops, f[plugin.AttrNodeID].(float64))
				assert.Contains(t, f, plugin.AttrIngressIf)
			}
		}
		assert.Equal(t, []float64{1, 2, 3}, hops)
		joined := strings.Join(sp.Warnings, "\n")
		assert.Contains(t, joined, "ioam: path changed during the span: 1 > 2 > 3 then 1 > 4 > 3")
		assert.Contains(t, joined, "ioam: report from node 5 not confirmed downstream (path 1 > 5)")
	}
	assert.True(t, checked, "server span present")
	assert.Subset(t, network, []string{"node 2: ioam node 1 → node 2", "node 3: ioam node 2 → node 3"}, "network spans as in v2")

	search := func(node string) int {
		v := url.Values{"service": {"clt-e2e-v1"}, "tag": {"ioam.node_id:" + node}, "limit": {"20"}, "lookback": {"1h"}}
		return len(getJSON(t, base+"/api/traces?"+v.Encode()))
	}
	assert.Equal(t, 1, search("2"))
	assert.Equal(t, 1, search("4"))
	assert.Equal(t, 0, search("99"))

	var deps struct {
		Data []struct {
			Parent    string `json:"parent"`
			Child     string `json:"child"`
			CallCount int    `json:"callCount"`
		} `json:"data"`
	}
	resp, err := http.Get(fmt.Sprintf("%s/api/dependencies?endTs=%d&lookback=%d", base, time.Now().UnixMilli(), time.Hour.Milliseconds()))
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	require.NoError(t, json.Unmarshal(b, &deps), string(b))
	// The call reaches the db, directly or through the routers clt-storage
	// shows as services.
	next := map[string][]string{}
	for _, d := range deps.Data {
		if d.CallCount > 0 {
			next[d.Parent] = append(next[d.Parent], d.Child)
		}
	}
	seen := map[string]bool{}
	var reach func(string) bool
	reach = func(n string) bool {
		if n == "clt-e2e-v1-db" {
			return true
		}
		if seen[n] {
			return false
		}
		seen[n] = true
		for _, c := range next[n] {
			if reach(c) {
				return true
			}
		}
		return false
	}
	assert.True(t, reach("clt-e2e-v1"), "dependencies lead from clt-e2e-v1 to clt-e2e-v1-db: %s", b)
}

func freeUDP(t *testing.T) string {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	return c.LocalAddr().String()
}

// buildCltStorage builds the clt-storage binary a Jaeger v1 host spawns.
func buildCltStorage(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "clt-storage")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/clt-storage").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// startJaegerV157 runs Jaeger v1.57's all-in-one with clt-storage as its
// go-plugin sidecar (SPAN_STORAGE_TYPE=grpc-plugin) and pluginConfig as the
// plugin's --config.
func startJaegerV157(t *testing.T, pluginConfig string) *v1Stack {
	bin := binOr(t, "JAEGER_V157_BIN", "jaeger-v157", "jaeger-v157")
	conf := filepath.Join(t.TempDir(), "clt-storage.yaml")
	require.NoError(t, os.WriteFile(conf, []byte(pluginConfig), 0o644))
	return startJaegerV1(t, bin, []string{"SPAN_STORAGE_TYPE=grpc-plugin"}, append(v157AgentPorts(t),
		"--grpc-storage-plugin.binary="+buildCltStorage(t),
		"--grpc-storage-plugin.configuration-file="+conf))
}

// v157AgentPorts moves the agent v1.57's all-in-one embeds to free ports.
func v157AgentPorts(t *testing.T) []string {
	return []string{
		"--processor.jaeger-binary.server-host-port=" + freeUDP(t),
		"--processor.jaeger-compact.server-host-port=" + freeUDP(t),
		"--processor.zipkin-compact.server-host-port=" + freeUDP(t),
		"--http-server.host-port=" + freeAddr(t),
	}
}

// TestJaegerV157Remote: Jaeger v1.57 over remote storage_v1 (its type is
// still called grpc-plugin there).
func TestJaegerV157Remote(t *testing.T) {
	srv := startClt(t)
	s := startJaegerV1(t, binOr(t, "JAEGER_V157_BIN", "jaeger-v157", "jaeger-v157"), []string{"SPAN_STORAGE_TYPE=grpc-plugin"},
		append(v157AgentPorts(t), "--grpc-storage.server="+srv.StorageAddr().String()))
	s.collector, s.admin = srv.CollectorAddr().String(), srv.AdminAddr().String()
	checkV1IOAM(t, s)
}

// children lists the processes whose parent is pid.
func children(t *testing.T, pid int) []int {
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	var out []int
	for _, e := range entries {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) && f[0] != "Z" {
			out = append(out, c)
		}
	}
	return out
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// checkPluginsGone stops Jaeger and asserts its clt-storage plugins exit.
func checkPluginsGone(t *testing.T, s *v1Stack) {
	kids := children(t, s.jaeger.Process.Pid)
	require.NotEmpty(t, kids, "Jaeger runs clt-storage as its plugin")
	s.stop()
	for _, pid := range kids {
		assert.Eventually(t, func() bool { return !alive(pid) }, 15*time.Second, 100*time.Millisecond, "plugin %d still running after Jaeger stopped", pid)
	}
}

// TestJaegerV157SidecarEmbedded: Jaeger v1.57 all-in-one runs clt-storage as
// its go-plugin sidecar, which owns the store and serves the IOAM collector
// (the streaming writer advertised: v1.57 keeps its write streams alive) and
// the archive.
func TestJaegerV157SidecarEmbedded(t *testing.T) {
	collector := freeAddr(t)
	s := startJaegerV157(t, fmt.Sprintf(`storage:
  listen: 127.0.0.1:0
  v1_streaming_writer: true
collector:
  listen: %s
admin:
  listen: ""
store:
  dir: %s
  block_cache_mb: 16
  memtable_mb: 8
archive:
  enabled: true
log:
  level: warn
`, collector, filepath.Join(t.TempDir(), "data")))
	s.collector = collector
	checkV1IOAM(t, s)

	// The UI's archive button: Jaeger v1.57 reads the trace and writes it to
	// the plugin's archive (500 "archive span storage was not configured"
	// without it).
	resp, err := http.Post("http://"+s.query+"/api/archive/"+hex.EncodeToString(v1TraceID), "application/json", nil)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	checkPluginsGone(t, s)
}

// TestJaegerV157SidecarForward: the sidecar forwards to a shared clt-storage
// (Jaeger collector and query as separate processes would each spawn one).
func TestJaegerV157SidecarForward(t *testing.T) {
	srv := startClt(t)
	s := startJaegerV157(t, fmt.Sprintf("sidecar:\n  forward: %s\nlog:\n  level: warn\n", srv.StorageAddr()))
	s.collector, s.admin = srv.CollectorAddr().String(), srv.AdminAddr().String()
	checkV1IOAM(t, s)
	checkPluginsGone(t, s)
}

// TestJaegerV2rc2OverV1: Jaeger v2.0.0-rc2, whose grpc backend speaks
// jaeger.storage.v1 (as v2.0–v2.5 do), with the same YAML as v2.6+.
func TestJaegerV2rc2OverV1(t *testing.T) {
	bin := binOr(t, "JAEGER_V162_BIN", "jaeger-v162", "jaeger-v162")
	srv := startClt(t)
	s := &v1Stack{query: freeAddr(t), otlpGRPC: freeAddr(t), collector: srv.CollectorAddr().String(), admin: srv.AdminAddr().String()}
	health := freeAddr(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "jaeger.yaml")
	require.NoError(t, os.WriteFile(conf, fmt.Appendf(nil, jaegerConfig, health, s.query, freeAddr(t), srv.StorageAddr(), s.otlpGRPC), 0o644))
	logf, err := os.Create(filepath.Join(dir, "jaeger.log"))
	require.NoError(t, err)
	cmd := exec.Command(bin, "--config", conf)
	cmd.Env = append(os.Environ(), "OTEL_TRACES_SAMPLER=always_off")
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	exited := waitProc(cmd)
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited.done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited.done
		}
		_ = logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("jaeger log:\n%s", tail(b, 4000))
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
	checkV1IOAM(t, s)
}
