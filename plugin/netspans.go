package plugin

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// Network spans: at read time, every application span with IOAM records gets
// synthetic child spans for the network it crossed, so that Jaeger's
// timeline, critical path, flamegraph, statistics and trace graph show
// network time where it was spent:
//
//   - one link span per link of the canonical path (hop i → hop i+1), from
//     hop i's first IOAM timestamp to hop i+1's, whose service is the node
//     that received the packet;
//   - one warning span per warning (overflow, path change, unconfirmed
//     report), zero length, status ERROR, so that the stock UI flags it
//     without expanding a span (error icon in the timeline row, "N Errors"
//     and the service's alert icon in the search results).
//
// Their ids are derived from (trace id, span id, kind, index, path), stable
// across reads, and re-derived when they collide with any real span of the
// trace. All carry ioam.synthetic=true.

// netSpan is a synthetic span before its id is assigned.
type netSpan struct {
	service string
	span    *tracepb.Span
	seed    []byte // what the id is derived from
}

const (
	netKindLink    = 'l'
	netKindWarning = 'w'
)

// networkSpans builds the synthetic spans of the application span parent.
func (a *analysis) networkSpans(parent *tracepb.Span, labels NodeLabeler) []netSpan {
	pStart, pEnd := parent.GetStartTimeUnixNano(), parent.GetEndTimeUnixNano()
	pEnd = max(pEnd, pStart)
	var out []netSpan
	for i := 0; i+1 < len(a.hops); i++ {
		from, to := a.hops[i], a.hops[i+1]
		fromLabel, toLabel := from.node.label(labels), to.node.label(labels)
		start, end := from.firstTS, to.firstTS
		var warns []string
		switch {
		case start == 0 || end == 0:
			start, end = pStart, pStart
			warns = append(warns, fmt.Sprintf("%shop %d or hop %d carries no timestamp: link shown with zero length at the span start", WarnClock, i, i+1))
		case end < start:
			warns = append(warns, fmt.Sprintf("%shop %d's timestamp is %s before hop %d's (clocks not synchronised): link shown with zero length",
				WarnClock, i+1, time.Duration(start-end), i))
			end = start
		}
		if start < pStart || end > pEnd {
			warns = append(warns, fmt.Sprintf("%slink timestamps fall outside the span (clock skew between hosts?): clamped to the span's bounds", WarnClock))
			start, end = clamp(start, pStart, pEnd), clamp(end, pStart, pEnd)
		}
		attrs := append([]*commonpb.KeyValue{a.arena.boolAttr(AttrSynthetic, true)}, a.hopAttrs(i+1)...)
		sp := a.syntheticSpan(parent, NetworkSpanName(fromLabel, toLabel), start, end, attrs)
		if len(warns) > 0 {
			addWarnings(sp, warns)
		}
		out = append(out, netSpan{service: toLabel, span: sp, seed: netSeed(parent, netKindLink, i, a.canon.key)})
	}
	for i, w := range a.warnings {
		at := w.at
		if at == 0 {
			at = pStart
		}
		at = clamp(at, pStart, pEnd)
		attrs := append([]*commonpb.KeyValue{a.arena.boolAttr(AttrSynthetic, true)}, w.attrs(a.arena)...)
		sp := a.syntheticSpan(parent, WarningSpanName(w.text), at, at, attrs)
		sp.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: w.text}
		addWarnings(sp, []string{w.text})
		service := w.node.label(labels)
		if w.service != "" {
			service = w.service
		}
		out = append(out, netSpan{service: service, span: sp, seed: netSeed(parent, netKindWarning, i, w.text)})
	}
	return out
}

func clamp(v, lo, hi uint64) uint64 { return min(max(v, lo), hi) }

func (a *analysis) syntheticSpan(parent *tracepb.Span, name string, start, end uint64, attrs []*commonpb.KeyValue) *tracepb.Span {
	return &tracepb.Span{
		TraceId:           parent.GetTraceId(),
		ParentSpanId:      parent.GetSpanId(),
		Name:              name,
		Kind:              tracepb.Span_SPAN_KIND_INTERNAL,
		StartTimeUnixNano: start,
		EndTimeUnixNano:   end,
		Attributes:        attrs,
	}
}

func netSeed(parent *tracepb.Span, kind byte, index int, path string) []byte {
	b := make([]byte, 0, 16+8+1+8+len(path))
	b = append(b, parent.GetTraceId()...)
	b = append(b, parent.GetSpanId()...)
	b = append(b, kind)
	b = binary.BigEndian.AppendUint64(b, uint64(index))
	return append(b, path...)
}

// spanIDFor derives a span id from seed and a salt (FNV-1a 64).
func spanIDFor(seed []byte, salt uint32) [8]byte {
	h := fnv.New64a()
	_, _ = h.Write(seed)
	var s [4]byte
	binary.BigEndian.PutUint32(s[:], salt)
	_, _ = h.Write(s[:])
	var id [8]byte
	binary.BigEndian.PutUint64(id[:], h.Sum64())
	return id
}

// assignIDs gives every synthetic span an id that is not zero and collides
// with no id in used (the trace's real span ids, then the ids assigned), and
// groups the spans by service into ResourceSpans, in order of appearance.
func assignIDs(spans []netSpan, used map[[8]byte]struct{}) []*tracepb.ResourceSpans {
	var out []*tracepb.ResourceSpans
	byService := map[string]*tracepb.ScopeSpans{}
	for _, ns := range spans {
		var id [8]byte
		for salt := uint32(0); ; salt++ {
			id = spanIDFor(ns.seed, salt)
			if _, dup := used[id]; !dup && id != ([8]byte{}) {
				break
			}
		}
		used[id] = struct{}{}
		ns.span.SpanId = id[:]
		ss := byService[ns.service]
		if ss == nil {
			ss = &tracepb.ScopeSpans{Scope: &commonpb.InstrumentationScope{Name: networkScopeName}}
			byService[ns.service] = ss
			out = append(out, &tracepb.ResourceSpans{
				Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{strAttr(AttrOTelServiceName, ns.service)}},
				ScopeSpans: []*tracepb.ScopeSpans{ss},
			})
		}
		ss.Spans = append(ss.Spans, ns.span)
	}
	return out
}
