// Package soakload drives a steady clt-storage load for the soak benchmark
// (plugin/internal/soak, `make soak`) and its short CI guard
// (plugin TestSoakHeapFlat): OTLP Export of spans, IOAM record Reports for
// some of those spans and FindTraces searches, each at a fixed rate over
// the real gRPC APIs. Every loop is bounded by its context.
package soakload

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/types/known/timestamppb"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/api/storagev2"
)

// Load is one steady load; zero rates disable that part.
type Load struct {
	OTLP      coltracepb.TraceServiceClient
	Collector collectorv1.CollectorServiceClient
	Reader    storagev2.TraceReaderClient

	SpansPerSec   int // spans exported per second (traces of SpansPerTrace spans)
	RecordsPerSec int // IOAM records reported per second, for spans already exported
	QueriesPerSec int // FindTraces searches per second (service only, depth 20)
	SpansPerTrace int // default 10
	Services      int // distinct service names, default 5
	Seed          uint64

	spans, records, queries, errs atomic.Uint64
}

// Counts is what a Load has done so far.
type Counts struct{ Spans, Records, Queries, Errors uint64 }

// Counts returns the totals so far (safe during Run).
func (l *Load) Counts() Counts {
	return Counts{l.spans.Load(), l.records.Load(), l.queries.Load(), l.errs.Load()}
}

// tick is how often each loop sends its share of the rate.
const tick = 100 * time.Millisecond

// Run sends the load until ctx ends; it returns the first RPC error that is
// not ctx's (the rest are counted in Counts.Errors).
func (l *Load) Run(ctx context.Context) error {
	if l.SpansPerTrace <= 0 {
		l.SpansPerTrace = 10
	}
	if l.Services <= 0 {
		l.Services = 5
	}
	var (
		mu     sync.Mutex
		recent [][24]byte // trace id + span id of recently exported spans
		first  error
		wg     sync.WaitGroup
	)
	deadline, hasDeadline := ctx.Deadline()
	fail := func(err error) {
		// An RPC can see ctx's deadline before ctx.Err does.
		if err == nil || ctx.Err() != nil || (hasDeadline && !time.Now().Before(deadline)) {
			return
		}
		l.errs.Add(1)
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
	}
	every := func(perSec int, f func(n int, rng *rand.Rand) error, seed uint64) {
		if perSec <= 0 {
			return
		}
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(l.Seed, seed))
			t := time.NewTicker(tick)
			defer t.Stop()
			owed := 0.0
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				owed += float64(perSec) * tick.Seconds()
				if n := int(owed); n > 0 {
					owed -= float64(n)
					fail(f(n, rng))
				}
			}
		})
	}
	every(l.SpansPerSec, func(n int, rng *rand.Rand) error {
		req, ids := l.spanBatch(n, rng)
		if _, err := l.OTLP.Export(ctx, req); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		l.spans.Add(uint64(n))
		mu.Lock()
		recent = append(recent, ids...)
		if len(recent) > 4096 {
			recent = append(recent[:0], recent[len(recent)-2048:]...)
		}
		mu.Unlock()
		return nil
	}, 1)
	every(l.RecordsPerSec, func(n int, rng *rand.Rand) error {
		mu.Lock()
		var pick [][24]byte
		for range n {
			if len(recent) > 0 {
				pick = append(pick, recent[rng.IntN(len(recent))])
			}
		}
		mu.Unlock()
		if len(pick) == 0 {
			return nil
		}
		req := &collectorv1.ReportRequest{AgentId: "soak", BatchId: rng.Uint64()}
		for _, id := range pick {
			req.Records = append(req.Records, record(id, rng))
		}
		if _, err := l.Collector.Report(ctx, req); err != nil {
			return fmt.Errorf("report: %w", err)
		}
		l.records.Add(uint64(len(pick)))
		return nil
	}, 2)
	every(l.QueriesPerSec, func(n int, rng *rand.Rand) error {
		for range n {
			if err := l.find(ctx, rng); err != nil {
				return err
			}
			l.queries.Add(1)
		}
		return nil
	}, 3)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	return first
}

func (l *Load) find(ctx context.Context, rng *rand.Rand) error {
	now := time.Now()
	stream, err := l.Reader.FindTraces(ctx, &storagev2.FindTracesRequest{Query: &storagev2.TraceQueryParameters{
		ServiceName:  fmt.Sprintf("soak-%d", rng.IntN(l.Services)),
		StartTimeMin: timestamppb.New(now.Add(-5 * time.Minute)), StartTimeMax: timestamppb.New(now),
		SearchDepth: 20,
	}})
	if err != nil {
		return fmt.Errorf("find traces: %w", err)
	}
	for {
		if _, err := stream.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("find traces: %w", err)
		}
	}
}

// spanBatch builds n spans (whole traces of SpansPerTrace spans, the last
// one shorter) ending now, like an instrumented service's batch exporter.
func (l *Load) spanBatch(n int, rng *rand.Rand) (*coltracepb.ExportTraceServiceRequest, [][24]byte) {
	req := &coltracepb.ExportTraceServiceRequest{}
	var ids [][24]byte
	now := time.Now()
	for n > 0 {
		k := min(n, l.SpansPerTrace)
		n -= k
		var traceID [16]byte
		binary.BigEndian.PutUint64(traceID[:8], rng.Uint64())
		binary.BigEndian.PutUint64(traceID[8:], rng.Uint64())
		svc := fmt.Sprintf("soak-%d", rng.IntN(l.Services))
		ss := &tracepb.ScopeSpans{Scope: &commonpb.InstrumentationScope{Name: "soakload", Version: "1"}}
		var root []byte
		for i := range k {
			var id [24]byte
			copy(id[:16], traceID[:])
			binary.BigEndian.PutUint64(id[16:], rng.Uint64()|1)
			start := now.Add(-time.Duration(k-i) * time.Millisecond)
			sp := &tracepb.Span{
				TraceId: id[:16:16], SpanId: id[16:24:24], Name: fmt.Sprintf("GET /api/%d", rng.IntN(20)),
				Kind:              tracepb.Span_SPAN_KIND_SERVER,
				StartTimeUnixNano: uint64(start.UnixNano()), EndTimeUnixNano: uint64(start.Add(time.Duration(1+rng.IntN(900)) * time.Microsecond).UnixNano()),
				Attributes: []*commonpb.KeyValue{
					str("http.method", "GET"), str("http.route", "/api"), num("http.status_code", 200),
					num("soak.request", rng.Int64N(1e6)),
				},
			}
			if root == nil {
				root = sp.SpanId
			} else {
				sp.ParentSpanId = root
			}
			ss.Spans = append(ss.Spans, sp)
			ids = append(ids, id)
		}
		req.ResourceSpans = append(req.ResourceSpans, &tracepb.ResourceSpans{
			Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", svc), str("host.name", "soak-host")}},
			ScopeSpans: []*tracepb.ScopeSpans{ss},
		})
	}
	return req, ids
}

// record is a 3-hop IOAM record for the span id (trace id + span id).
func record(id [24]byte, rng *rand.Rand) *collectorv1.IOAMRecord {
	now := uint64(time.Now().UnixNano())
	r := &collectorv1.IOAMRecord{
		TraceId: id[:16:16], SpanId: id[16:24:24], NamespaceId: 123, TraceType: traceType,
		ReporterNodeId: 3, ReporterWrote: true, Packets: 1 + uint64(rng.IntN(5)),
		FirstSeenUnixNano: now, LastSeenUnixNano: now, Carrier: "oss",
	}
	for i, node := range []uint32{1, 2, 3} {
		r.Hops = append(r.Hops, &collectorv1.Hop{
			Fields: traceType, HopLimit: uint32(64 - i), NodeId: node, IngressIf: 10 + node, EgressIf: 20 + node,
			TimestampSec: uint32(now / 1e9), TimestampFrac: uint32(rng.IntN(1e6)), TransitDelay: uint32(rng.IntN(5000)),
		})
	}
	return r
}

func str(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func num(k string, v int64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
}

// traceType is the IOAM trace type of the records (RFC 9197 §4.4.1): bits 0-3
// (hop limit + node id, interfaces, timestamps) and bit 4 (transit delay).
const traceType = 0xF00000 | 1<<(23-4)
