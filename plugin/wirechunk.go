package plugin

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cespare/xxhash/v2"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/cross-layer-telemetry/clt/internal/otlpwire"
)

// The read path works on the wire form of OTLP traces
// (opentelemetry/proto/trace/v1/trace.proto): a stored chunk is a marshaled
// TracesData, i.e. a run of resource_spans fields, and a streamed chunk is
// built the same way. Spans without IOAM records are copied byte for byte
// from the store to the wire; only the spans that get enriched (and the
// network spans) are decoded and marshaled. Every field number used here
// (internal/otlpwire) is below 16, so each tag is one byte.

// errWire reports a stored chunk that is not valid protobuf.
var errWire = errors.New("malformed stored spans")

// wireTracesData returns a TracesData whose encoding is b, a run of encoded
// resource_spans fields: b is held as the message's unknown fields, which
// protobuf marshals verbatim after the (empty) known ones, and which any
// decoder reads as the resource_spans they are. So the stream's ordinary
// codec sends stored bytes without re-encoding them.
func wireTracesData(b []byte) *tracepb.TracesData {
	td := &tracepb.TracesData{}
	td.ProtoReflect().SetUnknown(b)
	return td
}

// decodeTracesData returns td with resource_spans held as unknown fields
// (wireTracesData) decoded, for consumers that need the messages (the v1
// converter).
func decodeTracesData(td *tracepb.TracesData) (*tracepb.TracesData, error) {
	raw := td.ProtoReflect().GetUnknown()
	if len(raw) == 0 {
		return td, nil
	}
	out := &tracepb.TracesData{ResourceSpans: td.GetResourceSpans()}
	if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(raw, out); err != nil {
		return nil, fmt.Errorf("decode chunk: %w", err)
	}
	return out, nil
}

// eachField calls fn for every field of message b with the field's whole
// encoding (tag included) and, for length-delimited fields, its value.
func eachField(b []byte, fn func(num protowire.Number, field, value []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %w", errWire, protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return fmt.Errorf("%w: %w", errWire, protowire.ParseError(m))
		}
		field := b[:n+m]
		var value []byte
		if typ == protowire.BytesType {
			value, _ = protowire.ConsumeBytes(b[n:])
		}
		b = b[n+m:]
		if err := fn(num, field, value); err != nil {
			return err
		}
	}
	return nil
}

// wireSpanID returns the span_id of an encoded Span, fitted to 8 bytes (the
// form records are keyed by).
func wireSpanID(span []byte) ([8]byte, error) {
	var id [8]byte
	err := eachField(span, func(num protowire.Number, _, value []byte) error {
		if num == otlpwire.FieldSpanSpanID {
			id = [8]byte(fitSpanID(value))
			return errFound // right after trace_id as marshaled: stop there
		}
		return nil
	})
	if err == errFound {
		err = nil
	}
	return id, err
}

// wireSpanHead decodes what enrichment reads of a stored span (ids, start
// and end) and reports whether the span has its own @jaeger@warnings
// attribute (which enrichment extends rather than adds).
func wireSpanHead(span []byte) (head *tracepb.Span, hasWarnings bool, err error) {
	head = &tracepb.Span{}
	err = eachField(span, func(num protowire.Number, field, value []byte) error {
		switch num {
		case otlpwire.FieldSpanTraceID:
			head.TraceId = value
		case otlpwire.FieldSpanSpanID:
			head.SpanId = value
		case otlpwire.FieldSpanStart, otlpwire.FieldSpanEnd:
			_, typ, n := protowire.ConsumeTag(field)
			if typ != protowire.Fixed64Type {
				return fmt.Errorf("%w: span time of wire type %d", errWire, typ)
			}
			v, _ := protowire.ConsumeFixed64(field[n:])
			if num == otlpwire.FieldSpanStart {
				head.StartTimeUnixNano = v
			} else {
				head.EndTimeUnixNano = v
			}
		case otlpwire.FieldSpanAttributes:
			return eachField(value, func(num protowire.Number, _, key []byte) error {
				if num == otlpwire.FieldKeyValueKey && string(key) == AttrJaegerWarnings {
					hasWarnings = true
				}
				return nil
			})
		}
		return nil
	})
	return head, hasWarnings, err
}

// errFound stops a walk early.
var errFound = errors.New("found")

// fieldLen is the encoded size of a length-delimited field of n bytes with
// a one-byte tag.
func fieldLen(n int) int { return 1 + protowire.SizeVarint(uint64(n)) + n }

// wireScope is one ScopeSpans of the chunk being built: hdr holds its fields
// but spans, as stored.
type wireScope struct {
	hdr   []byte
	spans [][]byte
	size  int // encoded ScopeSpans message size
}

// wireResource is one ResourceSpans of the chunk being built.
type wireResource struct {
	hdr    []byte
	scopes []wireScope
	size   int // encoded ResourceSpans message size
}

// wireChunk builds one streamed TracesData from encoded spans under their
// encoded resource and scope headers, keeping its exact encoded size.
type wireChunk struct {
	rss          []wireResource
	size         int // encoded TracesData size
	n            int // spans
	lastR, lastS int // group ids of the open resource and scope (0: none)
}

// sizeWith is the chunk's encoded size after adding span (of group ids r, s).
func (w *wireChunk) sizeWith(r, s int, rHdr, sHdr, span []byte) int {
	spanField := fieldLen(len(span))
	if w.lastR != r || len(w.rss) == 0 {
		return w.size + fieldLen(len(rHdr)+fieldLen(len(sHdr)+spanField))
	}
	rs := &w.rss[len(w.rss)-1]
	rsSize := rs.size
	var ssSize int
	if w.lastS != s {
		ssSize = len(sHdr) + spanField
	} else {
		ss := &rs.scopes[len(rs.scopes)-1]
		rsSize -= fieldLen(ss.size)
		ssSize = ss.size + spanField
	}
	rsSize += fieldLen(ssSize)
	return w.size - fieldLen(rs.size) + fieldLen(rsSize)
}

// add appends span; size is what sizeWith returned for it.
func (w *wireChunk) add(r, s int, rHdr, sHdr, span []byte, size int) {
	if w.lastR != r || len(w.rss) == 0 {
		w.rss = append(w.rss, wireResource{hdr: rHdr, size: len(rHdr)})
		w.lastR, w.lastS = r, 0
	}
	rs := &w.rss[len(w.rss)-1]
	if w.lastS != s {
		rs.scopes = append(rs.scopes, wireScope{hdr: sHdr, size: len(sHdr)})
		rs.size += fieldLen(len(sHdr))
		w.lastS = s
	}
	ss := &rs.scopes[len(rs.scopes)-1]
	rs.size -= fieldLen(ss.size)
	ss.spans = append(ss.spans, span)
	ss.size += fieldLen(len(span))
	rs.size += fieldLen(ss.size)
	w.size = size
	w.n++
}

// encode appends the chunk's TracesData encoding to b.
func (w *wireChunk) encode(b []byte) []byte {
	for _, rs := range w.rss {
		b = protowire.AppendTag(b, otlpwire.FieldTracesDataResourceSpans, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(rs.size))
		b = append(b, rs.hdr...)
		for _, ss := range rs.scopes {
			b = protowire.AppendTag(b, otlpwire.FieldResourceSpansScopeSpans, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(ss.size))
			b = append(b, ss.hdr...)
			for _, sp := range ss.spans {
				b = protowire.AppendTag(b, otlpwire.FieldScopeSpansSpans, protowire.BytesType)
				b = protowire.AppendVarint(b, uint64(len(sp)))
				b = append(b, sp...)
			}
		}
	}
	return b
}

// reset empties the chunk, keeping its slices for the next one.
func (w *wireChunk) reset() {
	for i := range w.rss {
		for j := range w.rss[i].scopes {
			clear(w.rss[i].scopes[j].spans)
		}
		w.rss[i] = wireResource{scopes: w.rss[i].scopes[:0]}
	}
	w.rss = w.rss[:0]
	w.size, w.n, w.lastR, w.lastS = 0, 0, 0, 0
}

// sendBufs recycles the encoding buffers of streamed chunks: gRPC has copied
// a message into its own frame when SendMsg returns.
var sendBufs = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledBuf keeps rare huge buffers out of the pool.
const maxPooledBuf = 1 << 20

// dupKey identifies a stored span by its id and the hash of its bytes with
// its resource's and scope's: the same span stored twice (an Export retried
// in another batch shape gets new chunk keys) is dropped at read time, while
// two different spans with one id are both served.
type dupKey struct {
	id          [8]byte
	span, group uint64
}

// groupHash is the hash of a span's resource and scope headers.
func groupHash(rHdr, sHdr []byte) uint64 {
	return xxhash.Sum64(rHdr)*0x9e3779b97f4a7c15 ^ xxhash.Sum64(sHdr)
}
