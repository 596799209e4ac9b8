package plugin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cross-layer-telemetry/clt/api/storagev1"
	"github.com/cross-layer-telemetry/clt/api/storagev2"
	"github.com/cross-layer-telemetry/clt/ioamstore"
)

// jaeger.storage.v1: Jaeger v1's remote storage API (v1.30–v1.76
// --grpc-storage.server, v2.0–v2.5 grpc backends) and its go-plugin
// sidecar API. Every RPC runs through the v2 reader and writer above and
// converts at the edge (v1convert.go), so both APIs share the store, the
// query semantics and the enrichment.

const (
	// maxV1ChunkBytes bounds one SpansResponseChunk: Jaeger's v1 client
	// keeps gRPC's default 4 MiB receive limit (jaeger#4350).
	maxV1ChunkBytes = 3 << 20
	// v1StreamBatch is how many spans WriteSpanStream writes at once.
	v1StreamBatch = 500
	// errTraceNotFound is the message Jaeger's v1 client maps to
	// spanstore.ErrTraceNotFound.
	errTraceNotFound = "trace not found"
	// v1KindUnspecified is how Jaeger v1 names the kind of spans without
	// one (its storage integration suite expects it).
	v1KindUnspecified = "unspecified"
)

// registerStorageV1 registers the storage_v1 services on srv and returns
// their names for the health service; archive (nil: not served) backs the
// two archive services.
func registerStorageV1(srv grpc.ServiceRegistrar, rd *reader, w *writer, archive *ioamstore.Store) []string {
	wr := newV1Writer(w, rd.logger)
	storagev1.RegisterSpanWriterPluginServer(srv, wr)
	storagev1.RegisterStreamingSpanWriterPluginServer(srv, v1StreamWriter{v: wr})
	storagev1.RegisterSpanReaderPluginServer(srv, &v1Reader{r: rd})
	storagev1.RegisterDependenciesReaderPluginServer(srv, v1Deps{r: rd})
	storagev1.RegisterPluginCapabilitiesServer(srv, v1Caps{streaming: rd.cfg.V1StreamingWriter, archive: archive != nil})
	names := []string{
		storagev1.SpanWriterPlugin_ServiceDesc.ServiceName,
		storagev1.StreamingSpanWriterPlugin_ServiceDesc.ServiceName,
		storagev1.SpanReaderPlugin_ServiceDesc.ServiceName,
		storagev1.DependenciesReaderPlugin_ServiceDesc.ServiceName,
		storagev1.PluginCapabilities_ServiceDesc.ServiceName,
	}
	if archive != nil {
		names = append(names, registerArchive(srv, rd, w, archive)...)
	}
	return names
}

// v1Writer serves SpanWriterPlugin through the OTLP Export path.
type v1Writer struct {
	storagev1.UnimplementedSpanWriterPluginServer
	w      *writer
	logger *slog.Logger
	group  v1Group // WriteSpan's group commit (v1group.go)
}

func newV1Writer(w *writer, logger *slog.Logger) *v1Writer {
	v := &v1Writer{w: w, logger: logger}
	v.group.write = v.export
	return v
}

// export stores converted spans at once through Export and returns how many
// it refused (spanProblem, or the upstream in upstream mode) with the
// first reason.
func (v *v1Writer) export(ctx context.Context, rs []*tracepb.ResourceSpans) (rejected int64, reason string, err error) {
	resp, err := v.w.Export(ctx, &coltracepb.ExportTraceServiceRequest{ResourceSpans: rs})
	if err != nil {
		return 0, "", err
	}
	ps := resp.GetPartialSuccess()
	return ps.GetRejectedSpans(), ps.GetErrorMessage(), nil
}

// write stores the valid spans at once, as Export does, and returns how
// many were refused (by the converter or by Export, see spanProblem) with
// the first reason; err is a store error (nothing of spans may be assumed
// stored).
func (v *v1Writer) write(ctx context.Context, spans []*storagev1.Span) (rejected int64, reason string, err error) {
	rs := make([]*tracepb.ResourceSpans, 0, len(spans))
	for _, s := range spans {
		r, err := v1ToOTLP(s)
		if err != nil {
			v.w.metrics.spansRejected.WithLabelValues("v1_span").Inc()
			if rejected++; reason == "" {
				reason = err.Error()
			}
			continue
		}
		rs = append(rs, r)
	}
	n, r, err := v.export(ctx, rs)
	if err != nil {
		return 0, "", err
	}
	if n > 0 {
		if rejected += n; reason == "" {
			reason = r
		}
	}
	return rejected, reason, nil
}

// WriteSpan converts and checks the span on the caller's goroutine, then
// stores it with the spans of concurrent calls (v1Group): a refused span
// fails only its own call; a store error, every call of its batch.
func (v *v1Writer) WriteSpan(ctx context.Context, req *storagev1.WriteSpanRequest) (*storagev1.WriteSpanResponse, error) {
	r, err := v1ToOTLP(req.GetSpan())
	if err != nil {
		v.w.metrics.spansRejected.WithLabelValues("v1_span").Inc()
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if field, problem := spanProblem(r.ScopeSpans[0].Spans[0]); field != "" {
		v.w.metrics.spansRejected.WithLabelValues(rejectReason(field)).Inc()
		return nil, status.Errorf(codes.InvalidArgument, "span.%s: %s", field, problem)
	}
	n, rejected, reason, err := v.group.add(ctx, r)
	if err != nil {
		return nil, err
	}
	switch {
	case rejected > 0 && n == 1:
		return nil, status.Error(codes.InvalidArgument, reason)
	case rejected > 0:
		// Only an upstream (upstream mode) refuses checked spans, and its
		// answer does not say which: every call of the batch learns it.
		return nil, status.Errorf(codes.InvalidArgument, "%d of %d spans written together not stored: %s", rejected, n, reason)
	}
	return &storagev1.WriteSpanResponse{}, nil
}

// Close is the v1 writer's shutdown hook; every write is already durable
// in the store's sense when WriteSpan returns.
func (v *v1Writer) Close(context.Context, *storagev1.CloseWriterRequest) (*storagev1.CloseWriterResponse, error) {
	return &storagev1.CloseWriterResponse{}, nil
}

// v1StreamWriter serves StreamingSpanWriterPlugin. Jaeger keeps its streams
// open (pooled) for all its writes and never waits for an answer, so every
// span is written as soon as it arrives: what arrived meanwhile, up to
// v1StreamBatch, goes in the same store write. A refused span is counted
// and skipped, and the stream goes on; its end reports the refusals as
// InvalidArgument. A store error ends the stream (earlier writes stay).
type v1StreamWriter struct {
	storagev1.UnimplementedStreamingSpanWriterPluginServer
	v *v1Writer
}

func (s v1StreamWriter) WriteSpanStream(stream storagev1.StreamingSpanWriterPlugin_WriteSpanStreamServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	// The receiver ends when the client closes or the handler returns
	// (gRPC then fails its Recv).
	spans := make(chan *storagev1.Span, v1StreamBatch)
	recvErr := make(chan error, 1)
	go func() {
		defer close(spans)
		for {
			req, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case spans <- req.GetSpan():
			case <-ctx.Done():
				recvErr <- ctx.Err()
				return
			}
		}
	}()
	var rejected int64
	var reason string
	batch := make([]*storagev1.Span, 0, v1StreamBatch)
	for sp := range spans {
		batch = append(batch[:0], sp)
	more:
		for len(batch) < v1StreamBatch {
			select {
			case sp, ok := <-spans:
				if !ok {
					break more
				}
				batch = append(batch, sp)
			default:
				break more
			}
		}
		// What arrived is stored even if the client has gone meanwhile.
		n, r, err := s.v.write(context.WithoutCancel(ctx), batch)
		if err != nil {
			s.v.logger.Error("v1 write stream ended by a store error", "spans", len(batch), "err", err)
			return err
		}
		if rejected += n; reason == "" {
			reason = r
		}
	}
	if err := <-recvErr; !errors.Is(err, io.EOF) {
		return err
	}
	if rejected > 0 {
		return status.Errorf(codes.InvalidArgument, "%d span(s) rejected, first: %s", rejected, reason)
	}
	return stream.SendAndClose(&storagev1.WriteSpanResponse{})
}

// v1Reader serves SpanReaderPlugin through the v2 reader.
type v1Reader struct {
	storagev1.UnimplementedSpanReaderPluginServer
	r *reader
}

// v1SpanStream is a v2 TracesData stream that sends to a v1 span stream:
// each TracesData is converted and sent in chunks below maxV1ChunkBytes.
type v1SpanStream struct {
	grpc.ServerStream // the v1 stream's context and metadata
	send              func(*storagev1.SpansResponseChunk) error
	sent              int
}

func (s *v1SpanStream) Send(td *tracepb.TracesData) error {
	td, err := decodeTracesData(td) // the v2 reader sends stored bytes
	if err != nil {
		return err
	}
	spans := otlpToV1(nil, td)
	chunk := &storagev1.SpansResponseChunk{}
	size := 0
	for _, sp := range spans {
		n := proto.Size(sp) + 8 // field tag and length prefix
		if size+n > maxV1ChunkBytes && len(chunk.Spans) > 0 {
			if err := s.send(chunk); err != nil {
				return err
			}
			chunk, size = &storagev1.SpansResponseChunk{}, 0
		}
		chunk.Spans = append(chunk.Spans, sp)
		size += n
	}
	s.sent += len(spans)
	if len(chunk.Spans) == 0 {
		return nil
	}
	return s.send(chunk)
}

func (v *v1Reader) GetTrace(req *storagev1.GetTraceRequest, stream storagev1.SpanReaderPlugin_GetTraceServer) error {
	out := &v1SpanStream{ServerStream: stream, send: stream.Send}
	err := v.r.GetTraces(&storagev2.GetTracesRequest{Query: []*storagev2.GetTraceParams{{
		TraceId: req.GetTraceId(), StartTime: req.GetStartTime(), EndTime: req.GetEndTime(),
	}}}, out)
	if err == nil && out.sent == 0 {
		return status.Error(codes.NotFound, errTraceNotFound)
	}
	return err
}

func (v *v1Reader) GetServices(ctx context.Context, _ *storagev1.GetServicesRequest) (*storagev1.GetServicesResponse, error) {
	resp, err := v.r.GetServices(ctx, &storagev2.GetServicesRequest{})
	if err != nil {
		return nil, err
	}
	return &storagev1.GetServicesResponse{Services: resp.GetServices()}, nil
}

func (v *v1Reader) GetOperations(ctx context.Context, req *storagev1.GetOperationsRequest) (*storagev1.GetOperationsResponse, error) {
	resp, err := v.r.GetOperations(ctx, &storagev2.GetOperationsRequest{Service: req.GetService(), SpanKind: req.GetSpanKind()})
	if err != nil {
		return nil, err
	}
	out := &storagev1.GetOperationsResponse{Operations: make([]*storagev1.Operation, 0, len(resp.GetOperations()))}
	for _, o := range resp.GetOperations() {
		kind := o.GetSpanKind()
		if kind == "" {
			kind = v1KindUnspecified
		}
		out.Operations = append(out.Operations, &storagev1.Operation{Name: o.GetName(), SpanKind: kind})
		out.OperationNames = append(out.OperationNames, o.GetName()) // for clients before v1.17
	}
	return out, nil
}

func (v *v1Reader) FindTraces(req *storagev1.FindTracesRequest, stream storagev1.SpanReaderPlugin_FindTracesServer) error {
	q, err := v1Query(req.GetQuery())
	if err != nil {
		return err
	}
	return v.r.FindTraces(&storagev2.FindTracesRequest{Query: q}, &v1SpanStream{ServerStream: stream, send: stream.Send})
}

func (v *v1Reader) FindTraceIDs(ctx context.Context, req *storagev1.FindTraceIDsRequest) (*storagev1.FindTraceIDsResponse, error) {
	q, err := v1Query(req.GetQuery())
	if err != nil {
		return nil, err
	}
	resp, err := v.r.FindTraceIDs(ctx, &storagev2.FindTracesRequest{Query: q})
	if err != nil {
		return nil, err
	}
	out := &storagev1.FindTraceIDsResponse{TraceIds: make([][]byte, 0, len(resp.GetTraceIds()))}
	for _, f := range resp.GetTraceIds() {
		out.TraceIds = append(out.TraceIds, f.GetTraceId())
	}
	return out, nil
}

// v1Query maps v1 query parameters to v2's. Jaeger v1 sends its unset
// times and durations as zero values (gogoproto non-nullable: year 1, 0s):
// those mean no bound. Tag values are strings in both.
func v1Query(p *storagev1.TraceQueryParameters) (*storagev2.TraceQueryParameters, error) {
	if p == nil {
		return nil, status.Error(codes.InvalidArgument, "query: missing")
	}
	q := &storagev2.TraceQueryParameters{
		ServiceName:   p.GetServiceName(),
		OperationName: p.GetOperationName(),
		StartTimeMin:  v1Bound(p.GetStartTimeMin()),
		StartTimeMax:  v1Bound(p.GetStartTimeMax()),
		DurationMin:   v1DurationBound(p.GetDurationMin()),
		DurationMax:   v1DurationBound(p.GetDurationMax()),
		SearchDepth:   p.GetNumTraces(),
	}
	for k, v := range p.GetTags() {
		q.Attributes = append(q.Attributes, &storagev2.KeyValue{Key: k, Value: &storagev2.AnyValue{Value: &storagev2.AnyValue_StringValue{StringValue: v}}})
	}
	return q, nil
}

func v1Bound(t *timestamppb.Timestamp) *timestamppb.Timestamp {
	if t == nil || t.AsTime().IsZero() || (t.GetSeconds() == 0 && t.GetNanos() == 0) {
		return nil
	}
	return t
}

func v1DurationBound(d *durationpb.Duration) *durationpb.Duration {
	if d == nil || d.AsDuration() == 0 {
		return nil
	}
	return d
}

// v1Deps serves DependenciesReaderPlugin through the v2 reader.
type v1Deps struct {
	storagev1.UnimplementedDependenciesReaderPluginServer
	r *reader
}

func (v v1Deps) GetDependencies(ctx context.Context, req *storagev1.GetDependenciesRequest) (*storagev1.GetDependenciesResponse, error) {
	end := v1Bound(req.GetEndTime())
	if end == nil {
		end = timestamppb.New(time.Now())
	}
	resp, err := v.r.GetDependencies(ctx, &storagev2.GetDependenciesRequest{StartTime: v1Bound(req.GetStartTime()), EndTime: end})
	if err != nil {
		return nil, err
	}
	out := &storagev1.GetDependenciesResponse{Dependencies: make([]*storagev1.DependencyLink, 0, len(resp.GetDependencies()))}
	for _, d := range resp.GetDependencies() {
		out.Dependencies = append(out.Dependencies, &storagev1.DependencyLink{Parent: d.GetParent(), Child: d.GetChild(), CallCount: d.GetCallCount(), Source: d.GetSource()})
	}
	return out, nil
}

// v1Caps serves PluginCapabilities: the streaming writer (what fixed v1's
// plugin throughput, jaeger#2357) when storage.v1_streaming_writer says so;
// the archive when archive.enabled.
type v1Caps struct {
	storagev1.UnimplementedPluginCapabilitiesServer
	streaming, archive bool
}

func (c v1Caps) Capabilities(context.Context, *storagev1.CapabilitiesRequest) (*storagev1.CapabilitiesResponse, error) {
	//lint:ignore SA1019 deprecated at v1.76, still read by the v1.12–v1.57 go-plugin hosts
	return &storagev1.CapabilitiesResponse{StreamingSpanWriter: c.streaming, ArchiveSpanReader: c.archive, ArchiveSpanWriter: c.archive}, nil
}
