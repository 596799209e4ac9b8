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
//
// What they really send (read from their parsers) decides the rules below,
// which docs/contracts.md ("Collector and compat rules") states:
//   - ioam_api (Go ioam-agent, its turbo variant, the Python agent's clt
//     branch): BitField is the 32-bit header word, trace type << 8.
//   - ioam_trace (the research prototype): BitField is its own presence mask;
//     the snapshot data is cut to Length bytes instead of Length words, and
//     wide namespace data to its first 4 octets.
// A field a report cannot carry correctly is dropped from its hop (and
// counted), never the whole report.

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

// apiWordShift is where the trace type sits in the ioam_api BitField: the
// trace option's 32-bit word, type << 8 above the reserved octet.
const (
	apiWordShift    = 8
	apiReservedMask = 1<<apiWordShift - 1
)

// compatCarried are the trace-type bits whose fields the compat messages
// carry; undefined bits 12–21 have no field there.
const compatCarried = ioam6.TraceTypeMask &^ 0x000FFC &^ ioam6.BitReserved

// Field sizes in octets (RFC 9197 §4.4.2.6, §4.4.2.11) and the snapshot limit
// (§4.4.2.12: Length counts 4-octet words, 8 bits).
const (
	nsDataOctets     = 4
	wideNSDataOctets = 8
	snapshotWord     = 4
)

// Dropped-field names of the compat_fields_dropped metric and log.
const (
	dropNodeID       = "node_id"
	dropIfIDs        = "if_ids"
	dropWideNodeID   = "wide_node_id"
	dropHopLimit     = "hop_limit"
	dropNSData       = "namespace_data"
	dropWideNSData   = "wide_namespace_data"
	dropSchemaID     = "snapshot_schema_id"
	dropSnapshotData = "snapshot_data"
)

// APITraceType returns the IOAM trace type of an ioam_api BitField. Every
// original CLT agent on that API sends the option's 32-bit word (type << 8),
// so a trace type without bits 0–7 (wide-only, snapshot-only) is a small
// value and must still be shifted. A value whose reserved low octet is not
// zero cannot be that word and is taken as the bare 24-bit type (what the
// Python agent's non-CLT branch sends).
func APITraceType(bitField uint32) uint32 {
	if bitField&apiReservedMask != 0 && bitField <= uint32(ioam6.TraceTypeMask) {
		return bitField
	}
	return bitField >> apiWordShift
}

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
		Carrier:           ioam6.CarrierCLTv1.String(),
	}
	if n := len(hops); n > 0 {
		last := hops[n-1]
		f := ioam6.TraceType(last.GetFields())
		if f&ioam6.BitHopLimitNodeID != 0 {
			r.ReporterNodeId = last.GetNodeId()
		} else {
			// Without a short id the reporter's 24-bit id is unknown: the
			// kernel's "not available" value, never a wide id cut down.
			r.ReporterNodeId = ioam6.NodeIDUnavailable
		}
	}
	return r
}

// FromIOAMTrace maps a report of the research demo's agent
// (ioam_trace.IOAMService/Report) to a collector record, and names the fields
// it dropped from hops because they could not be read correctly. The received
// time stands in for first/last seen, which the demo API does not carry.
func FromIOAMTrace(t *ioamtrace.IOAMTrace, now time.Time) (*collectorv1.IOAMRecord, []string) {
	bf := t.GetBitField()
	var traceType uint32
	var dropped []string
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
				h.WideNamespaceData, dropped = leftAligned(ns.WideData, wideNSDataOctets, dropWideNSData, dropped)
			case *ioamtrace.IOAMNode_Data:
				h.Fields |= uint32(ioam6.BitNamespaceData)
				var v uint64
				v, dropped = leftAligned(ns.Data, nsDataOctets, dropNSData, dropped)
				h.NamespaceData = uint32(v)
			}
		}
		if bf&demoOpaqueState != 0 {
			h.Fields |= uint32(ioam6.BitOpaqueStateSnapshot)
			h.SnapshotSchemaId = n.GetOSS().GetSchemaId()
			h.SnapshotData = n.GetOSS().GetData()
		}
		dropped = sanitizeHop(h, dropped)
		traceType |= h.Fields
		hops = append(hops, h)
	}
	tid, sid := ids(t.GetTraceId_High(), t.GetTraceId_Low(), t.GetSpanId())
	return sinkRecord(tid, sid, t.GetNamespaceId(), traceType, hops, now), dropped
}

// FromIOAMAPITrace maps a report of the ioam-api (CLT branch) agents
// (ioam_api.IOAMService/Report) to a collector record (BitField read by
// [APITraceType]), and names the fields it dropped from hops.
func FromIOAMAPITrace(t *ioamapi.IOAMTrace, now time.Time) (*collectorv1.IOAMRecord, []string) {
	traceType := APITraceType(t.GetBitField())
	fields := traceType & uint32(compatCarried)
	var dropped []string
	hops := make([]*collectorv1.Hop, 0, len(t.GetNodes()))
	for _, n := range t.GetNodes() {
		h := &collectorv1.Hop{Fields: fields}
		set := func(b ioam6.TraceType) bool { return fields&uint32(b) != 0 }
		if set(ioam6.BitHopLimitNodeID) || set(ioam6.BitWideHopLimitNodeID) {
			h.HopLimit = n.GetHopLimit()
		}
		if set(ioam6.BitHopLimitNodeID) {
			h.NodeId = n.GetId()
		}
		if set(ioam6.BitIfIDs) {
			h.IngressIf, h.EgressIf = n.GetIngressId(), n.GetEgressId()
		}
		if set(ioam6.BitTimestampSec) {
			h.TimestampSec = n.GetTimestampSecs()
		}
		if set(ioam6.BitTimestampFrac) {
			h.TimestampFrac = n.GetTimestampFrac()
		}
		if set(ioam6.BitTransitDelay) {
			h.TransitDelay = n.GetTransitDelay()
		}
		if set(ioam6.BitNamespaceData) {
			var v uint64
			v, dropped = leftAligned(n.GetNamespaceData(), nsDataOctets, dropNSData, dropped)
			h.NamespaceData = uint32(v)
		}
		if set(ioam6.BitQueueDepth) {
			h.QueueDepth = n.GetQueueDepth()
		}
		if set(ioam6.BitChecksumComplement) {
			h.ChecksumComplement = n.GetCsumComp()
		}
		if set(ioam6.BitWideHopLimitNodeID) {
			h.WideNodeId = n.GetIdWide()
		}
		if set(ioam6.BitWideIfIDs) {
			h.WideIngressIf, h.WideEgressIf = n.GetIngressIdWide(), n.GetEgressIdWide()
		}
		if set(ioam6.BitWideNamespaceData) {
			h.WideNamespaceData, dropped = leftAligned(n.GetNamespaceDataWide(), wideNSDataOctets, dropWideNSData, dropped)
		}
		if set(ioam6.BitBufferOccupancy) {
			h.BufferOccupancy = n.GetBufferOccupancy()
		}
		if set(ioam6.BitOpaqueStateSnapshot) {
			if oss := n.GetOSS(); oss != nil {
				h.SnapshotSchemaId, h.SnapshotData = oss.GetSchemaId(), oss.GetData()
			} else {
				// The Go agent leaves OSS out for a Length-0 snapshot and
				// its schema id with it: nothing to show.
				h.Fields &^= uint32(ioam6.BitOpaqueStateSnapshot)
			}
		}
		dropped = sanitizeHop(h, dropped)
		hops = append(hops, h)
	}
	tid, sid := ids(t.GetTraceId_High(), t.GetTraceId_Low(), t.GetSpanId())
	return sinkRecord(tid, sid, t.GetNamespaceId(), traceType, hops, now), dropped
}

// leftAligned reads a namespace-data field of width octets. The bytes are the
// field's leading octets: the prototype sends only the first 4 of the 8-octet
// wide field, which must stay the high half (0x01020304 → 0x0102030400000000),
// not become the low one. More bytes than the field holds cannot be placed
// and drop the field (v = 0, name appended to dropped).
func leftAligned(b []byte, width int, name string, dropped []string) (uint64, []string) {
	if len(b) > width {
		return 0, append(dropped, name)
	}
	var v uint64
	for i := range width {
		v <<= 8
		if i < len(b) {
			v |= uint64(b[i])
		}
	}
	return v, dropped
}

// sanitizeHop drops (clears the bit and value of) every field of a compat hop
// outside its RFC 9197 width, so that the rest of the report is kept; it
// fills the hop's IOAM timestamp range from timestamp seconds and fraction
// with the rule of ioam6.TimestampUnixNano (seconds alone are a time with a
// zero fraction; a fraction alone is kept as a field but is no time).
func sanitizeHop(h *collectorv1.Hop, dropped []string) []string {
	drop := func(b ioam6.TraceType, name string) {
		h.Fields &^= uint32(b)
		dropped = append(dropped, name)
	}
	f := ioam6.TraceType(h.Fields)
	if f&(ioam6.BitHopLimitNodeID|ioam6.BitWideHopLimitNodeID) != 0 && h.GetHopLimit() > maxHopLimit {
		h.HopLimit = 0
		dropped = append(dropped, dropHopLimit)
	}
	if f&ioam6.BitHopLimitNodeID != 0 && h.GetNodeId() > maxNodeID {
		h.NodeId = 0
		drop(ioam6.BitHopLimitNodeID, dropNodeID)
	}
	if f&ioam6.BitIfIDs != 0 && (h.GetIngressIf() > maxIfID || h.GetEgressIf() > maxIfID) {
		h.IngressIf, h.EgressIf = 0, 0
		drop(ioam6.BitIfIDs, dropIfIDs)
	}
	if f&ioam6.BitWideHopLimitNodeID != 0 && h.GetWideNodeId() > maxWideNodeID {
		h.WideNodeId = 0
		drop(ioam6.BitWideHopLimitNodeID, dropWideNodeID)
	}
	if f&ioam6.BitOpaqueStateSnapshot != 0 {
		if h.GetSnapshotSchemaId() > maxSchemaID {
			h.SnapshotSchemaId, h.SnapshotData = 0, nil
			drop(ioam6.BitOpaqueStateSnapshot, dropSchemaID)
		} else if n := len(h.GetSnapshotData()); n%snapshotWord != 0 || n > maxSnapshotBytes {
			// The prototype cuts the data to Length bytes instead of Length
			// words: a length that is not whole words is that cut, and its
			// bytes are not the snapshot. A whole-word length is taken as
			// sent. The schema id stays either way.
			h.SnapshotData = nil
			dropped = append(dropped, dropSnapshotData)
		}
	}
	f = ioam6.TraceType(h.Fields)
	if ts, ok := ioam6.TimestampUnixNano(f, h.GetTimestampSec(), h.GetTimestampFrac()); ok {
		h.FirstTimestampUnixNano, h.LastTimestampUnixNano = uint64(ts), uint64(ts)
	}
	return dropped
}
