package ioamstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/dgraph-io/badger/v4"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// Search keys answered from the IOAM record index (a span matches when one
// of its records has that node / namespace). Enrichment shows the same keys
// on hops and spans: one home for both.
const (
	AttrNodeID      = "ioam.node_id"
	AttrNamespaceID = "ioam.namespace_id"
)

// Special query attribute keys.
const (
	attrError       = "error"
	attrIOAMNode    = AttrNodeID
	attrIOAMNS      = AttrNamespaceID
	errorTrue       = "true"
	errorFalse      = "false"
	unboundedTimeNs = ^uint64(0)
)

// compiledQuery is a Query prepared for matching.
type compiledQuery struct {
	q                  Query
	startMin, startMax uint64 // ns, inclusive; startMax = unboundedTimeNs if unbounded
	durMin, durMax     uint64 // ns; durMax = 0 means unbounded
	features           []uint64
	attrs              []attrPred // ordinary key=value predicates
	errPred            string     // "", "true" or "false"
	node               *uint64    // ioam.node_id predicate (short or wide id)
	anyNode            []uint64   // Query.AnyNode
	ns                 *uint32    // ioam.namespace_id predicate
	ioamImpossible     bool       // an ioam value does not parse: nothing matches
	derived            []attrPred // predicates answered by q.Derived
}

type attrPred struct{ key, value string }

// timeNs is t as Unix nanoseconds, clamped to what a span time can hold:
// t.UnixNano is undefined outside 1678–2262, so a bound like year 1 or 9999
// (what a UI sends for "any time") used to match nothing.
func timeNs(t time.Time) uint64 {
	switch {
	case t.IsZero() || !t.After(unixEpoch):
		return 0
	case !t.Before(maxSpanTime):
		return math.MaxInt64
	}
	return uint64(t.UnixNano())
}

var (
	unixEpoch   = time.Unix(0, 0)
	maxSpanTime = time.Unix(0, math.MaxInt64)
)

func compileQuery(q Query) (*compiledQuery, error) {
	var errs []error
	if q.SearchDepth <= 0 {
		errs = append(errs, fmt.Errorf("search depth must be > 0, got %d", q.SearchDepth))
	}
	if !q.StartMin.IsZero() && !q.StartMax.IsZero() && q.StartMax.Before(q.StartMin) {
		errs = append(errs, errors.New("start time max is before start time min"))
	}
	if q.DurationMin < 0 || q.DurationMax < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	if q.DurationMax > 0 && q.DurationMax < q.DurationMin {
		errs = append(errs, errors.New("duration max is below duration min"))
	}
	_, hasNode := q.Attributes[attrIOAMNode]
	_, hasNS := q.Attributes[attrIOAMNS]
	if q.Service == "" && !hasNode && !hasNS && len(q.AnyNode) == 0 {
		errs = append(errs, errors.New("service name must be set (or ioam.node_id / ioam.namespace_id)"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidQuery, err)
	}
	c := &compiledQuery{q: q, startMin: timeNs(q.StartMin), startMax: unboundedTimeNs,
		durMin: uint64(q.DurationMin), durMax: uint64(q.DurationMax), anyNode: q.AnyNode}
	if !q.StartMax.IsZero() {
		c.startMax = timeNs(q.StartMax)
	}
	var h hasher
	if q.Operation != "" {
		c.features = append(c.features, h.op(q.Operation))
	}
	for k, v := range q.Attributes {
		switch {
		case k == attrError && (v == errorTrue || v == errorFalse):
			c.errPred = v
			if v == errorTrue {
				c.features = append(c.features, h.attr(attrError, errorTrue))
			}
		case k == attrIOAMNode:
			// As shown (short ids decimal, wide ids 0x hex) or decimal.
			n, err := ioam6.ParseNodeID(v)
			if err != nil {
				c.ioamImpossible = true
				continue
			}
			c.node = &n
		case k == attrIOAMNS:
			n, err := strconv.ParseUint(v, 10, 16)
			if err != nil {
				c.ioamImpossible = true
				continue
			}
			x := uint32(n)
			c.ns = &x
		case q.Derived != nil && q.Derived.Derives(k):
			c.derived = append(c.derived, attrPred{k, v})
		default:
			c.attrs = append(c.attrs, attrPred{k, v})
			c.features = append(c.features, h.attr(k, v))
		}
	}
	return c, nil
}

// FindTraceIDs returns the traces matching q, at most q.SearchDepth, newest
// first: ordered by the latest start time of the service's spans in the
// stored batch that first revealed the trace (for ioam.* searches: by the
// newest record's received time). It returns an error wrapping
// ErrInvalidQuery when q.SearchDepth <= 0, when neither Service nor an ioam.*
// attribute is given, or when a bound is inverted.
//
// Searches with a service walk the service index newest first and stop after
// SearchDepth matches; each candidate trace is loaded and checked exactly.
// Searches with ioam.node_id or ioam.namespace_id walk the IOAM record index
// instead, so they find spans through their records whether the records were
// written before or after the spans.
func (s *Store) FindTraceIDs(ctx context.Context, q Query) ([]FoundTrace, error) {
	var out []FoundTrace
	err := s.find(ctx, q, loadNone, func(m TraceMatch) error {
		out = append(out, m.FoundTrace)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// FindTraces is FindTraceIDs handing over each matching trace as it is found,
// with the spans the search already decoded to verify it (the whole trace,
// as GetTrace streams it) and its IOAM records (as GetRecords returns them),
// read in the same snapshot. Same matches, order, SearchDepth and errors as
// FindTraceIDs; each trace is handed over at most once.
//
// fn runs inside the store's read transaction: it must not call methods of
// the Store (Close waits for fn, so a nested call can deadlock with a
// concurrent Close). fn may keep and modify the TraceMatch. An error from fn
// stops the search and is returned as is.
func (s *Store) FindTraces(ctx context.Context, q Query, fn func(TraceMatch) error) error {
	return s.find(ctx, q, loadSpans, fn)
}

// FindTraceChunks is FindTraces handing over each matching trace's stored
// chunks (TraceMatch.Chunks) instead of its decoded spans, so that a trace of
// any size is streamed one chunk at a time, never held whole; the search
// itself decodes a candidate's chunks only until one span matches.
func (s *Store) FindTraceChunks(ctx context.Context, q Query, fn func(TraceMatch) error) error {
	return s.find(ctx, q, loadChunks, fn)
}

// loadMode says what find hands over with each match.
type loadMode int

const (
	loadNone   loadMode = iota // ids and times (FindTraceIDs)
	loadSpans                  // + decoded spans and records (FindTraces)
	loadChunks                 // + a chunk iterator and records (FindTraceChunks)
)

// fnError marks an error returned by a FindTraces callback, so that find
// returns it unwrapped.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// find is the search loop of FindTraceIDs and FindTraces: it hands fn each
// matching trace in discovery order, at most q.SearchDepth of them. With
// load, matches carry their spans (or chunks) and records.
func (s *Store) find(ctx context.Context, q Query, load loadMode, fn func(TraceMatch) error) error {
	if !s.enter() {
		return ErrClosed
	}
	defer s.exit()
	if err := s.acquireSearch(ctx); err != nil {
		return err
	}
	defer s.releaseSearch()
	c, err := compileQuery(q)
	if err != nil {
		return err
	}
	if c.ioamImpossible {
		return nil
	}
	found, derived := 0, 0
	seen := map[[16]byte]struct{}{}
	check := func(txn *badger.Txn, id [16]byte) (bool, error) {
		if _, ok := seen[id]; ok {
			return false, nil
		}
		seen[id] = struct{}{}
		if len(c.derived) > 0 {
			if derived++; q.DerivedBudget > 0 && derived > q.DerivedBudget {
				s.stats.derivedCut.Add(1)
				return true, nil
			}
		}
		s.stats.candidates.Add(1)
		m, ok, err := s.matchTrace(ctx, txn, c, id, load == loadSpans)
		if err != nil || !ok {
			return false, err
		}
		if load != loadNone && m.Records == nil {
			if m.Records, err = s.readRecords(ctx, txn, id); err != nil {
				return false, err
			}
		}
		if load == loadChunks {
			m.Chunks = func(buf Alloc, fn func([]byte) error) error { return copyChunks(ctx, txn, id, buf, fn) }
		}
		if err := fn(m); err != nil {
			return false, fnError{err}
		}
		found++
		return found >= q.SearchDepth, nil
	}
	err = s.db.View(func(txn *badger.Txn) error {
		if c.node != nil || c.ns != nil {
			return s.scanRecordIndex(ctx, txn, c, check)
		}
		if len(c.anyNode) > 0 {
			// One scan per node, each newest first.
			for _, id := range c.anyNode {
				done := false
				err := s.scanIndexPrefix(ctx, txn, recordIndexPrefix(nodeIndexKind(id), id), func(txn *badger.Txn, tid [16]byte) (bool, error) {
					d, err := check(txn, tid)
					done = d
					return d, err
				})
				if err != nil || done {
					return err
				}
			}
			return nil
		}
		return s.scanServiceIndex(ctx, txn, c, check)
	})
	if fe := (fnError{}); errors.As(err, &fe) {
		return fe.err
	}
	if err != nil {
		return fmt.Errorf("find traces: %w", err)
	}
	return nil
}

// scanServiceIndex walks the service's index entries newest first, prunes
// them by time, duration and Bloom filter, and hands candidate traces to
// check until it reports done.
func (s *Store) scanServiceIndex(ctx context.Context, txn *badger.Txn, c *compiledQuery,
	check func(*badger.Txn, [16]byte) (bool, error)) error {
	sh := serviceHash(c.q.Service)
	prefix := svcIndexPrefix(sh)
	seek := prefix
	if c.startMax != unboundedTimeNs && c.startMax < unboundedTimeNs-indexSpread {
		seek = svcIndexSeek(sh, c.startMax+indexSpread)
	}
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
	defer it.Close()
	n := 0
	for it.Seek(seek); it.ValidForPrefix(prefix); it.Next() {
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		s.stats.indexEntries.Add(1)
		item := it.Item()
		k, err := decodeSvcIndexKey(item.Key())
		if err != nil {
			return err
		}
		if k.MaxStart < c.startMin {
			return nil // every further entry is older
		}
		var pass bool
		err = item.Value(func(v []byte) error {
			iv, err := decodeSvcIndexValue(v)
			if err != nil {
				pass = true // cannot prune: let the exact check decide
				return nil
			}
			pass = c.entryMayMatch(k, iv)
			return nil
		})
		if err != nil {
			return err
		}
		if !pass {
			continue
		}
		if len(c.derived) > 0 && !hasRecords(txn, k.TraceID) {
			continue // only enrichment answers derived predicates: it needs records
		}
		done, err := check(txn, k.TraceID)
		if err != nil || done {
			return err
		}
	}
	return nil
}

// entryMayMatch prunes one index entry; false means no span it summarises
// can match.
func (c *compiledQuery) entryMayMatch(k svcIndexKey, v svcIndexValue) bool {
	minStart := k.MaxStart - min(v.Spread, k.MaxStart)
	if minStart > c.startMax || k.MaxStart < c.startMin {
		return false
	}
	if v.MaxDuration < c.durMin || (c.durMax > 0 && v.MinDuration > c.durMax) {
		return false
	}
	return bloomHasAll(v.Bloom, c.features)
}

func bloomHasAll(bloom []byte, features []uint64) bool {
	for _, f := range features {
		if !bloomHas(bloom, f) {
			return false
		}
	}
	return true
}

// hasRecords reports whether the trace has IOAM records.
func hasRecords(txn *badger.Txn, traceID [16]byte) bool {
	prefix := recordPrefix(traceID)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false, PrefetchSize: 1})
	defer it.Close()
	it.Seek(prefix)
	return it.ValidForPrefix(prefix)
}

// scanRecordIndex walks the ioam.node_id (or namespace) index newest first.
func (s *Store) scanRecordIndex(ctx context.Context, txn *badger.Txn, c *compiledQuery,
	check func(*badger.Txn, [16]byte) (bool, error)) error {
	var prefix []byte
	if c.node != nil {
		prefix = recordIndexPrefix(nodeIndexKind(*c.node), *c.node)
	} else {
		prefix = recordIndexPrefix(recIndexNamespace, uint64(*c.ns))
	}
	return s.scanIndexPrefix(ctx, txn, prefix, check)
}

// scanIndexPrefix walks one record index prefix newest first, handing each
// trace (once per run of entries) to check until it reports done.
func (s *Store) scanIndexPrefix(ctx context.Context, txn *badger.Txn, prefix []byte,
	check func(*badger.Txn, [16]byte) (bool, error)) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
	defer it.Close()
	n := 0
	var last [16]byte
	for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		s.stats.indexEntries.Add(1)
		k, err := decodeRecordIndexKey(it.Item().Key())
		if err != nil {
			return err
		}
		if n > 1 && k.TraceID == last {
			continue
		}
		last = k.TraceID
		done, err := check(txn, k.TraceID)
		if err != nil || done {
			return err
		}
	}
	return nil
}

// spanRecords holds, per span ID, the node ids and namespaces of its records.
type spanRecords map[[8]byte]*struct {
	nodes []uint64
	ns    []uint16
	recs  []recordValue // each record, with Data only for Query.RecordMatch
}

func (s *Store) loadSpanRecords(txn *badger.Txn, traceID [16]byte, withData bool) (spanRecords, error) {
	out := spanRecords{}
	prefix := recordPrefix(traceID)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
	defer it.Close()
	limit := s.cfg.MaxRecordsPerSpan
	for it.Seek(prefix); it.ValidForPrefix(prefix); {
		item := it.Item()
		k, err := decodeRecordKey(item.Key())
		if err != nil {
			return nil, err
		}
		if e := out[k.SpanID]; e != nil && limit > 0 && len(e.recs) >= limit {
			// Searches see the records reads join (GetRecords), no more.
			skipSpanRecords(it, traceID, k.SpanID, false)
			continue
		}
		err = item.Value(func(v []byte) error {
			rv, err := decodeRecordValue(v, withData)
			if err != nil {
				return err
			}
			e := out[k.SpanID]
			if e == nil {
				e = &struct {
					nodes []uint64
					ns    []uint16
					recs  []recordValue
				}{}
				out[k.SpanID] = e
			}
			e.nodes = append(e.nodes, rv.NodeIDs...)
			e.ns = append(e.ns, rv.NamespaceID)
			e.recs = append(e.recs, rv)
			return nil
		})
		if err != nil {
			return nil, err
		}
		it.Next()
	}
	return out, nil
}

// matchTrace loads a trace and reports whether one span satisfies every
// predicate, with the trace's overall start and end; with keep, the match
// also holds every decoded span of the trace (all chunks, key order).
func (s *Store) matchTrace(ctx context.Context, txn *badger.Txn, c *compiledQuery, id [16]byte, keep bool) (TraceMatch, bool, error) {
	m := TraceMatch{FoundTrace: FoundTrace{TraceID: id}}
	var recs spanRecords
	if c.node != nil || c.ns != nil || len(c.anyNode) > 0 {
		var err error
		if recs, err = s.loadSpanRecords(txn, id, c.q.RecordMatch != nil); err != nil {
			return m, false, err
		}
	}
	var derived map[[8]byte]bool // spans whose enrichment satisfies the derived predicates
	if len(c.derived) > 0 {
		all, err := s.readRecords(ctx, txn, id)
		if err != nil {
			return m, false, err
		}
		if derived = c.deriveSpans(all); len(derived) == 0 {
			return TraceMatch{}, false, nil // decided from the records: the trace is not read
		}
		if keep {
			m.Records = all
		}
	}
	var minStart, maxEnd uint64
	first, matched := true, false
	err := eachChunk(ctx, txn, id, func(h chunkHeader, payload []byte) error {
		if first || h.MinStart < minStart {
			minStart = h.MinStart
		}
		if first || h.MaxEnd > maxEnd {
			maxEnd = h.MaxEnd
		}
		first = false
		if matched && !keep {
			return nil // keep reading headers for Start/End, not decoding
		}
		td := &tracepb.TracesData{}
		// proto.Unmarshal copies bytes and strings, so td outlives payload.
		if err := proto.Unmarshal(payload, td); err != nil {
			return fmt.Errorf("read trace %x: %w", id, err)
		}
		if keep {
			m.Spans = append(m.Spans, td.ResourceSpans...)
		}
		if matched {
			return nil // keep reading for Start/End (and the spans)
		}
		for _, r := range td.ResourceSpans {
			if c.q.Service != "" && serviceOf(r.GetResource()) != c.q.Service {
				continue
			}
			for _, ss := range r.ScopeSpans {
				for _, sp := range ss.Spans {
					if c.spanMatches(r, ss, sp, recs, derived) {
						matched = true
						return nil
					}
				}
			}
		}
		return nil
	})
	if err != nil || !matched {
		return TraceMatch{}, false, err
	}
	m.Start = time.Unix(0, int64(minStart)).UTC()
	m.End = time.Unix(0, int64(maxEnd)).UTC()
	return m, true, nil
}

// spanMatches is the exact per-span check (Jaeger storage v2 semantics).
func (c *compiledQuery) spanMatches(r *tracepb.ResourceSpans, ss *tracepb.ScopeSpans, sp *tracepb.Span, recs spanRecords, derived map[[8]byte]bool) bool {
	if c.q.Operation != "" && sp.Name != c.q.Operation {
		return false
	}
	start := sp.StartTimeUnixNano
	if start < c.startMin || start > c.startMax {
		return false
	}
	dur := uint64(0)
	if sp.EndTimeUnixNano > start {
		dur = sp.EndTimeUnixNano - start
	}
	if dur < c.durMin || (c.durMax > 0 && dur > c.durMax) {
		return false
	}
	isErr := sp.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR
	switch c.errPred {
	case errorTrue:
		if !isErr && !hasAttr(r, ss, sp, attrError, errorTrue) {
			return false
		}
	case errorFalse:
		if isErr {
			return false
		}
	}
	for _, p := range c.attrs {
		if !hasAttr(r, ss, sp, p.key, p.value) {
			return false
		}
	}
	if c.node != nil && !c.spanHasNode(r, ss, sp, recs) {
		return false
	}
	if c.ns != nil && !c.spanHasNS(r, ss, sp, recs) {
		return false
	}
	if len(c.anyNode) > 0 && !c.spanHasAnyNode(sp, recs) {
		return false
	}
	return len(c.derived) == 0 || derived[[8]byte(spanIDOrNoMatch(sp.SpanId))]
}

// deriveSpans returns the spans whose read-time attributes (q.Derived, from
// their records alone) satisfy every derived predicate.
func (c *compiledQuery) deriveSpans(all []Record) map[[8]byte]bool {
	bySpan := map[[8]byte][]Record{}
	var order [][8]byte
	for _, r := range all {
		if _, ok := bySpan[r.SpanID]; !ok {
			order = append(order, r.SpanID)
		}
		bySpan[r.SpanID] = append(bySpan[r.SpanID], r)
	}
	out := map[[8]byte]bool{}
	for _, id := range order {
		attrs := c.q.Derived.Attributes(id, bySpan[id])
		ok := true
		for _, p := range c.derived {
			if !attrIn(attrs, p.key, p.value) {
				ok = false
				break
			}
		}
		if ok {
			out[id] = true
		}
	}
	return out
}

// spanHasAnyNode: one record of the span has one of the nodes (and passes
// RecordMatch).
func (c *compiledQuery) spanHasAnyNode(sp *tracepb.Span, recs spanRecords) bool {
	if len(sp.SpanId) != spanIDLen {
		return false // a malformed span id has no records
	}
	e := recs[[8]byte(sp.SpanId)]
	if e == nil {
		return false
	}
	for _, rv := range e.recs {
		for _, n := range rv.NodeIDs {
			if slices.Contains(c.anyNode, n) && (c.q.RecordMatch == nil || c.q.RecordMatch(rv.Data)) {
				return true
			}
		}
	}
	return false
}

func (c *compiledQuery) spanHasNode(r *tracepb.ResourceSpans, ss *tracepb.ScopeSpans, sp *tracepb.Span, recs spanRecords) bool {
	if e := recs[[8]byte(spanIDOrNoMatch(sp.SpanId))]; e != nil {
		for _, n := range e.nodes {
			if n == *c.node {
				return true
			}
		}
	}
	// A span attribute (e.g. one an application set) matches in either form.
	return hasAttr(r, ss, sp, attrIOAMNode, strconv.FormatUint(*c.node, 10)) ||
		hasAttr(r, ss, sp, attrIOAMNode, ioam6.FormatWideID(*c.node))
}

func (c *compiledQuery) spanHasNS(r *tracepb.ResourceSpans, ss *tracepb.ScopeSpans, sp *tracepb.Span, recs spanRecords) bool {
	if e := recs[[8]byte(spanIDOrNoMatch(sp.SpanId))]; e != nil {
		for _, n := range e.ns {
			if uint32(n) == *c.ns {
				return true
			}
		}
	}
	return hasAttr(r, ss, sp, attrIOAMNS, strconv.FormatUint(uint64(*c.ns), 10))
}

// spanIDOrNoMatch returns b when it is an 8-byte span id, else all ones: a
// malformed id matches no record but those of span ffffffffffffffff.
func spanIDOrNoMatch(b []byte) []byte {
	if len(b) == spanIDLen {
		return b
	}
	return bytes.Repeat([]byte{0xff}, spanIDLen)
}

// hasAttr looks for key=value (string form) on the span, its events, its
// scope and its resource.
func hasAttr(r *tracepb.ResourceSpans, ss *tracepb.ScopeSpans, sp *tracepb.Span, key, value string) bool {
	if attrIn(sp.Attributes, key, value) ||
		attrIn(ss.GetScope().GetAttributes(), key, value) ||
		attrIn(r.GetResource().GetAttributes(), key, value) {
		return true
	}
	for _, ev := range sp.Events {
		if attrIn(ev.GetAttributes(), key, value) {
			return true
		}
	}
	return false
}

func attrIn(attrs []*commonpb.KeyValue, key, value string) bool {
	for _, kv := range attrs {
		if kv.GetKey() == key && ValueString(kv.GetValue()) == value {
			return true
		}
	}
	return false
}
