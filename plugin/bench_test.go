package plugin

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/api/storagev2"
)

// Benchmarks of clt-storage through its gRPC API (loopback, real badger),
// with spans shaped like Jaeger's tracegen (a root span with 2 attributes,
// children with 11 of 97 keys × 1000 values). Figures: docs/benchmarks.md.
//
//	go test -run '^$' -bench . -benchtime 3x ./plugin/

const benchSpansPerTrace = 10

var benchAttrKeys = func() []string {
	k := make([]string, 97)
	for i := range k {
		k[i] = fmt.Sprintf("attr_%02d", i)
	}
	return k
}()

// benchTraces builds n traces of benchSpansPerTrace spans starting at
// start, one ResourceSpans per trace (as an SDK batch would).
func benchTraces(seq *uint64, n int, start time.Time) []*tracepb.ResourceSpans {
	out := make([]*tracepb.ResourceSpans, 0, n)
	for range n {
		*seq++
		tid := make([]byte, 16)
		binary.BigEndian.PutUint64(tid[0:], 0xc17)
		binary.BigEndian.PutUint64(tid[8:], *seq)
		spans := make([]*tracepb.Span, 0, benchSpansPerTrace)
		ts := uint64(start.Add(time.Duration(*seq) * time.Microsecond).UnixNano())
		for i := range benchSpansPerTrace {
			sp := &tracepb.Span{TraceId: tid, SpanId: binary.BigEndian.AppendUint64(nil, *seq<<8|uint64(i+1)),
				Name: "lets-go", Kind: tracepb.Span_SPAN_KIND_SERVER, StartTimeUnixNano: ts, EndTimeUnixNano: ts + 123000,
				Status: &tracepb.Status{}}
			if i == 0 {
				sp.Attributes = []*commonpb.KeyValue{strAttr("peer.service", "tracegen-server"), strAttr("peer.host.ipv4", "1.1.1.1")}
			} else {
				sp.Name, sp.Kind = "okey-dokey-"+fmt.Sprint(i), tracepb.Span_SPAN_KIND_CLIENT
				sp.ParentSpanId = binary.BigEndian.AppendUint64(nil, *seq<<8|1)
				for a := range 11 {
					k := int(*seq*11+uint64(i*11+a)) % len(benchAttrKeys)
					sp.Attributes = append(sp.Attributes, strAttr(benchAttrKeys[k], fmt.Sprintf("val_%02d", (int(*seq)+a)%1000)))
				}
			}
			spans = append(spans, sp)
		}
		out = append(out, &tracepb.ResourceSpans{
			Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{strAttr("service.name", "tracegen-01"), strAttr("host.name", "bench")}},
			ScopeSpans: []*tracepb.ScopeSpans{{Scope: &commonpb.InstrumentationScope{Name: "tracegen"}, Spans: spans}},
		})
	}
	return out
}

// BenchmarkExport measures OTLP Export into clt-storage without Jaeger: 4
// concurrent clients, 100 traces (1000 spans) per request, as Jaeger's batch
// processor sends. Reports spans/s; the goal is >= 100k spans/s.
func BenchmarkExport(b *testing.B) {
	e := startEnv(b, nil)
	const clients, tracesPerReq = 4, 100
	var seq uint64
	// Requests are built before the timer so the figure is the server's.
	reqs := make([]rawMsg, 64)
	build := func() {
		for i := range reqs {
			var err error
			reqs[i], err = proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: benchTraces(&seq, tracesPerReq, time.Now())})
			require.NoError(b, err)
		}
	}
	build()
	spans := 0
	var busy time.Duration
	for b.Loop() {
		t0 := time.Now()
		var wg sync.WaitGroup
		for c := range clients {
			wg.Go(func() {
				for i := c; i < len(reqs); i += clients {
					var resp coltracepb.ExportTraceServiceResponse
					if err := e.storageConn.Invoke(b.Context(), coltracepb.TraceService_Export_FullMethodName, reqs[i], &resp,
						grpc.ForceCodec(rawCodec{})); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		busy += time.Since(t0)
		spans += len(reqs) * tracesPerReq * benchSpansPerTrace
		// The next round stores new traces, not the same bytes again.
		b.StopTimer()
		build()
		b.StartTimer()
	}
	b.ReportMetric(float64(spans)/busy.Seconds(), "spans/s")
}

// rawMsg is a request marshaled before the timer; rawCodec sends it as is,
// so the client's marshaling does not count against the server.
type rawMsg []byte

type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	if r, ok := v.(rawMsg); ok {
		return r, nil
	}
	return proto.Marshal(v.(proto.Message))
}
func (rawCodec) Unmarshal(b []byte, v any) error {
	if r, ok := v.(*rawMsg); ok {
		*r = append((*r)[:0], b...)
		return nil
	}
	return proto.Unmarshal(b, v.(proto.Message))
}
func (rawCodec) Name() string { return "proto" }

// getTracesWith reads one trace by ID with the client codec opt and calls
// recv for each response message until the stream ends.
func getTracesWith(b *testing.B, e *env, id []byte, opt grpc.CallOption, recv func(grpc.ClientStream) error) {
	st, err := e.storageConn.NewStream(b.Context(), &storagev2.TraceReader_ServiceDesc.Streams[0],
		storagev2.TraceReader_GetTraces_FullMethodName, opt)
	require.NoError(b, err)
	require.NoError(b, st.SendMsg(&storagev2.GetTracesRequest{Query: []*storagev2.GetTraceParams{{TraceId: id}}}))
	require.NoError(b, st.CloseSend())
	for {
		if err := recv(st); errors.Is(err, io.EOF) {
			return
		} else if err != nil {
			b.Fatal(err)
		}
	}
}

// getTracesRaw reads one trace by ID and hands fn each response message's
// bytes undecoded (valid only during the call).
func getTracesRaw(b *testing.B, e *env, id []byte, fn func([]byte)) {
	var m rawMsg
	getTracesWith(b, e, id, grpc.ForceCodec(rawCodec{}), func(st grpc.ClientStream) error {
		if err := st.RecvMsg(&m); err != nil {
			return err
		}
		fn(m)
		return nil
	})
}

// getTracesBytes reads one trace by ID without decoding the response (the
// server's part of a read: what Jaeger then decodes is its own cost) and
// returns the bytes received.
func getTracesBytes(b *testing.B, e *env, id []byte) int {
	n := 0
	getTracesRaw(b, e, id, func(m []byte) { n += len(m) })
	return n
}

// getTracesPdata reads one trace as Jaeger v2.13's storage v2 client does
// (jaegerCodec) and returns the span count.
func getTracesPdata(b *testing.B, e *env, id []byte) int {
	n := 0
	getTracesWith(b, e, id, grpc.ForceCodecV2(jaegerCodec{}), func(st grpc.ClientStream) error {
		var m pdataMsg
		if err := st.RecvMsg(&m); err != nil {
			return err
		}
		n += m.td.SpanCount()
		return nil
	})
	return n
}

// jaegerCodec decodes response messages as Jaeger v2.13's storage v2 client
// does: its TracesData (internal/jptrace, pdata's ptrace.Traces) is not a
// type its gogo codec (internal/gogocodec) handles, so grpc's proto codec
// decodes it: the message is gathered from its frames into a buffer of
// grpc's default pool (mem.BufferSlice.MaterializeToBuffer), then
// unmarshaled by pdata (jptrace.TracesData.Unmarshal).
type jaegerCodec struct{}

// pdataMsg receives one message decoded by jaegerCodec.
type pdataMsg struct{ td ptrace.Traces }

func (jaegerCodec) Marshal(v any) (mem.BufferSlice, error) {
	return encoding.GetCodecV2("proto").Marshal(v)
}

func (jaegerCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*pdataMsg)
	if !ok {
		return encoding.GetCodecV2("proto").Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	var err error
	m.td, err = new(ptrace.ProtoUnmarshaler).UnmarshalTraces(buf.ReadOnlyData())
	return err
}

func (jaegerCodec) Name() string { return "proto" }

// loadStore fills a server with nTraces traces (benchSpansPerTrace spans
// each) and 3 IOAM records on every root span, and returns their IDs.
func loadStore(b *testing.B, e *env, nTraces int) [][]byte {
	b.Helper()
	var seq uint64
	var ids [][]byte
	start := time.Now().Add(-time.Hour)
	for done := 0; done < nTraces; done += 100 {
		rs := benchTraces(&seq, 100, start)
		_, err := e.otlp.Export(b.Context(), &coltracepb.ExportTraceServiceRequest{ResourceSpans: rs})
		require.NoError(b, err)
		var recs []*collectorv1.IOAMRecord
		for _, r := range rs {
			root := r.ScopeSpans[0].Spans[0]
			ids = append(ids, root.TraceId)
			for _, rr := range []*collectorv1.IOAMRecord{rec(2, 0, 1, 2), rec(3, 0, 1, 2, 3), rec(3, 1, 1, 2, 3)} {
				rr.TraceId, rr.SpanId = root.TraceId, root.SpanId
				recs = append(recs, rr)
			}
		}
		_, err = e.collector.Report(b.Context(), &collectorv1.ReportRequest{Records: recs})
		require.NoError(b, err)
	}
	return ids
}

// latency collects per-call durations and reports p50/p99.
type latency []time.Duration

func (l latency) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	slices.Sort(l)
	b.ReportMetric(float64(l[len(l)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(l[min(len(l)-1, len(l)*99/100)].Microseconds())/1000, "p99-ms")
}

// benchTracesLoaded is the store size of the query benchmarks: 20k traces,
// 200k spans, 60k records (BENCH_TRACES-independent so runs compare).
const benchTracesLoaded = 20000

// BenchmarkGetTraces measures GetTraces of one 10-span trace by ID,
// including the IOAM join of its 3 records, on a store of 200k spans.
func BenchmarkGetTraces(b *testing.B) {
	e := startEnv(b, nil)
	ids := loadStore(b, e, benchTracesLoaded)
	rng := rand.New(rand.NewPCG(1, 2))
	var lat latency
	for b.Loop() {
		id := ids[rng.IntN(len(ids))]
		t0 := time.Now()
		st, err := e.reader.GetTraces(b.Context(), &storagev2.GetTracesRequest{Query: []*storagev2.GetTraceParams{{TraceId: id}}})
		require.NoError(b, err)
		real, _ := splitSynthetic(spansOf(collect(b, st.Recv, 1000)))
		lat = append(lat, time.Since(t0))
		if len(real) != benchSpansPerTrace {
			b.Fatalf("got %d spans", len(real))
		}
	}
	lat.report(b)
}

// BenchmarkGetTracesEnriched measures GetTraces of one 100-span trace with 3
// IOAM records on each of 10 spans (enrichment, hop summaries and, with
// network_spans, 2 network spans per enriched span), on a store of 500 such
// traces. The client decodes with protobuf-go (the default cases), not at all
// (_undecoded: the server's part) or with pdata (_pdata: the decoder Jaeger's
// storage v2 client uses, so the figure Jaeger itself waits for).
func BenchmarkGetTracesEnriched(b *testing.B) {
	// client: "" decodes with protobuf-go, "undecoded" keeps the bytes
	// (getTracesBytes), "pdata" decodes as Jaeger does (getTracesPdata).
	// ownProcess: the server runs in a child process (startEnvProcess, its
	// default config: network spans on).
	for _, tc := range []struct {
		name                          string
		netSpans, records, ownProcess bool
		client                        string
	}{{"network_spans", true, true, false, ""}, {"no_network_spans", false, true, false, ""}, {"no_records", true, false, false, ""},
		{"network_spans_undecoded", true, true, false, "undecoded"}, {"network_spans_pdata", true, true, false, "pdata"},
		{"network_spans_pdata_own_process", true, true, true, "pdata"}} {
		b.Run(tc.name, func(b *testing.B) {
			var e *env
			if tc.ownProcess {
				e = startEnvProcess(b)
			} else {
				e = startEnv(b, func(c *Config) { c.Enrich.NetworkSpans = tc.netSpans })
			}
			ids := loadEnrichedTraces(b, e, 500, tc.records)
			rng := rand.New(rand.NewPCG(1, 2))
			var lat latency
			want := 100
			if tc.netSpans && tc.records {
				want += 10 * 2
			}
			read := func(id []byte) int {
				st, err := e.reader.GetTraces(b.Context(), &storagev2.GetTracesRequest{Query: []*storagev2.GetTraceParams{{TraceId: id}}})
				require.NoError(b, err)
				return len(spansOf(collect(b, st.Recv, 1000)))
			}
			check := func(n int) {
				if n != want {
					b.Fatalf("got %d spans, want %d", n, want)
				}
			}
			switch tc.client {
			case "undecoded":
				// Same bytes as the decoded read (checked once, untimed).
				st, err := e.reader.GetTraces(b.Context(), &storagev2.GetTracesRequest{Query: []*storagev2.GetTraceParams{{TraceId: ids[0]}}})
				require.NoError(b, err)
				tds := collect(b, st.Recv, 1000)
				require.Len(b, spansOf(tds), want)
				size := 0
				for _, td := range tds {
					size += proto.Size(td)
				}
				require.Equal(b, size, getTracesBytes(b, e, ids[0]))
				read = func(id []byte) int { return getTracesBytes(b, e, id) }
				check = func(n int) {
					if n < size/2 {
						b.Fatalf("got %d bytes, want about %d", n, size)
					}
				}
			case "pdata":
				read = func(id []byte) int { return getTracesPdata(b, e, id) }
			}
			// CPU per read of both processes (the benchmark's and, in its
			// own process, the server's): steadier than latency on a
			// shared machine.
			cpu := func() time.Duration {
				d := cpuTime(b, 0)
				if e.serverPID != 0 {
					d += cpuTime(b, e.serverPID)
				}
				return d
			}
			cpu0 := cpu()
			for b.Loop() {
				id := ids[rng.IntN(len(ids))]
				t0 := time.Now()
				n := read(id)
				lat = append(lat, time.Since(t0))
				check(n)
			}
			b.ReportMetric(float64((cpu()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
			lat.report(b)
		})
	}
}

// loadEnrichedTraces stores n traces of 100 spans (one batch each) with 3
// records (a router's prefix and two windows of the destination) on each of
// the first 10 spans (no records without withRecords: the baseline).
func loadEnrichedTraces(b testing.TB, e *env, n int, withRecords bool) [][]byte {
	b.Helper()
	var seq uint64
	var ids [][]byte
	start := time.Now().Add(-time.Hour)
	for range n {
		var rs []*tracepb.ResourceSpans
		for range 10 {
			rs = append(rs, benchTraces(&seq, 1, start)...)
		}
		// Ten 10-span traces become one 100-span trace.
		tid := rs[0].ScopeSpans[0].Spans[0].TraceId
		root := rs[0].ScopeSpans[0].Spans[0].SpanId
		var recs []*collectorv1.IOAMRecord
		for i, r := range rs {
			for _, sp := range r.ScopeSpans[0].Spans {
				sp.TraceId = tid
				if len(sp.ParentSpanId) > 0 || i > 0 {
					sp.ParentSpanId = root
				}
			}
			sp := r.ScopeSpans[0].Spans[1]
			for _, rr := range []*collectorv1.IOAMRecord{rec(2, 0, 1, 2), rec(3, 0, 1, 2, 3), rec(3, 1, 1, 2, 3)} {
				rr.TraceId, rr.SpanId = tid, sp.SpanId
				recs = append(recs, rr)
			}
		}
		rs[0].ScopeSpans[0].Spans[0].ParentSpanId = nil
		merged := &tracepb.ResourceSpans{Resource: rs[0].Resource, ScopeSpans: rs[0].ScopeSpans}
		for _, r := range rs[1:] {
			merged.ScopeSpans[0].Spans = append(merged.ScopeSpans[0].Spans, r.ScopeSpans[0].Spans...)
		}
		_, err := e.otlp.Export(b.Context(), &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{merged}})
		require.NoError(b, err)
		if withRecords {
			_, err = e.collector.Report(b.Context(), &collectorv1.ReportRequest{Records: recs})
			require.NoError(b, err)
		}
		ids = append(ids, tid)
	}
	return ids
}

// BenchmarkFindTraces measures the UI's default search (service, last hour,
// 20 traces) and a tag search, streaming the enriched traces.
func BenchmarkFindTraces(b *testing.B) {
	e := startEnv(b, nil)
	loadStore(b, e, benchTracesLoaded)
	queries := map[string]*storagev2.TraceQueryParameters{
		"service": {ServiceName: "tracegen-01", SearchDepth: 20},
		"tag":     {ServiceName: "tracegen-01", SearchDepth: 20, Attributes: []*storagev2.KeyValue{strKV("attr_05", "val_07")}},
		"node":    {ServiceName: "tracegen-01", SearchDepth: 20, Attributes: []*storagev2.KeyValue{strKV(AttrNodeID, "3")}},
		// Read-time tags: every candidate with records is enriched.
		"derived": {ServiceName: "tracegen-01", SearchDepth: 20, Attributes: []*storagev2.KeyValue{strKV(AttrHopCount, "3")}},
	}
	for name, q := range queries {
		q.StartTimeMin = timestampNowMinus(2 * time.Hour)
		q.StartTimeMax = timestampNowMinus(0)
		b.Run(name, func(b *testing.B) {
			var lat latency
			for b.Loop() {
				t0 := time.Now()
				st, err := e.reader.FindTraces(b.Context(), &storagev2.FindTracesRequest{Query: q})
				require.NoError(b, err)
				n := len(traceIDsOf(collect(b, st.Recv, 1000)))
				lat = append(lat, time.Since(t0))
				if n == 0 {
					b.Fatal("no trace found")
				}
			}
			lat.report(b)
		})
	}
	// A read-time tag no trace has: the whole time range is enriched.
	b.Run("derived_none", func(b *testing.B) {
		q := &storagev2.TraceQueryParameters{ServiceName: "tracegen-01", SearchDepth: 20,
			StartTimeMin: timestampNowMinus(2 * time.Hour), StartTimeMax: timestampNowMinus(0),
			Attributes: []*storagev2.KeyValue{strKV(AttrOverflow, "true")}}
		var lat latency
		for b.Loop() {
			t0 := time.Now()
			st, err := e.reader.FindTraces(b.Context(), &storagev2.FindTracesRequest{Query: q})
			require.NoError(b, err)
			if n := len(traceIDsOf(collect(b, st.Recv, 1000))); n != 0 {
				b.Fatalf("found %d", n)
			}
			lat = append(lat, time.Since(t0))
		}
		lat.report(b)
	})
}

func timestampNowMinus(d time.Duration) *timestamppb.Timestamp {
	return timestamppb.New(time.Now().Add(-d))
}

// BenchmarkEnrichTrace measures the enrichment alone (no store, no gRPC) of
// what BenchmarkGetTracesEnriched reads: 10 spans with 3 records each, with
// their network spans and id assignment.
func BenchmarkEnrichTrace(b *testing.B) {
	recs := []*collectorv1.IOAMRecord{rec(2, 0, 1, 2), rec(3, 0, 1, 2, 3), rec(3, 1, 1, 2, 3)}
	for b.Loop() {
		var net []netSpan
		used := map[[8]byte]struct{}{}
		for i := range 10 {
			sp := newSpan()
			sp.SpanId = []byte{0xee, 0, 0, 0, 0, 0, 0, byte(i)}
			used[[8]byte(sp.SpanId)] = struct{}{}
			for _, r := range recs {
				r.SpanId = sp.SpanId
			}
			a := analyzeSpan(sp, recs)
			net = append(net, a.networkSpans(sp, nil)...)
			a.apply(sp, nil)
		}
		_ = assignIDs(net, used)
	}
}
