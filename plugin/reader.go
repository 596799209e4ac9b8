package plugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/api/storagev2"
	"github.com/cross-layer-telemetry/clt/internal/otlpwire"
	"github.com/cross-layer-telemetry/clt/ioamstore"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// Store is what the server needs from the persistence layer;
// *ioamstore.Store implements it.
type Store interface {
	WriteSpans(ctx context.Context, rs []*tracepb.ResourceSpans) (int, error)
	GetTrace(ctx context.Context, traceID [16]byte, fn func(*tracepb.ResourceSpans) error) error
	GetServices(ctx context.Context) ([]string, error)
	GetOperations(ctx context.Context, service, spanKind string) ([]ioamstore.Operation, error)
	FindTraceIDs(ctx context.Context, q ioamstore.Query) ([]ioamstore.FoundTrace, error)
	// FindTraces calls fn inside the store's read transaction: fn must not
	// call the Store.
	FindTraces(ctx context.Context, q ioamstore.Query, fn func(ioamstore.TraceMatch) error) error
	GetDependencies(ctx context.Context, start, end time.Time) ([]ioamstore.Dependency, error)
	// GetDependenciesRecorded calls fn inside the store's read transaction:
	// fn must not call the Store.
	GetDependenciesRecorded(ctx context.Context, start, end time.Time, fn func(ioamstore.RecordedSpan)) ([]ioamstore.Dependency, error)
	NodeRecords(ctx context.Context, ids []uint64, limit int) ([]ioamstore.Record, error)
	WriteRecords(ctx context.Context, recs []ioamstore.Record) (accepted, duplicates int, err error)
	GetRecords(ctx context.Context, traceID [16]byte) ([]ioamstore.Record, error)
	Purge(ctx context.Context) error
	DiskUsage() (lsm, vlog int64)
	Stats() ioamstore.Stats
}

var _ Store = (*ioamstore.Store)(nil)

// reader serves jaeger.storage.v2 TraceReader and DependencyReader.
type reader struct {
	storagev2.UnimplementedTraceReaderServer
	storagev2.UnimplementedDependencyReaderServer

	store   Store
	cfg     StorageConfig
	metrics *metrics
	logger  *slog.Logger
	// names labels IOAM nodes: routers as services, network spans.
	names *NodeNames
	// enrich configures read-time enrichment; labels names the nodes in hop
	// summaries and network spans (nil: the default labels; clt-storage
	// passes names, so services and labels agree).
	enrich EnrichConfig
	labels NodeLabeler
}

var (
	_ storagev2.TraceReaderServer      = (*reader)(nil)
	_ storagev2.DependencyReaderServer = (*reader)(nil)
)

// observe records an RPC's latency and error, and maps store errors to gRPC
// status codes.
func (r *reader) observe(rpc string, start time.Time, err error) error {
	r.metrics.queryLatency.WithLabelValues(rpc).Observe(time.Since(start).Seconds())
	if err == nil {
		return nil
	}
	r.metrics.queryErrors.WithLabelValues(rpc).Inc()
	return grpcError(err)
}

func grpcError(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, ioamstore.ErrInvalidQuery):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, ioamstore.ErrClosed):
		return status.Error(codes.Unavailable, err.Error())
	default:
		return status.Error(codes.Internal, err.Error())
	}
}

// GetTraces streams each requested trace, enriched with its IOAM records.
// Unknown IDs are skipped; the time hints are not needed by the store.
func (r *reader) GetTraces(req *storagev2.GetTracesRequest, stream storagev2.TraceReader_GetTracesServer) (err error) {
	defer func(start time.Time) { err = r.observe("GetTraces", start, err) }(time.Now())
	seen := make(map[[16]byte]bool, len(req.GetQuery()))
	batch, _ := r.store.(traceBatchReader)
	var refs []traceRef
	for i, q := range req.GetQuery() {
		if n := len(q.GetTraceId()); n != 16 {
			return status.Errorf(codes.InvalidArgument, "query[%d].trace_id: length %d, want 16", i, n)
		}
		id := [16]byte(q.GetTraceId())
		if seen[id] {
			continue
		}
		seen[id] = true
		if batch != nil {
			ref := traceRef{ID: id}
			if t := q.GetStartTime(); t != nil {
				ref.Start = t.AsTime()
			}
			if t := q.GetEndTime(); t != nil {
				ref.End = t.AsTime()
			}
			refs = append(refs, ref)
			continue
		}
		if err := r.streamTrace(stream.Context(), id, stream.Send); err != nil {
			return err
		}
	}
	if len(refs) > 0 {
		if rs, ok := r.store.(rawTraceSender); ok {
			return rs.sendTraces(stream.Context(), refs, r, stream) // upstream_read.go
		}
		// One read for spans and records of every trace (upstream mode).
		return batch.GetTraces(stream.Context(), refs, func(m ioamstore.TraceMatch) error {
			return r.sendMatch(m, stream.Send)
		})
	}
	return nil
}

// chunkReader is what the embedded store adds to Store: spans as stored
// bytes, so that spans without records go to the wire undecoded and a trace
// streams one stored chunk at a time.
type chunkReader interface {
	GetTraceChunks(ctx context.Context, traceID [16]byte, buf ioamstore.Alloc, fn func([]byte) error) error
	FindTraceChunks(ctx context.Context, q ioamstore.Query, fn func(ioamstore.TraceMatch) error) error
}

var _ chunkReader = (*ioamstore.Store)(nil)

// sendMatch enriches and sends one trace read with its records: stored
// chunks when the store hands them over, else decoded spans (upstream mode).
func (r *reader) sendMatch(m ioamstore.TraceMatch, send func(*tracepb.TracesData) error) error {
	c := r.newChunker(m.Records, send)
	defer c.release()
	if m.Chunks != nil {
		if err := m.Chunks(c.arena.alloc, c.addStored); err != nil {
			return err
		}
		return c.finish()
	}
	for _, rs := range m.Spans {
		if err := c.addDecoded(rs); err != nil {
			return err
		}
	}
	return c.finish()
}

// streamTrace sends one trace in chunks of at most MaxSpansPerChunk spans,
// never empty and never mixing traces, joining the trace's IOAM records.
func (r *reader) streamTrace(ctx context.Context, id [16]byte, send func(*tracepb.TracesData) error) error {
	stored, err := r.store.GetRecords(ctx, id)
	if err != nil {
		return fmt.Errorf("get records: %w", err)
	}
	c := r.newChunker(stored, send)
	defer c.release()
	if cr, ok := r.store.(chunkReader); ok {
		err = cr.GetTraceChunks(ctx, id, c.arena.alloc, c.addStored)
	} else {
		err = r.store.GetTrace(ctx, id, c.addDecoded)
	}
	if err != nil {
		return err
	}
	return c.finish()
}

// chunker enriches one trace's spans and sends them in TracesData of at most
// limit spans and maxChunkBytes, never empty; the trace's network spans come
// last (their ids must not collide with any real span of the trace). It
// works on encoded spans: a span without records is copied as stored, only
// a span with records (or one too large for a message) is decoded and
// marshaled again. A span stored twice byte for byte is sent once.
type chunker struct {
	limit  int
	bySpan map[[8]byte][]*collectorv1.IOAMRecord
	send   func(*tracepb.TracesData) error
	chunk  wireChunk
	// group numbers the resource and scope headers added (wireChunk ids).
	group int
	seen  map[dupKey]struct{}
	dups  func()

	labels   NodeLabeler
	netSpans bool
	net      []netSpan
	realIDs  map[[8]byte]struct{}

	// scratch (from sendBufs) is reused to encode what enrichment builds,
	// then copied to a buffer of the exact size.
	scratch []byte
	// arena holds what the read builds until it is sent (arena.go).
	arena *readArena

	// notJoined and maxRecords: records left out per span (recordlimit.go).
	notJoined  map[[8]byte]int
	maxRecords int
}

func (r *reader) newChunker(stored []ioamstore.Record, send func(*tracepb.TracesData) error) *chunker {
	c := &chunker{limit: r.cfg.MaxSpansPerChunk, bySpan: r.decodeRecords(stored), send: send,
		scratch: (*sendBufs.Get().(*[]byte))[:0], arena: getArena(),
		labels: r.labels, netSpans: r.enrich.NetworkSpans,
		dups: r.metrics.readDuplicates.Inc, notJoined: r.notJoined(stored), maxRecords: r.cfg.MaxRecordsPerSpan}
	seen, realIDs := c.arena.sets()
	c.seen = seen
	if c.netSpans && len(c.bySpan) > 0 {
		c.realIDs = realIDs
	}
	return c
}

// release returns the chunker's scratch buffer and arena to their pools;
// nothing queued may be sent after it.
func (c *chunker) release() {
	if c.scratch != nil && cap(c.scratch) <= maxPooledBuf {
		b := c.scratch[:0]
		sendBufs.Put(&b)
	}
	c.scratch = nil
	if c.arena != nil {
		c.chunk.reset()
		c.net, c.seen, c.realIDs = nil, nil, nil
		c.arena.release()
		c.arena = nil
	}
}

// addStored queues the spans of one stored chunk (a marshaled TracesData),
// sending full chunks. It keeps references into b.
func (c *chunker) addStored(b []byte) error {
	return eachField(b, func(num protowire.Number, _, rs []byte) error {
		if num != otlpwire.FieldTracesDataResourceSpans {
			return nil
		}
		return c.addResource(rs, false)
	})
}

// addDecoded queues one decoded group of spans.
func (c *chunker) addDecoded(rs *tracepb.ResourceSpans) error {
	b, err := c.encodeGroup(rs)
	if err != nil {
		return fmt.Errorf("marshal spans: %w", err)
	}
	return c.addResource(b, false)
}

// encodeGroup encodes rs in the scratch buffer and returns a copy of its
// size: queued spans keep pointing into it.
func (c *chunker) encodeGroup(rs *tracepb.ResourceSpans) ([]byte, error) {
	var err error
	if c.scratch, err = appendResourceSpans(c.scratch[:0], rs); err != nil {
		return nil, err
	}
	return append(c.arena.alloc(len(c.scratch)), c.scratch...), nil
}

// addResource queues the spans of one encoded ResourceSpans; synthetic ones
// (network spans) are neither enriched nor checked for duplicates.
func (c *chunker) addResource(rs []byte, synthetic bool) error {
	rHdr, scopes, err := splitGroup(rs, otlpwire.FieldResourceSpansScopeSpans)
	if err != nil {
		return err
	}
	c.group++
	r := c.group
	for _, ss := range scopes {
		sHdr, spans, err := splitGroup(ss, otlpwire.FieldScopeSpansSpans)
		if err != nil {
			return err
		}
		c.group++
		s := c.group
		gh := groupHash(rHdr, sHdr)
		for _, sp := range spans {
			if !synthetic {
				if sp, err = c.prepare(sp, gh); err != nil {
					return err
				}
				if sp == nil {
					continue
				}
			}
			if err := c.queue(r, s, rHdr, sHdr, sp); err != nil {
				return err
			}
		}
	}
	return nil
}

// splitGroup splits an encoded ResourceSpans or ScopeSpans into its other
// fields (as encoded: aliasing b when they are contiguous, as the store's
// deterministic marshaling mostly leaves them) and the values of its
// repeated field num.
func splitGroup(b []byte, num protowire.Number) (hdr []byte, items [][]byte, err error) {
	var parts [][2]int // [start, end) offsets in b
	off := 0
	err = eachField(b, func(n protowire.Number, field, value []byte) error {
		switch k := len(parts); {
		case n == num:
			items = append(items, value)
		case k > 0 && parts[k-1][1] == off:
			parts[k-1][1] = off + len(field)
		default:
			parts = append(parts, [2]int{off, off + len(field)})
		}
		off += len(field)
		return nil
	})
	if len(parts) == 1 {
		return b[parts[0][0]:parts[0][1]:parts[0][1]], items, err
	}
	for _, p := range parts {
		hdr = append(hdr, b[p[0]:p[1]]...)
	}
	return hdr, items, err
}

// prepare returns the span to send for stored span sp: nil for a duplicate,
// else sp itself or, with records, its enriched encoding.
func (c *chunker) prepare(sp []byte, gh uint64) ([]byte, error) {
	id, err := wireSpanID(sp)
	if err != nil {
		return nil, err
	}
	k := dupKey{id: id, span: xxhash.Sum64(sp), group: gh}
	if _, ok := c.seen[k]; ok {
		c.dups()
		return nil, nil
	}
	c.seen[k] = struct{}{}
	if c.realIDs != nil {
		c.realIDs[id] = struct{}{}
	}
	recs := c.bySpan[id]
	if len(recs) == 0 {
		return sp, nil
	}
	head, hasWarnings, err := wireSpanHead(sp)
	if err != nil {
		return nil, err
	}
	if hasWarnings {
		return c.enrichDecoded(sp, recs)
	}
	a := analyzeSpan(head, recs)
	if a == nil {
		return sp, nil
	}
	a.arena = c.arena
	a.recordsLimited(c.notJoined[id], c.maxRecords)
	if c.netSpans {
		c.net = append(c.net, a.networkSpans(head, c.labels)...)
	}
	// Enrichment only appends attributes and events, and repeated fields
	// of concatenated encodings append: the stored bytes followed by the
	// encoded additions are the enriched span, with no decoding or
	// re-encoding of what was stored.
	add := &tracepb.Span{StartTimeUnixNano: head.StartTimeUnixNano}
	a.apply(add, c.labels)
	add.StartTimeUnixNano = 0
	if c.scratch, err = appendSpan(c.scratch[:0], add); err != nil {
		return nil, fmt.Errorf("marshal span: %w", err)
	}
	out := c.arena.alloc(len(sp) + len(c.scratch))
	return append(append(out, sp...), c.scratch...), nil
}

// enrichDecoded enriches a span decoded whole: one that has its own
// @jaeger@warnings, which enrichment extends in place.
func (c *chunker) enrichDecoded(sp []byte, recs []*collectorv1.IOAMRecord) ([]byte, error) {
	span := &tracepb.Span{}
	if err := proto.Unmarshal(sp, span); err != nil {
		return nil, fmt.Errorf("%w: span: %w", errWire, err)
	}
	a := analyzeSpan(span, recs)
	if a == nil {
		return sp, nil
	}
	a.arena = c.arena
	a.recordsLimited(c.notJoined[[8]byte(fitSpanID(span.GetSpanId()))], c.maxRecords)
	if c.netSpans {
		// Built before apply, from the span as stored.
		c.net = append(c.net, a.networkSpans(span, c.labels)...)
	}
	a.apply(span, c.labels)
	out, err := appendSpan(nil, span)
	if err != nil {
		return nil, fmt.Errorf("marshal span: %w", err)
	}
	return out, nil
}

// queue adds one span, sending the chunk first when the span would take it
// over limit spans or targetChunkBytes; a span too large for a message on
// its own (maxChunkBytes) is truncated (fitSpan).
func (c *chunker) queue(r, s int, rHdr, sHdr, sp []byte) error {
	size := c.chunk.sizeWith(r, s, rHdr, sHdr, sp)
	if c.chunk.n > 0 && (c.chunk.n >= c.limit || size > targetChunkBytes) {
		if err := c.flush(); err != nil {
			return err
		}
		size = c.chunk.sizeWith(r, s, rHdr, sHdr, sp)
	}
	if size > maxChunkBytes {
		var err error
		if sp, err = fitSpan(sp, size-maxChunkBytes); err != nil {
			return err
		}
		size = c.chunk.sizeWith(r, s, rHdr, sHdr, sp)
	}
	c.chunk.add(r, s, rHdr, sHdr, sp, size)
	return nil
}

// finish sends the network spans and what is left.
func (c *chunker) finish() error {
	if len(c.net) > 0 {
		for _, rs := range assignIDs(c.net, c.realIDs) {
			b, err := c.encodeGroup(rs)
			if err != nil {
				return fmt.Errorf("marshal network spans: %w", err)
			}
			if err := c.addResource(b, true); err != nil {
				return err
			}
		}
		c.net = nil
	}
	return c.flush()
}

// flush sends the queued spans, if any.
func (c *chunker) flush() error {
	if c.chunk.n == 0 {
		return nil
	}
	bp := sendBufs.Get().(*[]byte)
	b := c.chunk.encode((*bp)[:0])
	c.chunk.reset()
	err := c.send(wireTracesData(b))
	if cap(b) <= maxPooledBuf {
		*bp = b
		sendBufs.Put(bp)
	}
	return err
}

// fitSpanID fits a span id into 8 bytes: zero-padded when shorter, cut when
// longer.
func fitSpanID(b []byte) []byte {
	if len(b) == 8 {
		return b
	}
	out := make([]byte, 8)
	copy(out, b)
	return out
}

// decodeRecords decodes a trace's IOAM records, grouped by span. A record
// that fails to decode is skipped (it was validated before being stored, so
// this means corruption; the span itself is still served).
func (r *reader) decodeRecords(stored []ioamstore.Record) map[[8]byte][]*collectorv1.IOAMRecord {
	if len(stored) == 0 {
		return nil
	}
	out := make(map[[8]byte][]*collectorv1.IOAMRecord)
	for _, s := range stored {
		rec := &collectorv1.IOAMRecord{}
		if err := proto.Unmarshal(s.Data, rec); err != nil {
			r.metrics.recordsCorrupt.Inc()
			continue
		}
		out[s.SpanID] = append(out[s.SpanID], rec)
	}
	return out
}

func countSpans(rs *tracepb.ResourceSpans) int {
	n := 0
	for _, ss := range rs.GetScopeSpans() {
		n += len(ss.GetSpans())
	}
	return n
}

// GetServices lists the services with stored spans and the routers: the
// labels of the nodes IOAM records mention (see NodeNames).
func (r *reader) GetServices(ctx context.Context, _ *storagev2.GetServicesRequest) (_ *storagev2.GetServicesResponse, err error) {
	defer func(start time.Time) { err = r.observe("GetServices", start, err) }(time.Now())
	svcs, err := r.store.GetServices(ctx)
	if err != nil {
		return nil, err
	}
	return &storagev2.GetServicesResponse{Services: r.routerServices(svcs)}, nil
}

// GetOperations lists a service's operations; an empty span_kind means all.
// For a router, the names of the network spans it received (kind internal).
func (r *reader) GetOperations(ctx context.Context, req *storagev2.GetOperationsRequest) (_ *storagev2.GetOperationsResponse, err error) {
	defer func(start time.Time) { err = r.observe("GetOperations", start, err) }(time.Now())
	ops, err := r.store.GetOperations(ctx, req.GetService(), req.GetSpanKind())
	if err != nil {
		return nil, err
	}
	if k := req.GetSpanKind(); k == "" || k == spanKindInternal {
		net, err := r.routerOperations(ctx, req.GetService())
		if err != nil {
			return nil, err
		}
		if len(net) > 0 {
			ops = append(ops, net...)
			slices.SortFunc(ops, func(a, b ioamstore.Operation) int {
				if c := strings.Compare(a.Name, b.Name); c != 0 {
					return c
				}
				return strings.Compare(a.SpanKind, b.SpanKind)
			})
			ops = slices.Compact(ops)
		}
	}
	resp := &storagev2.GetOperationsResponse{Operations: make([]*storagev2.Operation, 0, len(ops))}
	for _, o := range ops {
		resp.Operations = append(resp.Operations, &storagev2.Operation{Name: o.Name, SpanKind: o.SpanKind})
	}
	return resp, nil
}

// FindTraces streams the matching traces, newest first, enriched. The store
// hands over the records it read to verify each match and the trace's
// stored chunks (the embedded store) or decoded spans (upstream mode); each
// trace comes at most once, so its chunks are consecutive.
func (r *reader) FindTraces(req *storagev2.FindTracesRequest, stream storagev2.TraceReader_FindTracesServer) (err error) {
	defer func(start time.Time) { err = r.observe("FindTraces", start, err) }(time.Now())
	q, err := r.toQuery(stream.Context(), req.GetQuery())
	if err != nil {
		return err
	}
	find := r.store.FindTraces
	if cr, ok := r.store.(chunkReader); ok {
		find = cr.FindTraceChunks // one stored chunk at a time, never a whole trace
	}
	return find(stream.Context(), q, func(m ioamstore.TraceMatch) error {
		return r.sendMatch(m, stream.Send)
	})
}

// FindTraceIDs returns the matching trace IDs, newest first.
func (r *reader) FindTraceIDs(ctx context.Context, req *storagev2.FindTracesRequest) (_ *storagev2.FindTraceIDsResponse, err error) {
	defer func(start time.Time) { err = r.observe("FindTraceIDs", start, err) }(time.Now())
	found, err := r.find(ctx, req.GetQuery())
	if err != nil {
		return nil, err
	}
	resp := &storagev2.FindTraceIDsResponse{TraceIds: make([]*storagev2.FoundTraceID, 0, len(found))}
	for _, f := range found {
		resp.TraceIds = append(resp.TraceIds, &storagev2.FoundTraceID{
			TraceId: f.TraceID[:],
			Start:   timestamppb.New(f.Start),
			End:     timestamppb.New(f.End),
		})
	}
	return resp, nil
}

func (r *reader) find(ctx context.Context, p *storagev2.TraceQueryParameters) ([]ioamstore.FoundTrace, error) {
	q, err := r.toQuery(ctx, p)
	if err != nil {
		return nil, err
	}
	return r.store.FindTraceIDs(ctx, q)
}

// toQuery maps the wire query to the store's. Attribute values arrive as
// strings from Jaeger's HTTP and api_v3 paths; other AnyValue kinds are
// turned into the same string form the store compares with. A router
// service becomes a search for its node (routerQuery).
func (r *reader) toQuery(ctx context.Context, p *storagev2.TraceQueryParameters) (ioamstore.Query, error) {
	q, err := r.wireQuery(p)
	if err != nil {
		return q, err
	}
	return r.routerQuery(ctx, q)
}

func (r *reader) wireQuery(p *storagev2.TraceQueryParameters) (ioamstore.Query, error) {
	if p == nil {
		return ioamstore.Query{}, status.Error(codes.InvalidArgument, "query: missing")
	}
	q := ioamstore.Query{
		Service:   p.GetServiceName(),
		Operation: p.GetOperationName(),
		Derived:   deriver{corrupt: r.metrics.recordsCorrupt.Inc},
	}
	if len(p.GetAttributes()) > 0 {
		q.Attributes = make(map[string]string, len(p.GetAttributes()))
		for i, kv := range p.GetAttributes() {
			v, ok := anyString(kv.GetValue())
			if !ok {
				return q, status.Errorf(codes.InvalidArgument, "query.attributes[%d] (%s): only string, bool, int and double values can be searched", i, kv.GetKey())
			}
			q.Attributes[kv.GetKey()] = v
		}
	}
	if t := p.GetStartTimeMin(); t != nil {
		q.StartMin = t.AsTime()
	}
	if t := p.GetStartTimeMax(); t != nil {
		q.StartMax = t.AsTime()
	}
	if d := p.GetDurationMin(); d != nil {
		q.DurationMin = d.AsDuration()
	}
	if d := p.GetDurationMax(); d != nil {
		q.DurationMax = d.AsDuration()
	}
	switch depth := int(p.GetSearchDepth()); {
	case depth < 0:
		return q, status.Errorf(codes.InvalidArgument, "query.search_depth: must be >= 0, got %d", depth)
	case depth == 0:
		q.SearchDepth = r.cfg.DefaultSearchDepth
	default:
		q.SearchDepth = min(depth, r.cfg.MaxSearchDepth)
	}
	q.DerivedBudget = q.SearchDepth * derivedCandidatesPerResult
	return q, nil
}

func anyString(v *storagev2.AnyValue) (string, bool) {
	switch x := v.GetValue().(type) {
	case *storagev2.AnyValue_StringValue:
		return x.StringValue, true
	case *storagev2.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue), true
	case *storagev2.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10), true
	case *storagev2.AnyValue_DoubleValue:
		return ioamstore.FormatDouble(x.DoubleValue), true // the store compares doubles in this form
	default:
		return "", false
	}
}

// GetDependencies returns service call counts in [start_time, end_time];
// calls of spans with IOAM records are drawn through the routers.
func (r *reader) GetDependencies(ctx context.Context, req *storagev2.GetDependenciesRequest) (_ *storagev2.GetDependenciesResponse, err error) {
	defer func(start time.Time) { err = r.observe("GetDependencies", start, err) }(time.Now())
	var start, end time.Time
	if t := req.GetStartTime(); t != nil {
		start = t.AsTime()
	}
	if t := req.GetEndTime(); t != nil {
		end = t.AsTime()
	} else {
		end = time.Now()
	}
	if end.Before(start) {
		return nil, status.Error(codes.InvalidArgument, "end_time: before start_time")
	}
	var recorded []ioamstore.RecordedSpan
	deps, err := r.store.GetDependenciesRecorded(ctx, start, end, func(rs ioamstore.RecordedSpan) {
		recorded = append(recorded, rs)
	})
	if err != nil {
		return nil, err
	}
	deps = r.routerDependencies(deps, recorded)
	resp := &storagev2.GetDependenciesResponse{Dependencies: make([]*storagev2.Dependency, 0, len(deps))}
	for _, d := range deps {
		resp.Dependencies = append(resp.Dependencies, &storagev2.Dependency{Parent: d.Parent, Child: d.Child, CallCount: d.CallCount})
	}
	return resp, nil
}
