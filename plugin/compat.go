package plugin

import (
	"encoding/binary"
	"time"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/api/compat/ioamapi"
	"github.com/cross-layer-telemetry/clt/api/compat/ioamtrace"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// The original CLT agents report one IOAM trace per call, seen at the sink:
// the nodes are the whole path, first hop first. They map to a collector
// record with one packet whose reporter is the last node of the path.

// Presence bits of the research demo's BitField (ioam_trace), which is not
// the IOAM trace type: one bit per node field, from the top of the word.
const (
	demoHopLimit      = 1 << 31
	demoNodeID        = 1 << 30
	demoIngressID     = 1 << 29
	demoEgressID      = 1 << 28
	demoTimestamp     = 1 << 27
	demoTimestampSub  = 1 << 26
	demoTransitDelay  = 1 << 25
	demoQueueDepth    = 1 << 24
	demoBufferOcc     = 1 << 23
	demoNamespaceData = 1 << 22
	demoOpaqueState   = 1 << 21
)

func ids(high, low, span uint64) (traceID, spanID []byte) {
	traceID = make([]byte, 16)
	binary.BigEndian.PutUint64(traceID[:8], high)
	binary.BigEndian.PutUint64(traceID[8:], low)
	spanID = binary.BigEndian.AppendUint64(nil, span)
	return traceID, spanID
}

// sinkRecord fills the fields every compat report shares.
func sinkRecord(traceID, spanID []byte, ns uint32, traceType uint32, hops []*collectorv1.Hop, now time.Time) *collectorv1.IOAMRecord {
	r := &collectorv1.IOAMRecord{
		TraceId:           traceID,
		SpanId:            spanID,
		NamespaceId:       ns,
		TraceType:         traceType,
		ReporterWrote:     true,
		Packets:           1,
		FirstSeenUnixNano: uint64(now.UnixNano()),
		LastSeenUnixNano:  uint64(now.UnixNano()),
		Hops:              hops,
		Carrier:           "clt-v1",
	}
	if n := len(hops); n > 0 {
		last := hops[n-1]
		if ioam6.TraceType(last.GetFields()).Has(ioam6.BitWideHopLimitNodeID) && !ioam6.TraceType(last.GetFields()).Has(ioam6.BitHopLimitNodeID) {
			r.ReporterNodeId = uint32(min(last.GetWideNodeId(), maxNodeID))
		} else {
			r.ReporterNodeId = last.GetNodeId()
		}
	}
	return r
}

// FromIOAMTrace maps a report of the research demo's agent
// (ioam_trace.IOAMService/Report) to a collector record. The received time
// stands in for first/last seen, which the demo API does not carry.
func FromIOAMTrace(t *ioamtrace.IOAMTrace, now time.Time) *collectorv1.IOAMRecord {
	bf := t.GetBitField()
	var traceType uint32
	hops := make([]*collectorv1.Hop, 0, len(t.GetNodes()))
	for _, n := range t.GetNodes() {
		h := &collectorv1.Hop{}
		if bf&(demoHopLimit|demoNodeID) != 0 {
			h.HopLimit = n.GetHopLimit()
			if _, wide := n.GetNode().(*ioamtrace.IOAMNode_WideId); wide {
				h.Fields |= uint32(ioam6.BitWideHopLimitNodeID)
				h.WideNodeId = n.GetWideId()
			} else {
				h.Fields |= uint32(ioam6.BitHopLimitNodeID)
				h.NodeId = n.GetId()
			}
		}
		if bf&(demoIngressID|demoEgressID) != 0 {
			// The demo cannot tell short from wide interface ids; values
			// above 16 bits can only be wide.
			if n.GetIngressId() > maxIfID || n.GetEgressId() > maxIfID {
				h.Fields |= uint32(ioam6.BitWideIfIDs)
				h.WideIngressIf, h.WideEgressIf = n.GetIngressId(), n.GetEgressId()
			} else {
				h.Fields |= uint32(ioam6.BitIfIDs)
				h.IngressIf, h.EgressIf = n.GetIngressId(), n.GetEgressId()
			}
		}
		if bf&demoTimestamp != 0 {
			h.Fields |= uint32(ioam6.BitTimestampSec)
			h.TimestampSec = n.GetTimestamp()
		}
		if bf&demoTimestampSub != 0 {
			h.Fields |= uint32(ioam6.BitTimestampFrac)
			h.TimestampFrac = n.GetTimestampSub()
		}
		if bf&demoTransitDelay != 0 {
			h.Fields |= uint32(ioam6.BitTransitDelay)
			h.TransitDelay = n.GetTransitDelay()
		}
		if bf&demoQueueDepth != 0 {
			h.Fields |= uint32(ioam6.BitQueueDepth)
			h.QueueDepth = n.GetEgressQDepth()
		}
		if bf&demoBufferOcc != 0 {
			h.Fields |= uint32(ioam6.BitBufferOccupancy)
			h.BufferOccupancy = n.GetBufferOccupancy()
		}
		if bf&demoNamespaceData != 0 {
			switch ns := n.GetNamespace().(type) {
			case *ioamtrace.IOAMNode_WideData:
				h.Fields |= uint32(ioam6.BitWideNamespaceData)
				h.WideNamespaceData = beUint64(ns.WideData)
			case *ioamtrace.IOAMNode_Data:
				h.Fields |= uint32(ioam6.BitNamespaceData)
				h.NamespaceData = uint32(beUint64(ns.Data))
			}
		}
		if bf&demoOpaqueState != 0 {
			h.Fields |= uint32(ioam6.BitOpaqueStateSnapshot)
			h.SnapshotSchemaId = n.GetOSS().GetSchemaId()
			h.SnapshotData = n.GetOSS().GetData()
		}
		traceType |= h.Fields
		hops = append(hops, h)
	}
	tid, sid := ids(t.GetTraceId_High(), t.GetTraceId_Low(), t.GetSpanId())
	return sinkRecord(tid, sid, t.GetNamespaceId(), traceType, hops, now)
}

// FromIOAMAPITrace maps a report of the ioam-api (CLT branch) agents
// (ioam_api.IOAMService/Report) to a collector record. BitField is the IOAM
// trace type, sent by some agent versions as the 24-bit value and by others
// as the 32-bit header word (type << 8); both are accepted.
func FromIOAMAPITrace(t *ioamapi.IOAMTrace, now time.Time) *collectorv1.IOAMRecord {
	traceType := t.GetBitField()
	if traceType > uint32(ioam6.TraceTypeMask) {
		traceType >>= 8
	}
	hops := make([]*collectorv1.Hop, 0, len(t.GetNodes()))
	for _, n := range t.GetNodes() {
		h := &collectorv1.Hop{
			Fields:             traceType,
			HopLimit:           n.GetHopLimit(),
			NodeId:             n.GetId(),
			IngressIf:          n.GetIngressId(),
			EgressIf:           n.GetEgressId(),
			TimestampSec:       n.GetTimestampSecs(),
			TimestampFrac:      n.GetTimestampFrac(),
			TransitDelay:       n.GetTransitDelay(),
			QueueDepth:         n.GetQueueDepth(),
			ChecksumComplement: n.GetCsumComp(),
			BufferOccupancy:    n.GetBufferOccupancy(),
			WideIngressIf:      n.GetIngressIdWide(),
			WideEgressIf:       n.GetEgressIdWide(),
			WideNodeId:         n.GetIdWide(),
			NamespaceData:      uint32(beUint64(n.GetNamespaceData())),
			WideNamespaceData:  beUint64(n.GetNamespaceDataWide()),
			SnapshotSchemaId:   n.GetOSS().GetSchemaId(),
			SnapshotData:       n.GetOSS().GetData(),
		}
		hops = append(hops, h)
	}
	tid, sid := ids(t.GetTraceId_High(), t.GetTraceId_Low(), t.GetSpanId())
	return sinkRecord(tid, sid, t.GetNamespaceId(), traceType, hops, now)
}

// beUint64 reads up to 8 big-endian bytes (shorter input is right-aligned).
func beUint64(b []byte) uint64 {
	var v uint64
	for _, c := range b[:min(len(b), 8)] {
		v = v<<8 | uint64(c)
	}
	return v
}
