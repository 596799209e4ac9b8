//go:build e2e

package e2e

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
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
	"github.com/cross-layer-telemetry/clt/plugin"
)

// Two stateless replicas over one remote_storage tier (badger on disk):
// agents' reports land on one, Jaeger reads and writes through the other;
// the upstream goes away (writes fail loudly on both) and comes back on
// the same data: everything acknowledged is read back enriched.
func TestUpstreamReplicasAndOutage(t *testing.T) {
	bin := jaegerBin(t)
	dir := t.TempDir()
	remote, remoteHealth := freeAddr(t), freeAddr(t)
	remoteConf := filepath.Join(dir, "remote.yaml")
	require.NoError(t, os.WriteFile(remoteConf, fmt.Appendf(nil, remoteStorageConfig, remoteHealth, remote, freeAddr(t),
		fmt.Sprintf(upstreamBadger, filepath.Join(dir, "badger"))), 0o644))
	stopUpstream := startJaeger(t, bin, remoteConf, remoteHealth, filepath.Join(dir, "remote.log"))

	replica := func() *plugin.Server {
		cfg := plugin.DefaultConfig()
		cfg.Storage.Listen, cfg.Collector.Listen, cfg.Admin.Listen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
		cfg.Upstream.Endpoint = remote
		cfg.Upstream.HealthInterval = 100 * time.Millisecond
		srv, err := plugin.New(cfg, plugin.Settings{})
		require.NoError(t, err)
		require.NoError(t, srv.Start(t.Context()))
		t.Cleanup(func() { require.NoError(t, srv.Close()) })
		return srv
	}
	agents, reads := replica(), replica()

	queryHTTP, otlpFront, health := freeAddr(t), freeAddr(t), freeAddr(t)
	frontConf := filepath.Join(dir, "jaeger.yaml")
	require.NoError(t, os.WriteFile(frontConf, fmt.Appendf(nil, jaegerConfig, health, queryHTTP, freeAddr(t), reads.StorageAddr(), otlpFront), 0o644))
	startJaeger(t, bin, frontConf, health, filepath.Join(dir, "jaeger.log"))

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	dial := func(addr string) *grpc.ClientConn { return dialLoopback(t, addr) }
	col := collectorv1.NewCollectorServiceClient(dial(agents.CollectorAddr().String()))
	report := func(recs ...*collectorv1.IOAMRecord) error {
		_, err := col.Report(ctx, &collectorv1.ReportRequest{AgentId: "e2e", Records: recs})
		return err
	}
	start := time.Now().Add(-2 * time.Second)
	require.NoError(t, report(record(3, start, 1, 2, 3)))

	str := func(k, v string) *commonpb.KeyValue {
		return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
	}
	spans := func(id []byte) *coltracepb.ExportTraceServiceRequest {
		return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
			Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", "clt-e2e")}},
			ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{TraceId: traceID, SpanId: id, Name: "GET /api",
				Kind: tracepb.Span_SPAN_KIND_SERVER, StartTimeUnixNano: uint64(start.UnixNano()), EndTimeUnixNano: uint64(start.Add(50 * time.Millisecond).UnixNano())}}}},
		}}}
	}
	_, err := coltracepb.NewTraceServiceClient(dial(otlpFront)).Export(ctx, spans(serverSpan))
	require.NoError(t, err)

	// Read through the other replica, via Jaeger.
	base := "http://" + queryHTTP + "/api/traces/" + hex.EncodeToString(traceID)
	serverTags := func() map[string]any {
		for _, tr := range getJSON(t, base) {
			for _, sp := range tr.Spans {
				if sp.SpanID == hex.EncodeToString(serverSpan) {
					tags := map[string]any{}
					for _, tg := range sp.Tags {
						tags[tg.Key] = tg.Value
					}
					return tags
				}
			}
		}
		return nil
	}
	require.Eventually(t, func() bool { return serverTags()[plugin.AttrPath] == "1 > 2 > 3" }, 30*time.Second, 200*time.Millisecond,
		"records from one replica, span through the other, read enriched")

	// The upstream goes away: both replicas refuse writes, loudly.
	stopUpstream()
	// Nothing can acknowledge once the upstream process is gone.
	err = report(record(3, start.Add(time.Second), 1, 4, 3))
	assert.Equal(t, codes.Unavailable, status.Code(err), "reports fail with Unavailable: %v", err)
	_, err = coltracepb.NewTraceServiceClient(dial(reads.StorageAddr().String())).Export(ctx, spans(childSpan))
	assert.Equal(t, codes.Unavailable, status.Code(err), "spans fail with Unavailable: %v", err)

	// It comes back on the same data; the agent's retry succeeds.
	startJaeger(t, bin, remoteConf, remoteHealth, filepath.Join(dir, "remote-2.log"))
	require.Eventually(t, func() bool { return report(record(3, start.Add(time.Second), 1, 4, 3)) == nil },
		30*time.Second, 200*time.Millisecond, "reports succeed again")
	require.NoError(t, report(record(5, start.Add(time.Second), 1, 5)))
	require.Eventually(t, func() bool {
		tags := serverTags()
		return tags[plugin.AttrPath] == "1 > 2 > 3" && tags[plugin.AttrPathChanged] == true && tags[plugin.AttrUnconfirmed] == true
	}, 30*time.Second, 200*time.Millisecond, "what was acknowledged before and after the outage is read back")
	_, err = coltracepb.NewTraceServiceClient(dial(reads.StorageAddr().String())).Export(ctx, spans(childSpan))
	require.NoError(t, err, "spans are accepted again")
}
