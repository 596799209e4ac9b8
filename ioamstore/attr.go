package ioamstore

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"strconv"

	"github.com/cespare/xxhash/v2"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// serviceNameAttr is the resource attribute holding the service name.
const serviceNameAttr = "service.name"

// serviceOf returns the resource's service.name (string form), or "".
func serviceOf(r *resourcepb.Resource) string {
	for _, kv := range r.GetAttributes() {
		if kv.GetKey() == serviceNameAttr {
			return ValueString(kv.GetValue())
		}
	}
	return ""
}

// ValueString is the string form used to match query attributes, the same as
// OpenTelemetry pdata's Value.AsString: strings as is, ints in decimal,
// "true"/"false", doubles in the shortest form ("72.5"), bytes in base64 and
// arrays/maps as JSON.
func ValueString(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_DoubleValue:
		return FormatDouble(x.DoubleValue)
	case *commonpb.AnyValue_BytesValue:
		return base64.StdEncoding.EncodeToString(x.BytesValue)
	case *commonpb.AnyValue_ArrayValue, *commonpb.AnyValue_KvlistValue:
		b, err := json.Marshal(jsonValue(v))
		if err != nil {
			return ""
		}
		return string(b)
	default:
		return ""
	}
}

// FormatDouble is the string form of a double attribute that query values
// are compared with (ES6 number formatting, like OpenTelemetry pdata's
// AsString): plain decimal ("72.5", "3") unless |f| < 1e-6 or >= 1e21
// ("1e-7", "1e+21"). Callers turning typed query values into strings should
// use it so that they match.
func FormatDouble(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	abs := math.Abs(f)
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		s := strconv.FormatFloat(f, 'e', -1, 64)
		// clean up e-09 to e-9
		n := len(s)
		if n >= 4 && s[n-4] == 'e' && s[n-3] == '-' && s[n-2] == '0' {
			s = s[:n-2] + s[n-1:]
		}
		return s
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func jsonValue(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		if math.IsInf(x.DoubleValue, 0) || math.IsNaN(x.DoubleValue) {
			return FormatDouble(x.DoubleValue)
		}
		return x.DoubleValue
	case *commonpb.AnyValue_BytesValue:
		return base64.StdEncoding.EncodeToString(x.BytesValue)
	case *commonpb.AnyValue_ArrayValue:
		out := make([]any, 0, len(x.ArrayValue.GetValues()))
		for _, e := range x.ArrayValue.GetValues() {
			out = append(out, jsonValue(e))
		}
		return out
	case *commonpb.AnyValue_KvlistValue:
		out := make(map[string]any, len(x.KvlistValue.GetValues()))
		for _, kv := range x.KvlistValue.GetValues() {
			out[kv.GetKey()] = jsonValue(kv.GetValue())
		}
		return out
	default:
		return nil
	}
}

// spanKindName maps OTLP span kinds to Jaeger's lowercase names.
func spanKindName(k tracepb.Span_SpanKind) string {
	switch k {
	case tracepb.Span_SPAN_KIND_INTERNAL:
		return "internal"
	case tracepb.Span_SPAN_KIND_SERVER:
		return "server"
	case tracepb.Span_SPAN_KIND_CLIENT:
		return "client"
	case tracepb.Span_SPAN_KIND_PRODUCER:
		return "producer"
	case tracepb.Span_SPAN_KIND_CONSUMER:
		return "consumer"
	default:
		return ""
	}
}

// spanKindByName is the inverse of spanKindName; ok is false for an unknown name.
func spanKindByName(s string) (tracepb.Span_SpanKind, bool) {
	switch s {
	case "":
		return tracepb.Span_SPAN_KIND_UNSPECIFIED, true
	case "internal":
		return tracepb.Span_SPAN_KIND_INTERNAL, true
	case "server":
		return tracepb.Span_SPAN_KIND_SERVER, true
	case "client":
		return tracepb.Span_SPAN_KIND_CLIENT, true
	case "producer":
		return tracepb.Span_SPAN_KIND_PRODUCER, true
	case "consumer":
		return tracepb.Span_SPAN_KIND_CONSUMER, true
	}
	return 0, false
}

// hasher computes feature and name hashes without allocating.
type hasher struct{ d xxhash.Digest }

var zeroByte = []byte{0}

// attr returns the Bloom feature of attribute key=value (string form).
func (h *hasher) attr(key, value string) uint64 {
	h.d.Reset()
	_, _ = h.d.WriteString("a")
	_, _ = h.d.WriteString(key)
	_, _ = h.d.Write(zeroByte)
	_, _ = h.d.WriteString(value)
	return h.d.Sum64()
}

// op returns the Bloom feature of a span name.
func (h *hasher) op(name string) uint64 {
	h.d.Reset()
	_, _ = h.d.WriteString("o")
	_, _ = h.d.WriteString(name)
	return h.d.Sum64()
}

// serviceHash is the hash used in service index keys.
func serviceHash(service string) uint64 { return xxhash.Sum64String(service) }

// attrFeatures appends the features of attrs to dst.
func (h *hasher) attrFeatures(dst []uint64, attrs []*commonpb.KeyValue) []uint64 {
	for _, kv := range attrs {
		dst = append(dst, h.attr(kv.GetKey(), ValueString(kv.GetValue())))
	}
	return dst
}
