package plugin

import (
	"fmt"
	"math/bits"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/api/compat/ioamapi"
	"github.com/cross-layer-telemetry/clt/api/storagev1"
	"github.com/cross-layer-telemetry/clt/api/storagev2"
)

// rawBytes is sent as is by bytesCodec: what a broken or hostile client
// puts on the wire.
type rawBytes []byte

// bytesCodec sends rawBytes unchanged and decodes replies as protobuf.
type bytesCodec struct{}

func (bytesCodec) Marshal(v any) ([]byte, error) {
	if b, ok := v.(rawBytes); ok {
		return b, nil
	}
	return proto.Marshal(v.(proto.Message))
}
func (bytesCodec) Unmarshal(b []byte, v any) error { return proto.Unmarshal(b, v.(proto.Message)) }
func (bytesCodec) Name() string                    { return "proto" }

// invalidUTF8Export is an ExportTraceServiceRequest whose one span's name
// (a proto3 string) is not UTF-8: resource_spans(1) > scope_spans(2) >
// spans(2) > name(5).
func invalidUTF8Export() rawBytes {
	span := protowire.AppendTag(nil, 5, protowire.BytesType)
	span = protowire.AppendBytes(span, []byte("bad \xff\xfe name"))
	scope := protowire.AppendTag(nil, 2, protowire.BytesType)
	scope = protowire.AppendBytes(scope, span)
	rs := protowire.AppendTag(nil, 2, protowire.BytesType)
	rs = protowire.AppendBytes(rs, scope)
	req := protowire.AppendTag(nil, 1, protowire.BytesType)
	return protowire.AppendBytes(req, rs)
}

// malformed is not protobuf: field 1, length-delimited, claiming 100 bytes
// of which 2 follow.
var malformed = rawBytes{0x0a, 100, 1, 2}

func assertUndecodable(t *testing.T, err error, what string) {
	t.Helper()
	require.Error(t, err, what)
	assert.Equal(t, codes.InvalidArgument, status.Code(err), "%s: %v", what, err)
	assert.True(t, strings.HasPrefix(status.Convert(err).Message(), "clt-storage: undecodable request: "), "%s: %v", what, err)
}

// TestUndecodableRequestsAreInvalidArgument: malformed protobuf and
// invalid UTF-8 in a string field, sent over real gRPC connections to
// unary and streaming methods of both ports, are InvalidArgument with a
// clear message (grpc-go alone answers Internal), counted; well-formed
// requests on the same connections are served as before.
func TestUndecodableRequestsAreInvalidArgument(t *testing.T) {
	e := startEnv(t, nil)
	raw := grpc.ForceCodec(bytesCodec{})
	ctx := t.Context()

	// Unary, storage port: OTLP Export and Jaeger v1's WriteSpan.
	var resp coltracepb.ExportTraceServiceResponse
	assertUndecodable(t, e.storageConn.Invoke(ctx, coltracepb.TraceService_Export_FullMethodName, malformed, &resp, raw), "Export, malformed")
	err := e.storageConn.Invoke(ctx, coltracepb.TraceService_Export_FullMethodName, invalidUTF8Export(), &resp, raw)
	assertUndecodable(t, err, "Export, invalid UTF-8")
	assert.Equal(t, "clt-storage: undecodable request: opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest: "+
		"string field contains invalid UTF-8", status.Convert(err).Message())
	var v1resp storagev1.WriteSpanResponse
	assertUndecodable(t, e.storageConn.Invoke(ctx, storagev1.SpanWriterPlugin_WriteSpan_FullMethodName, malformed, &v1resp, raw), "v1 WriteSpan")
	// Unary, collector port.
	var rep collectorv1.ReportResponse
	assertUndecodable(t, e.collConn.Invoke(ctx, collectorv1.CollectorService_Report_FullMethodName, malformed, &rep, raw), "Report")

	// Server streaming: GetTraces and FindTraces.
	for _, m := range []string{storagev2.TraceReader_GetTraces_FullMethodName, storagev2.TraceReader_FindTraces_FullMethodName} {
		st, err := e.storageConn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, m, raw)
		require.NoError(t, err)
		require.NoError(t, st.SendMsg(malformed))
		require.NoError(t, st.CloseSend())
		assertUndecodable(t, st.RecvMsg(&storagev2.GetTracesRequest{}), m)
	}
	// Client streaming: the ioam_api compat stream; a valid message first
	// is accepted, the undecodable one ends the stream.
	st, err := e.collConn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true}, ioamapi.IOAMService_Report_FullMethodName, raw)
	require.NoError(t, err)
	ok, err := proto.Marshal(&ioamapi.IOAMTrace{})
	require.NoError(t, err)
	require.NoError(t, st.SendMsg(rawBytes(ok)))
	require.NoError(t, st.SendMsg(malformed))
	assertUndecodable(t, st.RecvMsg(&collectorv1.ReportResponse{}), "ioam_api Report stream")

	// Well-formed requests decode as before, on the same connections.
	now := time.Now().Add(-time.Minute)
	e.export(t, spanSpec{trace: 1, span: 1, service: "svc", name: "op", start: now, dur: time.Millisecond})
	_, err = e.collector.Report(ctx, &collectorv1.ReportRequest{Records: []*collectorv1.IOAMRecord{testRecord(1)}})
	require.NoError(t, err)
	spans := spansOf(e.getTraces(t, tid(1)))
	require.NotEmpty(t, spans)
	assert.Equal(t, "op", spans[0].Name)

	metrics := strings.Split(e.scrape(t), "\n")
	assert.Contains(t, metrics, fmt.Sprintf(`clt_storage_requests_refused_total{port="storage",reason="undecodable"} %d`, 5))
	assert.Contains(t, metrics, fmt.Sprintf(`clt_storage_requests_refused_total{port="collector",reason="undecodable"} %d`, 2))
}

// TestUndecodableNeedsAuthFirst: with auth on the port, an unauthenticated
// caller's undecodable write is refused as Unauthenticated, before its
// request is decoded (no undecodable count).
func TestUndecodableNeedsAuthFirst(t *testing.T) {
	dir := t.TempDir()
	e := startEnv(t, func(c *Config) {
		c.Storage.Auth.Tokens = []TokenConfig{{Name: "w", File: writeToken(t, dir, "w", "writer-token-0123456789"), Roles: []string{RoleWriter}}}
	})
	var resp coltracepb.ExportTraceServiceResponse
	err := e.storageConn.Invoke(t.Context(), coltracepb.TraceService_Export_FullMethodName, malformed, &resp, grpc.ForceCodec(bytesCodec{}))
	assert.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
	err = e.storageConn.Invoke(withToken(t.Context(), "writer-token-0123456789"), coltracepb.TraceService_Export_FullMethodName,
		malformed, &resp, grpc.ForceCodec(bytesCodec{}))
	assertUndecodable(t, err, "authorised")
	assert.Contains(t, strings.Split(e.scrape(t), "\n"), `clt_storage_requests_refused_total{port="storage",reason="undecodable"} 1`)
}

// The codec's Marshal gives proto.Marshal's bytes, large messages in a
// buffer of the next power of two (grpc's default pool would give 1 MiB to
// anything between 32 KiB and 1 MiB), returned to the pool on Free; its
// Unmarshal decodes what proto.Unmarshal decodes.
func TestCodecMarshal(t *testing.T) {
	c := newRequestCodec(func() {})
	for _, n := range []int{0, 10, 900, 5000, 40 << 10, 70 << 10, 700 << 10} {
		td := &tracepb.TracesData{ResourceSpans: []*tracepb.ResourceSpans{{SchemaUrl: strings.Repeat("x", n)}}}
		want, err := proto.Marshal(td)
		require.NoError(t, err)
		for name, m := range map[string]*tracepb.TracesData{"decoded": td, "wire": wireTracesData(want)} {
			got, err := c.Marshal(m)
			require.NoError(t, err, "%d %s", n, name)
			assert.Equal(t, want, got.Materialize(), "%d %s", n, name)
			if len(want) > 1<<10 {
				require.Len(t, got, 1)
				assert.Equal(t, 1<<bits.Len(uint(len(want)-1)), cap(got[0].ReadOnlyData()), "%d %s: buffer size", n, name)
			}
			got.Free()
		}
		// Decoding gathers a message from frame-sized buffers.
		var frames mem.BufferSlice
		for rest := want; len(rest) > 0; rest = rest[min(len(rest), 16<<10):] {
			frames = append(frames, mem.SliceBuffer(rest[:min(len(rest), 16<<10)]))
		}
		var back tracepb.TracesData
		require.NoError(t, c.Unmarshal(frames, &back), "%d", n)
		assert.True(t, proto.Equal(td, &back), "%d: decoded", n)
	}
	assert.Error(t, c.Unmarshal(mem.BufferSlice{mem.SliceBuffer([]byte{0x0a, 100, 1})}, &tracepb.TracesData{}), "malformed")
	_, err := c.Marshal(struct{}{})
	assert.Error(t, err, "not a protobuf message")
}

// BenchmarkMessageBuffer is what a buffer for one ~60 KB message costs from
// grpc's default pool (the 1 MiB tier, cleared on every Get: what grpc's
// codec and Jaeger's client pay per message between 32 KiB and 1 MiB) and
// from msgPool; and, for scale, from the default pool at 30 KB.
func BenchmarkMessageBuffer(b *testing.B) {
	for _, tc := range []struct {
		name string
		pool mem.BufferPool
		size int
	}{{"default_60KB", mem.DefaultBufferPool(), 60 << 10}, {"msgPool_60KB", msgPool, 60 << 10}, {"default_30KB", mem.DefaultBufferPool(), 30 << 10}} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				buf := tc.pool.Get(tc.size)
				(*buf)[0] = 1
				tc.pool.Put(buf)
			}
		})
	}
}
