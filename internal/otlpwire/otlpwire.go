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
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Field numbers of opentelemetry/proto/{trace,common,resource}/v1: the one
// home of them for every package that reads or writes OTLP on the wire.
const (
	// ExportTraceServiceRequest (collector/trace/v1/trace_service.proto)
	// has TracesData's layout.
	FieldExportRequestResourceSpans protowire.Number = 1
	FieldTracesDataResourceSpans    protowire.Number = 1
	FieldResourceSpansScopeSpans    protowire.Number = 2
	FieldScopeSpansSpans            protowire.Number = 2
	FieldSpanTraceID                protowire.Number = 1
	FieldSpanSpanID                 protowire.Number = 2
	FieldSpanStart                  protowire.Number = 7
	FieldSpanEnd                    protowire.Number = 8
	FieldSpanAttributes             protowire.Number = 9
	FieldSpanLinks                  protowire.Number = 13
	FieldKeyValueKey                protowire.Number = 1
	FieldLinkTraceID                protowire.Number = 1
	FieldLinkSpanID                 protowire.Number = 2
	FieldLinkTraceState             protowire.Number = 3
	FieldLinkAttributes             protowire.Number = 4
	FieldLinkDroppedAttrs           protowire.Number = 5
	FieldLinkFlags                  protowire.Number = 6
	FieldResourceSpansResource      protowire.Number = 1
	FieldResourceSpansSchemaURL     protowire.Number = 3
	FieldScopeSpansScope            protowire.Number = 1
	FieldScopeSpansSchemaURL        protowire.Number = 3

	FieldSpanTraceState     protowire.Number = 3
	FieldSpanParentSpanID   protowire.Number = 4
	FieldSpanName           protowire.Number = 5
	FieldSpanKind           protowire.Number = 6
	FieldSpanDroppedAttrs   protowire.Number = 10
	FieldSpanEvents         protowire.Number = 11
	FieldSpanDroppedEvents  protowire.Number = 12
	FieldSpanDroppedLinks   protowire.Number = 14
	FieldSpanStatus         protowire.Number = 15
	FieldSpanFlags          protowire.Number = 16
	FieldStatusMessage      protowire.Number = 2
	FieldStatusCode         protowire.Number = 3
	FieldEventTime          protowire.Number = 1
	FieldEventName          protowire.Number = 2
	FieldEventAttributes    protowire.Number = 3
	FieldEventDroppedAttrs  protowire.Number = 4
	FieldKeyValueValue      protowire.Number = 2
	FieldAnyString          protowire.Number = 1
	FieldAnyBool            protowire.Number = 2
	FieldAnyInt             protowire.Number = 3
	FieldAnyDouble          protowire.Number = 4
	FieldAnyArray           protowire.Number = 5
	FieldAnyBytes           protowire.Number = 7
	FieldArrayValues        protowire.Number = 1
	FieldResourceAttributes protowire.Number = 1
	FieldResourceDropped    protowire.Number = 2
	FieldScopeName          protowire.Number = 1
	FieldScopeVersion       protowire.Number = 2
	FieldScopeAttributes    protowire.Number = 3
	FieldScopeDroppedAttrs  protowire.Number = 4
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

// known reports whether m has no unknown fields (which proto.Marshal
// writes back and this encoder does not), marking the encoding bad if not.
func (e *wireEnc) known(m protoreflect.ProtoMessage) bool {
	if len(m.ProtoReflect().GetUnknown()) > 0 {
		e.bad = true
		return false
	}
	return true
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
		if kv.GetKeyStrindex() != 0 {
			e.bad = true
		}
		e.known(kv)
		e.str(FieldKeyValueKey, kv.GetKey())
		if v := kv.GetValue(); v != nil {
			vm := e.begin(FieldKeyValueValue)
			e.anyValue(v)
			e.end(vm)
		}
		e.end(m)
	}
}

// anyValue writes the fields of v (its oneof member, present even when it
// holds its type's zero value).
func (e *wireEnc) anyValue(v *commonpb.AnyValue) {
	e.known(v)
	switch x := v.GetValue().(type) {
	case nil:
	case *commonpb.AnyValue_StringValue:
		if !utf8.ValidString(x.StringValue) {
			e.bad = true
		}
		e.b = protowire.AppendTag(e.b, FieldAnyString, protowire.BytesType)
		e.b = protowire.AppendString(e.b, x.StringValue)
	case *commonpb.AnyValue_BoolValue:
		e.b = protowire.AppendTag(e.b, FieldAnyBool, protowire.VarintType)
		e.b = protowire.AppendVarint(e.b, protowire.EncodeBool(x.BoolValue))
	case *commonpb.AnyValue_IntValue:
		e.b = protowire.AppendTag(e.b, FieldAnyInt, protowire.VarintType)
		e.b = protowire.AppendVarint(e.b, uint64(x.IntValue))
	case *commonpb.AnyValue_DoubleValue:
		e.b = protowire.AppendTag(e.b, FieldAnyDouble, protowire.Fixed64Type)
		e.b = protowire.AppendFixed64(e.b, math.Float64bits(x.DoubleValue))
	case *commonpb.AnyValue_BytesValue:
		e.b = protowire.AppendTag(e.b, FieldAnyBytes, protowire.BytesType)
		e.b = protowire.AppendBytes(e.b, x.BytesValue)
	case *commonpb.AnyValue_ArrayValue:
		m := e.begin(FieldAnyArray)
		if arr := x.ArrayValue; arr != nil {
			e.known(arr)
			for _, el := range arr.GetValues() {
				if el == nil {
					e.bad = true
					continue
				}
				em := e.begin(FieldArrayValues)
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
	if !e.known(s) {
		return
	}
	e.bytes(FieldSpanTraceID, s.GetTraceId())
	e.bytes(FieldSpanSpanID, s.GetSpanId())
	e.str(FieldSpanTraceState, s.GetTraceState())
	e.bytes(FieldSpanParentSpanID, s.GetParentSpanId())
	e.str(FieldSpanName, s.GetName())
	e.varint(FieldSpanKind, uint64(s.GetKind()))
	e.fixed64(FieldSpanStart, s.GetStartTimeUnixNano())
	e.fixed64(FieldSpanEnd, s.GetEndTimeUnixNano())
	e.keyValues(FieldSpanAttributes, s.GetAttributes())
	e.varint(FieldSpanDroppedAttrs, uint64(s.GetDroppedAttributesCount()))
	for _, ev := range s.GetEvents() {
		if ev == nil {
			e.bad = true
			continue
		}
		m := e.begin(FieldSpanEvents)
		e.known(ev)
		e.fixed64(FieldEventTime, ev.GetTimeUnixNano())
		e.str(FieldEventName, ev.GetName())
		e.keyValues(FieldEventAttributes, ev.GetAttributes())
		e.varint(FieldEventDroppedAttrs, uint64(ev.GetDroppedAttributesCount()))
		e.end(m)
	}
	e.varint(FieldSpanDroppedEvents, uint64(s.GetDroppedEventsCount()))
	for _, l := range s.GetLinks() {
		if l == nil || !e.known(l) {
			e.bad = true
			continue
		}
		m := e.begin(FieldSpanLinks)
		e.bytes(FieldLinkTraceID, l.GetTraceId())
		e.bytes(FieldLinkSpanID, l.GetSpanId())
		e.str(FieldLinkTraceState, l.GetTraceState())
		e.keyValues(FieldLinkAttributes, l.GetAttributes())
		e.varint(FieldLinkDroppedAttrs, uint64(l.GetDroppedAttributesCount()))
		e.fixed32(FieldLinkFlags, l.GetFlags())
		e.end(m)
	}
	e.varint(FieldSpanDroppedLinks, uint64(s.GetDroppedLinksCount()))
	if st := s.GetStatus(); st != nil {
		e.known(st)
		m := e.begin(FieldSpanStatus)
		e.str(FieldStatusMessage, st.GetMessage())
		e.varint(FieldStatusCode, uint64(st.GetCode()))
		e.end(m)
	}
	e.fixed32(FieldSpanFlags, s.GetFlags())
}

func (e *wireEnc) resource(r *resourcepb.Resource) {
	if len(r.GetEntityRefs()) > 0 {
		e.bad = true
	}
	e.known(r)
	e.keyValues(FieldResourceAttributes, r.GetAttributes())
	e.varint(FieldResourceDropped, uint64(r.GetDroppedAttributesCount()))
}

func (e *wireEnc) scope(s *commonpb.InstrumentationScope) {
	e.known(s)
	e.str(FieldScopeName, s.GetName())
	e.str(FieldScopeVersion, s.GetVersion())
	e.keyValues(FieldScopeAttributes, s.GetAttributes())
	e.varint(FieldScopeDroppedAttrs, uint64(s.GetDroppedAttributesCount()))
}

// resourceSpansFields writes the fields of rs.
func (e *wireEnc) resourceSpansFields(rs *tracepb.ResourceSpans) {
	if !e.known(rs) {
		return
	}
	if r := rs.GetResource(); r != nil {
		m := e.begin(FieldResourceSpansResource)
		e.resource(r)
		e.end(m)
	}
	for _, ss := range rs.GetScopeSpans() {
		if ss == nil {
			e.bad = true
			continue
		}
		m := e.begin(FieldResourceSpansScopeSpans)
		e.known(ss)
		if sc := ss.GetScope(); sc != nil {
			sm := e.begin(FieldScopeSpansScope)
			e.scope(sc)
			e.end(sm)
		}
		for _, sp := range ss.GetSpans() {
			if sp == nil {
				e.bad = true
				continue
			}
			pm := e.begin(FieldScopeSpansSpans)
			e.spanFields(sp)
			e.end(pm)
		}
		e.str(FieldScopeSpansSchemaURL, ss.GetSchemaUrl())
		e.end(m)
	}
	e.str(FieldResourceSpansSchemaURL, rs.GetSchemaUrl())
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
		m := e.begin(FieldTracesDataResourceSpans)
		e.resourceSpansFields(rs)
		e.end(m)
	}
	return e.b, !e.bad
}
