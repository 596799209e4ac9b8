package plugin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/api/storagev2"
	"github.com/cross-layer-telemetry/clt/ioamstore"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// Upstream mode: clt-storage keeps no state. Spans go unchanged to a Jaeger
// remote_storage tier through OTLP; each IOAM record becomes one span of the
// internal service (UpstreamConfig.Service) inside the record's own trace,
// so the backend's TTL, sharding by trace and attribute index apply to it.
// Reads split those spans back into records before the same enrichment as
// the embedded store. docs/contracts.md ("Upstream mode") states the
// encoding.

// Attributes of a record span. The record travels losslessly as its
// serialized collectorv1.IOAMRecord; the searchable keys are strings (the
// form every Jaeger backend indexes and compares).
const (
	upAttrRecord    = "clt.ioam.record"           // bytes: the IOAMRecord
	upAttrSpanID    = "clt.ioam.span_id"          // hex: the span the record belongs to
	upAttrReceived  = "clt.ioam.received_unix_ns" // int: when clt-storage accepted it
	upAttrNS        = "clt.ioam.namespace_id"     // decimal string
	upAttrNode      = "clt.ioam.node_id"          // decimal string, one event per node id
	upNodeEventName = "clt.ioam.node"
	upRecordSpan    = "ioam record"
	upScopeName     = "clt-storage"
	serviceNameKey  = "service.name"
)

// upstreamStore is the Store of upstream mode.
type upstreamStore struct {
	cfg    UpstreamConfig
	logger *slog.Logger
	// maxRecords is storage.max_records_per_span (ioamstore.LimitRecords).
	maxRecords int

	readConn, writeConn *grpc.ClientConn
	traces              storagev2.TraceReaderClient
	deps                storagev2.DependencyReaderClient
	health              healthpb.HealthClient
	http                *http.Client
	now                 func() time.Time
	// auth is upstream.auth's credential (nil without one).
	auth *upstreamAuth

	spansWritten, spanBatches, spansSkipped, recordsWritten, recordsCorrupt atomic.Uint64

	closeOnce sync.Once
	closeErr  error
}

var _ Store = (*upstreamStore)(nil)

// errUpstreamPurge: purge needs the upstream's storage_cleaner.
var errUpstreamPurge = errors.New("upstream mode: purge needs upstream.purge_url")

// newUpstreamStore connects (lazily: gRPC dials on first use and reconnects
// by itself) to the upstream.
func newUpstreamStore(cfg UpstreamConfig, logger *slog.Logger) (*upstreamStore, error) {
	creds, err := cfg.TLS.credentials()
	if err != nil {
		return nil, err
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(cfg.MaxRecvMsgSizeMiB<<20),
			grpc.MaxCallSendMsgSize(cfg.MaxSendMsgSizeMiB<<20),
			grpc.ForceCodecV2(newPoolCodec())),
	}
	s := &upstreamStore{cfg: cfg, logger: logger, now: time.Now,
		http: &http.Client{Timeout: cfg.Timeout}}
	if cfg.Auth.Enabled() {
		if s.auth, err = newUpstreamAuth(cfg.Auth); err != nil {
			return nil, err
		}
		opts = append(opts, grpc.WithPerRPCCredentials(s.auth))
	}
	if s.readConn, err = grpc.NewClient(cfg.Endpoint, opts...); err != nil {
		return nil, fmt.Errorf("upstream.endpoint: %w", err)
	}
	s.writeConn = s.readConn
	if w := cfg.otlpEndpoint(); w != cfg.Endpoint {
		if s.writeConn, err = grpc.NewClient(w, opts...); err != nil {
			_ = s.readConn.Close()
			return nil, fmt.Errorf("upstream.otlp_endpoint: %w", err)
		}
	}
	s.traces = storagev2.NewTraceReaderClient(s.readConn)
	s.deps = storagev2.NewDependencyReaderClient(s.readConn)
	s.health = healthpb.NewHealthClient(s.readConn)
	return s, nil
}

// reloadAuth re-reads upstream.auth's secret (SIGHUP).
func (s *upstreamStore) reloadAuth() error {
	if s.auth == nil {
		return nil
	}
	return s.auth.reload()
}

// Close closes the connections. Idempotent.
func (s *upstreamStore) Close() error {
	s.closeOnce.Do(func() {
		errs := []error{s.readConn.Close()}
		if s.writeConn != s.readConn {
			errs = append(errs, s.writeConn.Close())
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Check asks the upstream's gRPC health for its TraceReader: nil when it
// serves.
func (s *upstreamStore) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	resp, err := s.health.Check(ctx, &healthpb.HealthCheckRequest{Service: storagev2.TraceReader_ServiceDesc.ServiceName})
	if err != nil {
		return upstreamError("health", err)
	}
	if st := resp.GetStatus(); st != healthpb.HealthCheckResponse_SERVING {
		return status.Errorf(codes.Unavailable, "upstream health: %s", st)
	}
	return nil
}

// upstreamError keeps the upstream's gRPC code (Unavailable when it is
// down, so exporters and agents retry) and names the call.
func upstreamError(call string, err error) error {
	if st, ok := status.FromError(err); ok {
		return status.Errorf(st.Code(), "upstream %s: %s", call, st.Message())
	}
	return fmt.Errorf("upstream %s: %w", call, err)
}

// upstreamRejectedError: the upstream stored a batch except Rejected spans
// (OTLP partial success); the writer passes it on to its client.
type upstreamRejectedError struct {
	Accepted int
	Rejected int64
	Message  string
}

func (e *upstreamRejectedError) Error() string {
	return fmt.Sprintf("%d span(s) not stored: %s", e.Rejected, e.Message)
}

// export writes one request (an ExportTraceServiceRequest, or its
// encoding carried as the unknown fields of a raw message, see
// rawExporter) and waits for the upstream's answer.
func (s *upstreamStore) export(ctx context.Context, req proto.Message) (*coltracepb.ExportTraceServiceResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	resp := &coltracepb.ExportTraceServiceResponse{}
	if err := s.writeConn.Invoke(ctx, coltracepb.TraceService_Export_FullMethodName, req, resp); err != nil {
		return nil, upstreamError("export", err)
	}
	return resp, nil
}

// WriteSpans writes the spans unchanged; it returns once the upstream
// acknowledged them.
func (s *upstreamStore) WriteSpans(ctx context.Context, rs []*tracepb.ResourceSpans) (int, error) {
	// Spans of the internal service would be read back as records: they
	// are refused (and reported), not stored.
	var reserved int64
	if slices.ContainsFunc(rs, func(r *tracepb.ResourceSpans) bool { return resourceService(r.GetResource()) == s.cfg.Service }) {
		kept := make([]*tracepb.ResourceSpans, 0, len(rs))
		for _, r := range rs {
			if resourceService(r.GetResource()) == s.cfg.Service {
				reserved += int64(countSpans(r))
				continue
			}
			kept = append(kept, r)
		}
		rs = kept
	}
	n := 0
	for _, r := range rs {
		n += countSpans(r)
	}
	var resp *coltracepb.ExportTraceServiceResponse
	if n > 0 {
		var err error
		if resp, err = s.export(ctx, &coltracepb.ExportTraceServiceRequest{ResourceSpans: rs}); err != nil {
			return 0, err
		}
	}
	return s.answered(n, reserved, resp)
}

// writeRawSpans forwards an encoded Export request of n valid spans and no
// reserved resource (scanExport) as it came: no decoding, no re-encoding.
func (s *upstreamStore) writeRawSpans(ctx context.Context, req proto.Message, n int) (int, error) {
	var resp *coltracepb.ExportTraceServiceResponse
	if n > 0 {
		var err error
		if resp, err = s.export(ctx, req); err != nil {
			return 0, err
		}
	}
	return s.answered(n, 0, resp)
}

// answered counts an acknowledged write of n spans (resp nil: nothing was
// sent) and reserved refused ones, and reports what was not stored.
func (s *upstreamStore) answered(n int, reserved int64, resp *coltracepb.ExportTraceServiceResponse) (int, error) {
	var rejected int64
	var msg string
	if resp != nil {
		if p := resp.GetPartialSuccess(); p.GetRejectedSpans() > 0 {
			rejected, msg = p.GetRejectedSpans(), "upstream: "+p.GetErrorMessage()
		}
		s.spanBatches.Add(1)
	}
	if reserved > 0 {
		rejected += reserved
		msg = strings.TrimPrefix(msg+"; "+fmt.Sprintf("%d span(s) of the reserved service %q (upstream.service)", reserved, s.cfg.Service), "; ")
	}
	acc := max(n-int(rejected-reserved), 0)
	s.spansWritten.Add(uint64(acc))
	if rejected > 0 {
		s.spansSkipped.Add(uint64(rejected))
		return acc, &upstreamRejectedError{Accepted: acc, Rejected: rejected, Message: msg}
	}
	return acc, nil
}

// WriteRecords writes each record as a span of the internal service in its
// trace. The span id is a hash of the record, so a retried batch rewrites
// the same spans (reads drop the copies); duplicates are therefore not
// known here and reported as 0.
func (s *upstreamStore) WriteRecords(ctx context.Context, recs []ioamstore.Record) (int, int, error) {
	if len(recs) == 0 {
		return 0, 0, nil
	}
	spans := make([]*tracepb.Span, 0, len(recs))
	for _, r := range recs {
		spans = append(spans, recordSpan(r))
	}
	rs := []*tracepb.ResourceSpans{{
		Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{strAttr(serviceNameKey, s.cfg.Service)}},
		ScopeSpans: []*tracepb.ScopeSpans{{Scope: &commonpb.InstrumentationScope{Name: upScopeName}, Spans: spans}},
	}}
	resp, err := s.export(ctx, &coltracepb.ExportTraceServiceRequest{ResourceSpans: rs})
	if err != nil {
		return 0, 0, err
	}
	if p := resp.GetPartialSuccess(); p.GetRejectedSpans() > 0 {
		// Nothing tells which records were lost: fail the batch, the agent
		// retries it (rewriting the stored ones is harmless).
		return 0, 0, status.Errorf(codes.Unavailable, "upstream export: %d of %d record span(s) rejected: %s", p.GetRejectedSpans(), len(spans), p.GetErrorMessage())
	}
	s.recordsWritten.Add(uint64(len(recs)))
	return len(recs), 0, nil
}

// recordSpan encodes one record. Its time is the packets' (first to last
// seen), falling back to the time clt-storage received it.
func recordSpan(r ioamstore.Record) *tracepb.Span {
	var rec collectorv1.IOAMRecord
	start, end := uint64(r.Received.UnixNano()), uint64(0)
	if proto.Unmarshal(r.Data, &rec) == nil && rec.GetFirstSeenUnixNano() != 0 {
		start, end = rec.GetFirstSeenUnixNano(), rec.GetLastSeenUnixNano()
	}
	end = max(end, start)
	sum := sha256.New()
	sum.Write(r.TraceID[:])
	sum.Write(r.SpanID[:])
	sum.Write(r.Data)
	id := sum.Sum(nil)[:8]
	if allZero(id) {
		id[7] = 1
	}
	sp := &tracepb.Span{
		TraceId:           slices.Clone(r.TraceID[:]),
		SpanId:            id,
		Name:              upRecordSpan,
		Kind:              tracepb.Span_SPAN_KIND_INTERNAL,
		StartTimeUnixNano: start,
		EndTimeUnixNano:   end,
		Attributes: []*commonpb.KeyValue{
			{Key: upAttrRecord, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: r.Data}}},
			strAttr(upAttrSpanID, hex.EncodeToString(r.SpanID[:])),
			{Key: upAttrReceived, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: r.Received.UnixNano()}}},
			strAttr(upAttrNS, strconv.FormatUint(uint64(r.NamespaceID), 10)),
		},
	}
	for _, n := range r.NodeIDs {
		sp.Events = append(sp.Events, &tracepb.Span_Event{Name: upNodeEventName, TimeUnixNano: start,
			Attributes: []*commonpb.KeyValue{strAttr(upAttrNode, strconv.FormatUint(n, 10))}})
	}
	return sp
}

// upTrace is one trace read from the upstream, split.
type upTrace struct {
	id      [16]byte
	spans   []*tracepb.ResourceSpans // without the record spans
	records []ioamstore.Record
}

func (t *upTrace) match() ioamstore.TraceMatch {
	m := ioamstore.TraceMatch{FoundTrace: ioamstore.FoundTrace{TraceID: t.id}, Spans: t.spans, Records: t.records}
	var lo, hi uint64
	for _, rs := range t.spans {
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				if st := sp.GetStartTimeUnixNano(); lo == 0 || st < lo {
					lo = st
				}
				hi = max(hi, sp.GetEndTimeUnixNano())
			}
		}
	}
	if lo != 0 {
		m.Start = time.Unix(0, int64(lo)).UTC()
	}
	if hi != 0 {
		m.End = time.Unix(0, int64(hi)).UTC()
	}
	return m
}

// collect reads a GetTraces/FindTraces stream, calling fn per trace. The
// chunks of a trace are consecutive (jaeger.storage.v2 contract).
func (s *upstreamStore) collect(call string, recv func() (*tracepb.TracesData, error), fn func(*upTrace) error) error {
	var cur *upTrace
	var seen map[[16]byte]bool
	flush := func() error {
		if cur == nil {
			return nil
		}
		t := cur
		cur = nil
		t.records = s.joinable(t.records)
		return fn(t)
	}
	for {
		td, err := recv()
		if errors.Is(err, io.EOF) {
			return flush()
		}
		if err != nil {
			return upstreamError(call, err)
		}
		for _, rs := range td.GetResourceSpans() {
			id, ok := firstTraceID(rs)
			if !ok {
				continue
			}
			if cur == nil || cur.id != id {
				if err := flush(); err != nil {
					return err
				}
				if seen[id] {
					return status.Errorf(codes.Internal, "upstream %s: trace %x in non-consecutive chunks", call, id)
				}
				if seen == nil {
					seen = map[[16]byte]bool{}
				}
				seen[id] = true
				cur = &upTrace{id: id}
			}
			s.split(cur, rs)
		}
	}
}

func firstTraceID(rs *tracepb.ResourceSpans) ([16]byte, bool) {
	for _, ss := range rs.GetScopeSpans() {
		for _, sp := range ss.GetSpans() {
			if len(sp.GetTraceId()) == 16 {
				return [16]byte(sp.GetTraceId()), true
			}
		}
	}
	return [16]byte{}, false
}

// split files rs into t: record spans (the internal service) become
// records, the rest is kept as read.
func (s *upstreamStore) split(t *upTrace, rs *tracepb.ResourceSpans) {
	if resourceService(rs.GetResource()) != s.cfg.Service {
		t.spans = append(t.spans, rs)
		return
	}
	for _, ss := range rs.GetScopeSpans() {
		for _, sp := range ss.GetSpans() {
			r, ok := spanRecord(t.id, sp)
			if !ok {
				s.recordsCorrupt.Add(1)
				continue
			}
			t.records = append(t.records, r)
		}
	}
}

func resourceService(r *resourcepb.Resource) string {
	for _, kv := range r.GetAttributes() {
		if kv.GetKey() == serviceNameKey {
			return kv.GetValue().GetStringValue()
		}
	}
	return ""
}

// spanRecord decodes a record span; ok is false when it is not one.
func spanRecord(traceID [16]byte, sp *tracepb.Span) (ioamstore.Record, bool) {
	r := ioamstore.Record{TraceID: traceID}
	var haveData, haveSpan bool
	for _, kv := range sp.GetAttributes() {
		v := kv.GetValue()
		switch kv.GetKey() {
		case upAttrRecord:
			r.Data, haveData = v.GetBytesValue(), v.GetBytesValue() != nil
		case upAttrSpanID:
			b, err := hex.DecodeString(v.GetStringValue())
			if err != nil || len(b) != 8 {
				return r, false
			}
			r.SpanID, haveSpan = [8]byte(b), true
		case upAttrReceived:
			if ns := v.GetIntValue(); ns != 0 {
				r.Received = time.Unix(0, ns).UTC()
			}
		case upAttrNS:
			n, _ := strconv.ParseUint(v.GetStringValue(), 10, 16)
			r.NamespaceID = uint16(n)
		}
	}
	for _, ev := range sp.GetEvents() {
		for _, kv := range ev.GetAttributes() {
			if kv.GetKey() == upAttrNode {
				if n, err := strconv.ParseUint(kv.GetValue().GetStringValue(), 10, 64); err == nil {
					r.NodeIDs = append(r.NodeIDs, n)
				}
			}
		}
	}
	var rec collectorv1.IOAMRecord
	if !haveData || !haveSpan || proto.Unmarshal(r.Data, &rec) != nil {
		return r, false
	}
	return r, true
}

// joinable is what reads join of a trace's records: every read path of
// upstream mode (collect, sendTraces) goes through it.
func (s *upstreamStore) joinable(recs []ioamstore.Record) []ioamstore.Record {
	return ioamstore.LimitRecords(dedupeRecords(recs), s.maxRecords)
}

// dedupeRecords sorts like the embedded store (span, received, data) and
// drops copies written by retries (same span and data).
func dedupeRecords(recs []ioamstore.Record) []ioamstore.Record {
	if len(recs) < 2 {
		return recs
	}
	sort.SliceStable(recs, func(i, j int) bool {
		a, b := &recs[i], &recs[j]
		if c := bytes.Compare(a.SpanID[:], b.SpanID[:]); c != 0 {
			return c < 0
		}
		if c := bytes.Compare(a.Data, b.Data); c != 0 {
			return c < 0
		}
		return a.Received.Before(b.Received)
	})
	out := recs[:1]
	for _, r := range recs[1:] {
		last := &out[len(out)-1]
		if r.SpanID == last.SpanID && bytes.Equal(r.Data, last.Data) {
			continue // the first received is kept
		}
		out = append(out, r)
	}
	ioamstore.SortRecords(out) // the embedded store's order, so reads join alike
	return out
}

// traceRef is one trace to read, with the optional time hints of Jaeger's
// GetTraces (backends such as Elasticsearch pick their indices by them).
type traceRef struct {
	ID         [16]byte
	Start, End time.Time
}

// traceBatchReader reads several traces in one call; the reader uses it
// instead of GetRecords + GetTrace when the store has it.
type traceBatchReader interface {
	GetTraces(ctx context.Context, refs []traceRef, fn func(ioamstore.TraceMatch) error) error
}

var _ traceBatchReader = (*upstreamStore)(nil)

// GetTraces reads refs in one upstream call; unknown traces are skipped.
func (s *upstreamStore) GetTraces(ctx context.Context, refs []traceRef, fn func(ioamstore.TraceMatch) error) error {
	req := &storagev2.GetTracesRequest{Query: make([]*storagev2.GetTraceParams, 0, len(refs))}
	for _, r := range refs {
		p := &storagev2.GetTraceParams{TraceId: slices.Clone(r.ID[:])}
		if !r.Start.IsZero() {
			p.StartTime = timestamppb.New(r.Start)
		}
		if !r.End.IsZero() {
			p.EndTime = timestamppb.New(r.End)
		}
		req.Query = append(req.Query, p)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	stream, err := s.traces.GetTraces(ctx, req)
	if err != nil {
		return upstreamError("GetTraces", err)
	}
	return s.collect("GetTraces", stream.Recv, func(t *upTrace) error {
		if len(t.spans) == 0 && len(t.records) == 0 {
			return nil
		}
		return fn(t.match())
	})
}

// GetTrace hands over the trace's spans, without the record spans.
func (s *upstreamStore) GetTrace(ctx context.Context, traceID [16]byte, fn func(*tracepb.ResourceSpans) error) error {
	return s.GetTraces(ctx, []traceRef{{ID: traceID}}, func(m ioamstore.TraceMatch) error {
		for _, rs := range m.Spans {
			if err := fn(rs); err != nil {
				return err
			}
		}
		return nil
	})
}

// GetRecords returns the trace's records.
func (s *upstreamStore) GetRecords(ctx context.Context, traceID [16]byte) ([]ioamstore.Record, error) {
	var out []ioamstore.Record
	err := s.GetTraces(ctx, []traceRef{{ID: traceID}}, func(m ioamstore.TraceMatch) error {
		out = m.Records
		return nil
	})
	return out, err
}

// GetServices lists the upstream's services but the internal one.
func (s *upstreamStore) GetServices(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	resp, err := s.traces.GetServices(ctx, &storagev2.GetServicesRequest{})
	if err != nil {
		return nil, upstreamError("GetServices", err)
	}
	return slices.DeleteFunc(resp.GetServices(), func(svc string) bool { return svc == s.cfg.Service }), nil
}

// GetOperations asks the upstream; the internal service has none.
func (s *upstreamStore) GetOperations(ctx context.Context, service, spanKind string) ([]ioamstore.Operation, error) {
	if service == s.cfg.Service {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	resp, err := s.traces.GetOperations(ctx, &storagev2.GetOperationsRequest{Service: service, SpanKind: spanKind})
	if err != nil {
		return nil, upstreamError("GetOperations", err)
	}
	out := make([]ioamstore.Operation, 0, len(resp.GetOperations()))
	for _, o := range resp.GetOperations() {
		out = append(out, ioamstore.Operation{Name: o.GetName(), SpanKind: o.GetSpanKind()})
	}
	return out, nil
}

// find runs one upstream FindTraces.
func (s *upstreamStore) find(ctx context.Context, p *storagev2.TraceQueryParameters, fn func(*upTrace) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	stream, err := s.traces.FindTraces(ctx, &storagev2.FindTracesRequest{Query: p})
	if err != nil {
		return upstreamError("FindTraces", err)
	}
	return s.collect("FindTraces", stream.Recv, fn)
}

// errStopSearch ends a search early (enough matches).
var errStopSearch = errors.New("search done")

// FindTraces runs q. A query on spans alone is the upstream's own search;
// one that needs records (ioam.node_id, ioam.namespace_id, a router, an
// ioam.* tag derived from the records) searches the record spans, which
// carry the node and namespace ids, and checks every predicate on the
// traces found, as the embedded store does.
func (s *upstreamStore) FindTraces(ctx context.Context, q ioamstore.Query, fn func(ioamstore.TraceMatch) error) error {
	if q.SearchDepth <= 0 {
		return fmt.Errorf("%w: search depth must be > 0, got %d", ioamstore.ErrInvalidQuery, q.SearchDepth)
	}
	if q.Service == s.cfg.Service {
		return nil // hidden
	}
	m, err := compileUpQuery(q)
	if err != nil {
		return err
	}
	if m.impossible {
		return nil
	}
	if !m.needsRecords() {
		if q.Service == "" {
			return fmt.Errorf("%w: service name must be set (or ioam.node_id / ioam.namespace_id)", ioamstore.ErrInvalidQuery)
		}
		return s.find(ctx, s.spanParams(q), func(t *upTrace) error {
			if len(t.spans) == 0 {
				return nil
			}
			return fn(t.match())
		})
	}
	found := 0
	err = s.find(ctx, s.recordParams(q, m), func(t *upTrace) error {
		if !m.matches(t) {
			return nil
		}
		if err := fn(t.match()); err != nil {
			return err
		}
		if found++; found >= q.SearchDepth {
			return errStopSearch
		}
		return nil
	})
	if errors.Is(err, errStopSearch) {
		return nil
	}
	return err
}

// FindTraceIDs is FindTraces without the spans.
func (s *upstreamStore) FindTraceIDs(ctx context.Context, q ioamstore.Query) ([]ioamstore.FoundTrace, error) {
	var out []ioamstore.FoundTrace
	err := s.FindTraces(ctx, q, func(m ioamstore.TraceMatch) error {
		out = append(out, m.FoundTrace)
		return nil
	})
	return out, err
}

// spanParams is q as the upstream's own query.
func (s *upstreamStore) spanParams(q ioamstore.Query) *storagev2.TraceQueryParameters {
	p := &storagev2.TraceQueryParameters{ServiceName: q.Service, OperationName: q.Operation, SearchDepth: int32(q.SearchDepth)}
	keys := make([]string, 0, len(q.Attributes))
	for k := range q.Attributes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p.Attributes = append(p.Attributes, &storagev2.KeyValue{Key: k, Value: &storagev2.AnyValue{Value: &storagev2.AnyValue_StringValue{StringValue: q.Attributes[k]}}})
	}
	if !q.StartMin.IsZero() {
		p.StartTimeMin = timestamppb.New(q.StartMin)
	}
	if !q.StartMax.IsZero() {
		p.StartTimeMax = timestamppb.New(q.StartMax)
	}
	if q.DurationMin > 0 {
		p.DurationMin = durationpb.New(q.DurationMin)
	}
	if q.DurationMax > 0 {
		p.DurationMax = durationpb.New(q.DurationMax)
	}
	return p
}

// recordParams searches the record spans that can match q: of its node
// (or its one router node) and namespace, in its time window widened by
// RecordTimeSlack (Lookback when it has none), at most MaxRecordTraces
// traces (or the budget the query asks, when smaller, but never fewer
// than its search depth).
func (s *upstreamStore) recordParams(q ioamstore.Query, m *upQuery) *storagev2.TraceQueryParameters {
	p := &storagev2.TraceQueryParameters{ServiceName: s.cfg.Service}
	node := m.node
	if node == nil && len(m.anyNode) == 1 {
		node = &m.anyNode[0]
	}
	if node != nil {
		p.Attributes = append(p.Attributes, &storagev2.KeyValue{Key: upAttrNode, Value: &storagev2.AnyValue{Value: &storagev2.AnyValue_StringValue{StringValue: strconv.FormatUint(*node, 10)}}})
	}
	if m.ns != nil {
		p.Attributes = append(p.Attributes, &storagev2.KeyValue{Key: upAttrNS, Value: &storagev2.AnyValue{Value: &storagev2.AnyValue_StringValue{StringValue: strconv.FormatUint(uint64(*m.ns), 10)}}})
	}
	now := s.now()
	lo, hi := now.Add(-s.cfg.Lookback), now.Add(s.cfg.RecordTimeSlack)
	if !q.StartMin.IsZero() {
		lo = q.StartMin.Add(-s.cfg.RecordTimeSlack)
	}
	if !q.StartMax.IsZero() {
		hi = q.StartMax.Add(s.cfg.RecordTimeSlack)
	}
	p.StartTimeMin, p.StartTimeMax = timestamppb.New(lo), timestamppb.New(hi)
	depth := s.cfg.MaxRecordTraces
	if q.DerivedBudget > 0 {
		depth = min(depth, q.DerivedBudget)
	}
	p.SearchDepth = int32(max(depth, q.SearchDepth))
	return p
}

// NodeRecords returns up to limit records mentioning one of ids, from the
// newest record traces of each node in the Lookback window.
func (s *upstreamStore) NodeRecords(ctx context.Context, ids []uint64, limit int) ([]ioamstore.Record, error) {
	var out []ioamstore.Record
	now := s.now()
	for _, id := range ids {
		if len(out) >= limit {
			break
		}
		p := &storagev2.TraceQueryParameters{
			ServiceName:  s.cfg.Service,
			Attributes:   []*storagev2.KeyValue{{Key: upAttrNode, Value: &storagev2.AnyValue{Value: &storagev2.AnyValue_StringValue{StringValue: strconv.FormatUint(id, 10)}}}},
			StartTimeMin: timestamppb.New(now.Add(-s.cfg.Lookback)),
			StartTimeMax: timestamppb.New(now.Add(s.cfg.RecordTimeSlack)),
			SearchDepth:  int32(min(limit, s.cfg.MaxRecordTraces)),
		}
		err := s.find(ctx, p, func(t *upTrace) error {
			for _, r := range t.records {
				if slices.Contains(r.NodeIDs, id) {
					out = append(out, r)
					if len(out) >= limit {
						return errStopSearch
					}
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStopSearch) {
			return nil, err
		}
	}
	return out, nil
}

// GetDependencies is the upstream's graph without the internal service.
func (s *upstreamStore) GetDependencies(ctx context.Context, start, end time.Time) ([]ioamstore.Dependency, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req := &storagev2.GetDependenciesRequest{StartTime: timestamppb.New(start), EndTime: timestamppb.New(end)}
	resp, err := s.deps.GetDependencies(ctx, req)
	if err != nil {
		return nil, upstreamError("GetDependencies", err)
	}
	var out []ioamstore.Dependency
	for _, d := range resp.GetDependencies() {
		if d.GetParent() == s.cfg.Service || d.GetChild() == s.cfg.Service {
			continue
		}
		out = append(out, ioamstore.Dependency{Parent: d.GetParent(), Child: d.GetChild(), CallCount: d.GetCallCount()})
	}
	return out, nil
}

// GetDependenciesRecorded adds, for drawing the network, the spans with
// records of the newest MaxRecordTraces record traces in the window.
func (s *upstreamStore) GetDependenciesRecorded(ctx context.Context, start, end time.Time, fn func(ioamstore.RecordedSpan)) ([]ioamstore.Dependency, error) {
	deps, err := s.GetDependencies(ctx, start, end)
	if err != nil {
		return nil, err
	}
	p := &storagev2.TraceQueryParameters{
		ServiceName:  s.cfg.Service,
		StartTimeMin: timestamppb.New(start.Add(-s.cfg.RecordTimeSlack)),
		StartTimeMax: timestamppb.New(end.Add(s.cfg.RecordTimeSlack)),
		SearchDepth:  int32(s.cfg.MaxRecordTraces),
	}
	lo, hi := uint64(max(start.UnixNano(), 0)), uint64(max(end.UnixNano(), 0))
	err = s.find(ctx, p, func(t *upTrace) error {
		recordedSpans(t, lo, hi, fn)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return deps, nil
}

// recordedSpans hands over the spans of t that have records and start in
// [lo, hi], with the services of their children.
func recordedSpans(t *upTrace, lo, hi uint64, fn func(ioamstore.RecordedSpan)) {
	bySpan := map[[8]byte][][]byte{}
	for _, r := range t.records {
		bySpan[r.SpanID] = append(bySpan[r.SpanID], r.Data)
	}
	if len(bySpan) == 0 {
		return
	}
	type info struct {
		service string
		parent  []byte
		start   uint64
	}
	spans := map[[8]byte]info{}
	var order [][8]byte
	for _, rs := range t.spans {
		svc := resourceService(rs.GetResource())
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				id := [8]byte(fitSpanID(sp.GetSpanId()))
				if _, dup := spans[id]; !dup {
					order = append(order, id)
				}
				spans[id] = info{service: svc, parent: sp.GetParentSpanId(), start: sp.GetStartTimeUnixNano()}
			}
		}
	}
	children := map[[8]byte][]string{}
	for _, id := range order {
		sp := spans[id]
		if len(sp.parent) != 8 {
			continue
		}
		if par, ok := spans[[8]byte(sp.parent)]; ok && par.service != sp.service {
			children[[8]byte(sp.parent)] = append(children[[8]byte(sp.parent)], sp.service)
		}
	}
	for _, id := range order {
		data, ok := bySpan[id]
		sp := spans[id]
		if !ok || sp.start < lo || sp.start > hi {
			continue
		}
		fn(ioamstore.RecordedSpan{Service: sp.service, Children: children[id], Records: data})
	}
}

// RecentRecords returns the records of the newest record traces (at most
// MaxRecordTraces) in the Lookback window, decoded: what NodeNames learns
// routers and names from.
func (s *upstreamStore) RecentRecords(ctx context.Context) ([]*collectorv1.IOAMRecord, error) {
	now := s.now()
	p := &storagev2.TraceQueryParameters{
		ServiceName:  s.cfg.Service,
		StartTimeMin: timestamppb.New(now.Add(-s.cfg.Lookback)),
		StartTimeMax: timestamppb.New(now.Add(s.cfg.RecordTimeSlack)),
		SearchDepth:  int32(s.cfg.MaxRecordTraces),
	}
	var out []*collectorv1.IOAMRecord
	err := s.find(ctx, p, func(t *upTrace) error {
		for _, r := range t.records {
			rec := &collectorv1.IOAMRecord{}
			if proto.Unmarshal(r.Data, rec) == nil {
				out = append(out, rec)
			}
		}
		return nil
	})
	return out, err
}

// Purge forwards to the upstream's storage_cleaner (upstream.purge_url).
func (s *upstreamStore) Purge(ctx context.Context) error {
	if s.cfg.PurgeURL == "" {
		return errUpstreamPurge
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.PurgeURL, nil)
	if err != nil {
		return fmt.Errorf("upstream purge: %w", err)
	}
	req.Close = true
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("upstream purge: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("upstream purge: %s", resp.Status)
	}
	return nil
}

// DiskUsage is zero: nothing is kept locally.
func (s *upstreamStore) DiskUsage() (lsm, vlog int64) { return 0, 0 }

// Stats counts what this replica wrote.
func (s *upstreamStore) Stats() ioamstore.Stats {
	return ioamstore.Stats{
		SpansWritten:   s.spansWritten.Load(),
		SpanBatches:    s.spanBatches.Load(),
		SpansSkipped:   s.spansSkipped.Load(),
		RecordsWritten: s.recordsWritten.Load(),
	}
}

// nodeIDValue parses an ioam.node_id query value as the embedded store does.
func nodeIDValue(v string) (uint64, bool) {
	n, err := ioam6.ParseNodeID(v)
	return n, err == nil
}
