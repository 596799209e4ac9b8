package plugin

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/cross-layer-telemetry/clt/ioamstore"
)

// upQuery is a search checked by clt-storage on traces read from the
// upstream: the predicates that need records, which no backend can answer
// (ioamstore.Query's semantics: ONE span satisfies every predicate).
type upQuery struct {
	q          ioamstore.Query
	attrs      []attrKV // ordinary key=value predicates ("error" included)
	derived    []attrKV // answered by q.Derived from the span's records
	node       *uint64
	ns         *uint16
	anyNode    []uint64
	impossible bool // an ioam.* value that does not parse: nothing matches
}

type attrKV struct{ key, value string }

func compileUpQuery(q ioamstore.Query) (*upQuery, error) {
	if !q.StartMin.IsZero() && !q.StartMax.IsZero() && q.StartMax.Before(q.StartMin) {
		return nil, fmt.Errorf("%w: start time max is before start time min", ioamstore.ErrInvalidQuery)
	}
	if q.DurationMin < 0 || q.DurationMax < 0 || (q.DurationMax > 0 && q.DurationMax < q.DurationMin) {
		return nil, fmt.Errorf("%w: invalid duration bounds", ioamstore.ErrInvalidQuery)
	}
	m := &upQuery{q: q, anyNode: q.AnyNode}
	for k, v := range q.Attributes {
		switch {
		case k == AttrNodeID:
			n, ok := nodeIDValue(v)
			if !ok {
				m.impossible = true
				continue
			}
			m.node = &n
		case k == AttrNamespaceID:
			n, err := strconv.ParseUint(v, 10, 16)
			if err != nil {
				m.impossible = true
				continue
			}
			x := uint16(n)
			m.ns = &x
		case q.Derived != nil && q.Derived.Derives(k):
			m.derived = append(m.derived, attrKV{k, v})
		default:
			m.attrs = append(m.attrs, attrKV{k, v})
		}
	}
	return m, nil
}

// needsRecords says whether the upstream cannot answer the query alone.
func (m *upQuery) needsRecords() bool {
	return m.node != nil || m.ns != nil || len(m.anyNode) > 0 || len(m.derived) > 0
}

// matches reports whether one span of t satisfies every predicate.
func (m *upQuery) matches(t *upTrace) bool {
	bySpan := map[[8]byte][]ioamstore.Record{}
	for _, r := range t.records {
		bySpan[r.SpanID] = append(bySpan[r.SpanID], r)
	}
	for _, rs := range t.spans {
		svc := resourceService(rs.GetResource())
		if m.q.Service != "" && svc != m.q.Service {
			continue
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				id := [8]byte(fitSpanID(sp.GetSpanId()))
				if m.spanMatches(rs.GetResource().GetAttributes(), ss.GetScope().GetAttributes(), sp, id, bySpan[id]) {
					return true
				}
			}
		}
	}
	return false
}

func (m *upQuery) spanMatches(resAttrs, scopeAttrs []*commonpb.KeyValue, sp *tracepb.Span, id [8]byte, recs []ioamstore.Record) bool {
	q := m.q
	if q.Operation != "" && sp.GetName() != q.Operation {
		return false
	}
	start, end := sp.GetStartTimeUnixNano(), sp.GetEndTimeUnixNano()
	if !q.StartMin.IsZero() && time.Unix(0, int64(start)).Before(q.StartMin) {
		return false
	}
	if !q.StartMax.IsZero() && time.Unix(0, int64(start)).After(q.StartMax) {
		return false
	}
	dur := time.Duration(0)
	if end > start {
		dur = time.Duration(end - start)
	}
	if dur < q.DurationMin || (q.DurationMax > 0 && dur > q.DurationMax) {
		return false
	}
	for _, a := range m.attrs {
		if !spanHasAttr(resAttrs, scopeAttrs, sp, a) {
			return false
		}
	}
	if m.needsRecords() && len(recs) == 0 {
		return false
	}
	if m.node != nil && !slices.ContainsFunc(recs, func(r ioamstore.Record) bool { return slices.Contains(r.NodeIDs, *m.node) }) {
		return false
	}
	if m.ns != nil && !slices.ContainsFunc(recs, func(r ioamstore.Record) bool { return r.NamespaceID == *m.ns }) {
		return false
	}
	if len(m.anyNode) > 0 && !slices.ContainsFunc(recs, func(r ioamstore.Record) bool {
		return slices.ContainsFunc(r.NodeIDs, func(n uint64) bool { return slices.Contains(m.anyNode, n) }) &&
			(q.RecordMatch == nil || q.RecordMatch(r.Data))
	}) {
		return false
	}
	if len(m.derived) > 0 {
		got := q.Derived.Attributes(id, recs)
		for _, a := range m.derived {
			if !slices.ContainsFunc(got, func(kv *commonpb.KeyValue) bool {
				return kv.GetKey() == a.key && ioamstore.ValueString(kv.GetValue()) == a.value
			}) {
				return false
			}
		}
	}
	return true
}

// spanHasAttr: "error" is the span's status (or an error attribute);
// other keys are looked up on the span, its scope, its resource and its
// events, compared by string form.
func spanHasAttr(resAttrs, scopeAttrs []*commonpb.KeyValue, sp *tracepb.Span, a attrKV) bool {
	if a.key == "error" && (a.value == "true" || a.value == "false") {
		isErr := sp.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR ||
			slices.ContainsFunc(sp.GetAttributes(), func(kv *commonpb.KeyValue) bool {
				return kv.GetKey() == "error" && ioamstore.ValueString(kv.GetValue()) == "true"
			})
		return isErr == (a.value == "true")
	}
	has := func(kvs []*commonpb.KeyValue) bool {
		return slices.ContainsFunc(kvs, func(kv *commonpb.KeyValue) bool {
			return kv.GetKey() == a.key && ioamstore.ValueString(kv.GetValue()) == a.value
		})
	}
	if has(sp.GetAttributes()) || has(scopeAttrs) || has(resAttrs) {
		return true
	}
	return slices.ContainsFunc(sp.GetEvents(), func(ev *tracepb.Span_Event) bool { return has(ev.GetAttributes()) })
}
