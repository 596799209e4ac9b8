package ioam6

import (
	"encoding/binary"
	"time"
)

// Node is one node data entry of a Pre-allocated Trace (RFC 9197 §4.4.2).
// Fields says which data fields are present (the trace type without the
// reserved bit 23); the other fields are zero. Wire order is bit order:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Hop_Lim     |              node_id                          | bit 0
//	|     ingress_if_id             |         egress_if_id          | bit 1
//	|                     timestamp seconds                         | bit 2
//	|                     timestamp fraction                        | bit 3
//	|                     transit delay                             | bit 4
//	|                     namespace specific data                   | bit 5
//	|                     queue depth                               | bit 6
//	|                     checksum complement                       | bit 7
//	|   Hop_Lim     |              node_id (wide) ...               | bit 8
//	|                     ... node_id (wide)                        |
//	|                     ingress_if_id (wide)                      | bit 9
//	|                     egress_if_id (wide)                       |
//	|                     namespace specific data (wide)            | bit 10
//	|                     ...                                       |
//	|                     buffer occupancy                          | bit 11
//	|                     undefined (one word per bit 12–21)        |
//	|    Length     |                     Schema ID                 | bit 22
//	|                     Opaque data (Length words) ...            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// A decoded Node's Snapshot.Data references the decoder's input.
type Node struct {
	Fields TraceType // present fields; bit 23 never set

	HopLimit           uint8  // bit 0 (Linux: hop limit on arrival − 1)
	NodeID             uint32 // bit 0, 24 bits (net.ipv6.ioam6_id)
	IngressIf          uint16 // bit 1 (0xFFFF: unavailable)
	EgressIf           uint16 // bit 1 (Linux destination: 0xFFFF)
	TimestampSec       uint32 // bit 2, seconds (Linux: CLOCK_REALTIME)
	TimestampFrac      uint32 // bit 3, fraction (Linux: microseconds)
	TransitDelay       uint32 // bit 4, nanoseconds; MSB set = overflow (Linux: 0xFFFFFFFF)
	NamespaceData      uint32 // bit 5
	QueueDepth         uint32 // bit 6
	ChecksumComplement uint32 // bit 7
	WideHopLimit       uint8  // bit 8
	WideNodeID         uint64 // bit 8, 56 bits
	WideIngressIf      uint32 // bit 9
	WideEgressIf       uint32 // bit 9
	WideNamespaceData  uint64 // bit 10
	BufferOccupancy    uint32 // bit 11
	Undefined          [10]uint32
	// Undefined[i] is bit 12+i. Undefined fields are decoded, never rejected;
	// Linux fills them with 0xFFFFFFFF.

	Snapshot Snapshot // bit 22
}

// Snapshot is the Opaque State Snapshot of RFC 9197 §4.4.2.12:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Length      |                     Schema ID                 |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	~                        Opaque data                            ~
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Linux writes Length 0, Schema ID 0xFFFFFF ([SchemaIDNone]) when the
// namespace has no schema.
type Snapshot struct {
	Len      uint8  // length of Data in 4-octet words
	SchemaID uint32 // 24 bits
	Data     []byte // 4·Len bytes; references the decoder's input
}

// Kernel "unavailable" values (include/uapi/linux/ioam6.h, net/ipv6/ioam6.c).
const (
	NodeIDUnavailable     = 0xFFFFFF           // IOAM6_DEFAULT_ID
	WideNodeIDUnavailable = 0xFFFFFFFFFFFFFF   // IOAM6_DEFAULT_ID_WIDE
	IfIDUnavailable       = 0xFFFF             // IOAM6_DEFAULT_IF_ID
	WideIfIDUnavailable   = 0xFFFFFFFF         // IOAM6_DEFAULT_IF_ID_WIDE
	U32Unavailable        = 0xFFFFFFFF         // IOAM6_U32_UNAVAILABLE
	U64Unavailable        = 0xFFFFFFFFFFFFFFFF // IOAM6_U64_UNAVAILABLE
	SchemaIDNone          = 0xFFFFFF           // empty snapshot schema id written by Linux
)

const (
	nodeIDMask     = 0xFFFFFF
	wideNodeIDMask = 1<<56 - 1
	schemaIDMask   = 0xFFFFFF
	snapshotHdrLen = 4
)

// Len returns the encoded size of n in bytes: 4·Fields.NodeLen(), plus 4 and
// the snapshot data when bit 22 is set.
func (n *Node) Len() int {
	l := 4 * n.Fields.NodeLen()
	if n.Fields&BitOpaqueStateSnapshot != 0 {
		l += snapshotHdrLen + 4*int(n.Snapshot.Len)
	}
	return l
}

// Timestamp returns the node's timestamp read in the POSIX-based format of
// RFC 9197 §5.3 that Linux writes: TimestampSec seconds and TimestampFrac
// microseconds of CLOCK_REALTIME. ok is false without bit 2 (seconds) or when
// the fraction is not a microsecond count (≥ 10⁶), as with PTP or NTP
// formats, or when the seconds are all ones (not available); without bit 3
// the fraction is taken as zero.
func (n *Node) Timestamp() (t time.Time, ok bool) {
	ns, ok := TimestampUnixNano(n.Fields, n.TimestampSec, n.TimestampFrac)
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

// AppendNode appends the encoding of n to dst in RFC 9197 field order. It
// fails with ErrInvalidSpec when a value does not fit its field or the
// snapshot's Len and Data disagree; dst is returned unchanged then.
func AppendNode(dst []byte, n *Node) ([]byte, error) {
	switch {
	case n.Fields > TraceTypeMask || n.Fields&BitReserved != 0:
		return dst, specErr("node: fields %#x has bits outside 0-22", uint32(n.Fields))
	case n.NodeID > nodeIDMask:
		return dst, specErr("node: node id %#x exceeds 24 bits", n.NodeID)
	case n.WideNodeID > wideNodeIDMask:
		return dst, specErr("node: wide node id %#x exceeds 56 bits", n.WideNodeID)
	case n.Fields&BitOpaqueStateSnapshot != 0 && n.Snapshot.SchemaID > schemaIDMask:
		return dst, specErr("node: snapshot schema id %#x exceeds 24 bits", n.Snapshot.SchemaID)
	case n.Fields&BitOpaqueStateSnapshot != 0 && len(n.Snapshot.Data) != 4*int(n.Snapshot.Len):
		return dst, specErr("node: snapshot length %d words but %d data bytes", n.Snapshot.Len, len(n.Snapshot.Data))
	}
	return appendNode(dst, n), nil
}

// appendNode encodes a node whose values were checked, in RFC field order.
func appendNode(b []byte, n *Node) []byte {
	be := binary.BigEndian
	t := n.Fields
	if t&BitHopLimitNodeID != 0 {
		b = be.AppendUint32(b, uint32(n.HopLimit)<<24|n.NodeID&nodeIDMask)
	}
	if t&BitIfIDs != 0 {
		b = be.AppendUint32(b, uint32(n.IngressIf)<<16|uint32(n.EgressIf))
	}
	if t&BitTimestampSec != 0 {
		b = be.AppendUint32(b, n.TimestampSec)
	}
	if t&BitTimestampFrac != 0 {
		b = be.AppendUint32(b, n.TimestampFrac)
	}
	if t&BitTransitDelay != 0 {
		b = be.AppendUint32(b, n.TransitDelay)
	}
	if t&BitNamespaceData != 0 {
		b = be.AppendUint32(b, n.NamespaceData)
	}
	if t&BitQueueDepth != 0 {
		b = be.AppendUint32(b, n.QueueDepth)
	}
	if t&BitChecksumComplement != 0 {
		b = be.AppendUint32(b, n.ChecksumComplement)
	}
	if t&BitWideHopLimitNodeID != 0 {
		b = be.AppendUint64(b, uint64(n.WideHopLimit)<<56|n.WideNodeID&wideNodeIDMask)
	}
	if t&BitWideIfIDs != 0 {
		b = be.AppendUint32(b, n.WideIngressIf)
		b = be.AppendUint32(b, n.WideEgressIf)
	}
	if t&BitWideNamespaceData != 0 {
		b = be.AppendUint64(b, n.WideNamespaceData)
	}
	if t&BitBufferOccupancy != 0 {
		b = be.AppendUint32(b, n.BufferOccupancy)
	}
	if t&undefinedMask != 0 {
		for i, v := range n.Undefined {
			if t&(BitUndefined12>>i) != 0 {
				b = be.AppendUint32(b, v)
			}
		}
	}
	if t&BitOpaqueStateSnapshot != 0 {
		b = be.AppendUint32(b, uint32(n.Snapshot.Len)<<24|n.Snapshot.SchemaID&schemaIDMask)
		b = append(b, n.Snapshot.Data...)
	}
	return b
}

// DecodeNode decodes one node entry of type t from the start of b and returns
// it with its length in bytes. Bit 23 of t is ignored. Snapshot.Data
// references b. On error it returns the zero Node, 0 and a *DecodeError whose
// offset is relative to b.
func DecodeNode(b []byte, t TraceType) (Node, int, error) {
	var n Node
	l, err := decodeNode(&n, b, t, "node", 0)
	if err != nil {
		return Node{}, 0, err
	}
	return n, l, nil
}

// entryLen returns the length of the entry at the start of b without decoding
// it: 4·NodeLen plus the snapshot. base is the offset of b for errors.
func entryLen(b []byte, t TraceType, fixed int, field string, base int) (int, error) {
	if len(b) < fixed {
		return 0, decodeErr(field, base, ErrTruncated, "entry needs %d bytes, have %d", fixed, len(b))
	}
	if t&BitOpaqueStateSnapshot == 0 {
		return fixed, nil
	}
	if len(b) < fixed+snapshotHdrLen {
		return 0, decodeErr(field+" opaque state snapshot", base+fixed, ErrTruncated,
			"snapshot header needs %d bytes, have %d", snapshotHdrLen, len(b)-fixed)
	}
	l := fixed + snapshotHdrLen + 4*int(b[fixed])
	if len(b) < l {
		return 0, decodeErr(field+" opaque state snapshot", base+fixed, ErrTruncated,
			"snapshot of %d words needs %d bytes, have %d", b[fixed], l-fixed-snapshotHdrLen, len(b)-fixed-snapshotHdrLen)
	}
	return l, nil
}

// decodeNode fills n from b. field and base name the entry in errors.
// Fields are tested in RFC order with one predictable branch each, which is
// faster than dispatching on the set bits.
func decodeNode(n *Node, b []byte, t TraceType, field string, base int) (int, error) {
	if t > TraceTypeMask {
		return 0, decodeErr(field+" trace type", base, ErrMalformed, "%#x exceeds 24 bits", uint32(t))
	}
	t &^= BitReserved
	fixed := 4 * t.NodeLen()
	l := fixed
	if t&BitOpaqueStateSnapshot != 0 {
		l += snapshotHdrLen
		if l <= len(b) {
			l += 4 * int(b[fixed])
		}
	}
	if l > len(b) {
		_, err := entryLen(b, t, fixed, field, base) // builds the error
		return 0, err
	}
	*n = Node{Fields: t}
	be := binary.BigEndian
	b = b[:l:l]
	off := 0
	if t&BitHopLimitNodeID != 0 {
		v := be.Uint32(b[off:])
		n.HopLimit, n.NodeID = uint8(v>>24), v&nodeIDMask
		off += 4
	}
	if t&BitIfIDs != 0 {
		n.IngressIf, n.EgressIf = be.Uint16(b[off:]), be.Uint16(b[off+2:])
		off += 4
	}
	if t&BitTimestampSec != 0 {
		n.TimestampSec = be.Uint32(b[off:])
		off += 4
	}
	if t&BitTimestampFrac != 0 {
		n.TimestampFrac = be.Uint32(b[off:])
		off += 4
	}
	if t&BitTransitDelay != 0 {
		n.TransitDelay = be.Uint32(b[off:])
		off += 4
	}
	if t&BitNamespaceData != 0 {
		n.NamespaceData = be.Uint32(b[off:])
		off += 4
	}
	if t&BitQueueDepth != 0 {
		n.QueueDepth = be.Uint32(b[off:])
		off += 4
	}
	if t&BitChecksumComplement != 0 {
		n.ChecksumComplement = be.Uint32(b[off:])
		off += 4
	}
	if t&BitWideHopLimitNodeID != 0 {
		v := be.Uint64(b[off:])
		n.WideHopLimit, n.WideNodeID = uint8(v>>56), v&wideNodeIDMask
		off += 8
	}
	if t&BitWideIfIDs != 0 {
		n.WideIngressIf, n.WideEgressIf = be.Uint32(b[off:]), be.Uint32(b[off+4:])
		off += 8
	}
	if t&BitWideNamespaceData != 0 {
		n.WideNamespaceData = be.Uint64(b[off:])
		off += 8
	}
	if t&BitBufferOccupancy != 0 {
		n.BufferOccupancy = be.Uint32(b[off:])
		off += 4
	}
	if t&undefinedMask != 0 {
		for i := range n.Undefined {
			if t&(BitUndefined12>>i) != 0 {
				n.Undefined[i] = be.Uint32(b[off:])
				off += 4
			}
		}
	}
	if t&BitOpaqueStateSnapshot != 0 {
		v := be.Uint32(b[off:])
		n.Snapshot.Len, n.Snapshot.SchemaID = uint8(v>>24), v&schemaIDMask
		n.Snapshot.Data = b[off+snapshotHdrLen:]
	}
	return l, nil
}
