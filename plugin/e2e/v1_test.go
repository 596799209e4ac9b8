//go:build e2e

package e2e

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	"google.golang.org/grpc/credentials/insecure"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/plugin"
)

// jaegerV1Bin finds the Jaeger v1 all-in-one: $JAEGER_V1_BIN, else
// <repo>/.cache/bin/jaeger-v1 (make jaeger-v1).
func jaegerV1Bin(t *testing.T) string {
	p := os.Getenv("JAEGER_V1_BIN")
	if p == "" {
		wd, err := os.Getwd()
		require.NoError(t, err)
		p = filepath.Join(wd, "..", "..", ".cache", "bin", "jaeger-v1")
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CLT_REQUIRE_PRIVILEGED") == "1" {
			t.Fatalf("no Jaeger v1 binary at %s (make jaeger-v1)", p)
		}
		t.Skipf("no Jaeger v1 binary at %s (make jaeger-v1)", p)
	}
	return p
}

type v1Stack struct {
	query     string // Jaeger v1 query HTTP
	otlpGRPC  string // Jaeger v1 collector OTLP gRPC
	collector string // clt-storage IOAM collector
	admin     string // clt-storage admin HTTP
}

// startV1Stack runs an in-process clt-storage and the Jaeger v1 all-in-one
// with SPAN_STORAGE_TYPE=grpc --grpc-storage.server pointed at it, every
// port free and on loopback.
func startV1Stack(t *testing.T) *v1Stack {
	bin := jaegerV1Bin(t)
	dir := t.TempDir()
	cfg := plugin.DefaultConfig()
	cfg.Storage.Listen = "127.0.0.1:0"
	cfg.Collector.Listen = "127.0.0.1:0"
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Store.Dir = filepath.Join(dir, "data")
	cfg.Store.BlockCacheMB, cfg.Store.MemTableMB = 16, 8
	srv, err := plugin.New(cfg, plugin.Settings{})
	require.NoError(t, err)
	require.NoError(t, srv.Start(t.Context()))
	t.Cleanup(func() { require.NoError(t, srv.Close()) })

	s := &v1Stack{query: freeAddr(t), otlpGRPC: freeAddr(t), collector: srv.CollectorAddr().String(), admin: srv.AdminAddr().String()}
	admin := freeAddr(t)
	logf, err := os.Create(filepath.Join(dir, "jaeger-v1.log"))
	require.NoError(t, err)
	cmd := exec.Command(bin,
		"--grpc-storage.server="+srv.StorageAddr().String(),
		"--admin.http.host-port="+admin,
		"--collector.grpc-server.host-port="+freeAddr(t),
		"--collector.http-server.host-port="+freeAddr(t),
		"--collector.otlp.grpc.host-port="+s.otlpGRPC,
		"--collector.otlp.http.host-port="+freeAddr(t),
		"--query.grpc-server.host-port="+freeAddr(t),
		"--query.http-server.host-port="+s.query,
	)
	cmd.Env = append(os.Environ(), "SPAN_STORAGE_TYPE=grpc", "OTEL_TRACES_SAMPLER=always_off")
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = logf.Close()
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
		case err := <-exited:
			t.Fatalf("jaeger v1 exited: %v", err)
		default:
		}
		require.True(t, time.Now().Before(deadline), "jaeger v1 not healthy after 60s")
		time.Sleep(200 * time.Millisecond)
	}
	return s
}

var (
	v1TraceID    = mustHex("c17e2e00000000000000000000000011")
	v1ServerSpan = mustHex("00000000000000b1")
	v1ChildSpan  = mustHex("00000000000000b2")
)

// TestJaegerV1ShowsIOAM: Jaeger v1.76's own HTTP API, over clt-storage's
// storage_v1 API, shows what Jaeger v2 shows: the IOAM tags, the hop logs
// and the warnings; finds the trace by ioam.node_id; lists the dependency.
func TestJaegerV1ShowsIOAM(t *testing.T) {
	s := startV1Stack(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	dial := func(addr string) *grpc.ClientConn {
		c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
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
	for _, sp := range traces[0].Spans {
		if sp.SpanID != hex.EncodeToString(v1ServerSpan) {
			continue
		}
		checked = true
		tags := map[string]any{}
		for _, tg := range sp.Tags {
			tags[tg.Key] = tg.Value
		}
		assert.Equal(t, "1 > 2 > 3", tags["ioam.path"])
		assert.EqualValues(t, 3, tags["ioam.hop_count"])
		assert.EqualValues(t, 123, tags["ioam.namespace_id"])
		assert.EqualValues(t, 3000, tags["ioam.transit_delay_max_ns"])
		assert.Equal(t, "server", tags["span.kind"])
		assert.NotContains(t, tags, "@jaeger@warnings", "v1 carries them as span warnings")
		var hops []float64
		for _, l := range sp.Logs {
			f := map[string]any{}
			for _, kv := range l.Fields {
				f[kv.Key] = kv.Value
			}
			if f["event"] == "ioam.hop" {
				hops = append(hops, f["ioam.node_id"].(float64))
				assert.Contains(t, f, "ioam.ingress_if")
			}
		}
		assert.Equal(t, []float64{1, 2, 3}, hops)
		joined := strings.Join(sp.Warnings, "\n")
		assert.Contains(t, joined, "ioam: path changed during the span: 1 > 2 > 3 then 1 > 4 > 3")
		assert.Contains(t, joined, "ioam: report from node 5 not confirmed downstream (path 1 > 5)")
	}
	assert.True(t, checked, "server span present")

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
	found := false
	for _, d := range deps.Data {
		found = found || d.Parent == "clt-e2e-v1" && d.Child == "clt-e2e-v1-db" && d.CallCount == 1
	}
	assert.True(t, found, "dependency clt-e2e-v1 -> clt-e2e-v1-db in %s", b)
}
