package plugin

import (
	"bytes"
	"context"
	"unicode/utf8"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/cross-layer-telemetry/clt/internal/otlpwire"
)

// Upstream mode's write path passes Jaeger's OTLP Export requests through
// without decoding them: the request is received as a message without
// fields (emptypb.Empty), so protobuf keeps its bytes as unknown fields and
// re-encodes exactly those bytes when it is forwarded. scanExport checks on
// the bytes what writer.Export checks on the decoded request; a request it
// cannot vouch for takes the decoded path, which answers alike.

// wireFields calls fn for every field of the encoded message b (val is the
// payload of a length-delimited field, else nil); false when b is not well
// formed or fn says stop.
func wireFields(b []byte, fn func(num protowire.Number, typ protowire.Type, val []byte) bool) bool {
	return wireFieldsRaw(b, func(num protowire.Number, typ protowire.Type, val, _ []byte) bool { return fn(num, typ, val) })
}

// wireFieldsRaw is wireFields that also hands over each field's whole
// encoding (tag included) as raw.
func wireFieldsRaw(b []byte, fn func(num protowire.Number, typ protowire.Type, val, raw []byte) bool) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num > protowire.MaxValidNumber {
			return false
		}
		var val []byte
		var m int
		if typ == protowire.BytesType {
			val, m = protowire.ConsumeBytes(b[n:])
		} else {
			m = protowire.ConsumeFieldValue(num, typ, b[n:])
		}
		if m < 0 || !fn(num, typ, val, b[:n+m]) {
			return false
		}
		b = b[n+m:]
	}
	return true
}

// maxWireDepth bounds the nesting wireCheck follows (AnyValue arrays and
// maps nest); deeper requests take the decoded path, which has its own
// limit.
const maxWireDepth = 64

// wireCheck reports whether proto.Unmarshal would accept b as a message of
// md: well formed at every level, proto3 strings valid UTF-8, packed
// scalars whole. Fields of a wire type other than their declared one are
// unknown fields for protobuf too. hook, when set, sees each
// length-delimited field of this level first: handled means it checked
// the field itself.
func wireCheck(b []byte, md protoreflect.MessageDescriptor, depth int, hook func(num protowire.Number, val []byte) (handled, ok bool)) bool {
	if depth > maxWireDepth {
		return false
	}
	fields := md.Fields()
	return wireFields(b, func(num protowire.Number, typ protowire.Type, val []byte) bool {
		if typ != protowire.BytesType {
			return true
		}
		if hook != nil {
			if handled, ok := hook(num, val); handled {
				return ok
			}
		}
		fd := fields.ByNumber(num)
		if fd == nil {
			return true // unknown: kept as bytes
		}
		switch k := fd.Kind(); {
		case k == protoreflect.StringKind:
			return utf8.Valid(val)
		case k == protoreflect.MessageKind || k == protoreflect.GroupKind:
			return wireCheck(val, fd.Message(), depth+1, nil)
		case k == protoreflect.BytesKind || !fd.IsList():
			return true
		default:
			return packedWhole(val, k)
		}
	})
}

// packedWhole reports whether val is a whole packed list of kind k.
func packedWhole(val []byte, k protoreflect.Kind) bool {
	for len(val) > 0 {
		var n int
		switch k {
		case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
			_, n = protowire.ConsumeFixed32(val)
		case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
			_, n = protowire.ConsumeFixed64(val)
		default:
			_, n = protowire.ConsumeVarint(val)
		}
		if n < 0 {
			return false
		}
		val = val[n:]
	}
	return true
}

// Descriptors of the messages scanExport walks.
var (
	mdExportRequest = (&coltracepb.ExportTraceServiceRequest{}).ProtoReflect().Descriptor()
	mdResourceSpans = (&tracepb.ResourceSpans{}).ProtoReflect().Descriptor()
	mdResource      = (&resourcepb.Resource{}).ProtoReflect().Descriptor()
	mdScopeSpans    = (&tracepb.ScopeSpans{}).ProtoReflect().Descriptor()
	mdSpan          = (&tracepb.Span{}).ProtoReflect().Descriptor()
	mdLink          = (&tracepb.Span_Link{}).ProtoReflect().Descriptor()
)

// scanExport reports whether the encoded ExportTraceServiceRequest req may
// be forwarded as is: proto.Unmarshal would accept it (wireCheck), every
// span is valid for Jaeger ([spanProblem]; the last occurrence of an id
// field counts, as when decoded) and no resource mentions reserved (the
// internal service; a mention that is not its service.name only costs the
// decoded path). n is its span count.
func scanExport(req, reserved []byte) (n int, ok bool) {
	link := func(val []byte) bool {
		var trace, id []byte
		return wireCheck(val, mdLink, 4, func(num protowire.Number, val []byte) (bool, bool) {
			switch num {
			case otlpwire.FieldLinkTraceID:
				trace = val
			case otlpwire.FieldLinkSpanID:
				id = val
			}
			return false, true
		}) && idProblem(trace, traceIDBytes) == "" && idProblem(id, spanIDBytes) == ""
	}
	span := func(val []byte) bool {
		var trace, id, parent []byte
		return wireCheck(val, mdSpan, 3, func(num protowire.Number, val []byte) (bool, bool) {
			switch num {
			case otlpwire.FieldSpanTraceID:
				trace = val
			case otlpwire.FieldSpanSpanID:
				id = val
			case otlpwire.FieldSpanParentSpanID:
				parent = val
			case otlpwire.FieldSpanLinks:
				return true, link(val)
			}
			return false, true
		}) && idProblem(trace, traceIDBytes) == "" && idProblem(id, spanIDBytes) == "" &&
			(len(parent) == 0 || len(parent) == spanIDBytes)
	}
	scope := func(val []byte) bool {
		return wireCheck(val, mdScopeSpans, 2, func(num protowire.Number, val []byte) (bool, bool) {
			if num != otlpwire.FieldScopeSpansSpans {
				return false, true
			}
			n++
			return true, span(val)
		})
	}
	resourceSpans := func(val []byte) bool {
		return wireCheck(val, mdResourceSpans, 1, func(num protowire.Number, val []byte) (bool, bool) {
			switch num {
			case otlpwire.FieldResourceSpansResource:
				return true, !bytes.Contains(val, reserved) && wireCheck(val, mdResource, 2, nil)
			case otlpwire.FieldResourceSpansScopeSpans:
				return true, scope(val)
			}
			return false, true
		})
	}
	ok = wireCheck(req, mdExportRequest, 0, func(num protowire.Number, val []byte) (bool, bool) {
		if num != otlpwire.FieldExportRequestResourceSpans {
			return false, true
		}
		return true, resourceSpans(val)
	})
	return n, ok
}

// rawExporter serves TraceService/Export in upstream mode.
type rawExporter struct {
	w        *writer
	up       *upstreamStore
	reserved []byte
}

// registerRawExport registers TraceService/Export on srv, served by e.
func registerRawExport(srv grpc.ServiceRegistrar, w *writer, up *upstreamStore) {
	e := &rawExporter{w: w, up: up, reserved: []byte(up.cfg.Service)}
	desc := coltracepb.TraceService_ServiceDesc
	desc.HandlerType = (*any)(nil)
	desc.Methods = []grpc.MethodDesc{{MethodName: "Export", Handler: e.handle}}
	srv.RegisterService(&desc, e)
}

func (e *rawExporter) handle(_ any, ctx context.Context, dec func(any) error, intercept grpc.UnaryServerInterceptor) (any, error) {
	in := &emptypb.Empty{}
	if err := dec(in); err != nil {
		return nil, err
	}
	if intercept == nil {
		return e.export(ctx, in)
	}
	info := &grpc.UnaryServerInfo{Server: e, FullMethod: coltracepb.TraceService_Export_FullMethodName}
	return intercept(ctx, in, info, func(ctx context.Context, req any) (any, error) {
		return e.export(ctx, req.(*emptypb.Empty))
	})
}

// export forwards in as it came when scanExport vouches for it, else
// decodes it and takes writer.Export's path.
func (e *rawExporter) export(ctx context.Context, in *emptypb.Empty) (*coltracepb.ExportTraceServiceResponse, error) {
	raw := in.ProtoReflect().GetUnknown()
	if n, ok := scanExport(raw, e.reserved); ok {
		n, err := e.up.writeRawSpans(ctx, in, n)
		return e.w.answer(n, err, 0, "")
	}
	req := &coltracepb.ExportTraceServiceRequest{}
	if err := proto.Unmarshal(raw, req); err != nil {
		e.w.metrics.exportErrors.Inc()
		return nil, status.Errorf(codes.InvalidArgument, "export: %v", err)
	}
	return e.w.Export(ctx, req)
}
