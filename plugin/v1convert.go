package plugin

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cross-layer-telemetry/clt/api/storagev1"
)

// Jaeger v1 span model (jaeger.api_v2) ↔ OTLP, the form the store keeps.
//
// The mapping is Jaeger's own (the one its v2 UI JSON shows for OTLP spans),
// so a span reads the same through v1 and v2: process → resource with
// service.name; span.kind, otel.status_code, otel.status_description,
// error, otel.scope.name/version and w3c.tracestate tags ↔ the OTLP fields;
// logs ↔ events (the "event" field is the event name); the first CHILD_OF
// reference of the same trace ↔ parent_span_id, other references ↔ links
// with an opentracing.ref_type attribute; warnings ↔ the @jaeger@warnings
// string array. v1ToOTLP takes a tag into an OTLP field only when
// otlpToV1 gives exactly that tag back, so v1 → OTLP → v1 is lossless up
// to the order of tags (Jaeger sorts them): a second span.kind tag, an
// unknown kind, or otel.status_code=ERROR without an error tag stay plain
// attributes.

// Tag and attribute names of Jaeger's OTLP ↔ v1 mapping.
const (
	tagSpanKind          = "span.kind"
	tagStatusCode        = "otel.status_code"
	tagStatusDescription = "otel.status_description"
	tagError             = "error"
	tagScopeName         = "otel.scope.name"
	tagScopeVersion      = "otel.scope.version"
	tagTraceState        = "w3c.tracestate"
	tagRefType           = "opentracing.ref_type"
	logEventField        = "event"
	attrServiceName      = "service.name"

	refChildOf     = "child_of"
	refFollowsFrom = "follows_from"
	statusOK       = "OK"
	statusError    = "ERROR"
)

var v1SpanKinds = map[string]tracepb.Span_SpanKind{
	"internal": tracepb.Span_SPAN_KIND_INTERNAL,
	"server":   tracepb.Span_SPAN_KIND_SERVER,
	"client":   tracepb.Span_SPAN_KIND_CLIENT,
	"producer": tracepb.Span_SPAN_KIND_PRODUCER,
	"consumer": tracepb.Span_SPAN_KIND_CONSUMER,
}

func v1SpanKind(k tracepb.Span_SpanKind) string {
	for name, kind := range v1SpanKinds {
		if kind == k {
			return name
		}
	}
	return ""
}

// maxV1Seconds keeps Unix nanoseconds within int64 (year 2262).
const maxV1Seconds = math.MaxInt64/int64(time.Second) - 1

// errV1Span marks a v1 span that cannot be stored (caller's fault).
var errV1Span = errors.New("invalid span")

// v1ToOTLP converts one Jaeger v1 span, with its process, to OTLP: one
// resource, one scope, one span. Errors wrap errV1Span.
func v1ToOTLP(s *storagev1.Span) (*tracepb.ResourceSpans, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: missing", errV1Span)
	}
	start, err := v1TimeNanos(s.GetStartTime())
	if err != nil {
		return nil, fmt.Errorf("%w: start_time: %w", errV1Span, err)
	}
	var dur time.Duration
	if d := s.GetDuration(); d != nil {
		if err := d.CheckValid(); err != nil {
			return nil, fmt.Errorf("%w: duration: %w", errV1Span, err)
		}
		// Negative durations are refused: the store indexes end - start.
		if d.GetSeconds() < 0 || d.GetNanos() < 0 || d.GetSeconds() > maxV1Seconds ||
			uint64(d.AsDuration()) > math.MaxInt64-start {
			return nil, fmt.Errorf("%w: duration: %v out of range", errV1Span, d.AsDuration())
		}
		dur = d.AsDuration()
	}
	sp := &tracepb.Span{
		TraceId:           s.GetTraceId(),
		SpanId:            s.GetSpanId(),
		Name:              s.GetOperationName(),
		Flags:             s.GetFlags(),
		StartTimeUnixNano: start,
		EndTimeUnixNano:   start + uint64(dur),
	}
	refs := s.GetReferences()
	if len(refs) > 0 && refs[0].GetRefType() == storagev1.SpanRefType_CHILD_OF && len(refs[0].GetSpanId()) > 0 && bytes.Equal(refs[0].GetTraceId(), s.GetTraceId()) {
		sp.ParentSpanId = refs[0].GetSpanId()
		refs = refs[1:]
	}
	for i, r := range refs {
		var rt string
		switch r.GetRefType() {
		case storagev1.SpanRefType_CHILD_OF:
			rt = refChildOf
		case storagev1.SpanRefType_FOLLOWS_FROM:
			rt = refFollowsFrom
		default:
			return nil, fmt.Errorf("%w: references[%d].ref_type: unknown %d", errV1Span, i, r.GetRefType())
		}
		sp.Links = append(sp.Links, &tracepb.Span_Link{TraceId: r.GetTraceId(), SpanId: r.GetSpanId(),
			Attributes: []*commonpb.KeyValue{v1StrAttr(tagRefType, rt)}})
	}

	scope := &commonpb.InstrumentationScope{}
	hasErrorTag := false
	for _, kv := range s.GetTags() {
		hasErrorTag = hasErrorTag || kv.GetKey() == tagError
	}
	var kindSet, codeSet, descSet, nameSet, versionSet, stateSet bool
	for i, kv := range s.GetTags() {
		// take reports whether the tag is the first non-empty string tag of
		// its key and ok for its field.
		str := kv.GetVType() == storagev1.ValueType_STRING && kv.GetVStr() != ""
		take := func(set *bool, ok bool) bool {
			if *set || !str || !ok {
				return false
			}
			*set = true
			return true
		}
		v := kv.GetVStr()
		switch kv.GetKey() {
		case tagSpanKind:
			if k, ok := v1SpanKinds[v]; take(&kindSet, ok) {
				sp.Kind = k
				continue
			}
		case tagStatusCode:
			// ERROR reads back with an error tag unless the span has one.
			if take(&codeSet, v == statusOK || v == statusError && hasErrorTag) {
				sp.Status = statusOf(sp)
				sp.Status.Code = tracepb.Status_STATUS_CODE_OK
				if v == statusError {
					sp.Status.Code = tracepb.Status_STATUS_CODE_ERROR
				}
				continue
			}
		case tagStatusDescription:
			if take(&descSet, true) {
				sp.Status = statusOf(sp)
				sp.Status.Message = v
				continue
			}
		case tagScopeName:
			if take(&nameSet, true) {
				scope.Name = v
				continue
			}
		case tagScopeVersion:
			if take(&versionSet, true) {
				scope.Version = v
				continue
			}
		case tagTraceState:
			if take(&stateSet, true) {
				sp.TraceState = v
				continue
			}
		}
		a, err := v1Attr(kv)
		if err != nil {
			return nil, fmt.Errorf("%w: tags[%d]: %w", errV1Span, i, err)
		}
		sp.Attributes = append(sp.Attributes, a)
	}
	if len(s.GetWarnings()) > 0 {
		vals := make([]*commonpb.AnyValue, len(s.GetWarnings()))
		for i, w := range s.GetWarnings() {
			vals[i] = strAny(w)
		}
		sp.Attributes = append(sp.Attributes, &commonpb.KeyValue{Key: AttrJaegerWarnings,
			Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: vals}}}})
	}

	for i, l := range s.GetLogs() {
		ts, err := v1TimeNanos(l.GetTimestamp())
		if err != nil {
			return nil, fmt.Errorf("%w: logs[%d].timestamp: %w", errV1Span, i, err)
		}
		ev := &tracepb.Span_Event{TimeUnixNano: ts}
		named := false
		for j, f := range l.GetFields() {
			if !named && f.GetKey() == logEventField && f.GetVType() == storagev1.ValueType_STRING && f.GetVStr() != "" {
				ev.Name, named = f.GetVStr(), true
				continue
			}
			a, err := v1Attr(f)
			if err != nil {
				return nil, fmt.Errorf("%w: logs[%d].fields[%d]: %w", errV1Span, i, j, err)
			}
			ev.Attributes = append(ev.Attributes, a)
		}
		sp.Events = append(sp.Events, ev)
	}

	res := &resourcepb.Resource{Attributes: []*commonpb.KeyValue{v1StrAttr(attrServiceName, s.GetProcess().GetServiceName())}}
	for i, kv := range s.GetProcess().GetTags() {
		a, err := v1Attr(kv)
		if err != nil {
			return nil, fmt.Errorf("%w: process.tags[%d]: %w", errV1Span, i, err)
		}
		res.Attributes = append(res.Attributes, a)
	}
	return &tracepb.ResourceSpans{Resource: res, ScopeSpans: []*tracepb.ScopeSpans{{Scope: scope, Spans: []*tracepb.Span{sp}}}}, nil
}

func statusOf(sp *tracepb.Span) *tracepb.Status {
	if sp.Status == nil {
		return &tracepb.Status{}
	}
	return sp.Status
}

// v1TimeNanos is t as Unix nanoseconds; nil is 0. OTLP cannot hold times
// before 1970.
func v1TimeNanos(t *timestamppb.Timestamp) (uint64, error) {
	if t == nil {
		return 0, nil
	}
	if err := t.CheckValid(); err != nil {
		return 0, err
	}
	sec, ns := t.GetSeconds(), int64(t.GetNanos())
	if sec < 0 || sec > maxV1Seconds {
		return 0, fmt.Errorf("%v out of range (1970 to 2262)", t.AsTime())
	}
	return uint64(sec*1e9 + ns), nil
}

func v1Attr(kv *storagev1.KeyValue) (*commonpb.KeyValue, error) {
	var v *commonpb.AnyValue
	switch kv.GetVType() {
	case storagev1.ValueType_STRING:
		v = strAny(kv.GetVStr())
	case storagev1.ValueType_BOOL:
		v = &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: kv.GetVBool()}}
	case storagev1.ValueType_INT64:
		v = &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: kv.GetVInt64()}}
	case storagev1.ValueType_FLOAT64:
		v = &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: kv.GetVFloat64()}}
	case storagev1.ValueType_BINARY:
		v = &commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: kv.GetVBinary()}}
	default:
		return nil, fmt.Errorf("%s: unknown v_type %d", kv.GetKey(), kv.GetVType())
	}
	return &commonpb.KeyValue{Key: kv.GetKey(), Value: v}, nil
}

func strAny(s string) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: s}}
}

func v1StrAttr(k, v string) *commonpb.KeyValue { return &commonpb.KeyValue{Key: k, Value: strAny(v)} }

// otlpToV1 appends the spans of td, in order, as Jaeger v1 spans, each with
// its own process.
func otlpToV1(dst []*storagev1.Span, td *tracepb.TracesData) []*storagev1.Span {
	for _, rs := range td.GetResourceSpans() {
		proc := resourceToProcess(rs.GetResource())
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				dst = append(dst, spanToV1(sp, ss.GetScope(), proc))
			}
		}
	}
	return dst
}

func resourceToProcess(r *resourcepb.Resource) *storagev1.Process {
	p := &storagev1.Process{}
	named := false
	for _, kv := range r.GetAttributes() {
		if sv, ok := kv.GetValue().GetValue().(*commonpb.AnyValue_StringValue); ok && !named && kv.GetKey() == attrServiceName {
			p.ServiceName, named = sv.StringValue, true
			continue
		}
		p.Tags = append(p.Tags, otlpAttrToV1(kv))
	}
	return p
}

func spanToV1(sp *tracepb.Span, scope *commonpb.InstrumentationScope, proc *storagev1.Process) *storagev1.Span {
	out := &storagev1.Span{
		TraceId:       sp.GetTraceId(),
		SpanId:        sp.GetSpanId(),
		OperationName: sp.GetName(),
		Flags:         sp.GetFlags(),
		StartTime:     nanosToTimestamp(sp.GetStartTimeUnixNano()),
		Duration:      durationpb.New(time.Duration(int64(sp.GetEndTimeUnixNano() - sp.GetStartTimeUnixNano()))),
		Process:       proc,
	}
	if len(sp.GetParentSpanId()) > 0 {
		out.References = append(out.References, &storagev1.SpanRef{TraceId: sp.GetTraceId(), SpanId: sp.GetParentSpanId(), RefType: storagev1.SpanRefType_CHILD_OF})
	}
	for _, l := range sp.GetLinks() {
		rt := storagev1.SpanRefType_FOLLOWS_FROM
		for _, kv := range l.GetAttributes() {
			if kv.GetKey() == tagRefType && kv.GetValue().GetStringValue() == refChildOf {
				rt = storagev1.SpanRefType_CHILD_OF
			}
		}
		out.References = append(out.References, &storagev1.SpanRef{TraceId: l.GetTraceId(), SpanId: l.GetSpanId(), RefType: rt})
	}
	hasError := false
	for _, kv := range sp.GetAttributes() {
		if kv.GetKey() == AttrJaegerWarnings {
			if arr := kv.GetValue().GetArrayValue(); arr != nil {
				for _, w := range arr.GetValues() {
					out.Warnings = append(out.Warnings, anyToString(w))
				}
				continue
			}
		}
		hasError = hasError || kv.GetKey() == tagError
		out.Tags = append(out.Tags, otlpAttrToV1(kv))
	}
	if k := v1SpanKind(sp.GetKind()); k != "" {
		out.Tags = append(out.Tags, v1Str(tagSpanKind, k))
	}
	switch sp.GetStatus().GetCode() {
	case tracepb.Status_STATUS_CODE_OK:
		out.Tags = append(out.Tags, v1Str(tagStatusCode, statusOK))
	case tracepb.Status_STATUS_CODE_ERROR:
		out.Tags = append(out.Tags, v1Str(tagStatusCode, statusError))
		if !hasError {
			out.Tags = append(out.Tags, &storagev1.KeyValue{Key: tagError, VType: storagev1.ValueType_BOOL, VBool: true})
		}
	}
	if m := sp.GetStatus().GetMessage(); m != "" {
		out.Tags = append(out.Tags, v1Str(tagStatusDescription, m))
	}
	if n := scope.GetName(); n != "" {
		out.Tags = append(out.Tags, v1Str(tagScopeName, n))
	}
	if v := scope.GetVersion(); v != "" {
		out.Tags = append(out.Tags, v1Str(tagScopeVersion, v))
	}
	if ts := sp.GetTraceState(); ts != "" {
		out.Tags = append(out.Tags, v1Str(tagTraceState, ts))
	}
	for _, ev := range sp.GetEvents() {
		l := &storagev1.Log{Timestamp: nanosToTimestamp(ev.GetTimeUnixNano())}
		if ev.GetName() != "" {
			l.Fields = append(l.Fields, v1Str(logEventField, ev.GetName()))
		}
		for _, kv := range ev.GetAttributes() {
			l.Fields = append(l.Fields, otlpAttrToV1(kv))
		}
		out.Logs = append(out.Logs, l)
	}
	return out
}

func nanosToTimestamp(ns uint64) *timestamppb.Timestamp {
	return &timestamppb.Timestamp{Seconds: int64(ns / 1e9), Nanos: int32(ns % 1e9)}
}

func v1Str(k, v string) *storagev1.KeyValue {
	return &storagev1.KeyValue{Key: k, VType: storagev1.ValueType_STRING, VStr: v}
}

// otlpAttrToV1 types an attribute the way Jaeger does: scalars keep their
// type, arrays and maps become their JSON text.
func otlpAttrToV1(kv *commonpb.KeyValue) *storagev1.KeyValue {
	out := &storagev1.KeyValue{Key: kv.GetKey()}
	switch x := kv.GetValue().GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		out.VStr = x.StringValue
	case *commonpb.AnyValue_BoolValue:
		out.VType, out.VBool = storagev1.ValueType_BOOL, x.BoolValue
	case *commonpb.AnyValue_IntValue:
		out.VType, out.VInt64 = storagev1.ValueType_INT64, x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		out.VType, out.VFloat64 = storagev1.ValueType_FLOAT64, x.DoubleValue
	case *commonpb.AnyValue_BytesValue:
		out.VType, out.VBinary = storagev1.ValueType_BINARY, x.BytesValue
	default:
		out.VStr = anyToString(kv.GetValue())
	}
	return out
}

// anyToString is v as text: strings as they are, everything else as JSON
// (bytes base64, as OTLP/JSON writes them).
func anyToString(v *commonpb.AnyValue) string {
	if s, ok := v.GetValue().(*commonpb.AnyValue_StringValue); ok {
		return s.StringValue
	}
	b, err := json.Marshal(anyToGo(v))
	if err != nil { // NaN or ±Inf inside an array
		return fmt.Sprint(anyToGo(v))
	}
	return string(b)
}

func anyToGo(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		return json.Number(strconv.FormatFloat(x.DoubleValue, 'g', -1, 64))
	case *commonpb.AnyValue_BytesValue:
		return base64.StdEncoding.EncodeToString(x.BytesValue)
	case *commonpb.AnyValue_ArrayValue:
		out := make([]any, 0, len(x.ArrayValue.GetValues()))
		for _, e := range x.ArrayValue.GetValues() {
			out = append(out, anyToGo(e))
		}
		return out
	case *commonpb.AnyValue_KvlistValue:
		out := make(map[string]any, len(x.KvlistValue.GetValues()))
		for _, kv := range x.KvlistValue.GetValues() {
			out[kv.GetKey()] = anyToGo(kv.GetValue())
		}
		return out
	default:
		return nil
	}
}
