package plugin

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/ioamstore"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// Routers as services: the nodes IOAM records mention are listed beside the
// services that have spans, with the operations of the network spans that
// enrichment adds at read time (one per link of a span's path, service = the
// node that received the packet), searchable, and drawn between the
// services they connect in the dependency graph. docs/contracts.md ("UI
// naming contract", "Collector and compat rules") states the rules.

// Network span names: "ioam <label of hop i> → <label of hop i+1>".
const (
	networkSpanPrefix = "ioam "
	networkSpanArrow  = " → "
)

// maxRouterRecords bounds the records read to list a router's operations.
const maxRouterRecords = 1000

// NetworkSpanName is the operation name of the network span for the link
// from → to (node labels, see NodeNames.Label). Enrichment names its spans
// with it, and GetOperations lists the same names.
func NetworkSpanName(from, to string) string {
	return networkSpanPrefix + from + networkSpanArrow + to
}

// parseNetworkSpanName splits a NetworkSpanName into its two labels.
func parseNetworkSpanName(op string) (from, to string, ok bool) {
	rest, ok := strings.CutPrefix(op, networkSpanPrefix)
	if !ok {
		return "", "", false
	}
	return strings.Cut(rest, networkSpanArrow)
}

// HopNodeKey is the node a hop names: its short id when the hop carries one
// (bit 0, available), else its wide id (bit 8, available). ok is false for a
// hop that names no node.
func HopNodeKey(h *collectorv1.Hop, traceType uint32) (NodeKey, bool) {
	f := ioam6.TraceType(h.GetFields())
	if f == 0 {
		f = ioam6.TraceType(traceType)
	}
	switch {
	case f&ioam6.BitHopLimitNodeID != 0 && ioam6.NodeIDAvailable(h.GetNodeId()):
		return NodeKey{ID: uint64(h.GetNodeId())}, true
	case f&ioam6.BitWideHopLimitNodeID != 0 && ioam6.WideNodeIDAvailable(h.GetWideNodeId()):
		return NodeKey{ID: h.GetWideNodeId(), Wide: true}, true
	}
	return NodeKey{}, false
}

// recordPath is the nodes of a record's hops in path order; nil when a hop
// names no node (such a path has no links to draw).
func recordPath(r *collectorv1.IOAMRecord) []NodeKey {
	out := make([]NodeKey, 0, len(r.GetHops()))
	for _, h := range r.GetHops() {
		k, ok := HopNodeKey(h, r.GetTraceType())
		if !ok {
			return nil
		}
		out = append(out, k)
	}
	return out
}

// mainPath is the path the dependency graph draws for a span: enrichment's
// canonical path (the longest; ties: the most packets over its records, the
// earliest seen, the lexical order).
func mainPath(recs []*collectorv1.IOAMRecord) []NodeKey {
	type group struct {
		path      []NodeKey
		key       string
		packets   uint64
		firstSeen uint64
	}
	var groups []*group
	byKey := map[string]*group{}
	for _, r := range recs {
		p := recordPath(r)
		if len(p) < 2 {
			continue
		}
		k := fmt.Sprint(p)
		g := byKey[k]
		if g == nil {
			g = &group{path: p, key: k, firstSeen: r.GetFirstSeenUnixNano()}
			byKey[k] = g
			groups = append(groups, g)
		}
		g.packets += r.GetPackets()
		g.firstSeen = min(g.firstSeen, r.GetFirstSeenUnixNano())
	}
	if len(groups) == 0 {
		return nil
	}
	return slices.MaxFunc(groups, func(x, y *group) int {
		return cmp.Or(
			cmp.Compare(len(x.path), len(y.path)),
			cmp.Compare(x.packets, y.packets),
			cmp.Compare(y.firstSeen, x.firstSeen),
			strings.Compare(y.key, x.key),
		)
	}).path
}

func decodeRecordData(data [][]byte) []*collectorv1.IOAMRecord {
	out := make([]*collectorv1.IOAMRecord, 0, len(data))
	for _, d := range data {
		r := &collectorv1.IOAMRecord{}
		if proto.Unmarshal(d, r) == nil {
			out = append(out, r)
		}
	}
	return out
}

// routerServices adds the labels of the nodes records mention to the stored
// services, sorted, each once.
func (r *reader) routerServices(svcs []string) []string {
	known := r.names.Receivers()
	if len(known) == 0 {
		return svcs
	}
	out := slices.Clone(svcs)
	for _, k := range known {
		out = append(out, r.names.Label(k.ID, k.Wide))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// routerOperations are the network span names whose receiving node is
// labelled service, from the newest records through it.
func (r *reader) routerOperations(ctx context.Context, service string) ([]ioamstore.Operation, error) {
	keys := r.names.Lookup(service)
	if len(keys) == 0 {
		return nil, nil
	}
	ids := make([]uint64, 0, len(keys))
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	stored, err := r.store.NodeRecords(ctx, ids, maxRouterRecords)
	if err != nil {
		return nil, err
	}
	data := make([][]byte, 0, len(stored))
	for _, s := range stored {
		data = append(data, s.Data)
	}
	var names []string
	for _, rec := range decodeRecordData(data) {
		p := recordPath(rec)
		for i := 1; i < len(p); i++ {
			if slices.Contains(keys, p[i]) {
				names = append(names, NetworkSpanName(r.names.Label(p[i-1].ID, p[i-1].Wide), r.names.Label(p[i].ID, p[i].Wide)))
			}
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	out := make([]ioamstore.Operation, 0, len(names))
	for _, n := range names {
		out = append(out, ioamstore.Operation{Name: n, SpanKind: spanKindInternal})
	}
	return out, nil
}

// spanKindInternal is the kind of network spans (lowercase, as the store
// names kinds).
const spanKindInternal = "internal"

// routerQuery turns a search for a router service into a search for the
// spans whose records include that node: when the service has no spans of
// its own (and the operation, if any, is a network span name), or when the
// operation is a network span name (network spans are made at read time and
// never stored, so only their records can be searched; the record must
// then have that link into the node). The other predicates (tags, times,
// durations) apply to the span that has the records.
func (r *reader) routerQuery(ctx context.Context, q ioamstore.Query) (ioamstore.Query, error) {
	if q.Service == "" {
		return q, nil
	}
	from, to, network := parseNetworkSpanName(q.Operation)
	if !network {
		if q.Operation != "" {
			return q, nil // routers have only network operations
		}
		svcs, err := r.store.GetServices(ctx)
		if err != nil {
			return q, err
		}
		if slices.Contains(svcs, q.Service) {
			return q, nil
		}
	}
	keys := r.names.Lookup(q.Service)
	if len(keys) == 0 {
		return q, nil
	}
	q.Service, q.Operation = "", ""
	for _, k := range keys {
		q.AnyNode = append(q.AnyNode, k.ID)
	}
	if network {
		names := r.names
		q.RecordMatch = func(data []byte) bool {
			rec := &collectorv1.IOAMRecord{}
			if proto.Unmarshal(data, rec) != nil {
				return false
			}
			p := recordPath(rec)
			for i := 1; i < len(p); i++ {
				if slices.Contains(keys, p[i]) && names.Label(p[i].ID, p[i].Wide) == to && names.Label(p[i-1].ID, p[i-1].Wide) == from {
					return true
				}
			}
			return false
		}
	}
	return q, nil
}

// routerDependencies redraws the calls of spans with records through the
// network: caller → label(hop 1) → … → label(hop n) → callee, instead of the
// direct caller → callee edge (hop 0 is the sender's own entry; each link's
// network span belongs to the node that received it).
func (r *reader) routerDependencies(deps []ioamstore.Dependency, spans []ioamstore.RecordedSpan) []ioamstore.Dependency {
	type edge struct{ parent, child string }
	counts := map[edge]uint64{}
	for _, d := range deps {
		counts[edge{d.Parent, d.Child}] += d.CallCount
	}
	add := func(from, to string) {
		if from != to {
			counts[edge{from, to}]++
		}
	}
	for _, rs := range spans {
		path := mainPath(decodeRecordData(rs.Records))
		if len(path) < 2 {
			continue
		}
		chain := []string{rs.Service}
		for _, k := range path[1:] {
			chain = append(chain, r.names.Label(k.ID, k.Wide))
		}
		draw := func(last string) {
			for i := 1; i < len(chain); i++ {
				add(chain[i-1], chain[i])
			}
			if last != "" {
				add(chain[len(chain)-1], last)
			}
		}
		if len(rs.Children) == 0 {
			draw("")
			continue
		}
		for _, c := range rs.Children {
			if e := (edge{rs.Service, c}); counts[e] > 0 {
				counts[e]-- // this call is drawn through the network
			}
			draw(c)
		}
	}
	out := make([]ioamstore.Dependency, 0, len(counts))
	for e, n := range counts {
		if n > 0 {
			out = append(out, ioamstore.Dependency{Parent: e.parent, Child: e.child, CallCount: n})
		}
	}
	slices.SortFunc(out, func(a, b ioamstore.Dependency) int {
		if c := strings.Compare(a.Parent, b.Parent); c != 0 {
			return c
		}
		return strings.Compare(a.Child, b.Child)
	})
	return out
}
