package ioam6

import (
	"math/bits"
	"strconv"
	"strings"
)

// TraceType is the 24-bit IOAM-Trace-Type of RFC 9197 §4.4.1. RFC bit 0 is the
// most significant bit (0x800000); bit 23 (0x000001) is reserved. Each set bit
// 0–21 adds a fixed-size field to every node entry, bit 22 a variable-length
// Opaque State Snapshot.
type TraceType uint32

// Trace-type bits (RFC 9197 §4.4.1, field sizes in §4.4.2).
const (
	BitHopLimitNodeID      TraceType = 1 << (23 - iota) // bit 0: hop_Lim (8) + node_id (24), 4 octets
	BitIfIDs                                            // bit 1: ingress_if_id (16) + egress_if_id (16), 4 octets
	BitTimestampSec                                     // bit 2: timestamp seconds, 4 octets
	BitTimestampFrac                                    // bit 3: timestamp fraction (Linux: microseconds), 4 octets
	BitTransitDelay                                     // bit 4: transit delay, 4 octets
	BitNamespaceData                                    // bit 5: namespace-specific data, 4 octets
	BitQueueDepth                                       // bit 6: queue depth, 4 octets
	BitChecksumComplement                               // bit 7: checksum complement, 4 octets
	BitWideHopLimitNodeID                               // bit 8: hop_Lim (8) + node_id (56), 8 octets
	BitWideIfIDs                                        // bit 9: ingress_if_id (32) + egress_if_id (32), 8 octets
	BitWideNamespaceData                                // bit 10: namespace-specific data (wide), 8 octets
	BitBufferOccupancy                                  // bit 11: buffer occupancy, 4 octets
	BitUndefined12                                      // bit 12: undefined, 4 octets (Linux writes 0xFFFFFFFF)
	BitUndefined13                                      // bit 13: undefined, 4 octets
	BitUndefined14                                      // bit 14: undefined, 4 octets
	BitUndefined15                                      // bit 15: undefined, 4 octets
	BitUndefined16                                      // bit 16: undefined, 4 octets
	BitUndefined17                                      // bit 17: undefined, 4 octets
	BitUndefined18                                      // bit 18: undefined, 4 octets
	BitUndefined19                                      // bit 19: undefined, 4 octets
	BitUndefined20                                      // bit 20: undefined, 4 octets
	BitUndefined21                                      // bit 21: undefined, 4 octets
	BitOpaqueStateSnapshot                              // bit 22: opaque state snapshot, variable (4 + 4·Length octets)
	BitReserved                                         // bit 23: reserved; ignored on receipt, never counted in NodeLen
)

// Masks over groups of bits.
const (
	// TraceTypeMask covers the 24 bits of the field.
	TraceTypeMask TraceType = 0xFFFFFF
	// wideMask: the three 8-octet fields (bits 8–10).
	wideMask = BitWideHopLimitNodeID | BitWideIfIDs | BitWideNamespaceData
	// shortMask: every 4-octet field (bits 0–7, 11, 12–21).
	shortMask = 0xFF0000 | BitBufferOccupancy | undefinedMask
	// undefinedMask: bits 12–21; Node.Undefined[i] is bit 12+i.
	undefinedMask TraceType = 0x000FFC
)

// TypeFull is every data bit, defined and undefined (0–22): 0xFFFFFE,
// NodeLen 25 plus the snapshot.
const TypeFull = TraceTypeMask &^ BitReserved

// NodeLen returns the length in 4-octet words of the fixed part of a node
// entry for this type, the value the trace header's NodeLen must hold: 1 word
// for each of bits 0–7, 11 and the undefined bits 12–21, 2 words for each of
// bits 8–10. The Opaque State Snapshot (bit 22) is variable and not counted;
// bit 23 is reserved and ignored.
func (t TraceType) NodeLen() int {
	return bits.OnesCount32(uint32(t&shortMask)) + 2*bits.OnesCount32(uint32(t&wideMask))
}

// Has reports whether every bit of b is set in t.
func (t TraceType) Has(b TraceType) bool { return t&b == b }

var bitNames = [24]string{
	"hop_limit_node_id", "if_ids", "timestamp_sec", "timestamp_frac",
	"transit_delay", "namespace_data", "queue_depth", "checksum_complement",
	"wide_hop_limit_node_id", "wide_if_ids", "wide_namespace_data", "buffer_occupancy",
	"undefined12", "undefined13", "undefined14", "undefined15", "undefined16",
	"undefined17", "undefined18", "undefined19", "undefined20", "undefined21",
	"opaque_state_snapshot", "reserved23",
}

// String returns the type in the notation of iproute2 and the UI contract,
// six hex digits, e.g. "0xf00002".
func (t TraceType) String() string {
	s := strconv.FormatUint(uint64(t), 16)
	if len(s) < 6 {
		s = strings.Repeat("0", 6-len(s)) + s
	}
	return "0x" + s
}

// Names returns the names of the set bits in RFC order, e.g.
// "hop_limit_node_id|if_ids|opaque_state_snapshot"; bits above 23 show as hex.
func (t TraceType) Names() string {
	var b strings.Builder
	for i := range 24 {
		if t&(1<<(23-i)) == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('|')
		}
		b.WriteString(bitNames[i])
	}
	if extra := t &^ TraceTypeMask; extra != 0 {
		if b.Len() > 0 {
			b.WriteByte('|')
		}
		b.WriteString("0x" + strconv.FormatUint(uint64(extra), 16))
	}
	return b.String()
}
