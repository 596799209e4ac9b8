package ioam6

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTraceTypeNodeLen(t *testing.T) {
	tests := []struct {
		typ  TraceType
		want int
	}{
		{0, 0},
		{BitHopLimitNodeID, 1},
		{typeBasic, 4},                          // bits 0-3
		{typeBasic | BitOpaqueStateSnapshot, 4}, // bit 22 is variable, not counted
		{BitWideHopLimitNodeID, 2},
		{BitWideIfIDs | BitWideNamespaceData, 4},
		{BitBufferOccupancy, 1},
		{0x000FFC, 10},      // undefined bits 12-21, one word each
		{0xFFF002, 15},      // docs/wire-format.md §2.3
		{TypeFull, 25},      // bits 0-22
		{TraceTypeMask, 25}, // bit 23 reserved, ignored
		{BitReserved, 0},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.typ.NodeLen(), "NodeLen(%s)", tt.typ)
	}
}

func TestTraceTypeString(t *testing.T) {
	assert.Equal(t, "0xf00002", TraceType(0xF00002).String())
	assert.Equal(t, "0x000001", BitReserved.String())
	assert.Equal(t, "hop_limit_node_id|if_ids|opaque_state_snapshot", (BitHopLimitNodeID | BitIfIDs | BitOpaqueStateSnapshot).Names())
	assert.Equal(t, "undefined12|reserved23|0x1000000", (BitUndefined12 | BitReserved | 1<<24).Names())
	assert.Equal(t, "", TraceType(0).Names())
	// The named constants are RFC bit n = 1 << (23-n).
	for i, b := range []TraceType{BitHopLimitNodeID, BitIfIDs, BitTimestampSec, BitTimestampFrac, BitTransitDelay,
		BitNamespaceData, BitQueueDepth, BitChecksumComplement, BitWideHopLimitNodeID, BitWideIfIDs,
		BitWideNamespaceData, BitBufferOccupancy, BitUndefined12, BitUndefined13, BitUndefined14, BitUndefined15,
		BitUndefined16, BitUndefined17, BitUndefined18, BitUndefined19, BitUndefined20, BitUndefined21,
		BitOpaqueStateSnapshot, BitReserved} {
		assert.Equal(t, TraceType(1)<<(23-i), b, "bit %d", i)
	}
	assert.Equal(t, TraceType(0x800000), BitHopLimitNodeID)
	assert.Equal(t, TraceType(0x000002), BitOpaqueStateSnapshot)
}

// fullNode sets every field of a node with distinct values.
func fullNode(fields TraceType) Node {
	n := Node{
		Fields: fields, HopLimit: 0x81, NodeID: 0xABCDEF, IngressIf: 0x1234, EgressIf: 0xFEDC,
		TimestampSec: 0x11111111, TimestampFrac: 0x22222222, TransitDelay: 0x33333333,
		NamespaceData: 0x44444444, QueueDepth: 0x55555555, ChecksumComplement: 0x66666666,
		WideHopLimit: 0x92, WideNodeID: 0x00ABCDEF01234567, WideIngressIf: 0x77777777, WideEgressIf: 0x88888888,
		WideNamespaceData: 0x99999999AAAAAAAA, BufferOccupancy: 0xBBBBBBBB,
		Snapshot: Snapshot{Len: 2, SchemaID: 0x123456, Data: []byte{1, 2, 3, 4, 5, 6, 7, 8}},
	}
	for i := range n.Undefined {
		n.Undefined[i] = 0xC0000000 + uint32(i)
	}
	return n
}

// keepFields zeroes the fields of n that are not in n.Fields (what a decoder returns).
func keepFields(n Node) Node {
	out := Node{Fields: n.Fields}
	f := n.Fields
	if f&BitHopLimitNodeID != 0 {
		out.HopLimit, out.NodeID = n.HopLimit, n.NodeID
	}
	if f&BitIfIDs != 0 {
		out.IngressIf, out.EgressIf = n.IngressIf, n.EgressIf
	}
	if f&BitTimestampSec != 0 {
		out.TimestampSec = n.TimestampSec
	}
	if f&BitTimestampFrac != 0 {
		out.TimestampFrac = n.TimestampFrac
	}
	if f&BitTransitDelay != 0 {
		out.TransitDelay = n.TransitDelay
	}
	if f&BitNamespaceData != 0 {
		out.NamespaceData = n.NamespaceData
	}
	if f&BitQueueDepth != 0 {
		out.QueueDepth = n.QueueDepth
	}
	if f&BitChecksumComplement != 0 {
		out.ChecksumComplement = n.ChecksumComplement
	}
	if f&BitWideHopLimitNodeID != 0 {
		out.WideHopLimit, out.WideNodeID = n.WideHopLimit, n.WideNodeID
	}
	if f&BitWideIfIDs != 0 {
		out.WideIngressIf, out.WideEgressIf = n.WideIngressIf, n.WideEgressIf
	}
	if f&BitWideNamespaceData != 0 {
		out.WideNamespaceData = n.WideNamespaceData
	}
	if f&BitBufferOccupancy != 0 {
		out.BufferOccupancy = n.BufferOccupancy
	}
	for i := range out.Undefined {
		if f&(BitUndefined12>>i) != 0 {
			out.Undefined[i] = n.Undefined[i]
		}
	}
	if f&BitOpaqueStateSnapshot != 0 {
		out.Snapshot = n.Snapshot
	}
	return out
}

// Every trace-type bit 0–22 alone, and all together, encodes to its RFC size
// at its RFC position and decodes back.
func TestNodeEveryBitRoundTrip(t *testing.T) {
	sizes := [23]int{4, 4, 4, 4, 4, 4, 4, 4, 8, 8, 8, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4 + 8}
	for bit := range 23 {
		typ := TraceType(1) << (23 - bit)
		n := keepFields(fullNode(typ))
		b, err := AppendNode(nil, &n)
		require.NoError(t, err, "bit %d", bit)
		require.Len(t, b, sizes[bit], "bit %d", bit)
		assert.Equal(t, sizes[bit], n.Len(), "bit %d", bit)
		got, l, err := DecodeNode(b, typ)
		require.NoError(t, err, "bit %d", bit)
		assert.Equal(t, len(b), l)
		assert.Empty(t, cmp.Diff(n, got, nodeCmp), "bit %d", bit)
	}
	// Spot-check the wire positions of a few fields.
	n := fullNode(BitHopLimitNodeID)
	b, _ := AppendNode(nil, &n)
	assert.Equal(t, []byte{0x81, 0xAB, 0xCD, 0xEF}, b)
	n = fullNode(BitWideHopLimitNodeID)
	b, _ = AppendNode(nil, &n)
	assert.Equal(t, []byte{0x92, 0xAB, 0xCD, 0xEF, 0x01, 0x23, 0x45, 0x67}, b)
	n = fullNode(BitOpaqueStateSnapshot)
	b, _ = AppendNode(nil, &n)
	assert.Equal(t, []byte{2, 0x12, 0x34, 0x56, 1, 2, 3, 4, 5, 6, 7, 8}, b)

	all := fullNode(TypeFull)
	b, err := AppendNode(nil, &all)
	require.NoError(t, err)
	require.Len(t, b, 4*25+4+8)
	got, l, err := DecodeNode(append(b, 0xEE, 0xEE), TypeFull|BitReserved) // bit 23 ignored, trailing bytes left
	require.NoError(t, err)
	assert.Equal(t, len(b), l)
	assert.Empty(t, cmp.Diff(all, got, nodeCmp))
	assert.Equal(t, wire(0xC0000000), b[4*15:4*16], "undefined bit 12 follows buffer occupancy")
}

var decodeNodeErrorTests = []struct {
	name   string
	b      []byte
	typ    TraceType
	err    error
	field  string
	offset int
}{
	{"empty", nil, typeBasic, ErrTruncated, "node", 0},
	{"fixed part short", wire(0x3f000002, 0x00150016, 0x6b0951e6), typeBasic, ErrTruncated, "node", 0},
	{"snapshot header short", wire(0x3f000002), BitHopLimitNodeID | BitOpaqueStateSnapshot, ErrTruncated, "node opaque state snapshot", 4},
	{"snapshot data short", wire(0x3f000002, 0x02000c17, 0x01020304), BitHopLimitNodeID | BitOpaqueStateSnapshot, ErrTruncated, "node opaque state snapshot", 4},
	{"type over 24 bits", wire(0), 1 << 24, ErrMalformed, "node trace type", 0},
}

func TestDecodeNodeErrors(t *testing.T) {
	tests := decodeNodeErrorTests
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, l, err := DecodeNode(tt.b, tt.typ)
			require.ErrorIs(t, err, tt.err)
			var de *DecodeError
			require.ErrorAs(t, err, &de)
			assert.Equal(t, tt.field, de.Field)
			assert.Equal(t, tt.offset, de.Offset)
			assert.Zero(t, l)
			assert.Empty(t, cmp.Diff(Node{}, n))
		})
	}
}

func TestAppendNodeErrors(t *testing.T) {
	tests := []struct {
		name string
		n    Node
	}{
		{"node id over 24 bits", Node{Fields: BitHopLimitNodeID, NodeID: 1 << 24}},
		{"wide node id over 56 bits", Node{Fields: BitWideHopLimitNodeID, WideNodeID: 1 << 56}},
		{"schema over 24 bits", Node{Fields: BitOpaqueStateSnapshot, Snapshot: Snapshot{SchemaID: 1 << 24}}},
		{"snapshot len mismatch", Node{Fields: BitOpaqueStateSnapshot, Snapshot: Snapshot{Len: 1, Data: []byte{1, 2}}}},
		{"reserved bit", Node{Fields: BitReserved}},
		{"over 24 bits", Node{Fields: 1 << 24}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte{9}
			b, err := AppendNode(dst, &tt.n)
			require.ErrorIs(t, err, ErrInvalidSpec)
			assert.Equal(t, dst, b)
		})
	}
}

func TestTraceHeader(t *testing.T) {
	h := TraceHeader{NamespaceID: 0xBEEF, NodeLen: 25, Overflow: true, RemainingLen: 127, Type: 0xFFFFFF}
	b, err := h.MarshalBinary()
	require.NoError(t, err)
	assert.Equal(t, wire(
		0xBEEFCC7F, // NS 0xbeef | NodeLen 25 << 3 | O (0x04) | RemainingLen 127
		0xFFFFFF00, // type | reserved 0
	), b)
	var got TraceHeader
	require.NoError(t, got.UnmarshalBinary(b))
	assert.Equal(t, h, got)

	// Reserved flags and the reserved octet are ignored on decode (RFC 9197 §4.4.1).
	require.NoError(t, got.UnmarshalBinary(wire(0x007b2b8c, 0xf00000ff)))
	assert.Equal(t, TraceHeader{NamespaceID: 123, NodeLen: 5, RemainingLen: 12, Type: 0xF00000}, got)

	err = got.UnmarshalBinary(wire(0x007b2010))
	require.ErrorIs(t, err, ErrTruncated)
	assert.Equal(t, TraceHeader{}, got, "zero on error")

	for _, bad := range []TraceHeader{{NodeLen: 32}, {RemainingLen: 128}, {Type: 1 << 24}} {
		_, err := bad.MarshalBinary()
		require.ErrorIs(t, err, ErrInvalidSpec, "%+v", bad)
	}
	ab, err := h.AppendBinary([]byte{1, 2})
	require.NoError(t, err)
	assert.Equal(t, append([]byte{1, 2}, b...), ab)
}

func TestCarrier(t *testing.T) {
	for _, c := range []Carrier{CarrierOSS, CarrierTail, CarrierCLTv1} {
		p, err := ParseCarrier(c.String())
		require.NoError(t, err)
		assert.Equal(t, c, p)
		txt, err := c.MarshalText()
		require.NoError(t, err)
		var u Carrier
		require.NoError(t, u.UnmarshalText(txt))
		assert.Equal(t, c, u)
	}
	assert.Equal(t, []string{"oss", "tail", "clt-v1"}, []string{CarrierOSS.String(), CarrierTail.String(), CarrierCLTv1.String()})
	assert.Equal(t, CarrierOSS, Carrier(0), "oss is the default")
	_, err := ParseCarrier("OSS")
	require.Error(t, err)
	_, err = Carrier(7).MarshalText()
	require.Error(t, err)
	assert.Equal(t, "carrier(7)", Carrier(7).String())

	assert.Equal(t, uint32(DefaultSchemaID), CarrierConfig{}.Schema())
	assert.Equal(t, uint32(0x777), CarrierConfig{SchemaID: 0x777}.Schema())
	require.NoError(t, CarrierConfig{Carrier: CarrierTail}.Validate())
	require.ErrorIs(t, CarrierConfig{Carrier: 3}.Validate(), ErrInvalidSpec)
	require.ErrorIs(t, CarrierConfig{SchemaID: 1 << 24}.Validate(), ErrInvalidSpec)
}

func TestDecodeErrorMessage(t *testing.T) {
	_, _, err := DecodeNode(nil, typeBasic)
	assert.Equal(t, "ioam6: node at offset 0: truncated: entry needs 16 bytes, have 0", err.Error())
	assert.True(t, errors.Is(err, ErrTruncated))
	assert.False(t, errors.Is(err, ErrMalformed))
}

func TestNodeTimestamp(t *testing.T) {
	n := basicNode(63, 2, 21, 22, 0x6b0951e6, 476470)
	ts, ok := n.Timestamp()
	require.True(t, ok)
	assert.Equal(t, time.Unix(0x6b0951e6, 476470_000).UTC(), ts.UTC())
	n.Fields &^= BitTimestampFrac
	ts, ok = n.Timestamp()
	require.True(t, ok)
	assert.Equal(t, time.Unix(0x6b0951e6, 0).UTC(), ts.UTC(), "seconds only")
	n.Fields |= BitTimestampFrac
	n.TimestampFrac = 1_000_000
	_, ok = n.Timestamp()
	assert.False(t, ok, "not microseconds")
	n.Fields &^= BitTimestampSec
	_, ok = n.Timestamp()
	assert.False(t, ok, "no seconds")

	assert.True(t, IDs{}.IsZero())
	assert.True(t, IDs{Short: true}.IsZero())
	assert.False(t, docIDs.IsZero())
	assert.False(t, IDs{SpanID: [8]byte{7: 1}}.IsZero())
}
