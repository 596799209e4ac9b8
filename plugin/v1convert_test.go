package plugin

import (
	"bytes"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cross-layer-telemetry/clt/api/storagev1"
)

func v1KV(k string, v any) *storagev1.KeyValue {
	kv := &storagev1.KeyValue{Key: k}
	switch x := v.(type) {
	case string:
		kv.VStr = x
	case bool:
		kv.VType, kv.VBool = storagev1.ValueType_BOOL, x
	case int:
		kv.VType, kv.VInt64 = storagev1.ValueType_INT64, int64(x)
	case float64:
		kv.VType, kv.VFloat64 = storagev1.ValueType_FLOAT64, x
	case []byte:
		kv.VType, kv.VBinary = storagev1.ValueType_BINARY, x
	default:
		panic(v)
	}
	return kv
}

var v1Start = time.Date(2026, 12, 3, 10, 0, 0, 123456789, time.UTC)

func v1Span(mut func(*storagev1.Span)) *storagev1.Span {
	s := &storagev1.Span{
		TraceId: tid(1), SpanId: sid(2), OperationName: "GET /api", Flags: 1,
		StartTime: timestamppb.New(v1Start), Duration: durationpb.New(1500 * time.Microsecond),
		Process: &storagev1.Process{ServiceName: "svc", Tags: []*storagev1.KeyValue{v1KV("host.name", "h1"), v1KV("pid", 42)}},
	}
	if mut != nil {
		mut(s)
	}
	return s
}

// v1RoundTripCases are spans whose every field must survive v1 → OTLP → v1;
// they also seed FuzzV1Convert.
func v1RoundTripCases() map[string]*storagev1.Span {
	return map[string]*storagev1.Span{
		"minimal": v1Span(nil),
		"typed tags": v1Span(func(s *storagev1.Span) {
			s.Tags = []*storagev1.KeyValue{v1KV("s", "x"), v1KV("b", true), v1KV("i", -7), v1KV("f", 2.5),
				v1KV("bin", []byte{0, 1, 2}), v1KV("empty", ""), v1KV("dup", 1), v1KV("dup", 1), v1KV("nan", math.NaN())}
		}),
		"special tags": v1Span(func(s *storagev1.Span) {
			s.Tags = []*storagev1.KeyValue{v1KV(tagSpanKind, "server"), v1KV(tagStatusCode, "ERROR"), v1KV(tagError, true),
				v1KV(tagStatusDescription, "boom"), v1KV(tagScopeName, "lib"), v1KV(tagScopeVersion, "1.2"), v1KV(tagTraceState, "a=b")}
		}),
		"special tags kept as attributes": v1Span(func(s *storagev1.Span) {
			s.Tags = []*storagev1.KeyValue{v1KV(tagSpanKind, "server"), v1KV(tagSpanKind, "client"), v1KV(tagSpanKind, "weird"),
				v1KV(tagStatusCode, "ERROR"), v1KV(tagStatusCode, 3), v1KV(tagScopeName, ""), v1KV(AttrJaegerWarnings, "a string")}
		}),
		"status ok, error tag string": v1Span(func(s *storagev1.Span) {
			s.Tags = []*storagev1.KeyValue{v1KV(tagStatusCode, "OK"), v1KV(tagError, "false")}
		}),
		"references": v1Span(func(s *storagev1.Span) {
			s.References = []*storagev1.SpanRef{
				{TraceId: tid(1), SpanId: sid(1), RefType: storagev1.SpanRefType_CHILD_OF},
				{TraceId: tid(9), SpanId: sid(9), RefType: storagev1.SpanRefType_CHILD_OF},
				{TraceId: tid(1), SpanId: sid(3), RefType: storagev1.SpanRefType_FOLLOWS_FROM},
			}
		}),
		"follows_from first": v1Span(func(s *storagev1.Span) {
			s.References = []*storagev1.SpanRef{{TraceId: tid(1), SpanId: sid(3), RefType: storagev1.SpanRefType_FOLLOWS_FROM},
				{TraceId: tid(1), SpanId: sid(1), RefType: storagev1.SpanRefType_CHILD_OF}}
		}),
		"logs": v1Span(func(s *storagev1.Span) {
			s.Logs = []*storagev1.Log{
				{Timestamp: timestamppb.New(v1Start.Add(time.Millisecond)), Fields: []*storagev1.KeyValue{v1KV("k", 1), v1KV(logEventField, "ioam.hop"), v1KV(logEventField, "second")}},
				{Timestamp: timestamppb.New(v1Start), Fields: []*storagev1.KeyValue{v1KV(logEventField, "")}},
				{Timestamp: timestamppb.New(v1Start)},
			}
		}),
		"warnings and flags": v1Span(func(s *storagev1.Span) {
			s.Warnings = []string{"w1", "ioam: trace overflowed at node 2: 1 hop(s) missing"}
			s.Flags = 0x2 | 0x8
		}),
		"process service.name tag and empty service": v1Span(func(s *storagev1.Span) {
			s.Process = &storagev1.Process{Tags: []*storagev1.KeyValue{v1KV(attrServiceName, "other")}}
		}),
		"epoch": v1Span(func(s *storagev1.Span) {
			s.StartTime, s.Duration = &timestamppb.Timestamp{}, &durationpb.Duration{}
		}),
	}
}

// canonV1 is s as Jaeger compares spans (tags, process tags and log fields
// as multisets) with what v1 cannot tell apart filled in: nil times are
// zero, the process id is not kept (each span carries its process), fields
// a value type does not use are zero.
func canonV1(s *storagev1.Span) *storagev1.Span {
	s = proto.Clone(s).(*storagev1.Span)
	s.ProcessId = ""
	if s.StartTime == nil {
		s.StartTime = &timestamppb.Timestamp{}
	}
	if s.Duration == nil {
		s.Duration = &durationpb.Duration{}
	}
	if s.Process == nil {
		s.Process = &storagev1.Process{}
	}
	s.Tags = canonKVs(s.Tags)
	s.Process.Tags = canonKVs(s.Process.Tags)
	for _, l := range s.Logs {
		if l.Timestamp == nil {
			l.Timestamp = &timestamppb.Timestamp{}
		}
		l.Fields = canonKVs(l.Fields)
	}
	return s
}

func canonKVs(kvs []*storagev1.KeyValue) []*storagev1.KeyValue {
	out := make([]*storagev1.KeyValue, 0, len(kvs))
	for _, kv := range kvs {
		c := &storagev1.KeyValue{Key: kv.Key, VType: kv.VType}
		switch kv.VType {
		case storagev1.ValueType_STRING:
			c.VStr = kv.VStr
		case storagev1.ValueType_BOOL:
			c.VBool = kv.VBool
		case storagev1.ValueType_INT64:
			c.VInt64 = kv.VInt64
		case storagev1.ValueType_FLOAT64:
			c.VFloat64 = kv.VFloat64
		case storagev1.ValueType_BINARY:
			c.VBinary = kv.VBinary
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *storagev1.KeyValue) int { return bytes.Compare(detMarshal(a), detMarshal(b)) })
	return out
}

// detMarshal compares bit for bit (proto.Equal says NaN != NaN).
func detMarshal(m proto.Message) []byte {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func v1RoundTrip(t testing.TB, s *storagev1.Span) *storagev1.Span {
	rs, err := v1ToOTLP(s)
	require.NoError(t, err)
	// Through the wire form the store keeps.
	b, err := proto.Marshal(&tracepb.TracesData{ResourceSpans: []*tracepb.ResourceSpans{rs}})
	require.NoError(t, err)
	td := &tracepb.TracesData{}
	require.NoError(t, proto.Unmarshal(b, td))
	got := otlpToV1(nil, td)
	require.Len(t, got, 1)
	return got[0]
}

func TestV1RoundTrip(t *testing.T) {
	for name, s := range v1RoundTripCases() {
		t.Run(name, func(t *testing.T) {
			got := v1RoundTrip(t, s)
			if !bytes.Equal(detMarshal(canonV1(s)), detMarshal(canonV1(got))) {
				t.Fatalf("round trip differs:\n in: %v\nout: %v", canonV1(s), canonV1(got))
			}
		})
	}
}

func TestV1ToOTLPFields(t *testing.T) {
	rs, err := v1ToOTLP(v1RoundTripCases()["special tags"])
	require.NoError(t, err)
	sp := rs.ScopeSpans[0].Spans[0]
	assert.Equal(t, tracepb.Span_SPAN_KIND_SERVER, sp.Kind)
	assert.Equal(t, tracepb.Status_STATUS_CODE_ERROR, sp.Status.GetCode())
	assert.Equal(t, "boom", sp.Status.GetMessage())
	assert.Equal(t, "a=b", sp.TraceState)
	assert.Equal(t, "lib", rs.ScopeSpans[0].Scope.GetName())
	assert.Equal(t, "1.2", rs.ScopeSpans[0].Scope.GetVersion())
	require.Len(t, sp.Attributes, 1)
	assert.Equal(t, tagError, sp.Attributes[0].Key)
	assert.Equal(t, uint64(v1Start.UnixNano()), sp.StartTimeUnixNano)
	assert.Equal(t, uint64(v1Start.Add(1500*time.Microsecond).UnixNano()), sp.EndTimeUnixNano)
	assert.Equal(t, "svc", attrMap(rs.Resource.Attributes)[attrServiceName].GetStringValue())

	// ERROR without an error tag would read back with one: kept as a tag.
	rs, err = v1ToOTLP(v1Span(func(s *storagev1.Span) { s.Tags = []*storagev1.KeyValue{v1KV(tagStatusCode, "ERROR")} }))
	require.NoError(t, err)
	assert.Nil(t, rs.ScopeSpans[0].Spans[0].Status)

	rs, err = v1ToOTLP(v1RoundTripCases()["references"])
	require.NoError(t, err)
	sp = rs.ScopeSpans[0].Spans[0]
	assert.Equal(t, sid(1), sp.ParentSpanId)
	require.Len(t, sp.Links, 2)
	assert.Equal(t, refChildOf, sp.Links[0].Attributes[0].Value.GetStringValue())
	assert.Equal(t, refFollowsFrom, sp.Links[1].Attributes[0].Value.GetStringValue())

	rs, err = v1ToOTLP(v1RoundTripCases()["logs"])
	require.NoError(t, err)
	ev := rs.ScopeSpans[0].Spans[0].Events
	require.Len(t, ev, 3)
	assert.Equal(t, "ioam.hop", ev[0].Name)
	assert.Len(t, ev[0].Attributes, 2) // k and the second event field
	assert.Equal(t, "", ev[1].Name)
}

func TestV1ToOTLPErrors(t *testing.T) {
	for name, mut := range map[string]func(*storagev1.Span){
		"before 1970":       func(s *storagev1.Span) { s.StartTime = timestamppb.New(time.Unix(-1, 0)) },
		"after 2262":        func(s *storagev1.Span) { s.StartTime = &timestamppb.Timestamp{Seconds: 1 << 40} },
		"bad nanos":         func(s *storagev1.Span) { s.StartTime = &timestamppb.Timestamp{Nanos: -1} },
		"negative duration": func(s *storagev1.Span) { s.Duration = durationpb.New(-time.Second) },
		"unknown tag type":  func(s *storagev1.Span) { s.Tags = []*storagev1.KeyValue{{Key: "k", VType: 9}} },
		"unknown ref type": func(s *storagev1.Span) {
			s.References = []*storagev1.SpanRef{{TraceId: tid(2), SpanId: sid(1), RefType: 7}}
		},
		"unknown log field": func(s *storagev1.Span) {
			s.Logs = []*storagev1.Log{{Fields: []*storagev1.KeyValue{{Key: "k", VType: 9}}}}
		},
		"unknown proc tag": func(s *storagev1.Span) { s.Process.Tags = []*storagev1.KeyValue{{Key: "k", VType: 9}} },
	} {
		t.Run(name, func(t *testing.T) {
			_, err := v1ToOTLP(v1Span(mut))
			require.ErrorIs(t, err, errV1Span)
		})
	}
	_, err := v1ToOTLP(nil)
	require.ErrorIs(t, err, errV1Span)
}

// OTLP written by an SDK reads in v1 the way Jaeger v2 shows it.
func TestOTLPToV1(t *testing.T) {
	arr := &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{strAny("r1"), {Value: &commonpb.AnyValue_IntValue{IntValue: 2}}}}}}
	td := &tracepb.TracesData{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{v1StrAttr("host.name", "h"), v1StrAttr(attrServiceName, "svc")}},
		ScopeSpans: []*tracepb.ScopeSpans{{Scope: &commonpb.InstrumentationScope{Name: "lib"}, Spans: []*tracepb.Span{{
			TraceId: tid(1), SpanId: sid(2), ParentSpanId: sid(1), Name: "op", Kind: tracepb.Span_SPAN_KIND_CLIENT,
			StartTimeUnixNano: 2e9, EndTimeUnixNano: 3e9,
			Status:     &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "bad"},
			Attributes: []*commonpb.KeyValue{{Key: "ioam.path", Value: arr}},
			Links:      []*tracepb.Span_Link{{TraceId: tid(3), SpanId: sid(3)}},
			Events:     []*tracepb.Span_Event{{Name: "ioam.hop", TimeUnixNano: 25e8}},
		}}}},
	}}}
	got := otlpToV1(nil, td)
	require.Len(t, got, 1)
	s := got[0]
	assert.Equal(t, "svc", s.Process.ServiceName)
	assert.Equal(t, []*storagev1.KeyValue{v1KV("host.name", "h")}, s.Process.Tags)
	assert.Equal(t, time.Second, s.Duration.AsDuration())
	assert.Equal(t, []*storagev1.SpanRef{
		{TraceId: tid(1), SpanId: sid(1), RefType: storagev1.SpanRefType_CHILD_OF},
		{TraceId: tid(3), SpanId: sid(3), RefType: storagev1.SpanRefType_FOLLOWS_FROM},
	}, s.References)
	assert.Equal(t, []*storagev1.KeyValue{v1KV("ioam.path", `["r1",2]`), v1KV(tagSpanKind, "client"), v1KV(tagStatusCode, "ERROR"),
		v1KV(tagError, true), v1KV(tagStatusDescription, "bad"), v1KV(tagScopeName, "lib")}, s.Tags)
	require.Len(t, s.Logs, 1)
	assert.Equal(t, []*storagev1.KeyValue{v1KV(logEventField, "ioam.hop")}, s.Logs[0].Fields)
	assert.Equal(t, int64(25e8), s.Logs[0].Timestamp.AsTime().UnixNano())
}

// FuzzV1Convert: any span v1ToOTLP accepts comes back from otlpToV1 equal
// up to tag order; anything else is an errV1Span, never a panic.
func FuzzV1Convert(f *testing.F) {
	for _, s := range v1RoundTripCases() {
		f.Add(detMarshal(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := &storagev1.Span{}
		if err := (proto.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, s); err != nil {
			return
		}
		if _, err := v1ToOTLP(s); err != nil {
			require.ErrorIs(t, err, errV1Span)
			return
		}
		got := v1RoundTrip(t, s)
		if !bytes.Equal(detMarshal(canonV1(s)), detMarshal(canonV1(got))) {
			t.Fatalf("round trip differs:\n in: %v\nout: %v", canonV1(s), canonV1(got))
		}
	})
}

// benchV1Span is a typical instrumented span: 8 tags, 2 logs, a parent.
func benchV1Span() *storagev1.Span {
	return v1Span(func(s *storagev1.Span) {
		s.References = []*storagev1.SpanRef{{TraceId: tid(1), SpanId: sid(1), RefType: storagev1.SpanRefType_CHILD_OF}}
		s.Tags = []*storagev1.KeyValue{v1KV(tagSpanKind, "server"), v1KV("http.method", "GET"), v1KV("http.url", "/api/v1/items?id=42"),
			v1KV("http.status_code", 200), v1KV("peer.ipv6", "fd00::1"), v1KV("component", "net/http"), v1KV("sampler.param", true), v1KV("ratio", 0.5)}
		s.Logs = []*storagev1.Log{{Timestamp: timestamppb.New(v1Start), Fields: []*storagev1.KeyValue{v1KV(logEventField, "start"), v1KV("n", 1)}},
			{Timestamp: timestamppb.New(v1Start.Add(time.Millisecond)), Fields: []*storagev1.KeyValue{v1KV(logEventField, "end")}}}
	})
}

func BenchmarkV1ToOTLP(b *testing.B) {
	s := benchV1Span()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v1ToOTLP(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOTLPToV1(b *testing.B) {
	rs, err := v1ToOTLP(benchV1Span())
	require.NoError(b, err)
	td := &tracepb.TracesData{ResourceSpans: []*tracepb.ResourceSpans{rs}}
	b.ReportAllocs()
	for b.Loop() {
		if len(otlpToV1(nil, td)) != 1 {
			b.Fatal("no span")
		}
	}
}
