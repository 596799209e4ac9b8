package ioamstore

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/dgraph-io/badger/v4"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/cross-layer-telemetry/clt/internal/otlpwire"
)

const (
	// maxSpansPerChunk splits huge traces so that one value stays well under
	// badger's limits and GetTrace streams in bounded pieces.
	maxSpansPerChunk = 512
	// indexSpread is the widest start-time range one service index entry
	// covers; entries are split on indexSpread boundaries so that a time
	// bounded scan can seek to inv(StartMax + indexSpread).
	indexSpread = uint64(time.Minute)
)

// marshalOpts makes chunk bytes (and so their content hash) stable.
var marshalOpts = proto.MarshalOptions{Deterministic: true}

// marshalChunk is marshalOpts.Marshal of a TracesData holding rss, encoded
// by internal/otlpwire (the same bytes, at a fraction of the CPU) in the
// scratch buffer *enc and copied out at its size; proto.Marshal takes what
// otlpwire leaves to it.
func marshalChunk(rss []*tracepb.ResourceSpans, enc *[]byte) ([]byte, error) {
	if b, ok := otlpwire.AppendTracesData((*enc)[:0], rss); ok {
		*enc = b
		return bytes.Clone(b), nil
	}
	return marshalOpts.Marshal(&tracepb.TracesData{ResourceSpans: rss})
}

// chunkPart accumulates the spans of one trace (one part) for one batch,
// keeping each span under its original resource and scope.
type chunkPart struct {
	rss              []*tracepb.ResourceSpans
	lastRS           *tracepb.ResourceSpans
	lastSS           *tracepb.ScopeSpans
	lastI, lastJ     int
	n                int
	minStart, maxEnd uint64
}

// svcAcc accumulates one service index entry.
type svcAcc struct {
	svcHash               uint64
	minStart, maxStart    uint64
	minDur, maxDur        uint64
	features              []uint64
	lastRes, lastI, lastJ int // resource / scope features already added
}

type traceAcc struct {
	id    [16]byte
	parts []*chunkPart
	svcs  map[svcBucket]*svcAcc
	order []svcBucket // deterministic write order
}

type svcBucket struct {
	service string
	bucket  uint64
}

// WriteSpans stores one Export batch at once (one badger WriteBatch), split by
// trace, and returns the number of spans written. Spans are stored losslessly
// under their resource and scope. Spans whose trace ID is not 16 bytes are
// skipped (not counted). On error part of the batch may have been
// written; retrying the same batch is safe (see the chunk key in the package
// doc), so spans are never duplicated by a retry.
func (s *Store) WriteSpans(ctx context.Context, rs []*tracepb.ResourceSpans) (int, error) {
	if !s.enter() {
		return 0, ErrClosed
	}
	defer s.exit()
	defer s.writing()()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var h hasher
	traces := map[[16]byte]*traceAcc{}
	var order []*traceAcc
	var feats []uint64 // scratch: features of the current span
	written, skipped := 0, 0
	defer func() { s.stats.spansSkipped.Add(uint64(skipped)) }()
	for i, r := range rs {
		service := serviceOf(r.GetResource())
		resFeats := h.attrFeatures(nil, r.GetResource().GetAttributes())
		for j, ss := range r.GetScopeSpans() {
			scopeFeats := h.attrFeatures(nil, ss.GetScope().GetAttributes())
			for _, sp := range ss.GetSpans() {
				if sp == nil || len(sp.TraceId) != traceIDLen {
					skipped++
					continue
				}
				id := [16]byte(sp.TraceId)
				t := traces[id]
				if t == nil {
					t = &traceAcc{id: id, svcs: map[svcBucket]*svcAcc{}}
					traces[id] = t
					order = append(order, t)
				}
				t.add(r, ss, i, j, sp)

				start, end := sp.StartTimeUnixNano, sp.EndTimeUnixNano
				dur := uint64(0)
				if end > start {
					dur = end - start
				}
				key := svcBucket{service, start / indexSpread}
				a := t.svcs[key]
				if a == nil {
					a = &svcAcc{svcHash: serviceHash(service), minStart: start, maxStart: start,
						minDur: dur, maxDur: dur, lastRes: -1, lastI: -1, lastJ: -1}
					t.svcs[key] = a
					t.order = append(t.order, key)
				}
				a.minStart, a.maxStart = min(a.minStart, start), max(a.maxStart, start)
				a.minDur, a.maxDur = min(a.minDur, dur), max(a.maxDur, dur)
				if a.lastRes != i {
					a.features = append(a.features, resFeats...)
					a.lastRes = i
				}
				if a.lastI != i || a.lastJ != j {
					a.features = append(a.features, scopeFeats...)
					a.lastI, a.lastJ = i, j
				}
				feats = spanFeatures(&h, feats[:0], sp)
				a.features = append(a.features, feats...)
				written++
			}
		}
	}
	if written == 0 {
		return 0, nil
	}

	now := time.Now()
	spanExp := uint64(now.Add(s.cfg.SpanTTL).Unix())
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	set := func(k, v []byte) error {
		e := badger.NewEntry(k, v)
		e.ExpiresAt = spanExp
		return wb.SetEntry(e)
	}
	var buf, enc []byte
	var d xxhash.Digest
	for _, t := range order {
		values := make([][]byte, 0, len(t.parts))
		d.Reset()
		for p := 0; p < len(t.parts); p++ {
			part := t.parts[p]
			payload, err := marshalChunk(part.rss, &enc)
			if err != nil {
				return 0, fmt.Errorf("marshal spans: %w", err)
			}
			if s.maxValue > 0 && chunkHeaderLen+len(payload) > s.maxValue {
				// Only the in-memory store has a value limit (badger keeps
				// every value in its LSM tree there): halve the part until
				// it fits; the split is deterministic, so a retry still
				// writes the same keys.
				if part.n == 1 {
					return 0, fmt.Errorf("write spans: a span of trace %x is %d bytes: %w (%d bytes)",
						t.id, len(payload), ErrValueTooLarge, s.maxValue-chunkHeaderLen)
				}
				a, b := part.split()
				t.parts = slices.Replace(t.parts, p, p+1, a, b)
				p--
				continue
			}
			v := chunkHeader{MinStart: part.minStart, MaxEnd: part.maxEnd, Spans: uint32(part.n)}.
				append(make([]byte, 0, chunkHeaderLen+len(payload)))
			values = append(values, append(v, payload...))
			_, _ = d.Write(payload)
		}
		// The chunk sequence is the content hash of the trace's spans in this
		// call: a retried Export rewrites the same keys instead of
		// duplicating spans, while any difference (e.g. a duplicate span id
		// with another start time) gives new keys.
		seq := d.Sum64()
		for p, v := range values {
			if err := set(chunkKey{TraceID: t.id, BatchSeq: seq, Part: uint16(p)}.append(nil), v); err != nil {
				return 0, fmt.Errorf("write spans: %w", err)
			}
		}
		for _, key := range t.order {
			a := t.svcs[key]
			slices.Sort(a.features)
			a.features = slices.Compact(a.features)
			buf = bloomBuild(buf[:0], a.features)
			v := svcIndexValue{Spread: a.maxStart - a.minStart, MinDuration: a.minDur, MaxDuration: a.maxDur, Bloom: buf}.append(nil)
			k := svcIndexKey{ServiceHash: a.svcHash, MaxStart: a.maxStart, TraceID: t.id, BatchSeq: seq}.append(nil)
			if err := set(k, v); err != nil {
				return 0, fmt.Errorf("write span index: %w", err)
			}
		}
	}
	// Names are rewritten every refresh while spans arrive and live
	// SpanTTL+refresh, so they outlive the last span by at most refresh.
	refresh := min(s.cfg.SpanTTL/4, time.Hour)
	nameExp := uint64(now.Add(s.cfg.SpanTTL + refresh).Unix())
	names := s.names.due(now, refresh, rs)
	for _, k := range names {
		e := badger.NewEntry(k, nil)
		e.ExpiresAt = nameExp
		if err := wb.SetEntry(e); err != nil {
			s.names.forget(names)
			return 0, fmt.Errorf("write names: %w", err)
		}
	}
	if err := wb.Flush(); err != nil {
		s.names.forget(names)
		return 0, fmt.Errorf("write spans: %w", err)
	}
	s.stats.spansWritten.Add(uint64(written))
	s.stats.spanBatches.Add(1)
	return written, nil
}

// add appends sp to the trace's current part, opening a new part, resource or
// scope group when needed.
func (t *traceAcc) add(r *tracepb.ResourceSpans, ss *tracepb.ScopeSpans, i, j int, sp *tracepb.Span) {
	var p *chunkPart
	if len(t.parts) > 0 {
		p = t.parts[len(t.parts)-1]
	}
	if p == nil || p.n >= maxSpansPerChunk {
		p = &chunkPart{lastI: -1, lastJ: -1}
		t.parts = append(t.parts, p)
	}
	p.add(r, ss, i, j, sp)
}

// add appends sp, of resource group i and scope group j, to the part.
func (p *chunkPart) add(r *tracepb.ResourceSpans, ss *tracepb.ScopeSpans, i, j int, sp *tracepb.Span) {
	if p.n == 0 {
		p.minStart, p.maxEnd = sp.StartTimeUnixNano, sp.EndTimeUnixNano
	}
	if p.lastI != i {
		p.lastRS = &tracepb.ResourceSpans{Resource: r.Resource, SchemaUrl: r.SchemaUrl}
		p.rss = append(p.rss, p.lastRS)
		p.lastI, p.lastJ = i, -1
	}
	if p.lastJ != j {
		p.lastSS = &tracepb.ScopeSpans{Scope: ss.Scope, SchemaUrl: ss.SchemaUrl}
		p.lastRS.ScopeSpans = append(p.lastRS.ScopeSpans, p.lastSS)
		p.lastJ = j
	}
	p.lastSS.Spans = append(p.lastSS.Spans, sp)
	p.n++
	p.minStart = min(p.minStart, sp.StartTimeUnixNano)
	p.maxEnd = max(p.maxEnd, sp.EndTimeUnixNano)
}

// split returns the part's spans in two parts, the first half and the
// rest, in order and under the same resources and scopes.
func (p *chunkPart) split() (*chunkPart, *chunkPart) {
	a, b := &chunkPart{lastI: -1, lastJ: -1}, &chunkPart{lastI: -1, lastJ: -1}
	k := 0
	for i, r := range p.rss {
		for j, ss := range r.ScopeSpans {
			for _, sp := range ss.Spans {
				dst := a
				if k >= p.n/2 {
					dst = b
				}
				dst.add(r, ss, i, j, sp)
				k++
			}
		}
	}
	return a, b
}

// spanFeatures appends the Bloom features of one span (not its scope or
// resource): its name, attributes, event attributes and error=true for
// status ERROR.
func spanFeatures(h *hasher, dst []uint64, sp *tracepb.Span) []uint64 {
	dst = append(dst, h.op(sp.Name))
	dst = h.attrFeatures(dst, sp.Attributes)
	for _, ev := range sp.Events {
		dst = h.attrFeatures(dst, ev.GetAttributes())
	}
	if sp.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		dst = append(dst, h.attr("error", "true"))
	}
	return dst
}

// GetTrace calls fn for each stored group of the trace's spans, each a
// ResourceSpans holding the original resource, scope(s) and spans (at most
// maxSpansPerChunk spans per chunk, in key order). An unknown trace calls fn
// zero times and returns nil. Every call gets a freshly decoded message that
// fn may keep. An error from fn stops the stream and is returned.
func (s *Store) GetTrace(ctx context.Context, traceID [16]byte, fn func(*tracepb.ResourceSpans) error) error {
	if !s.enter() {
		return ErrClosed
	}
	defer s.exit()
	return s.db.View(func(txn *badger.Txn) error {
		return s.readTrace(ctx, txn, traceID, func(_ chunkHeader, td *tracepb.TracesData) error {
			for _, r := range td.ResourceSpans {
				if err := fn(r); err != nil {
					return err
				}
			}
			return nil
		})
	})
}

// GetTraceChunks calls fn with the TracesData bytes of each stored chunk of
// the trace (the resource_spans fields as WriteSpans marshaled them,
// deterministically), in GetTrace's order, without decoding them: a reader
// can copy untouched spans to the wire as they are. Each call gets its own
// copy, which fn may keep, in a slice from buf (nil: the heap; the reader
// recycles its buffers); one chunk is read at a time, so a trace of any
// size streams in bounded memory. An unknown trace calls fn zero times and
// returns nil; an error from fn stops the stream and is returned as is.
func (s *Store) GetTraceChunks(ctx context.Context, traceID [16]byte, buf Alloc, fn func([]byte) error) error {
	if !s.enter() {
		return ErrClosed
	}
	defer s.exit()
	return s.db.View(func(txn *badger.Txn) error {
		return copyChunks(ctx, txn, traceID, buf, fn)
	})
}

// Alloc returns an empty slice of capacity at least n, which the store
// fills and hands to its caller.
type Alloc func(n int) []byte

// copyChunks is eachChunk handing fn a copy of each payload, outside badger's
// value callback (fn may block on a network send).
func copyChunks(ctx context.Context, txn *badger.Txn, traceID [16]byte, buf Alloc, fn func([]byte) error) error {
	prefix := chunkPrefix(traceID)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
	defer it.Close()
	for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		var dst []byte
		if buf != nil {
			dst = buf(int(it.Item().ValueSize()))
		}
		v, err := it.Item().ValueCopy(dst)
		if err != nil {
			return fmt.Errorf("read trace %x: %w", traceID, err)
		}
		_, payload, err := decodeChunkHeader(v)
		if err != nil {
			return fmt.Errorf("read trace %x: %w", traceID, err)
		}
		if err := fn(payload); err != nil {
			return err
		}
	}
	return nil
}

// readTrace decodes every chunk of a trace in key (write) order.
func (s *Store) readTrace(ctx context.Context, txn *badger.Txn, traceID [16]byte, fn func(chunkHeader, *tracepb.TracesData) error) error {
	return eachChunk(ctx, txn, traceID, func(hdr chunkHeader, payload []byte) error {
		td := &tracepb.TracesData{}
		// proto.Unmarshal copies bytes and strings, so td outlives payload.
		if err := proto.Unmarshal(payload, td); err != nil {
			return fmt.Errorf("read trace %x: %w", traceID, err)
		}
		return fn(hdr, td)
	})
}

// readTraceRaw hands every chunk's TracesData bytes of a trace to fn; the
// bytes are valid only during the call.
func (s *Store) readTraceRaw(ctx context.Context, txn *badger.Txn, traceID [16]byte, fn func([]byte) error) error {
	return eachChunk(ctx, txn, traceID, func(_ chunkHeader, payload []byte) error {
		if err := fn(payload); err != nil {
			return fmt.Errorf("read trace %x: %w", traceID, err)
		}
		return nil
	})
}

// eachChunk iterates over a trace's chunks in key (write) order and hands fn
// each chunk's header and TracesData bytes, valid only during the call. fn's
// error is returned as is; a chunk that cannot be read is wrapped with the
// trace ID.
func eachChunk(ctx context.Context, txn *badger.Txn, traceID [16]byte, fn func(chunkHeader, []byte) error) error {
	prefix := chunkPrefix(traceID)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
	defer it.Close()
	for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		var fnErr error
		err := it.Item().Value(func(v []byte) error {
			hdr, payload, err := decodeChunkHeader(v)
			if err != nil {
				return err
			}
			fnErr = fn(hdr, payload)
			return nil
		})
		if err != nil {
			return fmt.Errorf("read trace %x: %w", traceID, err)
		}
		if fnErr != nil {
			return fnErr
		}
	}
	return nil
}

// GetServices returns the service names with unexpired spans, sorted.
func (s *Store) GetServices(ctx context.Context) ([]string, error) {
	if !s.enter() {
		return nil, ErrClosed
	}
	defer s.exit()
	return s.services()
}

func (s *Store) services() ([]string, error) {
	var out []string
	err := s.db.View(func(txn *badger.Txn) error {
		prefix := []byte{prefixService}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
			name, err := decodeServiceNameKey(it.Item().Key())
			if err != nil {
				return err
			}
			out = append(out, name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get services: %w", err)
	}
	sort.Strings(out)
	return out, nil
}

// GetOperations returns the operations of service, sorted by name then kind;
// spanKind "" means all kinds, otherwise a lowercase kind as in Operation.
// An unknown kind name returns no operations.
func (s *Store) GetOperations(ctx context.Context, service, spanKind string) ([]Operation, error) {
	if !s.enter() {
		return nil, ErrClosed
	}
	defer s.exit()
	var want tracepb.Span_SpanKind
	if spanKind != "" {
		k, ok := spanKindByName(spanKind)
		if !ok {
			return nil, nil
		}
		want = k
	}
	var out []Operation
	err := s.db.View(func(txn *badger.Txn) error {
		prefix := operationPrefix(service)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
			svc, kind, op, err := decodeOperationKey(it.Item().Key())
			if err != nil {
				return err
			}
			if svc != service || (spanKind != "" && tracepb.Span_SpanKind(kind) != want) {
				continue
			}
			out = append(out, Operation{Name: op, SpanKind: spanKindName(tracepb.Span_SpanKind(kind))})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get operations: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].SpanKind < out[j].SpanKind
	})
	return out, nil
}

// nameCache remembers which service/operation keys were written recently, so
// a batch rewrites them only every min(SpanTTL/4, 1h) (keeping them alive as
// long as spans arrive, and letting them expire soon after the spans).
type nameCache struct {
	mu sync.Mutex
	m  map[string]time.Time
}

// maxNameCache bounds the cache; when full it is cleared (names are then
// just rewritten once more).
const maxNameCache = 100000

func (c *nameCache) init() { c.m = map[string]time.Time{} }

func (c *nameCache) reset() {
	c.mu.Lock()
	c.m = map[string]time.Time{}
	c.mu.Unlock()
}

// due returns the name keys of rs that must be (re)written now.
func (c *nameCache) due(now time.Time, refresh time.Duration, rs []*tracepb.ResourceSpans) [][]byte {
	var out [][]byte
	var tmp []byte
	c.mu.Lock()
	defer c.mu.Unlock()
	check := func(k []byte) {
		if t, ok := c.m[string(k)]; ok && now.Sub(t) < refresh {
			return
		}
		if len(c.m) >= maxNameCache {
			c.m = map[string]time.Time{}
		}
		ks := string(k)
		c.m[ks] = now
		out = append(out, []byte(ks))
	}
	for _, r := range rs {
		service := serviceOf(r.GetResource())
		if service == "" || len(service) > maxNameLen {
			continue
		}
		tmp = appendServiceNameKey(tmp[:0], service)
		check(tmp)
		for _, ss := range r.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				if sp == nil || len(sp.Name) > maxNameLen {
					continue
				}
				tmp = appendOperationKey(tmp[:0], service, byte(sp.Kind), sp.Name)
				check(tmp)
			}
		}
	}
	return out
}

// forget drops keys returned by due() whose write failed.
func (c *nameCache) forget(keys [][]byte) {
	c.mu.Lock()
	for _, k := range keys {
		delete(c.m, string(k))
	}
	c.mu.Unlock()
}
