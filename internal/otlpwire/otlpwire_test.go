package otlpwire

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// requireSameAsProto checks the encoders against proto.Marshal: the same
// bytes, or a message proto.Marshal rejects reported as not encoded.
func requireSameAsProto(t testing.TB, rs *tracepb.ResourceSpans) {
	t.Helper()
	check := func(what string, want []byte, wantErr error, got []byte, ok bool) {
		t.Helper()
		if wantErr != nil {
			require.False(t, ok, "%s: proto.Marshal fails (%v), the encoder must leave it to proto.Marshal", what, wantErr)
			return
		}
		if ok {
			requireSameBytes(t, want, got, what)
		}
	}
	want, wantErr := proto.Marshal(rs)
	got, ok := AppendResourceSpans(nil, rs)
	check("ResourceSpans", want, wantErr, got, ok)
	want, wantErr = proto.MarshalOptions{Deterministic: true}.Marshal(&tracepb.TracesData{ResourceSpans: []*tracepb.ResourceSpans{rs, rs}})
	got, ok = AppendTracesData(nil, []*tracepb.ResourceSpans{rs, rs})
	check("TracesData", want, wantErr, got, ok)
	prefix := []byte{0x0a, 0x01, 0x02}
	for _, ss := range rs.GetScopeSpans() {
		for _, sp := range ss.GetSpans() {
			want, wantErr := proto.MarshalOptions{}.MarshalAppend(prefix[:len(prefix):len(prefix)], sp)
			got, ok := AppendSpan(prefix[:len(prefix):len(prefix)], sp)
			check("Span", want, wantErr, got, ok)
		}
	}
}

// encodes reports whether the encoders take every message of rs.
func encodes(rs *tracepb.ResourceSpans) bool {
	_, ok := AppendResourceSpans(nil, rs)
	return ok
}

var (
	testTraceID = []byte{0xab, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	testSpanID  = []byte{0xcd, 1, 2, 3, 4, 5, 6, 7}
)

func strAttr(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func intAttr(k string, v int64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
}

func boolAttr(k string, v bool) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: v}}}
}

func requireSameBytes(t testing.TB, want, got []byte, what string) {
	t.Helper()
	if !bytes.Equal(want, got) {
		t.Fatalf("%s encoded as\n%x\nproto.Marshal:\n%x", what, got, want)
	}
}

func groupOf(spans ...*tracepb.Span) *tracepb.ResourceSpans {
	return &tracepb.ResourceSpans{
		Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{strAttr("service.name", "athos")}},
		ScopeSpans: []*tracepb.ScopeSpans{{Scope: &commonpb.InstrumentationScope{Name: "s", Version: "1"}, Spans: spans}},
	}
}

func TestWireEncFields(t *testing.T) {
	long := strings.Repeat("x", 200)     // a two-byte length
	longer := strings.Repeat("y", 20000) // three bytes, around nested ones
	full := &tracepb.Span{
		TraceId: testTraceID, SpanId: testSpanID, TraceState: "a=b", ParentSpanId: []byte{9, 9, 9, 9, 9, 9, 9, 9},
		Flags: 0x301, Name: long, Kind: tracepb.Span_SPAN_KIND_SERVER, StartTimeUnixNano: 1, EndTimeUnixNano: math.MaxUint64,
		Attributes: []*commonpb.KeyValue{
			intAttr("zero", 0), intAttr("neg", -1), strAttr("empty", ""), boolAttr("f", false), boolAttr("t", true),
			{Key: "d", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: -0.5}}},
			{Key: "d0", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{}}},
			{Key: "b", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: []byte{}}}},
			{Key: "novalue"}, {Key: "emptyvalue", Value: &commonpb.AnyValue{}}, {},
			{Key: "arr", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{
				Values: []*commonpb.AnyValue{{}, {Value: &commonpb.AnyValue_StringValue{StringValue: longer}},
					{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{}}}}}}}},
			{Key: "nilarr", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{}}},
		},
		DroppedAttributesCount: 1, DroppedEventsCount: 2, DroppedLinksCount: 3,
		Events: []*tracepb.Span_Event{{}, {TimeUnixNano: 5, Name: long, DroppedAttributesCount: 7,
			Attributes: []*commonpb.KeyValue{strAttr(long, longer)}}},
		Status: &tracepb.Status{Message: "m", Code: tracepb.Status_STATUS_CODE_ERROR},
		Links: []*tracepb.Span_Link{{}, {TraceId: testTraceID, SpanId: testSpanID, TraceState: "k=v", Flags: 0x100,
			DroppedAttributesCount: 3, Attributes: []*commonpb.KeyValue{strAttr("l", longer)}}},
	}
	requireSameAsProto(t, groupOf(full, &tracepb.Span{}, &tracepb.Span{Status: &tracepb.Status{}}))
	requireSameAsProto(t, &tracepb.ResourceSpans{})
	requireSameAsProto(t, &tracepb.ResourceSpans{SchemaUrl: "u", Resource: &resourcepb.Resource{DroppedAttributesCount: 4},
		ScopeSpans: []*tracepb.ScopeSpans{{}, {SchemaUrl: "v", Scope: &commonpb.InstrumentationScope{
			Attributes: []*commonpb.KeyValue{intAttr("k", 1)}, DroppedAttributesCount: 2}}}})
}

// Everything the encoders leave to proto.Marshal gives proto.Marshal's
// result, including its errors.
func TestWireEncFallback(t *testing.T) {
	withUnknown := func(m proto.Message) proto.Message {
		m.ProtoReflect().SetUnknown([]byte{0xf8, 0x07, 0x01}) // field 127, varint 1
		return m
	}
	cases := map[string]*tracepb.ResourceSpans{
		"nil link": groupOf(&tracepb.Span{Links: []*tracepb.Span_Link{nil}}),
		"nil span": {ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{nil}}}},
		"nil kv":   groupOf(&tracepb.Span{Attributes: []*commonpb.KeyValue{nil}}),
		"kvlist": groupOf(&tracepb.Span{Attributes: []*commonpb.KeyValue{{Key: "l", Value: &commonpb.AnyValue{
			Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: []*commonpb.KeyValue{intAttr("a", 1)}}}}}}}),
		"key strindex": groupOf(&tracepb.Span{Attributes: []*commonpb.KeyValue{{KeyStrindex: 3}}}),
		"value strindex": groupOf(&tracepb.Span{Attributes: []*commonpb.KeyValue{{Key: "s",
			Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValueStrindex{StringValueStrindex: 2}}}}}),
		"entity ref":        {Resource: &resourcepb.Resource{EntityRefs: []*commonpb.EntityRef{{Type: "host"}}}},
		"unknown span":      groupOf(withUnknown(&tracepb.Span{Name: "n"}).(*tracepb.Span)),
		"unknown group":     withUnknown(groupOf()).(*tracepb.ResourceSpans),
		"unknown kv":        groupOf(&tracepb.Span{Attributes: []*commonpb.KeyValue{withUnknown(intAttr("a", 1)).(*commonpb.KeyValue)}}),
		"unknown status":    groupOf(&tracepb.Span{Status: withUnknown(&tracepb.Status{}).(*tracepb.Status)}),
		"bad utf-8 name":    groupOf(&tracepb.Span{Name: "\xff"}),
		"bad utf-8 value":   groupOf(&tracepb.Span{Attributes: []*commonpb.KeyValue{strAttr("k", "a\xc3")}}),
		"bad utf-8 service": {Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{strAttr("service.name", "\xfe")}}},
	}
	for name, rs := range cases {
		t.Run(name, func(t *testing.T) {
			require.False(t, encodes(rs), "left to proto.Marshal")
			requireSameAsProto(t, rs)
		})
	}
}

// randomGroup builds a ResourceSpans from what the encoders handle.
func randomGroup(r *rand.Rand) *tracepb.ResourceSpans {
	str := func() string { return strings.Repeat("é", r.IntN(3)*r.IntN(100)) }
	var value func(depth int) *commonpb.AnyValue
	value = func(depth int) *commonpb.AnyValue {
		switch r.IntN(7) {
		case 0:
			return &commonpb.AnyValue{}
		case 1:
			return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: str()}}
		case 2:
			return &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: r.IntN(2) == 0}}
		case 3:
			return &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: r.Int64() >> r.IntN(64) * int64(1-2*r.IntN(2))}}
		case 4:
			return &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: r.NormFloat64()}}
		case 5:
			return &commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: []byte(str())}}
		}
		arr := &commonpb.ArrayValue{}
		for range r.IntN(4) * min(1, 3-depth) {
			arr.Values = append(arr.Values, value(depth+1))
		}
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: arr}}
	}
	kvs := func() []*commonpb.KeyValue {
		var out []*commonpb.KeyValue
		for range r.IntN(8) {
			kv := &commonpb.KeyValue{Key: str()}
			if r.IntN(5) > 0 {
				kv.Value = value(0)
			}
			out = append(out, kv)
		}
		return out
	}
	u32 := func() uint32 { return uint32(r.Uint64() >> r.IntN(64)) }
	rs := &tracepb.ResourceSpans{SchemaUrl: str()}
	if r.IntN(4) > 0 {
		rs.Resource = &resourcepb.Resource{Attributes: kvs(), DroppedAttributesCount: u32()}
	}
	for range r.IntN(3) {
		ss := &tracepb.ScopeSpans{SchemaUrl: str()}
		if r.IntN(2) == 0 {
			ss.Scope = &commonpb.InstrumentationScope{Name: str(), Version: str(), Attributes: kvs(), DroppedAttributesCount: u32()}
		}
		for range r.IntN(4) {
			sp := &tracepb.Span{TraceId: []byte(str()), SpanId: []byte(str()), TraceState: str(), ParentSpanId: []byte(str()),
				Flags: u32(), Name: str(), Kind: tracepb.Span_SpanKind(r.IntN(6)), StartTimeUnixNano: r.Uint64() >> r.IntN(64),
				EndTimeUnixNano: r.Uint64() >> r.IntN(64), Attributes: kvs(), DroppedAttributesCount: u32(),
				DroppedEventsCount: u32(), DroppedLinksCount: u32()}
			for range r.IntN(4) {
				sp.Events = append(sp.Events, &tracepb.Span_Event{TimeUnixNano: r.Uint64() >> r.IntN(64), Name: str(),
					Attributes: kvs(), DroppedAttributesCount: u32()})
			}
			if r.IntN(2) == 0 {
				sp.Status = &tracepb.Status{Message: str(), Code: tracepb.Status_StatusCode(r.IntN(3))}
			}
			for range r.IntN(3) {
				sp.Links = append(sp.Links, &tracepb.Span_Link{TraceId: []byte(str()), SpanId: []byte(str()), TraceState: str(),
					Attributes: kvs(), DroppedAttributesCount: u32(), Flags: u32()})
			}
			ss.Spans = append(ss.Spans, sp)
		}
		rs.ScopeSpans = append(rs.ScopeSpans, ss)
	}
	return rs
}

func TestWireEncRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for range 2000 {
		requireSameAsProto(t, randomGroup(r))
	}
}

// FuzzWireEnc: any ResourceSpans protobuf decodes is encoded as
// proto.Marshal encodes it.
func FuzzWireEnc(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 5))
	for range 20 {
		b, err := proto.Marshal(randomGroup(r))
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rs := &tracepb.ResourceSpans{}
		if proto.Unmarshal(b, rs) != nil {
			return
		}
		requireSameAsProto(t, rs)
	})
}
