package ioamstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// openTest opens a store in t.TempDir() (or in memory) closed at cleanup.
func openTest(t testing.TB, inMemory bool, mod ...func(*Config)) *Store {
	t.Helper()
	cfg := DefaultConfig()
	cfg.InMemory = inMemory
	cfg.Dir = t.TempDir()
	cfg.BlockCacheMB = 16
	cfg.MemTableMB = 16
	for _, m := range mod {
		m(&cfg)
	}
	s, err := Open(cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func strKV(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}
func intKV(k string, v int64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
}
func boolKV(k string, v bool) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: v}}}
}
func dblKV(k string, v float64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: v}}}
}

func tid(n uint64) [16]byte {
	var id [16]byte
	binary.BigEndian.PutUint64(id[:8], 0xabcdef)
	binary.BigEndian.PutUint64(id[8:], n)
	return id
}

func sid(n uint64) [8]byte {
	var id [8]byte
	binary.BigEndian.PutUint64(id[:], n)
	return id
}

// spanOpt customises a test span.
type spanOpt func(*tracepb.Span)

func newSpan(trace [16]byte, span uint64, name string, start time.Time, dur time.Duration, opts ...spanOpt) *tracepb.Span {
	s := sid(span)
	sp := &tracepb.Span{
		TraceId:           trace[:],
		SpanId:            s[:],
		Name:              name,
		Kind:              tracepb.Span_SPAN_KIND_SERVER,
		StartTimeUnixNano: uint64(start.UnixNano()),
		EndTimeUnixNano:   uint64(start.Add(dur).UnixNano()),
	}
	for _, o := range opts {
		o(sp)
	}
	return sp
}

func withAttrs(kv ...*commonpb.KeyValue) spanOpt {
	return func(s *tracepb.Span) { s.Attributes = append(s.Attributes, kv...) }
}
func withKind(k tracepb.Span_SpanKind) spanOpt { return func(s *tracepb.Span) { s.Kind = k } }
func withParent(p uint64) spanOpt {
	return func(s *tracepb.Span) { id := sid(p); s.ParentSpanId = id[:] }
}
func withStatus(c tracepb.Status_StatusCode) spanOpt {
	return func(s *tracepb.Span) { s.Status = &tracepb.Status{Code: c, Message: "m"} }
}
func withEvent(name string, kv ...*commonpb.KeyValue) spanOpt {
	return func(s *tracepb.Span) {
		s.Events = append(s.Events, &tracepb.Span_Event{Name: name, TimeUnixNano: s.StartTimeUnixNano, Attributes: kv})
	}
}

// resSpans wraps spans under one resource of service (extra resource attrs
// and scope attrs optional).
func resSpans(service string, resAttrs, scopeAttrs []*commonpb.KeyValue, spans ...*tracepb.Span) *tracepb.ResourceSpans {
	return &tracepb.ResourceSpans{
		Resource:  &resourcepb.Resource{Attributes: append([]*commonpb.KeyValue{strKV("service.name", service)}, resAttrs...)},
		SchemaUrl: "https://opentelemetry.io/schemas/1.26.0",
		ScopeSpans: []*tracepb.ScopeSpans{{
			Scope: &commonpb.InstrumentationScope{Name: "test", Version: "1", Attributes: scopeAttrs},
			Spans: spans,
		}},
	}
}

func write(t testing.TB, s *Store, rs ...*tracepb.ResourceSpans) {
	t.Helper()
	want := 0
	for _, r := range rs {
		for _, ss := range r.ScopeSpans {
			want += len(ss.Spans)
		}
	}
	n, err := s.WriteSpans(context.Background(), rs)
	require.NoError(t, err)
	require.Equal(t, want, n)
}

func readTrace(t testing.TB, s *Store, id [16]byte) []*tracepb.ResourceSpans {
	t.Helper()
	var out []*tracepb.ResourceSpans
	require.NoError(t, s.GetTrace(context.Background(), id, func(r *tracepb.ResourceSpans) error {
		out = append(out, r)
		return nil
	}))
	return out
}

func find(t testing.TB, s *Store, q Query) [][16]byte {
	t.Helper()
	if q.SearchDepth == 0 {
		q.SearchDepth = 100
	}
	res, err := s.FindTraceIDs(context.Background(), q)
	require.NoError(t, err)
	ids := make([][16]byte, 0, len(res))
	for _, r := range res {
		ids = append(ids, r.TraceID)
	}
	return ids
}

func countSpans(rs []*tracepb.ResourceSpans) int {
	n := 0
	for _, r := range rs {
		for _, ss := range r.ScopeSpans {
			n += len(ss.Spans)
		}
	}
	return n
}

func cloneRS(rs []*tracepb.ResourceSpans) []*tracepb.ResourceSpans {
	out := make([]*tracepb.ResourceSpans, len(rs))
	for i, r := range rs {
		out[i] = proto.Clone(r).(*tracepb.ResourceSpans)
	}
	return out
}

var _ = fmt.Sprint

func tidSlice(n uint64) []byte { id := tid(n); return id[:] }
func sidSlice(n uint64) []byte { id := sid(n); return id[:] }
