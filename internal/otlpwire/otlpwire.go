// Package otlpwire encodes OTLP trace messages
// (opentelemetry/proto/trace/v1/trace.proto and the common and resource
// messages it uses) to the protobuf wire format straight from the generated
// Go types, byte for byte as proto.Marshal encodes them (fields in number
// order, proto3 defaults left out, oneof members always present; no OTLP
// message has a map, so deterministic marshaling gives the same bytes). It
// exists for speed: protobuf's reflective marshaler was a third of
// clt-storage's CPU on a trace read and half of its store's write
// (docs/benchmarks.md). A message using what it does not encode (key-value
// lists, entity refs, string-table indexes, unknown fields, invalid UTF-8,
// nil list elements) is reported, and the caller uses proto.Marshal, which
// encodes it or returns its error; otlpwire_test.go checks both against
// proto.Marshal.
package otlpwire

import (
	"math"
	"unicode/utf8"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of opentelemetry/proto/{trace,common,resource}/v1.
const (
	fieldTracesDataResourceSpans protowire.Number = 1
	fieldResourceSpansScopeSpans protowire.Number = 2
	fieldScopeSpansSpans         protowire.Number = 2
	fieldSpanTraceID             protowire.Number = 1
	fieldSpanSpanID              protowire.Number = 2
	fieldSpanStart               protowire.Number = 7
	fieldSpanEnd                 protowire.Number = 8
	fieldSpanAttributes          protowire.Number = 9
	fieldSpanLinks               protowire.Number = 13
	fieldKeyValueKey             protowire.Number = 1
	fieldLinkTraceID             protowire.Number = 1
	fieldLinkSpanID              protowire.Number = 2
	fieldLinkTraceState          protowire.Number = 3
	fieldLinkAttributes          protowire.Number = 4
	fieldLinkDroppedAttrs        protowire.Number = 5
	fieldLinkFlags               protowire.Number = 6
	fieldResourceSpansResource   protowire.Number = 1
	fieldResourceSpansSchemaURL  protowire.Number = 3
	fieldScopeSpansScope         protowire.Number = 1
	fieldScopeSpansSchemaURL     protowire.Number = 3

	fieldSpanTraceState     protowire.Number = 3
	fieldSpanParentSpanID   protowire.Number = 4
	fieldSpanName           protowire.Number = 5
	fieldSpanKind           protowire.Number = 6
	fieldSpanDroppedAttrs   protowire.Number = 10
	fieldSpanEvents         protowire.Number = 11
	fieldSpanDroppedEvents  protowire.Number = 12
	fieldSpanDroppedLinks   protowire.Number = 14
	fieldSpanStatus         protowire.Number = 15
	fieldSpanFlags          protowire.Number = 16
	fieldStatusMessage      protowire.Number = 2
	fieldStatusCode         protowire.Number = 3
	fieldEventTime          protowire.Number = 1
	fieldEventName          protowire.Number = 2
	fieldEventAttributes    protowire.Number = 3
	fieldEventDroppedAttrs  protowire.Number = 4
	fieldKeyValueValue      protowire.Number = 2
	fieldAnyString          protowire.Number = 1
	fieldAnyBool            protowire.Number = 2
	fieldAnyInt             protowire.Number = 3
	fieldAnyDouble          protowire.Number = 4
	fieldAnyArray           protowire.Number = 5
	fieldAnyBytes           protowire.Number = 7
	fieldArrayValues        protowire.Number = 1
	fieldResourceAttributes protowire.Number = 1
	fieldResourceDropped    protowire.Number = 2
	fieldScopeName          protowire.Number = 1
	fieldScopeVersion       protowire.Number = 2
	fieldScopeAttributes    protowire.Number = 3
	fieldScopeDroppedAttrs  protowire.Number = 4
	lengthPlaceholder                        = 0 // one byte, rewritten by end
	maxOneByteLen                            = 1<<7 - 1
)

// wireEnc appends encodings to b; bad is set when a message needs
// proto.Marshal (see above), and b is then to be discarded.
type wireEnc struct {
	b   []byte
	bad bool
}

// begin opens length-delimited field num; end closes it. The length is
// written as one byte and moved over when the field turns out longer.
func (e *wireEnc) begin(num protowire.Number) int {
	e.b = protowire.AppendTag(e.b, num, protowire.BytesType)
	e.b = append(e.b, lengthPlaceholder)
	return len(e.b) - 1
}

func (e *wireEnc) end(mark int) {
	n := len(e.b) - mark - 1
	if n <= maxOneByteLen {
		e.b[mark] = byte(n)
		return
	}
	k := protowire.SizeVarint(uint64(n))
	e.b = append(e.b, make([]byte, k-1)...)
	copy(e.b[mark+k:], e.b[mark+1:mark+1+n])
	protowire.AppendVarint(e.b[:mark], uint64(n))
}

func (e *wireEnc) str(num protowire.Number, s string) {
	if s == "" {
		return
	}
	if !utf8.ValidString(s) {
		e.bad = true
		return
	}
	e.b = protowire.AppendTag(e.b, num, protowire.BytesType)
	e.b = protowire.AppendString(e.b, s)
}

func (e *wireEnc) bytes(num protowire.Number, v []byte) {
	if len(v) == 0 {
		return
	}
	e.b = protowire.AppendTag(e.b, num, protowire.BytesType)
	e.b = protowire.AppendBytes(e.b, v)
}

func (e *wireEnc) varint(num protowire.Number, v uint64) {
	if v == 0 {
		return
	}
	e.b = protowire.AppendTag(e.b, num, protowire.VarintType)
	e.b = protowire.AppendVarint(e.b, v)
}

func (e *wireEnc) fixed32(num protowire.Number, v uint32) {
	if v == 0 {
		return
	}
	e.b = protowire.AppendTag(e.b, num, protowire.Fixed32Type)
	e.b = protowire.AppendFixed32(e.b, v)
}

func (e *wireEnc) fixed64(num protowire.Number, v uint64) {
	if v == 0 {
		return
	}
	e.b = protowire.AppendTag(e.b, num, protowire.Fixed64Type)
	e.b = protowire.AppendFixed64(e.b, v)
}

func (e *wireEnc) keyValues(num protowire.Number, kvs []*commonpb.KeyValue) {
	for _, kv := range kvs {
		if kv == nil {
			e.bad = true
			continue
		}
		m := e.begin(num)
		{
			if kv.GetKeyStrindex() != 0 || len(kv.ProtoReflect().GetUnknown()) > 0 {
				e.bad = true
			}
			e.str(fieldKeyValueKey, kv.GetKey())
			if v := kv.GetValue(); v != nil {
				vm := e.begin(fieldKeyValueValue)
				e.anyValue(v)
				e.end(vm)
			}
		}
		e.end(m)
	}
}

// anyValue writes the fields of v (its oneof member, present even when it
// holds its type's zero value).
func (e *wireEnc) anyValue(v *commonpb.AnyValue) {
	if len(v.ProtoReflect().GetUnknown()) > 0 {
		e.bad = true
	}
	switch x := v.GetValue().(type) {
	case nil:
	case *commonpb.AnyValue_StringValue:
		if !utf8.ValidString(x.StringValue) {
			e.bad = true
		}
		e.b = protowire.AppendTag(e.b, fieldAnyString, protowire.BytesType)
		e.b = protowire.AppendString(e.b, x.StringValue)
	case *commonpb.AnyValue_BoolValue:
		e.b = protowire.AppendTag(e.b, fieldAnyBool, protowire.VarintType)
		e.b = protowire.AppendVarint(e.b, protowire.EncodeBool(x.BoolValue))
	case *commonpb.AnyValue_IntValue:
		e.b = protowire.AppendTag(e.b, fieldAnyInt, protowire.VarintType)
		e.b = protowire.AppendVarint(e.b, uint64(x.IntValue))
	case *commonpb.AnyValue_DoubleValue:
		e.b = protowire.AppendTag(e.b, fieldAnyDouble, protowire.Fixed64Type)
		e.b = protowire.AppendFixed64(e.b, math.Float64bits(x.DoubleValue))
	case *commonpb.AnyValue_BytesValue:
		e.b = protowire.AppendTag(e.b, fieldAnyBytes, protowire.BytesType)
		e.b = protowire.AppendBytes(e.b, x.BytesValue)
	case *commonpb.AnyValue_ArrayValue:
		m := e.begin(fieldAnyArray)
		if arr := x.ArrayValue; arr != nil {
			if len(arr.ProtoReflect().GetUnknown()) > 0 {
				e.bad = true
			}
			for _, el := range arr.GetValues() {
				if el == nil {
					e.bad = true
					continue
				}
				em := e.begin(fieldArrayValues)
				e.anyValue(el)
				e.end(em)
			}
		}
		e.end(m)
	default: // key-value lists, string-table indexes
		e.bad = true
	}
}

// spanFields writes the fields of span s.
func (e *wireEnc) spanFields(s *tracepb.Span) {
	if len(s.ProtoReflect().GetUnknown()) > 0 {
		e.bad = true
		return
	}
	e.bytes(fieldSpanTraceID, s.GetTraceId())
	e.bytes(fieldSpanSpanID, s.GetSpanId())
	e.str(fieldSpanTraceState, s.GetTraceState())
	e.bytes(fieldSpanParentSpanID, s.GetParentSpanId())
	e.str(fieldSpanName, s.GetName())
	e.varint(fieldSpanKind, uint64(s.GetKind()))
	e.fixed64(fieldSpanStart, s.GetStartTimeUnixNano())
	e.fixed64(fieldSpanEnd, s.GetEndTimeUnixNano())
	e.keyValues(fieldSpanAttributes, s.GetAttributes())
	e.varint(fieldSpanDroppedAttrs, uint64(s.GetDroppedAttributesCount()))
	for _, ev := range s.GetEvents() {
		if ev == nil {
			e.bad = true
			continue
		}
		m := e.begin(fieldSpanEvents)
		{
			if len(ev.ProtoReflect().GetUnknown()) > 0 {
				e.bad = true
			}
			e.fixed64(fieldEventTime, ev.GetTimeUnixNano())
			e.str(fieldEventName, ev.GetName())
			e.keyValues(fieldEventAttributes, ev.GetAttributes())
			e.varint(fieldEventDroppedAttrs, uint64(ev.GetDroppedAttributesCount()))
		}
		e.end(m)
	}
	e.varint(fieldSpanDroppedEvents, uint64(s.GetDroppedEventsCount()))
	for _, l := range s.GetLinks() {
		if l == nil || len(l.ProtoReflect().GetUnknown()) > 0 {
			e.bad = true
			continue
		}
		m := e.begin(fieldSpanLinks)
		e.bytes(fieldLinkTraceID, l.GetTraceId())
		e.bytes(fieldLinkSpanID, l.GetSpanId())
		e.str(fieldLinkTraceState, l.GetTraceState())
		e.keyValues(fieldLinkAttributes, l.GetAttributes())
		e.varint(fieldLinkDroppedAttrs, uint64(l.GetDroppedAttributesCount()))
		e.fixed32(fieldLinkFlags, l.GetFlags())
		e.end(m)
	}
	e.varint(fieldSpanDroppedLinks, uint64(s.GetDroppedLinksCount()))
	if st := s.GetStatus(); st != nil {
		if len(st.ProtoReflect().GetUnknown()) > 0 {
			e.bad = true
		}
		m := e.begin(fieldSpanStatus)
		e.str(fieldStatusMessage, st.GetMessage())
		e.varint(fieldStatusCode, uint64(st.GetCode()))
		e.end(m)
	}
	e.fixed32(fieldSpanFlags, s.GetFlags())
}

func (e *wireEnc) resource(r *resourcepb.Resource) {
	if len(r.GetEntityRefs()) > 0 || len(r.ProtoReflect().GetUnknown()) > 0 {
		e.bad = true
	}
	e.keyValues(fieldResourceAttributes, r.GetAttributes())
	e.varint(fieldResourceDropped, uint64(r.GetDroppedAttributesCount()))
}

func (e *wireEnc) scope(s *commonpb.InstrumentationScope) {
	if len(s.ProtoReflect().GetUnknown()) > 0 {
		e.bad = true
	}
	e.str(fieldScopeName, s.GetName())
	e.str(fieldScopeVersion, s.GetVersion())
	e.keyValues(fieldScopeAttributes, s.GetAttributes())
	e.varint(fieldScopeDroppedAttrs, uint64(s.GetDroppedAttributesCount()))
}

// resourceSpansFields writes the fields of rs.
func (e *wireEnc) resourceSpansFields(rs *tracepb.ResourceSpans) {
	if len(rs.ProtoReflect().GetUnknown()) > 0 {
		e.bad = true
		return
	}
	if r := rs.GetResource(); r != nil {
		m := e.begin(fieldResourceSpansResource)
		e.resource(r)
		e.end(m)
	}
	for _, ss := range rs.GetScopeSpans() {
		if ss == nil {
			e.bad = true
			continue
		}
		m := e.begin(fieldResourceSpansScopeSpans)
		{
			if len(ss.ProtoReflect().GetUnknown()) > 0 {
				e.bad = true
			}
			if sc := ss.GetScope(); sc != nil {
				sm := e.begin(fieldScopeSpansScope)
				e.scope(sc)
				e.end(sm)
			}
			for _, sp := range ss.GetSpans() {
				if sp == nil {
					e.bad = true
					continue
				}
				pm := e.begin(fieldScopeSpansSpans)
				e.spanFields(sp)
				e.end(pm)
			}
			e.str(fieldScopeSpansSchemaURL, ss.GetSchemaUrl())
		}
		e.end(m)
	}
	e.str(fieldResourceSpansSchemaURL, rs.GetSchemaUrl())
}

// AppendSpan appends the encoding of s to b, as
// proto.MarshalOptions{}.MarshalAppend(b, s) does; ok is false when s needs
// proto.Marshal (see the package comment), and the returned bytes are then
// to be discarded.
func AppendSpan(b []byte, s *tracepb.Span) (_ []byte, ok bool) {
	e := wireEnc{b: b}
	e.spanFields(s)
	return e.b, !e.bad
}

// AppendResourceSpans appends the encoding of rs to b, as AppendSpan.
func AppendResourceSpans(b []byte, rs *tracepb.ResourceSpans) (_ []byte, ok bool) {
	e := wireEnc{b: b}
	e.resourceSpansFields(rs)
	return e.b, !e.bad
}

// AppendTracesData appends the encoding of a TracesData holding rss, as
// AppendSpan.
func AppendTracesData(b []byte, rss []*tracepb.ResourceSpans) (_ []byte, ok bool) {
	e := wireEnc{b: b}
	for _, rs := range rss {
		if rs == nil {
			return e.b, false
		}
		m := e.begin(fieldTracesDataResourceSpans)
		e.resourceSpansFields(rs)
		e.end(m)
	}
	return e.b, !e.bad
}
