package plugin

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// Attribute, event and warning names of the UI naming contract
// (docs/contracts.md). The demo and the e2e tests assert on them.
const (
	AttrNamespaceID       = "ioam.namespace_id"
	AttrTraceType         = "ioam.trace_type"
	AttrHopCount          = "ioam.hop_count"
	AttrPath              = "ioam.path"
	AttrPackets           = "ioam.packets"
	AttrReporters         = "ioam.reporters"
	AttrTransitDelayMaxNs = "ioam.transit_delay_max_ns"
	AttrQueueDepthMax     = "ioam.queue_depth_max"
	AttrOverflow          = "ioam.overflow"
	// AttrJaegerWarnings is the span attribute Jaeger v2 moves into the span's
	// warnings in its UI JSON.
	AttrJaegerWarnings = "@jaeger@warnings"

	EventHop = "ioam.hop"

	AttrHopIndex           = "ioam.hop_index"
	AttrNodeID             = "ioam.node_id"
	AttrHopLimit           = "ioam.hop_limit"
	AttrIngressIf          = "ioam.ingress_if"
	AttrEgressIf           = "ioam.egress_if"
	AttrTimestamp          = "ioam.timestamp"
	AttrTransitDelayNs     = "ioam.transit_delay_ns"
	AttrTransitDelayMinNs  = "ioam.transit_delay_min_ns"
	AttrQueueDepth         = "ioam.queue_depth"
	AttrQueueDepthMin      = "ioam.queue_depth_min"
	AttrNamespaceData      = "ioam.namespace_data"
	AttrChecksumComplement = "ioam.checksum_complement"
	AttrWideNodeID         = "ioam.wide_node_id"
	AttrWideIngressIf      = "ioam.wide_ingress_if"
	AttrWideEgressIf       = "ioam.wide_egress_if"
	AttrWideNamespaceData  = "ioam.wide_namespace_data"
	AttrBufferOccupancy    = "ioam.buffer_occupancy"
	AttrSnapshotSchemaID   = "ioam.snapshot_schema_id"
	AttrSnapshotLen        = "ioam.snapshot_len"
)

// Warning prefixes (docs/contracts.md); tests match on them.
const (
	WarnOverflow    = "ioam: trace overflowed"
	WarnPathChanged = "ioam: path changed during the span: "
	WarnUnconfirmed = "ioam: report from node "
)

// Trace-type bits (RFC 9197 §4.4.1): bit 0 is the most significant of the 24.
const (
	traceTypeBits = 24
	traceTypeMask = 1<<traceTypeBits - 1

	bitHopLimNodeID     = 0
	bitIfIDs            = 1
	bitTimestampSec     = 2
	bitTimestampFrac    = 3
	bitTransitDelay     = 4
	bitNamespaceData    = 5
	bitQueueDepth       = 6
	bitChecksumComp     = 7
	bitWideHopLimNodeID = 8
	bitWideIfIDs        = 9
	bitWideNSData       = 10
	bitBufferOccupancy  = 11
	bitOpaqueSnapshot   = 22

	// transitDelayOverflow is the MSB of the transit delay field, set when the
	// value overflowed (RFC 9197 §4.4.2.5); such values are not delays.
	transitDelayOverflow = 1 << 31

	// All-ones values are how Linux (and RFC 9197 §4.4.2) says "not available"
	// for a field the trace type asks for: the destination's egress interface,
	// a queue depth without a qdisc, ids left at their default. They are not
	// measurements, so enrichment leaves them out.
	ifUnavailable     = 0xFFFF
	wideIfUnavailable = 0xFFFFFFFF
	u32Unavailable    = 0xFFFFFFFF
	u64Unavailable    = 0xFFFFFFFFFFFFFFFF

	// maxPathWarnings bounds the warnings one span can carry so a pathological
	// flow (path flapping every window) cannot bloat a trace.
	maxPathWarnings = 5
)

// bit returns the mask of trace-type bit n.
func bit(n int) uint32 { return 1 << (traceTypeBits - 1 - n) }

func has(fields uint32, n int) bool { return fields&bit(n) != 0 }

// EnrichSpan adds what recs say about span: the ioam.* span attributes, one
// ioam.hop event per hop of the canonical path and @jaeger@warnings. recs are
// the records of this (trace, span); records of other spans are ignored. It
// is a pure function of its inputs and leaves span untouched when no record
// matches.
func EnrichSpan(span *tracepb.Span, recs []*collectorv1.IOAMRecord) {
	var mine []*collectorv1.IOAMRecord
	for _, r := range recs {
		if bytes.Equal(r.GetSpanId(), span.GetSpanId()) {
			mine = append(mine, r)
		}
	}
	if len(mine) == 0 {
		return
	}
	s := summarize(mine, span.GetStartTimeUnixNano())
	span.Attributes = append(span.Attributes, s.attrs...)
	span.Events = append(span.Events, s.events...)
	if len(s.warnings) > 0 {
		addWarnings(span, s.warnings)
	}
}

// summary is the result of joining one span's records.
type summary struct {
	attrs    []*commonpb.KeyValue
	events   []*tracepb.Span_Event
	warnings []string
}

// pathOf returns the node ids of the record's hops in path order; a hop with
// neither a short nor a wide node id is -1.
func pathOf(r *collectorv1.IOAMRecord) []int64 {
	p := make([]int64, 0, len(r.GetHops()))
	for _, h := range r.GetHops() {
		p = append(p, hopNodeID(h, r.GetTraceType()))
	}
	return p
}

func hopNodeID(h *collectorv1.Hop, traceType uint32) int64 {
	f := hopFields(h, traceType)
	switch {
	case has(f, bitHopLimNodeID):
		return int64(h.GetNodeId())
	case has(f, bitWideHopLimNodeID):
		return int64(h.GetWideNodeId())
	default:
		return -1
	}
}

// hopFields is the hop's own field mask, falling back to the record's trace
// type for agents that leave it zero.
func hopFields(h *collectorv1.Hop, traceType uint32) uint32 {
	if h.GetFields() != 0 {
		return h.GetFields() & traceTypeMask
	}
	return traceType & traceTypeMask
}

// FormatPath renders node ids as "1 > 2 > 3" (unknown ids as "?").
func FormatPath(p []int64) string {
	var b strings.Builder
	for i, id := range p {
		if i > 0 {
			b.WriteString(" > ")
		}
		if id < 0 {
			b.WriteByte('?')
		} else {
			b.WriteString(strconv.FormatInt(id, 10))
		}
	}
	return b.String()
}

func isPrefix(p, of []int64) bool {
	return len(p) <= len(of) && slices.Equal(p, of[:len(p)])
}

// pathGroup is every record that saw one path.
type pathGroup struct {
	path      []int64
	recs      []*collectorv1.IOAMRecord
	packets   uint64
	firstSeen uint64
	reporters map[uint32]bool
}

func summarize(recs []*collectorv1.IOAMRecord, spanStart uint64) summary {
	// Group by path; records are already deduplicated by the store.
	var groups []*pathGroup
	byKey := map[string]*pathGroup{}
	reporters := map[uint32]uint64{} // reporter -> packets
	overflow := false
	for _, r := range recs {
		p := pathOf(r)
		k := FormatPath(p)
		g := byKey[k]
		if g == nil {
			g = &pathGroup{path: p, firstSeen: math.MaxUint64, reporters: map[uint32]bool{}}
			byKey[k] = g
			groups = append(groups, g)
		}
		g.recs = append(g.recs, r)
		g.packets += r.GetPackets()
		g.firstSeen = min(g.firstSeen, r.GetFirstSeenUnixNano())
		g.reporters[r.GetReporterNodeId()] = true
		reporters[r.GetReporterNodeId()] += r.GetPackets()
		overflow = overflow || r.GetOverflow()
	}
	// Canonical path: the longest one; ties go to the most packets, then the
	// earliest seen, then the lexical order, so the result is deterministic.
	canon := slices.MaxFunc(groups, func(a, b *pathGroup) int {
		return cmp.Or(
			cmp.Compare(len(a.path), len(b.path)),
			cmp.Compare(a.packets, b.packets),
			cmp.Compare(b.firstSeen, a.firstSeen),
			strings.Compare(FormatPath(b.path), FormatPath(a.path)),
		)
	})
	ref := canon.recs[0]
	var packets uint64
	for _, n := range reporters {
		packets = max(packets, n)
	}
	traceType := ref.GetTraceType() & traceTypeMask

	var s summary
	s.attrs = append(s.attrs,
		intAttr(AttrNamespaceID, int64(ref.GetNamespaceId())),
		strAttr(AttrTraceType, fmt.Sprintf("0x%06x", traceType)),
		intAttr(AttrHopCount, int64(len(canon.path))),
		strAttr(AttrPath, FormatPath(canon.path)),
		intAttr(AttrPackets, int64(packets)),
		intAttr(AttrReporters, int64(len(reporters))),
	)
	hops := mergeHops(canon.recs)
	if has(traceType, bitTransitDelay) {
		if m, ok := maxOverHops(hops, (*mergedHop).transitMax); ok {
			s.attrs = append(s.attrs, intAttr(AttrTransitDelayMaxNs, int64(m)))
		}
	}
	if has(traceType, bitQueueDepth) {
		if m, ok := maxOverHops(hops, (*mergedHop).queueMax); ok {
			s.attrs = append(s.attrs, intAttr(AttrQueueDepthMax, int64(m)))
		}
	}
	if overflow {
		s.attrs = append(s.attrs, boolAttr(AttrOverflow, true))
	}
	for i, h := range hops {
		s.events = append(s.events, h.event(i, traceType, spanStart))
	}
	s.warnings = warnings(recs, groups, canon)
	return s
}

// warnings derives what a network engineer must not miss from the path
// groups: overflow, a path that changed, reports not confirmed downstream.
func warnings(recs []*collectorv1.IOAMRecord, groups []*pathGroup, canon *pathGroup) []string {
	var out []string
	// Overflow: the hops after the last entry are missing. Reporters that
	// found the trace already full (reporter_wrote=false) are nodes we know
	// were skipped; without any, the count is unknown.
	skipped := map[uint32]bool{}
	var lastWritten []int64
	overflowed := false
	for _, r := range recs {
		if !r.GetOverflow() {
			continue
		}
		overflowed = true
		if !r.GetReporterWrote() {
			skipped[r.GetReporterNodeId()] = true
		}
		if p := pathOf(r); len(p) > len(lastWritten) {
			lastWritten = p
		}
	}
	if overflowed {
		last := "?"
		if len(lastWritten) > 0 {
			last = FormatPath(lastWritten[len(lastWritten)-1:])
		}
		if n := len(skipped); n > 0 {
			out = append(out, fmt.Sprintf("%s at node %s: %d hop(s) missing", WarnOverflow, last, n))
		} else {
			out = append(out, fmt.Sprintf("%s: hops missing after node %s", WarnOverflow, last))
		}
	}

	// Path changes: a path that neither extends nor is extended by the
	// canonical one (prefixes come from upstream reporters or overflow).
	// Groups are ordered by when they were first seen.
	ordered := slices.Clone(groups)
	slices.SortStableFunc(ordered, func(a, b *pathGroup) int { return cmp.Compare(a.firstSeen, b.firstSeen) })
	changes := 0
	for _, g := range ordered {
		if g == canon || isPrefix(g.path, canon.path) || isPrefix(canon.path, g.path) {
			continue
		}
		if changes++; changes > maxPathWarnings {
			break
		}
		first, then := canon, g
		if g.firstSeen < canon.firstSeen {
			first, then = g, canon
		}
		out = append(out, WarnPathChanged+FormatPath(first.path)+" then "+FormatPath(then.path))
	}

	// Unconfirmed reports: a router's path that no record of another reporter
	// extends. The canonical path's reporters are the destination and need no
	// confirmation.
	unconfirmed := 0
	for _, g := range ordered {
		if g == canon {
			continue
		}
		for _, rep := range slices.Sorted(mapKeys(g.reporters)) {
			if canon.reporters[rep] || confirmed(g.path, rep, groups) {
				continue
			}
			if unconfirmed++; unconfirmed > maxPathWarnings {
				break
			}
			out = append(out, fmt.Sprintf("%s%d not confirmed downstream (path %s)", WarnUnconfirmed, rep, FormatPath(g.path)))
		}
	}
	return out
}

// confirmed reports whether a reporter other than rep saw a path that starts
// with p.
func confirmed(p []int64, rep uint32, groups []*pathGroup) bool {
	for _, g := range groups {
		if !isPrefix(p, g.path) {
			continue
		}
		for r := range g.reporters {
			if r != rep {
				return true
			}
		}
	}
	return false
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// mergedHop is one hop of the canonical path merged over the records that
// saw that path: the plain fields come from the most recent record, the
// min/max and first-timestamp fields summarise all of them.
type mergedHop struct {
	h       *collectorv1.Hop
	fields  uint32
	packets uint64
	tdMin   uint32
	tdMax   uint32
	tdSeen  bool
	qdMin   uint32
	qdMax   uint32
	qdSeen  bool
	firstTS uint64
}

func mergeHops(recs []*collectorv1.IOAMRecord) []*mergedHop {
	// Most recent record last, so its plain fields win.
	sorted := slices.Clone(recs)
	slices.SortStableFunc(sorted, func(a, b *collectorv1.IOAMRecord) int {
		return cmp.Compare(a.GetLastSeenUnixNano(), b.GetLastSeenUnixNano())
	})
	var out []*mergedHop
	for _, r := range sorted {
		for i, h := range r.GetHops() {
			if i == len(out) {
				out = append(out, &mergedHop{})
			}
			m := out[i]
			f := hopFields(h, r.GetTraceType())
			m.h, m.fields = h, f
			m.packets += r.GetPackets()
			if has(f, bitTransitDelay) {
				lo, hi := h.GetTransitDelayMin(), h.GetTransitDelayMax()
				if lo == 0 && hi == 0 {
					lo, hi = h.GetTransitDelay(), h.GetTransitDelay()
				}
				if lo&transitDelayOverflow == 0 && hi&transitDelayOverflow == 0 {
					if !m.tdSeen {
						m.tdMin, m.tdMax, m.tdSeen = lo, hi, true
					}
					m.tdMin, m.tdMax = min(m.tdMin, lo), max(m.tdMax, hi)
				}
			}
			if has(f, bitQueueDepth) && h.GetQueueDepth() != u32Unavailable {
				lo, hi := h.GetQueueDepthMin(), h.GetQueueDepthMax()
				if lo == 0 && hi == 0 {
					lo, hi = h.GetQueueDepth(), h.GetQueueDepth()
				}
				if !m.qdSeen {
					m.qdMin, m.qdMax, m.qdSeen = lo, hi, true
				}
				m.qdMin, m.qdMax = min(m.qdMin, lo), max(m.qdMax, hi)
			}
			if ts := hopTimestamp(h, f); ts != 0 && (m.firstTS == 0 || ts < m.firstTS) {
				m.firstTS = ts
			}
		}
	}
	return out
}

// hopTimestamp is the hop's first IOAM timestamp in Unix ns, or 0 when the
// trace type carries no full timestamp (bits 2 and 3).
func hopTimestamp(h *collectorv1.Hop, f uint32) uint64 {
	if !has(f, bitTimestampSec) || !has(f, bitTimestampFrac) {
		return 0
	}
	if ts := h.GetFirstTimestampUnixNano(); ts != 0 {
		return ts
	}
	// Linux writes the fraction in microseconds.
	return uint64(h.GetTimestampSec())*uint64(time.Second) + uint64(h.GetTimestampFrac())*uint64(time.Microsecond)
}

// maxOverHops is the largest value of the hops that measured one (ok false
// when none did).
func maxOverHops(hops []*mergedHop, value func(*mergedHop) (uint32, bool)) (m uint32, ok bool) {
	for _, h := range hops {
		if v, seen := value(h); seen {
			m, ok = max(m, v), true
		}
	}
	return m, ok
}

func (m *mergedHop) transitMax() (uint32, bool) { return m.tdMax, m.tdSeen }
func (m *mergedHop) queueMax() (uint32, bool)   { return m.qdMax, m.qdSeen }

func (m *mergedHop) event(index int, traceType uint32, spanStart uint64) *tracepb.Span_Event {
	h, f := m.h, m.fields
	attrs := []*commonpb.KeyValue{intAttr(AttrHopIndex, int64(index))}
	if has(f, bitHopLimNodeID) {
		attrs = append(attrs, intAttr(AttrNodeID, int64(h.GetNodeId())), intAttr(AttrHopLimit, int64(h.GetHopLimit())))
	}
	if has(f, bitIfIDs) {
		attrs = appendAvailable(attrs, AttrIngressIf, uint64(h.GetIngressIf()), ifUnavailable)
		attrs = appendAvailable(attrs, AttrEgressIf, uint64(h.GetEgressIf()), ifUnavailable)
	}
	ts := spanStart
	if m.firstTS != 0 {
		ts = m.firstTS
		attrs = append(attrs, strAttr(AttrTimestamp, time.Unix(0, int64(m.firstTS)).UTC().Format(time.RFC3339Nano)))
	}
	if has(f, bitTransitDelay) && m.tdSeen {
		attrs = append(attrs,
			intAttr(AttrTransitDelayNs, int64(h.GetTransitDelay()&^transitDelayOverflow)),
			intAttr(AttrTransitDelayMinNs, int64(m.tdMin)),
			intAttr(AttrTransitDelayMaxNs, int64(m.tdMax)))
	}
	if has(f, bitNamespaceData) {
		attrs = appendAvailable(attrs, AttrNamespaceData, uint64(h.GetNamespaceData()), u32Unavailable)
	}
	if has(f, bitQueueDepth) && m.qdSeen {
		attrs = append(attrs,
			intAttr(AttrQueueDepth, int64(h.GetQueueDepth())),
			intAttr(AttrQueueDepthMin, int64(m.qdMin)),
			intAttr(AttrQueueDepthMax, int64(m.qdMax)))
	}
	if has(f, bitChecksumComp) {
		attrs = appendAvailable(attrs, AttrChecksumComplement, uint64(h.GetChecksumComplement()), u32Unavailable)
	}
	if has(f, bitWideHopLimNodeID) {
		attrs = append(attrs, intAttr(AttrWideNodeID, int64(h.GetWideNodeId())))
		if !has(f, bitHopLimNodeID) {
			attrs = append(attrs, intAttr(AttrHopLimit, int64(h.GetHopLimit())))
		}
	}
	if has(f, bitWideIfIDs) {
		attrs = appendAvailable(attrs, AttrWideIngressIf, uint64(h.GetWideIngressIf()), wideIfUnavailable)
		attrs = appendAvailable(attrs, AttrWideEgressIf, uint64(h.GetWideEgressIf()), wideIfUnavailable)
	}
	if has(f, bitWideNSData) && h.GetWideNamespaceData() != u64Unavailable {
		// 64 bits do not fit an int attribute; hex keeps every value exact.
		attrs = append(attrs, strAttr(AttrWideNamespaceData, fmt.Sprintf("0x%016x", h.GetWideNamespaceData())))
	}
	if has(f, bitBufferOccupancy) {
		attrs = appendAvailable(attrs, AttrBufferOccupancy, uint64(h.GetBufferOccupancy()), u32Unavailable)
	}
	if has(f, bitOpaqueSnapshot) {
		attrs = append(attrs, intAttr(AttrSnapshotSchemaID, int64(h.GetSnapshotSchemaId())), intAttr(AttrSnapshotLen, int64(len(h.GetSnapshotData()))))
	}
	attrs = append(attrs, intAttr(AttrPackets, int64(m.packets)))
	return &tracepb.Span_Event{TimeUnixNano: ts, Name: EventHop, Attributes: attrs}
}

// addWarnings appends to the span's @jaeger@warnings array, creating it when
// absent.
func addWarnings(span *tracepb.Span, ws []string) {
	vals := make([]*commonpb.AnyValue, 0, len(ws))
	for _, w := range ws {
		vals = append(vals, &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: w}})
	}
	for _, kv := range span.Attributes {
		if kv.GetKey() != AttrJaegerWarnings {
			continue
		}
		if arr := kv.GetValue().GetArrayValue(); arr != nil {
			arr.Values = append(arr.Values, vals...)
			return
		}
	}
	span.Attributes = append(span.Attributes, &commonpb.KeyValue{
		Key:   AttrJaegerWarnings,
		Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: vals}}},
	})
}

// appendAvailable adds k=v unless v is the field's "not available" value.
func appendAvailable(attrs []*commonpb.KeyValue, k string, v, unavailable uint64) []*commonpb.KeyValue {
	if v == unavailable {
		return attrs
	}
	return append(attrs, intAttr(k, int64(v)))
}

func intAttr(k string, v int64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
}

func strAttr(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func boolAttr(k string, v bool) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: v}}}
}
