package agent

import (
	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// Trace-type bits (RFC 9197 §4.4.1: bit 0 is the most significant of 24).
const (
	bitHopLimNodeID  = 1 << 23 // bit 0
	bitIfIDs         = 1 << 22 // bit 1
	bitTimestampSec  = 1 << 21 // bit 2
	bitTimestampFrac = 1 << 20 // bit 3
	bitTransitDelay  = 1 << 19 // bit 4
	bitNSData        = 1 << 18 // bit 5
	bitQueueDepth    = 1 << 17 // bit 6
	bitChecksum      = 1 << 16 // bit 7
	bitWideNodeID    = 1 << 15 // bit 8
	bitWideIfIDs     = 1 << 14 // bit 9
	bitWideNSData    = 1 << 13 // bit 10
	bitBufferOcc     = 1 << 12 // bit 11
	bitUndefined12   = 1 << 11 // bit 12; bits 13-21 follow downwards
	undefinedBits    = 0x000FFC
	bitSnapshot      = 1 << 1 // bit 22

	// unavailable is what a node writes into a field it cannot fill (RFC 9197 §4.4.2).
	unavailable = 0xFFFFFFFF
	// transitOverflow is the transit-delay overflow bit (RFC 9197 §4.4.2.5).
	transitOverflow = 1 << 31
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
	case h.Fields&bitHopLimNodeID != 0:
		return uint64(h.NodeID)
	case h.Fields&bitWideNodeID != 0:
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
	open     map[aggKey]*aggregate
	order    []*aggregate // creation order, for eviction; may hold dead entries
	head     int
	free     []*aggregate
	m        *Metrics
	emit     func([]*collectorv1.IOAMRecord)
	out      []*collectorv1.IOAMRecord
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
	if d.Fields&bitSnapshot != 0 {
		h.snapshot = append(snap[:0], d.Snapshot.Data...)
	}
	h.last.Snapshot.Data = nil
	if d.Fields&bitTransitDelay != 0 && d.TransitDelay != unavailable && d.TransitDelay&transitOverflow == 0 {
		if !h.tdSeen || d.TransitDelay < h.tdMin {
			h.tdMin = d.TransitDelay
		}
		if !h.tdSeen || d.TransitDelay > h.tdMax {
			h.tdMax = d.TransitDelay
		}
		h.tdSeen = true
	}
	if d.Fields&bitQueueDepth != 0 && d.QueueDepth != unavailable {
		if !h.qdSeen || d.QueueDepth < h.qdMin {
			h.qdMin = d.QueueDepth
		}
		if !h.qdSeen || d.QueueDepth > h.qdMax {
			h.qdMax = d.QueueDepth
		}
		h.qdSeen = true
	}
	if d.Fields&(bitTimestampSec|bitTimestampFrac) == bitTimestampSec|bitTimestampFrac {
		// Linux writes microseconds in the fraction field (docs/wire-format.md §4).
		ts := int64(d.TimestampSec)*1e9 + int64(d.TimestampFrac)*1e3
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
	if f&bitHopLimNodeID != 0 {
		p.HopLimit, p.NodeId = uint32(d.HopLimit), d.NodeID
	}
	if f&bitIfIDs != 0 {
		p.IngressIf, p.EgressIf = uint32(d.IngressIf), uint32(d.EgressIf)
	}
	if f&bitTimestampSec != 0 {
		p.TimestampSec = d.TimestampSec
	}
	if f&bitTimestampFrac != 0 {
		p.TimestampFrac = d.TimestampFrac
	}
	if f&bitTransitDelay != 0 {
		p.TransitDelay = d.TransitDelay
		p.TransitDelayMin, p.TransitDelayMax = unavailable, unavailable
		if h.tdSeen {
			p.TransitDelayMin, p.TransitDelayMax = h.tdMin, h.tdMax
		}
	}
	if f&bitNSData != 0 {
		p.NamespaceData = d.NamespaceData
	}
	if f&bitQueueDepth != 0 {
		p.QueueDepth = d.QueueDepth
		p.QueueDepthMin, p.QueueDepthMax = unavailable, unavailable
		if h.qdSeen {
			p.QueueDepthMin, p.QueueDepthMax = h.qdMin, h.qdMax
		}
	}
	if f&bitChecksum != 0 {
		p.ChecksumComplement = d.ChecksumComplement
	}
	if f&bitWideNodeID != 0 {
		p.WideNodeId = d.WideNodeID
		if f&bitHopLimNodeID == 0 {
			p.HopLimit = uint32(d.WideHopLimit)
		}
	}
	if f&bitWideIfIDs != 0 {
		p.WideIngressIf, p.WideEgressIf = d.WideIngressIf, d.WideEgressIf
	}
	if f&bitWideNSData != 0 {
		p.WideNamespaceData = d.WideNamespaceData
	}
	if f&bitBufferOcc != 0 {
		p.BufferOccupancy = d.BufferOccupancy
	}
	if f&bitSnapshot != 0 {
		p.SnapshotSchemaId = d.Snapshot.SchemaID
		p.SnapshotData = append([]byte(nil), h.snapshot...)
	}
	if h.tsSeen {
		p.FirstTimestampUnixNano, p.LastTimestampUnixNano = uint64(h.firstTS), uint64(h.lastTS)
	}
	if u := f & undefinedBits; u != 0 {
		for i := range d.Undefined {
			if u&(bitUndefined12>>i) != 0 {
				p.UndefinedFields = append(p.UndefinedFields, d.Undefined[i])
			}
		}
	}
	return p
}
