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
	"github.com/cross-layer-telemetry/clt/ioamstore"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// Span attribute keys of the UI naming contract (docs/contracts.md). The
// demo, the e2e and the browser tests import them instead of repeating the
// literals. Units are in the key (_ns, _bytes); ids and flags have none.
const (
	AttrNamespaceID         = ioamstore.AttrNamespaceID
	AttrTraceType           = "ioam.trace_type"
	AttrHopCount            = "ioam.hop_count"
	AttrPath                = "ioam.path"
	AttrPackets             = "ioam.packets"
	AttrReporters           = "ioam.reporters"
	AttrTransitDelayMaxNs   = "ioam.transit_delay_max_ns"
	AttrQueueDepthMaxBytes  = "ioam.queue_depth_max_bytes"
	AttrOverflow            = "ioam.overflow"
	AttrPathChanged         = "ioam.path_changed"
	AttrUnconfirmed         = "ioam.unconfirmed"
	AttrSynthetic           = "ioam.synthetic"
	AttrJaegerWarnings      = "@jaeger@warnings" // Jaeger v2 moves it into the span's warnings
	AttrOTelServiceName     = "service.name"
	networkScopeName        = "clt-storage"
	maxPathWarnings         = 5 // per kind, so a flapping flow cannot bloat a trace
	defaultLabelUnknownNode = "node ?"
	warningSpanNamePrefix   = "ioam ⚠ "
)

// Hop event attribute keys (also on network spans, for the receiving hop).
const (
	AttrHopIndex           = "ioam.hop_index"
	AttrNodeID             = ioamstore.AttrNodeID
	AttrHopLimit           = "ioam.hop_limit"
	AttrIngressIf          = "ioam.ingress_if"
	AttrEgressIf           = "ioam.egress_if"
	AttrTimestamp          = "ioam.timestamp"
	AttrLinkDelayNs        = "ioam.link_delay_ns"
	AttrTransitDelayNs     = "ioam.transit_delay_ns"
	AttrTransitDelayMinNs  = "ioam.transit_delay_min_ns"
	AttrQueueDepthBytes    = "ioam.queue_depth_bytes"
	AttrQueueDepthMinBytes = "ioam.queue_depth_min_bytes"
	AttrNamespaceData      = "ioam.namespace_data"
	AttrChecksumComplement = "ioam.checksum_complement"
	AttrWideNodeID         = "ioam.wide_node_id"
	AttrWideIngressIf      = "ioam.wide_ingress_if"
	AttrWideEgressIf       = "ioam.wide_egress_if"
	AttrWideNamespaceData  = "ioam.wide_namespace_data"
	AttrBufferOccupancy    = "ioam.buffer_occupancy"
	AttrSnapshotSchemaID   = "ioam.snapshot_schema_id"
	AttrSnapshotLenBytes   = "ioam.snapshot_len_bytes"
)

// Warning event and warning span attribute keys, and the values of
// AttrWarning.
const (
	AttrWarning         = "ioam.warning"
	AttrWarningPath     = "ioam.warning_path"
	AttrWarningHopCount = "ioam.warning_hop_count"
	AttrMissingHops     = "ioam.missing_hops"
	AttrReporterNodeID  = "ioam.reporter_node_id"

	WarningOverflow     = "overflow"
	WarningPathChanged  = "path_changed"
	WarningUnconfirmed  = "unconfirmed"
	WarningRecordsLimit = "records_limit"
)

// Names: hop events are named by their one-line summary, which starts with
// EventHopPrefix and the hop index (FormatHopSummary). Warning events are
// named by the warning text.
const (
	EventHopPrefix = "hop "
	// SummarySeparator separates the parts of a hop summary.
	SummarySeparator = " · "
)

// Warning prefixes (docs/contracts.md); tests match on them. Every warning
// starts with "ioam: ".
const (
	WarnOverflow    = "ioam: trace overflowed"
	WarnPathChanged = "ioam: path changed during the span: "
	WarnUnconfirmed = "ioam: report from node "
	WarnClock       = "ioam: clock: "
	// WarnRecordsLimit starts the warning of a span with more records than
	// storage.max_records_per_span (recordlimit.go).
	WarnRecordsLimit = "ioam: records: "
	PathSeparator    = " > "
)

var _ NodeLabeler = (*NodeNames)(nil)

// NodeLabeler names IOAM nodes in hop summaries and network spans; tests
// fake it, clt-storage serves the names of its configuration and of the
// records' reporters.
type NodeLabeler interface {
	// Label returns the node's name, else FallbackNodeLabel(id, wide).
	// *NodeNames implements it.
	Label(id uint64, wide bool) string
}

// FormatNodeID is the one format of a node id everywhere (paths, labels,
// search): a short (24-bit) id in decimal, a wide (56-bit) id in hex.
func FormatNodeID(id uint64, wide bool) string {
	if wide {
		return ioam6.FormatWideID(id)
	}
	return ioam6.FormatNodeID(uint32(id))
}

// FormatDelay is the delay of a hop summary: signed milliseconds with three
// decimals and the unit, e.g. "+50.213 ms".
func FormatDelay(ns int64) string { return fmt.Sprintf("%+.3f ms", float64(ns)/1e6) }

// WarningSpanName is the operation name of the synthetic span that shows a
// warning in the timeline: "ioam ⚠ " and the warning without "ioam: ".
func WarningSpanName(warning string) string {
	return warningSpanNamePrefix + strings.TrimPrefix(warning, "ioam: ")
}

// IsHopEvent reports whether an event (or UI log) name is a hop summary.
func IsHopEvent(name string) bool { return strings.HasPrefix(name, EventHopPrefix) }

// EnrichSpan adds what recs say about span with the default node labels; see
// Enrich.
func EnrichSpan(span *tracepb.Span, recs []*collectorv1.IOAMRecord) { Enrich(span, recs, nil) }

// Enrich adds what recs say about span: the ioam.* span attributes, one hop
// event per hop of the canonical path, one event per warning and
// @jaeger@warnings. recs are the records of this (trace, span); records of
// other spans are ignored. labels names nodes in the hop summaries (nil: the
// default labels). It is a pure function of its inputs and leaves span
// untouched when no record matches.
func Enrich(span *tracepb.Span, recs []*collectorv1.IOAMRecord, labels NodeLabeler) {
	if a := analyzeSpan(span, recs); a != nil {
		a.apply(span, labels)
	}
}

// analyzeSpan joins the records of span; nil when none matches.
func analyzeSpan(span *tracepb.Span, recs []*collectorv1.IOAMRecord) *analysis {
	mine := recs
	for i, r := range recs {
		if !bytes.Equal(r.GetSpanId(), span.GetSpanId()) {
			// Rare: the reader groups by span. Filter only then.
			mine = slices.Clone(recs[:i])
			for _, r := range recs[i+1:] {
				if bytes.Equal(r.GetSpanId(), span.GetSpanId()) {
					mine = append(mine, r)
				}
			}
			break
		}
	}
	if len(mine) == 0 {
		return nil
	}
	return analyze(mine)
}

// nodeRef is a node of a path: a short or wide id, or unknown (the trace
// type carries no node id, or the node wrote the "not available" id).
type nodeRef struct {
	id          uint64
	wide, known bool
}

func (n nodeRef) String() string {
	if !n.known {
		return "?"
	}
	return FormatNodeID(n.id, n.wide)
}

// label is the node's label: its name, else its default label.
func (n nodeRef) label(l NodeLabeler) string {
	if !n.known {
		return defaultLabelUnknownNode
	}
	if l != nil {
		if s := l.Label(n.id, n.wide); s != "" {
			return s
		}
	}
	return FallbackNodeLabel(n.id, n.wide)
}

func formatPath(p []nodeRef) string {
	var b strings.Builder
	for i, n := range p {
		if i > 0 {
			b.WriteString(PathSeparator)
		}
		b.WriteString(n.String())
	}
	return b.String()
}

// pathOf returns the nodes of the record's hops in path order.
func pathOf(r *collectorv1.IOAMRecord) []nodeRef {
	p := make([]nodeRef, 0, len(r.GetHops()))
	for _, h := range r.GetHops() {
		p = append(p, hopNode(h, hopFields(h, r.GetTraceType())))
	}
	return p
}

// hopNode is the hop's node: the short id when present and available, else
// the wide one, else unknown.
func hopNode(h *collectorv1.Hop, f ioam6.TraceType) nodeRef {
	switch {
	case f.Has(ioam6.BitHopLimitNodeID) && ioam6.NodeIDAvailable(h.GetNodeId()):
		return nodeRef{id: uint64(h.GetNodeId()), known: true}
	case f.Has(ioam6.BitWideHopLimitNodeID) && ioam6.WideNodeIDAvailable(h.GetWideNodeId()):
		return nodeRef{id: h.GetWideNodeId(), wide: true, known: true}
	default:
		return nodeRef{}
	}
}

// hopFields is the hop's own field mask, falling back to the record's trace
// type for agents that leave it zero.
func hopFields(h *collectorv1.Hop, traceType uint32) ioam6.TraceType {
	if h.GetFields() != 0 {
		return ioam6.TraceType(h.GetFields()) & ioam6.TraceTypeMask
	}
	return ioam6.TraceType(traceType) & ioam6.TraceTypeMask
}

func isPrefix(p, of []nodeRef) bool {
	return len(p) <= len(of) && slices.Equal(p, of[:len(p)])
}

// pathGroup is every record that saw one path.
type pathGroup struct {
	path      []nodeRef
	key       string
	recs      []*collectorv1.IOAMRecord
	packets   uint64
	firstSeen uint64
	reporters []uint32 // sorted, distinct
}

// analysis is what one span's records say, before it is written onto spans.
type analysis struct {
	namespaceID uint32
	traceType   ioam6.TraceType
	canon       *pathGroup
	hops        []*mergedHop
	packets     uint64 // the most packets one reporter saw
	reporters   int
	overflow    bool
	warnings    []warning
	notJoined   int                    // records of the span a read left out (recordlimit.go)
	hopKVs      [][]*commonpb.KeyValue // hopAttrs, built once per hop
	// arena, when set, is the read's: what the analysis builds comes from
	// it and lives until the read is sent (arena.go).
	arena *readArena
}

// warning is one network event worth a warning, with its data.
type warning struct {
	kind     string
	text     string
	path     []nodeRef // overflow: the entries written; else the other path
	node     nodeRef   // the node it concerns: where the trace filled up, where the path forked, the reporter
	reporter uint32    // unconfirmed: the reporter
	missing  int       // overflow: hops known to be missing (reporters that found the trace full)
	at       uint64    // when, Unix ns (0: unknown)
	// service, when set, is the warning span's service instead of the
	// node's label; notJoined counts a records-limit warning's records.
	service   string
	notJoined int
}

func analyze(recs []*collectorv1.IOAMRecord) *analysis {
	// Group by path; records are already deduplicated by the store.
	var groups []*pathGroup
	byKey := map[string]*pathGroup{}
	var totals []repPackets // reporter -> all its packets of the span
	a := &analysis{}
	for _, r := range recs {
		p := pathOf(r)
		k := formatPath(p)
		g := byKey[k]
		if g == nil {
			g = &pathGroup{path: p, key: k, firstSeen: math.MaxUint64}
			byKey[k] = g
			groups = append(groups, g)
		}
		g.recs = append(g.recs, r)
		g.packets += r.GetPackets()
		g.firstSeen = min(g.firstSeen, r.GetFirstSeenUnixNano())
		if i, ok := slices.BinarySearch(g.reporters, r.GetReporterNodeId()); !ok {
			g.reporters = slices.Insert(g.reporters, i, r.GetReporterNodeId())
		}
		totals = addPackets(totals, r.GetReporterNodeId(), r.GetPackets())
		a.overflow = a.overflow || r.GetOverflow()
	}
	// Canonical path: the longest one; ties go to the most packets, then the
	// earliest seen, then the lexical order, so the result is deterministic.
	a.canon = slices.MaxFunc(groups, func(x, y *pathGroup) int {
		return cmp.Or(
			cmp.Compare(len(x.path), len(y.path)),
			cmp.Compare(x.packets, y.packets),
			cmp.Compare(y.firstSeen, x.firstSeen),
			strings.Compare(y.key, x.key),
		)
	})
	// Reporters on one path see the same packets: the span's count is the
	// most one reporter saw, not their sum.
	for _, t := range totals {
		a.packets = max(a.packets, t.n)
	}
	a.reporters = len(totals)
	ref := a.canon.recs[0]
	a.namespaceID = ref.GetNamespaceId()
	a.traceType = ioam6.TraceType(ref.GetTraceType()) & ioam6.TraceTypeMask
	// The canonical path's hops are merged over every record of that path or
	// of a prefix of it (upstream reporters, reporters of an overflowed trace).
	// A prefix that another path extends too (the path forked after it) is
	// left out: its records hold the packets of both paths, and the other
	// path's timestamps and interfaces are not the canonical path's.
	var chain []*collectorv1.IOAMRecord
	for _, g := range groups {
		if isPrefix(g.path, a.canon.path) && (g == a.canon || !extendedOffChain(g, groups, a.canon.path)) {
			chain = append(chain, g.recs...)
		}
	}
	a.hops = mergeHops(chain, len(a.canon.path))
	a.warnings = a.findWarnings(recs, groups)
	return a
}

// repPackets counts one reporter's packets.
type repPackets struct {
	rep uint32
	n   uint64
}

func addPackets(s []repPackets, rep uint32, n uint64) []repPackets {
	for i := range s {
		if s[i].rep == rep {
			s[i].n += n
			return s
		}
	}
	return append(s, repPackets{rep, n})
}

// findWarnings derives one warning per network event a network engineer
// must not miss: an overflowed trace, a path that changed, a report no
// other node confirmed.
func (a *analysis) findWarnings(recs []*collectorv1.IOAMRecord, groups []*pathGroup) []warning {
	var out []warning
	if w, ok := a.overflowWarning(recs); ok {
		out = append(out, w)
	}

	// Reporters of the canonical path and of its prefixes.
	var chainReps []uint32
	for _, g := range groups {
		if isPrefix(g.path, a.canon.path) {
			chainReps = append(chainReps, g.reporters...)
		}
	}
	ordered := slices.Clone(groups)
	slices.SortStableFunc(ordered, func(x, y *pathGroup) int {
		return cmp.Or(cmp.Compare(x.firstSeen, y.firstSeen), strings.Compare(x.key, y.key))
	})
	changes, unconfirmed := 0, 0
	for _, g := range ordered {
		if isPrefix(g.path, a.canon.path) || extendedOffChain(g, ordered, a.canon.path) {
			continue // on the canonical path, or covered by the longer path that extends it
		}
		// The other path's family: g and the off-chain prefixes of g.
		var reps []uint32
		for _, h := range ordered {
			if isPrefix(h.path, g.path) && !isPrefix(h.path, a.canon.path) {
				reps = append(reps, h.reporters...)
			}
		}
		slices.Sort(reps)
		reps = slices.Compact(reps)
		confirmed := len(reps) >= 2
		for _, r := range reps {
			confirmed = confirmed || slices.Contains(chainReps, r)
		}
		if confirmed {
			if changes++; changes > maxPathWarnings {
				continue
			}
			first, then := a.canon, g
			if g.firstSeen < a.canon.firstSeen {
				first, then = g, a.canon
			}
			out = append(out, warning{kind: WarningPathChanged, path: g.path, node: forkNode(g.path, a.canon.path),
				at: g.firstSeen, text: WarnPathChanged + first.key + " then " + then.key})
			continue
		}
		if unconfirmed++; unconfirmed > maxPathWarnings {
			continue
		}
		rep := reps[0]
		out = append(out, warning{kind: WarningUnconfirmed, path: g.path, node: nodeRef{id: uint64(rep), known: true}, reporter: rep,
			at: g.firstSeen, text: fmt.Sprintf("%s%d not confirmed downstream (path %s)", WarnUnconfirmed, rep, g.key)})
	}
	for i := range out {
		if out[i].at == math.MaxUint64 {
			out[i].at = 0
		}
	}
	return out
}

// extendedOffChain reports whether another path off the canonical one
// extends g (then that longer path stands for g).
func extendedOffChain(g *pathGroup, groups []*pathGroup, canon []nodeRef) bool {
	for _, h := range groups {
		if len(h.path) > len(g.path) && isPrefix(g.path, h.path) && !isPrefix(h.path, canon) {
			return true
		}
	}
	return false
}

// forkNode is the first node of p that differs from the canonical path.
func forkNode(p, canon []nodeRef) nodeRef {
	for i, n := range p {
		if i >= len(canon) || n != canon[i] {
			return n
		}
	}
	return nodeRef{}
}

// overflowWarning names what an overflow left out: which nodes wrote, after
// which node the trace was full, and how many hops downstream of it are
// known to be missing (reporters that found the trace already full,
// reporter_wrote=false; other nodes without an agent are not known).
func (a *analysis) overflowWarning(recs []*collectorv1.IOAMRecord) (warning, bool) {
	var written []nodeRef
	var full []uint32
	overflowed := false
	for _, r := range recs {
		if !r.GetOverflow() {
			continue
		}
		overflowed = true
		if !r.GetReporterWrote() && !slices.Contains(full, r.GetReporterNodeId()) {
			full = append(full, r.GetReporterNodeId())
		}
		if p := pathOf(r); len(p) > len(written) || (len(p) == len(written) && formatPath(p) < formatPath(written)) {
			written = p
		}
	}
	if !overflowed {
		return warning{}, false
	}
	slices.Sort(full)
	w := warning{kind: WarningOverflow, path: written, missing: len(full)}
	var b strings.Builder
	b.WriteString(WarnOverflow)
	if len(written) == 0 {
		b.WriteString(" before any node wrote an entry: ")
	} else {
		w.node = written[len(written)-1]
		if len(a.hops) >= len(written) {
			w.at = a.hops[len(written)-1].firstTS
		}
		fmt.Fprintf(&b, " after node %s (entries written by %s): ", w.node, formatPath(written))
	}
	if len(full) > 0 {
		ids := make([]string, len(full))
		for i, id := range full {
			ids[i] = strconv.FormatUint(uint64(id), 10)
		}
		fmt.Fprintf(&b, "at least %d hop(s) not recorded", len(full))
		if len(written) > 0 {
			fmt.Fprintf(&b, " downstream of node %s", w.node)
		}
		fmt.Fprintf(&b, " (node(s) %s found the trace full)", strings.Join(ids, ", "))
	} else {
		b.WriteString("hops not recorded")
		if len(written) > 0 {
			fmt.Fprintf(&b, " downstream of node %s", w.node)
		}
		b.WriteString(" (how many is unknown: no reporter found the trace full)")
	}
	w.text = b.String()
	return w, true
}

// mergedHop is one hop of the canonical path merged over the records that
// saw it: the plain fields come from the most recent record, the min/max and
// first-timestamp fields summarise all of them, and packets is what the hop
// forwarded (the most packets one reporter saw crossing it).
type mergedHop struct {
	node    nodeRef
	h       *collectorv1.Hop
	fields  ioam6.TraceType
	packets uint64
	perRep  []repPackets
	tdMin   uint32
	tdMax   uint32
	tdSeen  bool
	qdMin   uint32
	qdMax   uint32
	qdSeen  bool
	firstTS uint64 // Unix ns, 0 = none
}

func mergeHops(recs []*collectorv1.IOAMRecord, n int) []*mergedHop {
	// Most recent record last, so its plain fields win.
	sorted := slices.Clone(recs)
	slices.SortStableFunc(sorted, func(a, b *collectorv1.IOAMRecord) int {
		return cmp.Compare(a.GetLastSeenUnixNano(), b.GetLastSeenUnixNano())
	})
	out := make([]*mergedHop, n)
	for i := range out {
		out[i] = &mergedHop{}
	}
	for _, r := range sorted {
		for i, h := range r.GetHops() {
			if i >= n {
				break
			}
			m := out[i]
			f := hopFields(h, r.GetTraceType())
			m.h, m.fields, m.node = h, f, hopNode(h, f)
			m.perRep = addPackets(m.perRep, r.GetReporterNodeId(), r.GetPackets())
			if f.Has(ioam6.BitTransitDelay) {
				lo, hi := h.GetTransitDelayMin(), h.GetTransitDelayMax()
				if lo == 0 && hi == 0 {
					lo, hi = h.GetTransitDelay(), h.GetTransitDelay()
				}
				_, okLo := ioam6.TransitDelayNs(lo)
				if _, okHi := ioam6.TransitDelayNs(hi); okLo && okHi {
					if !m.tdSeen {
						m.tdMin, m.tdMax, m.tdSeen = lo, hi, true
					}
					m.tdMin, m.tdMax = min(m.tdMin, lo), max(m.tdMax, hi)
				}
			}
			if f.Has(ioam6.BitQueueDepth) && ioam6.U32Available(h.GetQueueDepth()) {
				lo, hi := h.GetQueueDepthMin(), h.GetQueueDepthMax()
				if (lo == 0 && hi == 0) || !ioam6.U32Available(lo) || !ioam6.U32Available(hi) {
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
	for _, m := range out {
		for _, p := range m.perRep {
			m.packets = max(m.packets, p.n)
		}
	}
	return out
}

// hopTimestamp is the hop's first IOAM timestamp in Unix ns, or 0 when the
// trace type carries none or it is not available.
func hopTimestamp(h *collectorv1.Hop, f ioam6.TraceType) uint64 {
	if !f.Has(ioam6.BitTimestampSec) {
		return 0
	}
	if ts := h.GetFirstTimestampUnixNano(); ts != 0 {
		return ts
	}
	ts, ok := ioam6.TimestampUnixNano(f, h.GetTimestampSec(), h.GetTimestampFrac())
	if !ok || ts <= 0 {
		return 0
	}
	return uint64(ts)
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

// linkDelay is the time from the previous hop's first timestamp to this
// hop's (ok false without both). Negative means unsynchronised clocks.
func (a *analysis) linkDelay(i int) (int64, bool) {
	if i <= 0 || i >= len(a.hops) || a.hops[i].firstTS == 0 || a.hops[i-1].firstTS == 0 {
		return 0, false
	}
	return int64(a.hops[i].firstTS - a.hops[i-1].firstTS), true
}

// spanAttrs are the attributes the span gets (also the searchable tags).
func (a *analysis) spanAttrs() []*commonpb.KeyValue {
	p := a.arena
	attrs := []*commonpb.KeyValue{
		p.intAttr(AttrNamespaceID, int64(a.namespaceID)),
		p.strAttr(AttrTraceType, a.traceType.String()),
		p.intAttr(AttrHopCount, int64(len(a.canon.path))),
		p.strAttr(AttrPath, a.canon.key),
		p.intAttr(AttrPackets, int64(a.packets)),
		p.intAttr(AttrReporters, int64(a.reporters)),
	}
	if a.traceType.Has(ioam6.BitTransitDelay) {
		if m, ok := maxOverHops(a.hops, (*mergedHop).transitMax); ok {
			attrs = append(attrs, p.intAttr(AttrTransitDelayMaxNs, int64(m)))
		}
	}
	if a.traceType.Has(ioam6.BitQueueDepth) {
		if m, ok := maxOverHops(a.hops, (*mergedHop).queueMax); ok {
			attrs = append(attrs, p.intAttr(AttrQueueDepthMaxBytes, int64(m)))
		}
	}
	if a.overflow {
		attrs = append(attrs, p.boolAttr(AttrOverflow, true))
	}
	kinds := map[string]bool{}
	for _, w := range a.warnings {
		kinds[w.kind] = true
	}
	if kinds[WarningPathChanged] {
		attrs = append(attrs, p.boolAttr(AttrPathChanged, true))
	}
	if kinds[WarningUnconfirmed] {
		attrs = append(attrs, p.boolAttr(AttrUnconfirmed, true))
	}
	if a.notJoined > 0 {
		attrs = append(attrs, p.intAttr(AttrRecordsNotJoined, int64(a.notJoined)))
	}
	return attrs
}

// apply writes the analysis onto span.
func (a *analysis) apply(span *tracepb.Span, labels NodeLabeler) {
	span.Attributes = append(span.Attributes, a.spanAttrs()...)
	start := span.GetStartTimeUnixNano()
	for i, m := range a.hops {
		ts := start
		if m.firstTS != 0 {
			ts = m.firstTS
		}
		span.Events = append(span.Events, a.arena.event(ts, a.hopSummary(i, labels), a.hopAttrs(i)))
	}
	if len(a.warnings) == 0 {
		return
	}
	texts := make([]string, 0, len(a.warnings))
	for _, w := range a.warnings {
		ts := start
		if w.at != 0 {
			ts = w.at
		}
		span.Events = append(span.Events, a.arena.event(ts, w.text, w.attrs(a.arena)))
		texts = append(texts, w.text)
	}
	addWarnings(span, texts)
}

// attrs is the warning's data, on its event and its warning span.
func (w *warning) attrs(p *readArena) []*commonpb.KeyValue {
	attrs := []*commonpb.KeyValue{
		p.strAttr(AttrWarning, w.kind),
		p.strAttr(AttrWarningPath, formatPath(w.path)),
		p.intAttr(AttrWarningHopCount, int64(len(w.path))),
	}
	switch w.kind {
	case WarningOverflow:
		if w.missing > 0 {
			attrs = append(attrs, p.intAttr(AttrMissingHops, int64(w.missing)))
		}
	case WarningUnconfirmed:
		attrs = append(attrs, p.intAttr(AttrReporterNodeID, int64(w.reporter)))
	case WarningRecordsLimit:
		attrs = append(attrs, p.intAttr(AttrRecordsNotJoined, int64(w.notJoined)))
	}
	return attrs
}

// hopSummary is the hop event's name, the line the UI shows collapsed:
// "hop 2 · aramis (node 3) · if 21 → 22 · +50.213 ms". Parts without data
// are left out.
func (a *analysis) hopSummary(i int, labels NodeLabeler) string {
	m := a.hops[i]
	var b strings.Builder
	b.WriteString(EventHopPrefix)
	b.WriteString(strconv.Itoa(i))
	b.WriteString(SummarySeparator)
	lbl := m.node.label(labels)
	b.WriteString(lbl)
	if def := FallbackNodeLabel(m.node.id, m.node.wide); m.node.known && lbl != def {
		b.WriteString(" (" + def + ")")
	}
	if in, eg, ok := m.interfaces(); ok {
		b.WriteString(SummarySeparator + "if " + in + networkSpanArrow + eg)
	}
	if d, ok := a.linkDelay(i); ok {
		b.WriteString(SummarySeparator + FormatDelay(d))
	}
	return b.String()
}

// interfaces are the hop's ingress and egress interface ids as shown ("–"
// when one is not available); ok false when the hop carries none.
func (m *mergedHop) interfaces() (in, eg string, ok bool) {
	h, f := m.h, m.fields
	show := func(v uint64, avail bool, wide bool) string {
		if !avail {
			return "–"
		}
		if wide {
			return ioam6.FormatWideID(v)
		}
		return strconv.FormatUint(v, 10)
	}
	switch {
	case f.Has(ioam6.BitIfIDs) && (ioam6.IfIDAvailable(uint16(h.GetIngressIf())) || ioam6.IfIDAvailable(uint16(h.GetEgressIf()))):
		return show(uint64(h.GetIngressIf()), ioam6.IfIDAvailable(uint16(h.GetIngressIf())), false),
			show(uint64(h.GetEgressIf()), ioam6.IfIDAvailable(uint16(h.GetEgressIf())), false), true
	case f.Has(ioam6.BitWideIfIDs) && (ioam6.WideIfIDAvailable(h.GetWideIngressIf()) || ioam6.WideIfIDAvailable(h.GetWideEgressIf())):
		return show(uint64(h.GetWideIngressIf()), ioam6.WideIfIDAvailable(h.GetWideIngressIf()), true),
			show(uint64(h.GetWideEgressIf()), ioam6.WideIfIDAvailable(h.GetWideEgressIf()), true), true
	}
	return "", "", false
}

// hopAttrs are hop i's fields, each in its one format, "not available"
// values left out. The hop event and the network span share them (callers
// must not modify the result).
func (a *analysis) hopAttrs(i int) []*commonpb.KeyValue {
	if a.hopKVs == nil {
		a.hopKVs = make([][]*commonpb.KeyValue, len(a.hops))
	}
	if a.hopKVs[i] == nil {
		a.hopKVs[i] = a.buildHopAttrs(i)
	}
	return a.hopKVs[i]
}

func (a *analysis) buildHopAttrs(i int) []*commonpb.KeyValue {
	m := a.hops[i]
	h, f := m.h, m.fields
	p := a.arena
	attrs := make([]*commonpb.KeyValue, 0, 12)
	attrs = append(attrs, p.intAttr(AttrHopIndex, int64(i)))
	if f.Has(ioam6.BitHopLimitNodeID) {
		if ioam6.NodeIDAvailable(h.GetNodeId()) {
			attrs = append(attrs, p.intAttr(AttrNodeID, int64(h.GetNodeId())))
		}
		attrs = append(attrs, p.intAttr(AttrHopLimit, int64(h.GetHopLimit())))
	}
	if f.Has(ioam6.BitIfIDs) {
		if ioam6.IfIDAvailable(uint16(h.GetIngressIf())) {
			attrs = append(attrs, p.intAttr(AttrIngressIf, int64(h.GetIngressIf())))
		}
		if ioam6.IfIDAvailable(uint16(h.GetEgressIf())) {
			attrs = append(attrs, p.intAttr(AttrEgressIf, int64(h.GetEgressIf())))
		}
	}
	if m.firstTS != 0 {
		attrs = append(attrs, p.strAttr(AttrTimestamp, time.Unix(0, int64(m.firstTS)).UTC().Format(time.RFC3339Nano)))
	}
	if d, ok := a.linkDelay(i); ok {
		attrs = append(attrs, p.intAttr(AttrLinkDelayNs, d))
	}
	if f.Has(ioam6.BitTransitDelay) && m.tdSeen {
		if td, ok := ioam6.TransitDelayNs(h.GetTransitDelay()); ok {
			attrs = append(attrs, p.intAttr(AttrTransitDelayNs, int64(td)))
		}
		attrs = append(attrs, p.intAttr(AttrTransitDelayMinNs, int64(m.tdMin)), p.intAttr(AttrTransitDelayMaxNs, int64(m.tdMax)))
	}
	if f.Has(ioam6.BitNamespaceData) && ioam6.U32Available(h.GetNamespaceData()) {
		attrs = append(attrs, p.strAttr(AttrNamespaceData, formatData32(h.GetNamespaceData())))
	}
	if f.Has(ioam6.BitQueueDepth) && m.qdSeen {
		attrs = append(attrs,
			p.intAttr(AttrQueueDepthBytes, int64(h.GetQueueDepth())),
			p.intAttr(AttrQueueDepthMinBytes, int64(m.qdMin)),
			p.intAttr(AttrQueueDepthMaxBytes, int64(m.qdMax)))
	}
	if f.Has(ioam6.BitChecksumComplement) && ioam6.U32Available(h.GetChecksumComplement()) {
		attrs = append(attrs, p.strAttr(AttrChecksumComplement, formatData32(h.GetChecksumComplement())))
	}
	if f.Has(ioam6.BitWideHopLimitNodeID) {
		if ioam6.WideNodeIDAvailable(h.GetWideNodeId()) {
			attrs = append(attrs, p.strAttr(AttrWideNodeID, ioam6.FormatWideID(h.GetWideNodeId())))
		}
		if !f.Has(ioam6.BitHopLimitNodeID) {
			attrs = append(attrs, p.intAttr(AttrHopLimit, int64(h.GetHopLimit())))
		}
	}
	if f.Has(ioam6.BitWideIfIDs) {
		if ioam6.WideIfIDAvailable(h.GetWideIngressIf()) {
			attrs = append(attrs, p.strAttr(AttrWideIngressIf, ioam6.FormatWideID(uint64(h.GetWideIngressIf()))))
		}
		if ioam6.WideIfIDAvailable(h.GetWideEgressIf()) {
			attrs = append(attrs, p.strAttr(AttrWideEgressIf, ioam6.FormatWideID(uint64(h.GetWideEgressIf()))))
		}
	}
	if f.Has(ioam6.BitWideNamespaceData) && ioam6.U64Available(h.GetWideNamespaceData()) {
		attrs = append(attrs, p.strAttr(AttrWideNamespaceData, formatData64(h.GetWideNamespaceData())))
	}
	if f.Has(ioam6.BitBufferOccupancy) && ioam6.U32Available(h.GetBufferOccupancy()) {
		attrs = append(attrs, p.intAttr(AttrBufferOccupancy, int64(h.GetBufferOccupancy())))
	}
	if f.Has(ioam6.BitOpaqueStateSnapshot) && ioam6.SnapshotAvailable(h.GetSnapshotSchemaId(), (len(h.GetSnapshotData())+3)/4) {
		attrs = append(attrs, p.strAttr(AttrSnapshotSchemaID, ioam6.FormatSchemaID(h.GetSnapshotSchemaId())),
			p.intAttr(AttrSnapshotLenBytes, int64(len(h.GetSnapshotData()))))
	}
	attrs = append(attrs, p.intAttr(AttrPackets, int64(m.packets)))
	return attrs
}

// formatData32 and formatData64 are the one format of opaque data fields
// (namespace data, checksum complement): hex of the field's full width, as
// `ip ioam namespace` shows them.
func formatData32(v uint32) string { return fmt.Sprintf("0x%08x", v) }
func formatData64(v uint64) string { return fmt.Sprintf("0x%016x", v) }

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

// The attribute constructors allocate the key-value, its AnyValue and the
// oneof wrapper together: enrichment builds thousands per trace read.
type (
	intAlloc struct {
		kv commonpb.KeyValue
		v  commonpb.AnyValue
		w  commonpb.AnyValue_IntValue
	}
	strAlloc struct {
		kv commonpb.KeyValue
		v  commonpb.AnyValue
		w  commonpb.AnyValue_StringValue
	}
	boolAlloc struct {
		kv commonpb.KeyValue
		v  commonpb.AnyValue
		w  commonpb.AnyValue_BoolValue
	}
)

func (x *intAlloc) set(k string, v int64) *commonpb.KeyValue {
	x.w.IntValue, x.v.Value, x.kv.Key, x.kv.Value = v, &x.w, k, &x.v
	return &x.kv
}

func (x *strAlloc) set(k, v string) *commonpb.KeyValue {
	x.w.StringValue, x.v.Value, x.kv.Key, x.kv.Value = v, &x.w, k, &x.v
	return &x.kv
}

func (x *boolAlloc) set(k string, v bool) *commonpb.KeyValue {
	x.w.BoolValue, x.v.Value, x.kv.Key, x.kv.Value = v, &x.w, k, &x.v
	return &x.kv
}

func intAttr(k string, v int64) *commonpb.KeyValue { return new(intAlloc).set(k, v) }
func strAttr(k, v string) *commonpb.KeyValue       { return new(strAlloc).set(k, v) }
func boolAttr(k string, v bool) *commonpb.KeyValue { return new(boolAlloc).set(k, v) }
