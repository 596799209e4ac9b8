package plugin

import (
	"context"
	"errors"
	"io"
	"slices"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cross-layer-telemetry/clt/api/storagev2"
	"github.com/cross-layer-telemetry/clt/internal/otlpwire"
)

// Upstream mode's GetTraces decodes only what it enriches: the upstream's
// TracesData chunks are received as bytes (emptypb.Empty, see
// upstream_raw.go); the record spans and the spans that have records are
// decoded and go through the reader's chunker as in the embedded mode,
// every other span is sent on to Jaeger as the bytes it came in, under its
// resource and scope bytes. A trace's chunks stay consecutive: its
// pass-through chunks first, then the enriched spans and network spans.

// rawSpan is one encoded span of the upstream's answer.
type rawSpan struct {
	id [8]byte // span id as the reader keys records (fitSpanID)
	b  []byte
}

// rawScope is one ScopeSpans: its other fields as encoded, and its spans.
type rawScope struct {
	header []byte
	spans  []rawSpan
}

// rawResource is one ResourceSpans: its other fields as encoded (header,
// decoded once in decoded), and its scopes.
type rawResource struct {
	header  []byte
	decoded *tracepb.ResourceSpans // header decoded: resource, schema_url
	scopes  []rawScope
}

// parseResourceSpans splits one encoded ResourceSpans; the trace id is its
// first span's (ok false: no span with a 16-byte trace id).
func parseResourceSpans(b []byte) (r *rawResource, traceID [16]byte, haveID bool, err error) {
	r = &rawResource{}
	malformed := status.Error(codes.Internal, "upstream GetTraces: malformed ResourceSpans")
	if !wireFieldsRaw(b, func(num protowire.Number, typ protowire.Type, val, raw []byte) bool {
		if num != otlpwire.FieldResourceSpansScopeSpans || typ != protowire.BytesType {
			r.header = append(r.header, raw...)
			return true
		}
		sc := rawScope{}
		return wireFieldsRaw(val, func(num protowire.Number, typ protowire.Type, sp, raw []byte) bool {
			if num != otlpwire.FieldScopeSpansSpans || typ != protowire.BytesType {
				sc.header = append(sc.header, raw...)
				return true
			}
			var id, tid []byte
			if !wireFields(sp, func(num protowire.Number, typ protowire.Type, v []byte) bool {
				if typ == protowire.BytesType {
					switch num {
					case otlpwire.FieldSpanTraceID:
						tid = v
					case otlpwire.FieldSpanSpanID:
						id = v
					}
				}
				return true
			}) {
				return false
			}
			if !haveID && len(tid) == 16 {
				traceID, haveID = [16]byte(tid), true
			}
			sc.spans = append(sc.spans, rawSpan{id: [8]byte(fitSpanID(id)), b: sp})
			return true
		}) && func() bool { r.scopes = append(r.scopes, sc); return true }()
	}) {
		return nil, traceID, false, malformed
	}
	r.decoded = &tracepb.ResourceSpans{}
	if proto.Unmarshal(r.header, r.decoded) != nil {
		return nil, traceID, false, malformed
	}
	return r, traceID, haveID, nil
}

// rawTraceSender streams GetTraces itself (upstream mode), passing what it
// does not enrich through undecoded.
type rawTraceSender interface {
	sendTraces(ctx context.Context, refs []traceRef, r *reader, stream grpc.ServerStream) error
}

var _ rawTraceSender = (*upstreamStore)(nil)

// rawTrace is one trace of the upstream's answer.
type rawTrace struct {
	id        [16]byte
	resources []*rawResource
	rec       upTrace // the record spans, split into records
}

// sendTraces serves GetTraces for refs (upstream mode): one upstream call,
// each trace joined with its records and sent on stream.
func (s *upstreamStore) sendTraces(ctx context.Context, refs []traceRef, r *reader, stream grpc.ServerStream) error {
	req := &storagev2.GetTracesRequest{Query: make([]*storagev2.GetTraceParams, 0, len(refs))}
	for _, ref := range refs {
		p := &storagev2.GetTraceParams{TraceId: slices.Clone(ref.ID[:])}
		if !ref.Start.IsZero() {
			p.StartTime = timestamppb.New(ref.Start)
		}
		if !ref.End.IsZero() {
			p.EndTime = timestamppb.New(ref.End)
		}
		req.Query = append(req.Query, p)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	up, err := s.readConn.NewStream(ctx, &storagev2.TraceReader_ServiceDesc.Streams[0], storagev2.TraceReader_GetTraces_FullMethodName)
	if err != nil {
		return upstreamError("GetTraces", err)
	}
	if err := up.SendMsg(req); err != nil {
		return upstreamError("GetTraces", err)
	}
	if err := up.CloseSend(); err != nil {
		return upstreamError("GetTraces", err)
	}
	var cur *rawTrace
	seen := map[[16]byte]bool{}
	flush := func() error {
		if cur == nil {
			return nil
		}
		t := cur
		cur = nil
		return s.sendTrace(t, r, stream)
	}
	for {
		msg := &emptypb.Empty{}
		err := up.RecvMsg(msg)
		if errors.Is(err, io.EOF) {
			return flush()
		}
		if err != nil {
			return upstreamError("GetTraces", err)
		}
		var perr error
		if !wireFields(msg.ProtoReflect().GetUnknown(), func(num protowire.Number, typ protowire.Type, b []byte) bool {
			if num != otlpwire.FieldTracesDataResourceSpans || typ != protowire.BytesType {
				return true
			}
			res, id, ok, err := parseResourceSpans(b)
			if err != nil {
				perr = err
				return false
			}
			if !ok {
				return true
			}
			if cur == nil || cur.id != id {
				if perr = flush(); perr != nil {
					return false
				}
				if seen[id] {
					perr = status.Errorf(codes.Internal, "upstream GetTraces: trace %x in non-consecutive chunks", id)
					return false
				}
				seen[id] = true
				cur = &rawTrace{id: id, rec: upTrace{id: id}}
			}
			if resourceService(res.decoded.GetResource()) == s.cfg.Service {
				rs := &tracepb.ResourceSpans{}
				if perr = proto.Unmarshal(b, rs); perr != nil {
					perr = status.Errorf(codes.Internal, "upstream GetTraces: %v", perr)
					return false
				}
				s.split(&cur.rec, rs)
				return true
			}
			cur.resources = append(cur.resources, res)
			return true
		}) && perr == nil {
			perr = status.Error(codes.Internal, "upstream GetTraces: malformed TracesData")
		}
		if perr != nil {
			return perr
		}
	}
}

// sendTrace sends one trace: the spans without records as they came, then
// the spans with records enriched, and the network spans.
func (s *upstreamStore) sendTrace(t *rawTrace, r *reader, stream grpc.ServerStream) error {
	records := s.joinable(t.rec.records)
	c := r.newChunker(records, func(td *tracepb.TracesData) error { return stream.SendMsg(td) })
	defer c.release()
	var enrich []*tracepb.ResourceSpans
	out := rawChunker{limit: r.cfg.MaxSpansPerChunk, send: stream.SendMsg}
	for ri, res := range t.resources {
		for si, sc := range res.scopes {
			var decoded *tracepb.ScopeSpans
			for _, sp := range sc.spans {
				if c.realIDs != nil {
					c.realIDs[sp.id] = struct{}{}
				}
				if len(c.bySpan[sp.id]) == 0 && out.fits(sp) {
					if err := out.add(ri, si, res, sc, sp); err != nil {
						return err
					}
					continue
				}
				if decoded == nil {
					decoded = &tracepb.ScopeSpans{}
					if err := proto.Unmarshal(sc.header, decoded); err != nil {
						return status.Errorf(codes.Internal, "upstream GetTraces: scope: %v", err)
					}
					enrich = append(enrich, &tracepb.ResourceSpans{Resource: res.decoded.GetResource(), SchemaUrl: res.decoded.GetSchemaUrl(),
						ScopeSpans: []*tracepb.ScopeSpans{decoded}})
				}
				span := &tracepb.Span{}
				if err := proto.Unmarshal(sp.b, span); err != nil {
					return status.Errorf(codes.Internal, "upstream GetTraces: span: %v", err)
				}
				decoded.Spans = append(decoded.Spans, span)
			}
		}
	}
	if err := out.flush(); err != nil {
		return err
	}
	for _, rs := range enrich {
		if err := c.addDecoded(rs); err != nil {
			return err
		}
	}
	return c.finish()
}

// rawChunker groups pass-through spans into TracesData messages of at most
// limit spans and targetChunkBytes bytes (one span alone: maxChunkBytes),
// keeping each span under its own resource and scope.
type rawChunker struct {
	limit int
	send  func(any) error

	entries []rawEntry
	bytes   int // upper bound of the encoded chunk
	lastR   int
	lastS   int
}

type rawEntry struct {
	r, s  int
	res   *rawResource
	scope *rawScope
	span  rawSpan
}

// headerSlack bounds a nested field's tag and length prefix.
var headerSlack = 1 + protowire.SizeVarint(maxChunkBytes)

func spanCost(sp rawSpan) int { return 1 + protowire.SizeVarint(uint64(len(sp.b))) + len(sp.b) }

// fits reports whether sp fits a chunk on its own (else it takes the
// decoded path, which truncates what is too large).
func (c *rawChunker) fits(sp rawSpan) bool { return spanCost(sp)+4*headerSlack < maxChunkBytes/2 }

func (c *rawChunker) add(r, s int, res *rawResource, sc rawScope, sp rawSpan) error {
	cost := spanCost(sp)
	if len(c.entries) == 0 || r != c.lastR {
		cost += len(res.header) + 2*headerSlack + len(sc.header)
	} else if s != c.lastS {
		cost += len(sc.header) + headerSlack
	}
	if len(c.entries) > 0 && (len(c.entries)+1 > c.limit || c.bytes+cost > targetChunkBytes) {
		if err := c.flush(); err != nil {
			return err
		}
		cost = spanCost(sp) + len(res.header) + 2*headerSlack + len(sc.header)
	}
	c.entries = append(c.entries, rawEntry{r: r, s: s, res: res, scope: &sc, span: sp})
	c.bytes += cost
	c.lastR, c.lastS = r, s
	return nil
}

// flush sends the queued spans as one TracesData.
func (c *rawChunker) flush() error {
	if len(c.entries) == 0 {
		return nil
	}
	var td []byte
	for i := 0; i < len(c.entries); {
		e := c.entries[i]
		rs := slices.Clone(e.res.header)
		for i < len(c.entries) && c.entries[i].r == e.r {
			s := c.entries[i]
			ss := slices.Clone(s.scope.header)
			for i < len(c.entries) && c.entries[i].r == e.r && c.entries[i].s == s.s {
				ss = protowire.AppendBytes(protowire.AppendTag(ss, otlpwire.FieldScopeSpansSpans, protowire.BytesType), c.entries[i].span.b)
				i++
			}
			rs = protowire.AppendBytes(protowire.AppendTag(rs, otlpwire.FieldResourceSpansScopeSpans, protowire.BytesType), ss)
		}
		td = protowire.AppendBytes(protowire.AppendTag(td, otlpwire.FieldTracesDataResourceSpans, protowire.BytesType), rs)
	}
	c.entries, c.bytes = c.entries[:0], 0
	m := &emptypb.Empty{}
	m.ProtoReflect().SetUnknown(td)
	return c.send(m)
}
