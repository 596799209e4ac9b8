//go:build e2e

package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/api/storagev2"
	"github.com/cross-layer-telemetry/clt/plugin"
)

// BenchmarkUpstream compares, side by side in one run, a real
// remote_storage tier (memory backend) read and written directly with the
// same calls through clt-storage in upstream mode, and the embedded
// clt-storage with the same data: GetTraces of a 100-span trace with a 3-hop
// record on 10 of its spans, and Export of 100-span batches.
// Figures: docs/benchmarks.md.
func BenchmarkUpstream(b *testing.B) {
	bin := jaegerBin(b)
	dir := b.TempDir()
	remote := startTier(b, bin, dir, upstreamMemory)

	cfg := plugin.DefaultConfig()
	cfg.Storage.Listen, cfg.Collector.Listen, cfg.Admin.Listen = "127.0.0.1:0", "127.0.0.1:0", ""
	cfg.Upstream.Endpoint = remote
	cfg.Upstream.NodeRefresh = 0
	srv, err := plugin.New(cfg, plugin.Settings{})
	require.NoError(b, err)
	require.NoError(b, srv.Start(context.Background()))
	b.Cleanup(func() { require.NoError(b, srv.Close()) })

	dial := func(addr string) *grpc.ClientConn { return dialLoopback(b, addr) }
	direct, layer := dial(remote), dial(srv.StorageAddr().String())
	ctx := context.Background()

	// The same data in an embedded clt-storage, to tell the layer's cost
	// from the enrichment's.
	ecfg := cfg
	ecfg.Upstream = plugin.DefaultUpstreamConfig()
	ecfg.Store.Dir = filepath.Join(dir, "embedded")
	ecfg.Store.BlockCacheMB, ecfg.Store.MemTableMB = 16, 8
	emb, err := plugin.New(ecfg, plugin.Settings{})
	require.NoError(b, err)
	require.NoError(b, emb.Start(context.Background()))
	b.Cleanup(func() { require.NoError(b, emb.Close()) })
	embedded := dial(emb.StorageAddr().String())

	// One 100-span trace, 10 of its spans with a 3-hop record each.
	const spans, withRecords = 100, 10
	id := []byte{0xbe, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}
	start := time.Now().Add(-time.Minute)
	var recs []*collectorv1.IOAMRecord
	for i := range withRecords {
		r := record(3, start, 1, 2, 3)
		r.TraceId, r.SpanId = id, spanID(i)
		recs = append(recs, r)
	}
	// The same trace with 16 attributes on every span.
	richID := []byte{0xbe, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}
	for _, r := range recs {
		rr := proto.Clone(r).(*collectorv1.IOAMRecord)
		rr.TraceId = richID
		recs = append(recs, rr)
	}
	for _, s := range []*plugin.Server{srv, emb} {
		c := coltracepb.NewTraceServiceClient(dial(s.StorageAddr().String()))
		require.NoError(b, exportTrace(ctx, c, id, spans, start))
		require.NoError(b, exportTraceAttrs(ctx, c, richID, spans, start, 16))
		_, err = collectorv1.NewCollectorServiceClient(dial(s.CollectorAddr().String())).Report(ctx, &collectorv1.ReportRequest{Records: recs})
		require.NoError(b, err)
	}

	getTraceOf := func(b *testing.B, c storagev2.TraceReaderClient, id []byte, wantSpans int) time.Duration {
		t0 := time.Now()
		n := spansOfTrace(b, ctx, c, id)
		d := time.Since(t0)
		if n < wantSpans {
			b.Fatalf("got %d spans, want >= %d", n, wantSpans)
		}
		return d
	}
	getTrace := func(b *testing.B, c storagev2.TraceReaderClient, wantSpans int) time.Duration {
		return getTraceOf(b, c, id, wantSpans)
	}
	pct := func(lat []time.Duration, p int) float64 {
		slices.Sort(lat)
		return float64(lat[len(lat)*p/100].Microseconds()) / 1000
	}
	getTraces := func(b *testing.B, cc *grpc.ClientConn, wantSpans int) {
		c := storagev2.NewTraceReaderClient(cc)
		lat := make([]time.Duration, 0, b.N)
		for b.Loop() {
			lat = append(lat, getTrace(b, c, wantSpans))
		}
		b.ReportMetric(pct(lat, 99), "p99-ms")
		b.ReportMetric(pct(lat, 50), "p50-ms")
	}
	// Direct: the 100 spans and the 10 record spans, as stored.
	b.Run("GetTraces/direct", func(b *testing.B) { getTraces(b, direct, spans+withRecords) })
	// Through clt-storage: split, enriched, network spans added.
	b.Run("GetTraces/layer", func(b *testing.B) { getTraces(b, layer, spans+1) })
	// Embedded clt-storage, same output.
	b.Run("GetTraces/embedded", func(b *testing.B) { getTraces(b, embedded, spans+1) })
	// Direct and through the layer in alternation (order swapped every
	// iteration), so the load of a shared machine weighs on both alike.
	interleaved := func(id []byte) func(b *testing.B) {
		return func(b *testing.B) {
			d, l := storagev2.NewTraceReaderClient(direct), storagev2.NewTraceReaderClient(layer)
			var dl, ll []time.Duration
			i := 0
			for b.Loop() {
				if i++; i%2 == 0 {
					dl = append(dl, getTraceOf(b, d, id, spans+withRecords))
					ll = append(ll, getTraceOf(b, l, id, spans+1))
				} else {
					ll = append(ll, getTraceOf(b, l, id, spans+1))
					dl = append(dl, getTraceOf(b, d, id, spans+withRecords))
				}
			}
			dp99, lp99 := pct(dl, 99), pct(ll, 99)
			b.ReportMetric(dp99, "direct-p99-ms")
			b.ReportMetric(lp99, "layer-p99-ms")
			b.ReportMetric(lp99-dp99, "added-p99-ms")
			b.ReportMetric(pct(ll, 50)-pct(dl, 50), "added-p50-ms")
		}
	}
	b.Run("GetTraces/interleaved", interleaved(id))
	// The same with 16 attributes per span.
	b.Run("GetTraces/interleaved-rich", interleaved(richID))

	export := func(b *testing.B, cc *grpc.ClientConn) {
		c := coltracepb.NewTraceServiceClient(cc)
		i := 0
		for b.Loop() {
			i++
			tid := make([]byte, 16)
			binary.BigEndian.PutUint64(tid[8:], uint64(i))
			tid[0] = 0xe1
			if err := exportTrace(ctx, c, tid, spans, start); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*spans)/b.Elapsed().Seconds(), "spans/s")
	}
	b.Run("Export/direct", func(b *testing.B) { export(b, direct) })
	b.Run("Export/layer", func(b *testing.B) { export(b, layer) })
	// In alternation, as GetTraces/interleaved.
	b.Run("Export/interleaved", func(b *testing.B) {
		cs := []coltracepb.TraceServiceClient{coltracepb.NewTraceServiceClient(direct), coltracepb.NewTraceServiceClient(layer)}
		var took [2]time.Duration
		i := 0
		for b.Loop() {
			i++
			for k := range 2 {
				which := (i + k) % 2
				tid := make([]byte, 16)
				binary.BigEndian.PutUint64(tid[8:], uint64(i))
				tid[0], tid[1] = 0xe2, byte(which)
				t0 := time.Now()
				if err := exportTrace(ctx, cs[which], tid, spans, start); err != nil {
					b.Fatal(err)
				}
				took[which] += time.Since(t0)
			}
		}
		rate := func(d time.Duration) float64 { return float64(b.N*spans) / d.Seconds() }
		b.ReportMetric(rate(took[0]), "direct-spans/s")
		b.ReportMetric(rate(took[1]), "layer-spans/s")
		b.ReportMetric(rate(took[1])/rate(took[0]), "layer/direct")
	})
}

func spanID(i int) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, uint64(i)+1)
	return b
}

func exportTrace(ctx context.Context, c coltracepb.TraceServiceClient, id []byte, n int, start time.Time) error {
	return exportTraceAttrs(ctx, c, id, n, start, 0)
}

// exportTraceAttrs is exportTrace with attrs string attributes per span
// (an instrumented service's span carries a dozen or more).
func exportTraceAttrs(ctx context.Context, c coltracepb.TraceServiceClient, id []byte, n int, start time.Time, attrs int) error {
	ss := &tracepb.ScopeSpans{Scope: &commonpb.InstrumentationScope{Name: "bench"}}
	for i := range n {
		sp := &tracepb.Span{TraceId: id, SpanId: spanID(i), Name: fmt.Sprintf("op-%d", i%10), Kind: tracepb.Span_SPAN_KIND_SERVER,
			StartTimeUnixNano: uint64(start.Add(time.Duration(i) * time.Millisecond).UnixNano()),
			EndTimeUnixNano:   uint64(start.Add(time.Duration(i)*time.Millisecond + 50*time.Millisecond).UnixNano())}
		for a := range attrs {
			sp.Attributes = append(sp.Attributes, &commonpb.KeyValue{Key: fmt.Sprintf("app.attribute.%d", a),
				Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: fmt.Sprintf("value %d of span %d, forty bytes long....", a, i)}}})
		}
		if i > 0 {
			sp.ParentSpanId = spanID(0)
		}
		ss.Spans = append(ss.Spans, sp)
	}
	_, err := c.Export(ctx, &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{Key: "service.name", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "bench"}}}}},
		ScopeSpans: []*tracepb.ScopeSpans{ss},
	}}})
	return err
}
