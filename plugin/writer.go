package plugin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// writer serves OTLP TraceService/Export, Jaeger's write path to a remote
// storage (jaeger_storage_exporter → WriteTraces).
type writer struct {
	coltracepb.UnimplementedTraceServiceServer

	store   Store
	metrics *metrics
}

var _ coltracepb.TraceServiceServer = (*writer)(nil)

// Export stores the valid spans of the request at once; on error nothing of
// it may be assumed stored and the exporter retries. Spans Jaeger could not
// serve (see [spanProblem]) are left out and reported in partial_success,
// as OTLP requires: stored, one of them would make every read of its trace
// and every search of its service fail.
func (w *writer) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	rs, rejected, msg := w.dropInvalidSpans(req.GetResourceSpans())
	n, err := w.store.WriteSpans(ctx, rs)
	return w.answer(n, err, rejected, msg)
}

// answer is Export's reply once the store answered: n spans stored, err,
// rejected spans left out here with msg naming them.
func (w *writer) answer(n int, err error, rejected int64, msg string) (*coltracepb.ExportTraceServiceResponse, error) {
	var up *upstreamRejectedError
	if errors.As(err, &up) {
		// Upstream mode: the upstream stored all but these; OTLP partial
		// success tells the client, as for the spans rejected here.
		n, err = up.Accepted, nil
		rejected += up.Rejected
		msg = strings.TrimPrefix(msg+"; "+up.Error(), "; ")
	}
	if err != nil {
		w.metrics.exportErrors.Inc()
		return nil, grpcError(err)
	}
	w.metrics.spansWritten.Add(float64(n))
	resp := &coltracepb.ExportTraceServiceResponse{}
	if rejected > 0 {
		resp.PartialSuccess = &coltracepb.ExportTracePartialSuccess{RejectedSpans: rejected, ErrorMessage: msg}
	}
	return resp, nil
}

// Span identifier lengths (OTLP trace.proto; Jaeger's model has the same).
const (
	traceIDBytes = 16
	spanIDBytes  = 8
	// maxRejectDetails is how many rejected spans the partial_success message
	// names; the rest are counted.
	maxRejectDetails = 3
)

// spanProblem says why Jaeger could not serve sp, as "field: problem", or ""
// when it can: trace ID of 16 bytes and span ID of 8, neither all zero
// (OTLP: invalid), a parent span ID empty or of 8 bytes, links with valid IDs.
func spanProblem(sp *tracepb.Span) (field, problem string) {
	if sp == nil {
		return "span", "missing"
	}
	if p := idProblem(sp.GetTraceId(), traceIDBytes); p != "" {
		return "trace_id", p
	}
	if p := idProblem(sp.GetSpanId(), spanIDBytes); p != "" {
		return "span_id", p
	}
	if l := len(sp.GetParentSpanId()); l != 0 && l != spanIDBytes {
		return "parent_span_id", fmt.Sprintf("length %d, want 0 or %d", l, spanIDBytes)
	}
	for i, l := range sp.GetLinks() {
		if p := idProblem(l.GetTraceId(), traceIDBytes); p != "" {
			return fmt.Sprintf("links[%d].trace_id", i), p
		}
		if p := idProblem(l.GetSpanId(), spanIDBytes); p != "" {
			return fmt.Sprintf("links[%d].span_id", i), p
		}
	}
	return "", ""
}

func idProblem(id []byte, want int) string {
	if len(id) != want {
		return fmt.Sprintf("length %d, want %d", len(id), want)
	}
	if allZero(id) {
		return "all zero (invalid)"
	}
	return ""
}

// dropInvalidSpans returns rs without the spans of [spanProblem], the number
// left out and a message naming the first few. rs is not modified: when a span
// is left out, the result is new resource and scope groups over the same
// spans (a valid request is returned as is, at the cost of one scan).
func (w *writer) dropInvalidSpans(rs []*tracepb.ResourceSpans) ([]*tracepb.ResourceSpans, int64, string) {
	if !anyInvalid(rs) {
		return rs, 0, ""
	}
	var rejected int64
	var details []string
	out := make([]*tracepb.ResourceSpans, 0, len(rs))
	for i, r := range rs {
		nr := &tracepb.ResourceSpans{Resource: r.GetResource(), SchemaUrl: r.GetSchemaUrl()}
		for j, ss := range r.GetScopeSpans() {
			ns := &tracepb.ScopeSpans{Scope: ss.GetScope(), SchemaUrl: ss.GetSchemaUrl()}
			for k, sp := range ss.GetSpans() {
				field, problem := spanProblem(sp)
				if field == "" {
					ns.Spans = append(ns.Spans, sp)
					continue
				}
				rejected++
				w.metrics.spansRejected.WithLabelValues(rejectReason(field)).Inc()
				if len(details) < maxRejectDetails {
					details = append(details, fmt.Sprintf("resource_spans[%d].scope_spans[%d].spans[%d].%s: %s", i, j, k, field, problem))
				}
			}
			if len(ns.Spans) > 0 {
				nr.ScopeSpans = append(nr.ScopeSpans, ns)
			}
		}
		if len(nr.ScopeSpans) > 0 {
			out = append(out, nr)
		}
	}
	msg := fmt.Sprintf("%d span(s) rejected: %s", rejected, strings.Join(details, "; "))
	if int(rejected) > len(details) {
		msg += fmt.Sprintf("; and %d more", int(rejected)-len(details))
	}
	return out, rejected, msg
}

func anyInvalid(rs []*tracepb.ResourceSpans) bool {
	for _, r := range rs {
		for _, ss := range r.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				if f, _ := spanProblem(sp); f != "" {
					return true
				}
			}
		}
	}
	return false
}

// rejectReason is the metric label of a problem field: "links[2].span_id" → "link_span_id".
func rejectReason(field string) string {
	if rest, ok := strings.CutPrefix(field, "links["); ok {
		return "link_" + rest[strings.IndexByte(rest, '.')+1:]
	}
	return field
}
