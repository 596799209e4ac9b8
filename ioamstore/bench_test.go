package ioamstore

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// tracegen mimics the shape of Jaeger's cmd/tracegen -spans 10 traces: one
// root SERVER span "lets-go" with peer.service / peer.host.ipv4, ten CLIENT
// children "child-span-NN" with 11 attr_KK=val_VVV attributes each (keys
// cycle mod 97, values mod 1000, per generator), service "tracegen".
type tracegen struct {
	rng      *rand.Rand
	attrN    int
	resource *resourcepb.Resource
	scope    *commonpb.InstrumentationScope
}

func newTracegen(seed uint64) *tracegen {
	return &tracegen{
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
			strKV("service.name", "tracegen"), strKV("host.name", "bench-host"), strKV("os.type", "linux"),
			strKV("telemetry.sdk.language", "go"), strKV("telemetry.sdk.name", "opentelemetry"),
			strKV("telemetry.sdk.version", "1.38.0"),
		}},
		scope: &commonpb.InstrumentationScope{Name: "tracegen"},
	}
}

func (g *tracegen) id(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.rng.Uint32())
	}
	return b
}

// trace returns the 11 spans of one trace starting at start (children first,
// as the SDK exports them).
func (g *tracegen) trace(start time.Time) (id [16]byte, spans []*tracepb.Span) {
	copy(id[:], g.id(16))
	rootID := g.id(8)
	t0 := uint64(start.UnixNano())
	for c := 1; c <= 10; c++ {
		attrs := make([]*commonpb.KeyValue, 0, 11)
		for range 11 {
			attrs = append(attrs, strKV(fmt.Sprintf("attr_%02d", g.attrN%97), fmt.Sprintf("val_%02d", g.attrN%1000)))
			g.attrN++
		}
		cs := t0 + uint64(c)*1000
		spans = append(spans, &tracepb.Span{TraceId: id[:], SpanId: g.id(8), ParentSpanId: rootID,
			Name: fmt.Sprintf("child-span-%02d", c), Kind: tracepb.Span_SPAN_KIND_CLIENT,
			StartTimeUnixNano: cs, EndTimeUnixNano: cs + 123_000, Attributes: attrs,
			Status: &tracepb.Status{}})
	}
	spans = append(spans, &tracepb.Span{TraceId: id[:], SpanId: rootID, Name: "lets-go", Kind: tracepb.Span_SPAN_KIND_SERVER,
		StartTimeUnixNano: t0, EndTimeUnixNano: t0 + 1_230_000,
		Attributes: []*commonpb.KeyValue{strKV("peer.service", "tracegen-server"), strKV("peer.host.ipv4", "1.1.1.1")},
		Status:     &tracepb.Status{}})
	return id, spans
}

// batch returns one Export batch of nTraces traces (one ResourceSpans per 46
// traces, like SDK exports of 512 spans merged by the batch processor), with
// start times from start, step apart.
func (g *tracegen) batch(nTraces int, start time.Time, step time.Duration, ids *[][16]byte) []*tracepb.ResourceSpans {
	var out []*tracepb.ResourceSpans
	var cur *tracepb.ScopeSpans
	for i := range nTraces {
		if i%46 == 0 {
			cur = &tracepb.ScopeSpans{Scope: g.scope}
			out = append(out, &tracepb.ResourceSpans{Resource: g.resource, ScopeSpans: []*tracepb.ScopeSpans{cur}})
		}
		id, spans := g.trace(start.Add(time.Duration(i) * step))
		if ids != nil {
			*ids = append(*ids, id)
		}
		cur.Spans = append(cur.Spans, spans...)
	}
	return out
}

func dirSize(t testing.TB, dir string) (apparent, allocated int64) {
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		apparent += fi.Size()
		allocated += allocatedBytes(fi)
		return nil
	})
	require.NoError(t, err)
	return apparent, allocated
}

func otlpSize(rs []*tracepb.ResourceSpans) int {
	return proto.Size(&tracepb.TracesData{ResourceSpans: rs})
}

// BenchmarkWriteSpans writes Export batches of tracegen traces, 745 traces
// (8,195 spans, the collector batch processor's default size) or 46 traces
// (506 spans, about one SDK export), and reports spans/s and the bytes per
// span of the closed store directory, with SyncWrites off and on.
func BenchmarkWriteSpans(b *testing.B) {
	for _, bc := range []struct {
		traces int
		sync   bool
	}{{745, false}, {745, true}, {46, false}, {46, true}} {
		b.Run(fmt.Sprintf("batch=%d/sync=%v", bc.traces*11, bc.sync), func(b *testing.B) {
			sync, tracesPerBatch := bc.sync, bc.traces
			dir := b.TempDir()
			cfg := DefaultConfig()
			cfg.Dir = dir
			cfg.SyncWrites = sync
			s, err := Open(cfg, slog.New(slog.DiscardHandler))
			require.NoError(b, err)
			g := newTracegen(1)
			start := time.Now().Add(-time.Hour)
			in := 0
			ctx := context.Background()
			spans := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// fresh traces every call (repeated content would compress unrealistically)
				b.StopTimer()
				batch := g.batch(tracesPerBatch, start.Add(time.Duration(i)*time.Second), time.Millisecond, nil)
				in += otlpSize(batch)
				b.StartTimer()
				n, err := s.WriteSpans(ctx, batch)
				if err != nil {
					b.Fatal(err)
				}
				spans += n
			}
			b.StopTimer()
			require.NoError(b, s.Close())
			app, alloc := dirSize(b, dir)
			b.ReportMetric(float64(spans)/b.Elapsed().Seconds(), "spans/s")
			b.ReportMetric(float64(alloc)/float64(spans), "disk-B/span")
			b.ReportMetric(float64(app)/float64(spans), "apparent-B/span")
			b.ReportMetric(float64(in)/float64(spans), "otlp-B/span")
		})
	}
}

// BenchmarkBigStore loads CLT_BENCH_SPANS spans (default 200,002; the
// baseline used 1,000,010) like the Jaeger baseline's 1M load, closes and
// reopens the store, then measures FindTraceIDs (the qbench variants) and
// GetTrace latencies. Percentiles are reported as metrics.
func BenchmarkBigStore(b *testing.B) {
	nSpans := 200_002
	if v, err := strconv.Atoi(os.Getenv("CLT_BENCH_SPANS")); err == nil && v > 0 {
		nSpans = v
	}
	nTraces := nSpans / 11
	dir := b.TempDir()
	cfg := DefaultConfig()
	cfg.Dir = dir
	s, err := Open(cfg, slog.New(slog.DiscardHandler))
	require.NoError(b, err)
	ctx := context.Background()

	// Load: 2 generators (like tracegen -workers 2), traces spread over the
	// last 3 minutes, batches of 745 traces.
	gens := []*tracegen{newTracegen(1), newTracegen(2)}
	var ids [][16]byte
	span := 3 * time.Minute
	step := span / time.Duration(nTraces)
	t0 := time.Now().Add(-span - time.Second)
	loadStart := time.Now()
	written, inBytes := 0, 0
	for done, bi := 0, 0; done < nTraces; bi++ {
		n := min(745, nTraces-done)
		batch := gens[bi%2].batch(n, t0.Add(time.Duration(done)*step), step, &ids)
		inBytes += otlpSize(batch)
		w, err := s.WriteSpans(ctx, batch)
		require.NoError(b, err)
		written += w
		done += n
	}
	loadTook := time.Since(loadStart)
	require.NoError(b, s.Close())
	app, alloc := dirSize(b, dir)
	b.Logf("load: %d spans (%d traces) in %s = %.0f spans/s (incl. generation); closed dir %d B allocated (%.1f B/span), %d B apparent (%.1f B/span); OTLP input %.1f B/span",
		written, nTraces, loadTook.Round(time.Millisecond), float64(written)/loadTook.Seconds(),
		alloc, float64(alloc)/float64(written), app, float64(app)/float64(written), float64(inBytes)/float64(written))

	reopen := time.Now()
	s, err = Open(cfg, slog.New(slog.DiscardHandler))
	require.NoError(b, err)
	defer s.Close()
	b.Logf("reopen: %s", time.Since(reopen).Round(time.Millisecond))

	rng := rand.New(rand.NewPCG(7, 7))
	lat := func(b *testing.B, f func() int) {
		var d []time.Duration
		results := 0
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			t := time.Now()
			results += f()
			d = append(d, time.Since(t))
		}
		b.StopTimer()
		slices.Sort(d)
		pct := func(p float64) float64 {
			k := int(p*float64(len(d))+0.999999) - 1
			k = max(0, min(k, len(d)-1))
			return float64(d[k].Microseconds()) / 1000
		}
		b.ReportMetric(pct(.5), "p50-ms")
		b.ReportMetric(pct(.99), "p99-ms")
		b.ReportMetric(float64(results)/float64(b.N), "results/op")
	}
	b.Run("GetTrace", func(b *testing.B) {
		lat(b, func() int {
			n := 0
			require.NoError(b, s.GetTrace(ctx, ids[rng.IntN(len(ids))], func(r *tracepb.ResourceSpans) error {
				n += countSpans([]*tracepb.ResourceSpans{r})
				return nil
			}))
			return n
		})
	})
	b.Run("GetDependencies", func(b *testing.B) {
		lat(b, func() int {
			deps, err := s.GetDependencies(ctx, time.Now().Add(-time.Hour), time.Now())
			require.NoError(b, err)
			return len(deps)
		})
	})
	// What the plugin does for a UI search: FindTraceIDs, then GetTrace of each.
	b.Run("FindTraces/svc+GetTrace", func(b *testing.B) {
		lat(b, func() int {
			now := time.Now()
			res, err := s.FindTraceIDs(ctx, Query{Service: "tracegen", SearchDepth: 20, StartMin: now.Add(-time.Hour), StartMax: now})
			require.NoError(b, err)
			n := 0
			for _, r := range res {
				require.NoError(b, s.GetTrace(ctx, r.TraceID, func(r *tracepb.ResourceSpans) error {
					n += countSpans([]*tracepb.ResourceSpans{r})
					return nil
				}))
			}
			return n
		})
	})
	for _, v := range []struct {
		name string
		q    Query
	}{
		{"svc", Query{}},
		{"tag_rare", Query{Attributes: map[string]string{"attr_05": "val_05"}}},
		{"tag_common", Query{Attributes: map[string]string{"peer.service": "tracegen-server"}}},
		{"mindur", Query{DurationMin: time.Millisecond}},
		{"operation", Query{Operation: "child-span-07"}},
		{"tag_absent", Query{Attributes: map[string]string{"attr_05": "val_no"}}}, // worst case: whole index scanned
	} {
		b.Run("FindTraceIDs/"+v.name, func(b *testing.B) {
			q := v.q
			q.Service, q.SearchDepth = "tracegen", 20
			lat(b, func() int {
				now := time.Now()
				q.StartMin, q.StartMax = now.Add(-time.Hour), now
				res, err := s.FindTraceIDs(ctx, q)
				require.NoError(b, err)
				return len(res)
			})
		})
	}
}
