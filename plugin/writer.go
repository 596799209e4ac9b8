package plugin

import (
	"context"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
)

// writer serves OTLP TraceService/Export, Jaeger's write path to a remote
// storage (jaeger_storage_exporter → WriteTraces).
type writer struct {
	coltracepb.UnimplementedTraceServiceServer

	store   Store
	metrics *metrics
}

var _ coltracepb.TraceServiceServer = (*writer)(nil)

// Export stores the whole request at once; on error nothing of it may be
// assumed stored and the exporter retries.
func (w *writer) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	n, err := w.store.WriteSpans(ctx, req.GetResourceSpans())
	if err != nil {
		w.metrics.exportErrors.Inc()
		return nil, grpcError(err)
	}
	w.metrics.spansWritten.Add(float64(n))
	return &coltracepb.ExportTraceServiceResponse{}, nil
}
