package agent

import (
	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// HopData is one node's entry of an IOAM trace, decoded (kernel/ioam6).
type HopData = ioam6.Node

// Observation is one decoded IOAM event: what one packet showed this node.
type Observation struct {
	TraceID     [16]byte
	SpanID      [8]byte
	NamespaceID uint16
	TraceType   uint32 // 24 bits
	Carrier     string
	// ReporterWrote is true when this node's entry is the newest one.
	ReporterWrote bool
	// Overflow is true when hops are missing (the trace had no room left).
	Overflow bool
	// SeenUnixNano is when the agent received the event.
	SeenUnixNano int64
	// Hops are in path order (first node first). The slice and its snapshots
	// alias decoder buffers: valid only during the call that receives it.
	Hops []HopData
}

// nodeKey identifies a hop for the path: the short node id when present, else
// the wide one, else nothing (hop position only).
func nodeKey(h *HopData) uint64 {
	switch {
	case h.Fields&ioam6.BitHopLimitNodeID != 0:
		return uint64(h.NodeID)
	case h.Fields&ioam6.BitWideHopLimitNodeID != 0:
		return h.WideNodeID | 1<<63
	}
	return 0
}

type aggKey struct {
	trace    [16]byte
	span     [8]byte
	ns       uint16
	nhops    uint16
	ttype    uint32
	flags    uint8 // 1 reporter wrote, 2 overflow
	pathHash uint64
}

type hopAgg struct {
	last            HopData
	snapshot        []byte // owned copy of last.Snapshot
	tdMin, tdMax    uint32
	tdSeen          bool
	qdMin, qdMax    uint32
	qdSeen          bool
	firstTS, lastTS int64
	tsSeen          bool
	pathNode        uint64
}

type aggregate struct {
	key     aggKey
	carrier string
	packets uint64
	first   int64
	last    int64
	hops    []hopAgg
	live    bool
}

// Aggregator folds observations into per-(trace, span, path) aggregates. It is
// not safe for concurrent use; the pipeline serialises calls.
type Aggregator struct {
	maxOpen  int
	reporter uint32
	// reporterName is written into every record (the pipeline sets it
	// from node_name).
	reporterName string
	open         map[aggKey]*aggregate
	order        []*aggregate // creation order, for eviction; may hold dead entries
	head         int
	free         []*aggregate
	m            *Metrics
	emit         func([]*collectorv1.IOAMRecord)
	out          []*collectorv1.IOAMRecord
}

// NewAggregator returns an aggregator that hands flushed records to emit.
// reporterNodeID is written into every record.
func NewAggregator(maxOpen int, reporterNodeID uint32, m *Metrics, emit func([]*collectorv1.IOAMRecord)) *Aggregator {
	return &Aggregator{
		maxOpen:  maxOpen,
		reporter: reporterNodeID,
		open:     make(map[aggKey]*aggregate, min(maxOpen, 4096)),
		m:        m,
		emit:     emit,
	}
}

// Open returns the number of open aggregates.
func (a *Aggregator) Open() int { return len(a.open) }

func pathHash(hops []HopData) uint64 {
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
	)
	h := uint64(offset64)
	for i := range hops {
		k := nodeKey(&hops[i])
		for s := 0; s < 64; s += 8 {
			h ^= (k >> s) & 0xff
			h *= prime64
		}
	}
	return h
}

// Add folds one observation in. It may emit evicted records.
func (a *Aggregator) Add(o *Observation) {
	k := aggKey{
		trace: o.TraceID, span: o.SpanID, ns: o.NamespaceID, nhops: uint16(len(o.Hops)),
		ttype: o.TraceType, pathHash: pathHash(o.Hops),
	}
	if o.ReporterWrote {
		k.flags |= 1
	}
	if o.Overflow {
		k.flags |= 2
	}
	ag, ok := a.open[k]
	if ok && !samePath(ag, o.Hops) {
		// Hash collision between two different paths: keep them apart by
		// flushing the older one (rare; counted as an ordinary flush).
		a.remove(ag)
		a.emitOne(ag)
		ok = false
	}
	if !ok {
		if len(a.open) >= a.maxOpen {
			a.evictOldest()
		}
		ag = a.newAggregate(k, o)
		a.open[k] = ag
		a.order = append(a.order, ag)
		a.m.AggregatesOpen.Set(float64(len(a.open)))
	}
	ag.packets++
	if o.SeenUnixNano < ag.first {
		ag.first = o.SeenUnixNano
	}
	if o.SeenUnixNano > ag.last {
		ag.last = o.SeenUnixNano
	}
	for i := range o.Hops {
		ag.hops[i].fold(&o.Hops[i])
	}
}

func samePath(ag *aggregate, hops []HopData) bool {
	if len(ag.hops) != len(hops) {
		return false
	}
	for i := range hops {
		if ag.hops[i].pathNode != nodeKey(&hops[i]) {
			return false
		}
	}
	return true
}

func (a *Aggregator) newAggregate(k aggKey, o *Observation) *aggregate {
	var ag *aggregate
	if n := len(a.free); n > 0 {
		ag = a.free[n-1]
		a.free = a.free[:n-1]
	} else {
		ag = &aggregate{}
	}
	hops := ag.hops[:0]
	for i := range o.Hops {
		hops = append(hops, hopAgg{pathNode: nodeKey(&o.Hops[i])})
	}
	*ag = aggregate{key: k, carrier: o.Carrier, first: o.SeenUnixNano, last: o.SeenUnixNano, hops: hops, live: true}
	return ag
}

func (h *hopAgg) fold(d *HopData) {
	snap := h.snapshot
	h.last = *d
	if d.Fields&ioam6.BitOpaqueStateSnapshot != 0 {
		h.snapshot = append(snap[:0], d.Snapshot.Data...)
	}
	h.last.Snapshot.Data = nil
	if td, ok := ioam6.TransitDelayNs(d.TransitDelay); d.Fields&ioam6.BitTransitDelay != 0 && ok {
		if !h.tdSeen || td < h.tdMin {
			h.tdMin = td
		}
		if !h.tdSeen || td > h.tdMax {
			h.tdMax = td
		}
		h.tdSeen = true
	}
	if d.Fields&ioam6.BitQueueDepth != 0 && ioam6.U32Available(d.QueueDepth) {
		if !h.qdSeen || d.QueueDepth < h.qdMin {
			h.qdMin = d.QueueDepth
		}
		if !h.qdSeen || d.QueueDepth > h.qdMax {
			h.qdMax = d.QueueDepth
		}
		h.qdSeen = true
	}
	if ts, ok := ioam6.TimestampUnixNano(d.Fields, d.TimestampSec, d.TimestampFrac); ok {
		if !h.tsSeen || ts < h.firstTS {
			h.firstTS = ts
		}
		if !h.tsSeen || ts > h.lastTS {
			h.lastTS = ts
		}
		h.tsSeen = true
	}
}

func (a *Aggregator) remove(ag *aggregate) {
	delete(a.open, ag.key)
	ag.live = false
	a.m.AggregatesOpen.Set(float64(len(a.open)))
}

func (a *Aggregator) evictOldest() {
	for a.head < len(a.order) {
		ag := a.order[a.head]
		a.order[a.head] = nil
		a.head++
		if ag.live {
			a.remove(ag)
			a.m.AggregatesEvict.Inc()
			a.emitOne(ag)
			break
		}
	}
	a.compactOrder()
}

func (a *Aggregator) compactOrder() {
	if a.head > 1024 && a.head*2 > len(a.order) {
		n := copy(a.order, a.order[a.head:])
		clear(a.order[n:])
		a.order = a.order[:n]
		a.head = 0
	}
}

func (a *Aggregator) emitOne(ag *aggregate) {
	rec := a.record(ag)
	a.release(ag)
	a.m.RecordsFlushed.Inc()
	a.emit([]*collectorv1.IOAMRecord{rec})
}

func (a *Aggregator) release(ag *aggregate) {
	if len(a.free) < 4096 {
		a.free = append(a.free, ag)
	}
}

// Flush emits every open aggregate (window end, shutdown) in creation order.
func (a *Aggregator) Flush() {
	if len(a.open) == 0 {
		clear(a.order)
		a.order, a.head = a.order[:0], 0
		return
	}
	out := a.out[:0]
	for _, ag := range a.order[a.head:] {
		if ag == nil || !ag.live {
			continue
		}
		ag.live = false
		out = append(out, a.record(ag))
		a.release(ag)
	}
	clear(a.open)
	clear(a.order)
	a.order, a.head = a.order[:0], 0
	a.m.AggregatesOpen.Set(0)
	a.m.RecordsFlushed.Add(float64(len(out)))
	// The emitted slice is handed over; start a fresh one next time.
	a.out = nil
	a.emit(out)
}

// record converts an aggregate into the collector's record.
func (a *Aggregator) record(ag *aggregate) *collectorv1.IOAMRecord {
	rec := &collectorv1.IOAMRecord{
		TraceId:           append([]byte(nil), ag.key.trace[:]...),
		SpanId:            append([]byte(nil), ag.key.span[:]...),
		NamespaceId:       uint32(ag.key.ns),
		TraceType:         ag.key.ttype,
		ReporterNodeId:    a.reporter,
		ReporterNodeName:  a.reporterName,
		ReporterWrote:     ag.key.flags&1 != 0,
		Overflow:          ag.key.flags&2 != 0,
		Packets:           ag.packets,
		FirstSeenUnixNano: uint64(ag.first),
		LastSeenUnixNano:  uint64(ag.last),
		Carrier:           ag.carrier,
		Hops:              make([]*collectorv1.Hop, len(ag.hops)),
	}
	for i := range ag.hops {
		rec.Hops[i] = ag.hops[i].proto()
	}
	return rec
}

func (h *hopAgg) proto() *collectorv1.Hop {
	d := &h.last
	p := &collectorv1.Hop{Fields: uint32(d.Fields)}
	f := d.Fields
	if f&ioam6.BitHopLimitNodeID != 0 {
		p.HopLimit, p.NodeId = uint32(d.HopLimit), d.NodeID
	}
	if f&ioam6.BitIfIDs != 0 {
		p.IngressIf, p.EgressIf = uint32(d.IngressIf), uint32(d.EgressIf)
	}
	if f&ioam6.BitTimestampSec != 0 {
		p.TimestampSec = d.TimestampSec
	}
	if f&ioam6.BitTimestampFrac != 0 {
		p.TimestampFrac = d.TimestampFrac
	}
	if f&ioam6.BitTransitDelay != 0 {
		p.TransitDelay = d.TransitDelay
		p.TransitDelayMin, p.TransitDelayMax = ioam6.U32Unavailable, ioam6.U32Unavailable
		if h.tdSeen {
			p.TransitDelayMin, p.TransitDelayMax = h.tdMin, h.tdMax
		}
	}
	if f&ioam6.BitNamespaceData != 0 {
		p.NamespaceData = d.NamespaceData
	}
	if f&ioam6.BitQueueDepth != 0 {
		p.QueueDepth = d.QueueDepth
		p.QueueDepthMin, p.QueueDepthMax = ioam6.U32Unavailable, ioam6.U32Unavailable
		if h.qdSeen {
			p.QueueDepthMin, p.QueueDepthMax = h.qdMin, h.qdMax
		}
	}
	if f&ioam6.BitChecksumComplement != 0 {
		p.ChecksumComplement = d.ChecksumComplement
	}
	if f&ioam6.BitWideHopLimitNodeID != 0 {
		p.WideNodeId = d.WideNodeID
		if f&ioam6.BitHopLimitNodeID == 0 {
			p.HopLimit = uint32(d.WideHopLimit)
		}
	}
	if f&ioam6.BitWideIfIDs != 0 {
		p.WideIngressIf, p.WideEgressIf = d.WideIngressIf, d.WideEgressIf
	}
	if f&ioam6.BitWideNamespaceData != 0 {
		p.WideNamespaceData = d.WideNamespaceData
	}
	if f&ioam6.BitBufferOccupancy != 0 {
		p.BufferOccupancy = d.BufferOccupancy
	}
	if f&ioam6.BitOpaqueStateSnapshot != 0 {
		p.SnapshotSchemaId = d.Snapshot.SchemaID
		p.SnapshotData = append([]byte(nil), h.snapshot...)
	}
	if h.tsSeen {
		p.FirstTimestampUnixNano, p.LastTimestampUnixNano = uint64(h.firstTS), uint64(h.lastTS)
	}
	for i := range d.Undefined {
		if f&(ioam6.BitUndefined12>>i) != 0 {
			p.UndefinedFields = append(p.UndefinedFields, d.Undefined[i])
		}
	}
	return p
}
