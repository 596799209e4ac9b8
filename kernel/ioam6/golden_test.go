package ioam6

// Golden tests: every byte dump of docs/wire-format.md (§3.1,
// §3.4, §4, §5, §6), measured on Linux 6.18 with the topology of its §1:
//
//	client (node 1, c0 if 10) -- r1 (node 2, in 21, out 22) -- r2 (node 3, in 31, out 32) -- server (node 4, in 40)
//
// namespace 123, trace type 0xF00000 (bits 0–3, NodeLen 4) or 0xF00002 (+ bit 22).
//
// RFC 9486 §3 IOAM option in the Hop-by-Hop header, RFC 9197 §4.4.1 trace header:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Next Header  |  Hdr Ext Len  |  Option Type  |  Opt Data Len |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Reserved    |   IOAM Type   |        Namespace-ID           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|NodeLen  | Flags | RemainingLen|  IOAM-Trace-Type ...
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// (the drawing is RFC 9486's, with the option at HBH offset 2; Linux needs
// it at a 4n offset, so every dump has a PadN(0) `01 00` first and the trace
// header starts at HBH offset 8.) Node data, RFC 9197 §4.4.2, bits 0–3:
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Hop_Lim     |              node_id                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     ingress_if_id             |         egress_if_id          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       timestamp seconds                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       timestamp fraction                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const typeBasic TraceType = 0xF00000 // bits 0-3

// basicNode is a node of type 0xF00000 as Linux writes it.
func basicNode(hlim uint8, id uint32, in, eg uint16, sec, us uint32) Node {
	return Node{Fields: typeBasic, HopLimit: hlim, NodeID: id, IngressIf: in, EgressIf: eg, TimestampSec: sec, TimestampFrac: us}
}

// oss variant: the same node with bit 22 and Linux's empty snapshot.
func withEmptySnapshot(n Node) Node {
	n.Fields |= BitOpaqueStateSnapshot
	n.Snapshot = Snapshot{SchemaID: SchemaIDNone, Data: []byte{}}
	return n
}

// §4: UDP, layout b (tail), 4 slots, the same packet at four points.
var (
	// r1 ingress (r1a, HOST): before r1 processes it, as the client sent it.
	dumpS4R1Ingress = cat(
		wire(
			0x110c0100, // Next Header 17 (UDP) | Hdr Ext Len 12 (104 B) | PadN, 0 data bytes
			0x31620000, // Option 0x31 | Opt Data Len 98 | Reserved | IOAM type 0 (pre-allocated trace)
			0x007b2010, // Namespace-ID 123 | NodeLen 4, no flags | RemainingLen 16
			0xf0000000, // trace type 0xf00000 | reserved
		),
		zeros(64),  // 0x10..0x4f: 4 slots × 16 B, unwritten
		docIDWords, // 0x50: trace id, span id (tail carrier)
	)
	// r1 egress (r1b, OUTGOING): after r1, RemLen 16 → 12, slot at data[48:64].
	dumpS4R1Egress = cat(
		wire(
			0x110c0100, // Next Header 17 | Hdr Ext Len 12 | PadN(0)
			0x31620000, // IOAM option, 98 B, pre-allocated trace
			0x007b200c, // NS 123 | NodeLen 4 | RemainingLen 12
			0xf0000000, // type 0xf00000
		),
		zeros(48),
		wire(
			0x3f000002, // 0x40: r1: hop limit 63 | node id 2
			0x00150016, //       ingress 21 | egress 22
			0x6b0951e6, //       timestamp seconds
			0x00074536, //       timestamp fraction: 476470 µs
		),
		docIDWords,
	)
	// server ingress (s0, HOST): after r1 and r2, RemLen 8.
	dumpS4ServerIngress = cat(
		wire(
			0x110c0100, // Next Header 17 | Hdr Ext Len 12 | PadN(0)
			0x31620000, // IOAM option, 98 B, pre-allocated trace
			0x007b2008, // NS 123 | NodeLen 4 | RemainingLen 8
			0xf0000000, // type 0xf00000
		),
		zeros(32),
		wire(
			0x3e000003, // 0x30: r2: hop limit 62 | node id 3
			0x001f0020, //       ingress 31 | egress 32
			0x6b0951e6, //       seconds
			0x00074544, //       476484 µs
			0x3f000002, // 0x40: r1: hop limit 63 | node id 2
			0x00150016, //       ingress 21 | egress 22
			0x6b0951e6, //       seconds
			0x00074536, //       476470 µs
		),
		docIDWords,
	)
	// server socket, IPV6_RECVHOPOPTS cmsg: after the server's own write, RemLen 4.
	dumpS4ServerSocket = cat(
		wire(
			0x110c0100, // Next Header 17 | Hdr Ext Len 12 | PadN(0)
			0x31620000, // IOAM option, 98 B, pre-allocated trace
			0x007b2004, // NS 123 | NodeLen 4 | RemainingLen 4
			0xf0000000, // type 0xf00000
		),
		zeros(16),
		wire(
			0x3d000004, // 0x20: server: hop limit 61 | node id 4
			0x0028ffff, //       ingress 40 | egress 0xffff (local delivery)
			0x6b0951e6, //       seconds
			0x0007454f, //       476495 µs
			0x3e000003, // 0x30: r2
			0x001f0020, //
			0x6b0951e6, //
			0x00074544, //
			0x3f000002, // 0x40: r1
			0x00150016, //
			0x6b0951e6, //
			0x00074536, //
		),
		docIDWords, // 0x50: IDs intact
	)
)

var (
	s4R1     = basicNode(63, 2, 21, 22, 0x6b0951e6, 476470)
	s4R2     = basicNode(62, 3, 31, 32, 0x6b0951e6, 476484)
	s4Server = basicNode(61, 4, 40, 0xffff, 0x6b0951e6, 476495)
)

// §5: 3 IOAM hops (r1, r2, server), read from the server socket.
var (
	// (b) tail, 1 slot: overflow at r2, only r1 fitted.
	dumpS5TailSlots1 = cat(
		wire(
			0x11060100, // Next Header 17 | Hdr Ext Len 6 (56 B) | PadN(0)
			0x31320000, // IOAM option, Opt Data Len 50 | pre-allocated trace
			0x007b2400, // NS 123 | NodeLen 4 + Overflow (0x24) | RemainingLen 0
			0xf0000000, // type 0xf00000
			0x3f000002, // 0x10: r1: hop limit 63 | node id 2
			0x00150016, //       ingress 21 | egress 22
			0x6b0951f1, //       seconds
			0x0006056d, //       394605 µs
		),
		docIDWords, // 0x20: IDs
	)
	// (o) IDs in a separate option 0x1E before IOAM (IOAM at offset 28).
	dumpS5Sep0x1E = cat(
		wire(
			0x11061e18, // Next Header 17 | Hdr Ext Len 6 | option 0x1E, 24 data bytes
		),
		docIDWords, // option 0x1E data: the IDs
		wire(
			0x311a0000, // 0x1c: IOAM option, Opt Data Len 26 | pre-allocated trace
			0x007b2400, // NS 123 | NodeLen 4 + Overflow | RemainingLen 0
			0xf0000000, // type 0xf00000
			0x3f000002, // r1: hop limit 63 | node id 2
			0x00150016, //     ingress 21 | egress 22
			0x6b0951f5, //     seconds
			0x00089cb4, //     564404 µs
		),
	)
	// (c) oss, 2 transit slots: overflow at the server.
	dumpS5OSSSlots2 = cat(
		wire(
			0x110c0100, // Next Header 17 | Hdr Ext Len 12 (104 B) | PadN(0)
			0x315e0000, // IOAM option, Opt Data Len 94 | pre-allocated trace
			0x007b2400, // NS 123 | NodeLen 4 + Overflow | RemainingLen 0
			0xf0000200, // type 0xf00002 (bits 0-3 + 22) | reserved
			0x3e000003, // 0x10: r2: hop limit 62 | node id 3
			0x001f0020, //       ingress 31 | egress 32
			0x6b0951fa, //       seconds
			0x000b872b, //       755499 µs
			0x00ffffff, //       empty snapshot: Length 0, Schema ID 0xffffff
			0x3f000002, // 0x24: r1: hop limit 63 | node id 2
			0x00150016, //       ingress 21 | egress 22
			0x6b0951fa, //       seconds
			0x000b871a, //       755482 µs
			0x00ffffff, //       empty snapshot
			0x40000001, // 0x38: client's own entry (written by the Go sender): hop limit 64 | node id 1
			0xffff000a, //       ingress 0xffff | egress 10
			0x6b0951fa, //       seconds
			0x000b862a, //       755242 µs
			0x06000c17, // 0x48: snapshot Length 6 words | Schema ID 0x000c17
		),
		docIDWords, // trace id, span id
		wire(
			0x01020000, // 0x64: PadN(2), total a multiple of 8
		),
	)
	// (a) clt-v1 layout, 3 slots, on a stock kernel. The dump shows the trace
	// data only (HBH 0x10 on); the first 16 B are reconstructed from §5's
	// description: 24 B IDs + 48 B area, Opt Data Len 82, RemLen 12 → 0.
	dumpS5CLTv1Slots3 = cat(
		wire(
			0x110a0100, // Next Header 17 | Hdr Ext Len 10 (88 B) | PadN(0)   (reconstructed)
			0x31520000, // IOAM option, Opt Data Len 82 | pre-allocated trace  (reconstructed)
			0x007b2000, // NS 123 | NodeLen 4 | RemainingLen 0               (reconstructed)
			0xf0000000, // type 0xf00000                                       (reconstructed)
			0x3d000004, // 0x10: server's entry where trace-id hi+lo were
			0x0028ffff, //
			0x6b0951ef, //
			0x00045880, //
			0x3e000003, // 0x20: r2's entry over the span id + first 8 B of the area
			0x001f0020, //
			0x6b0951ef, //
			0x00045876, //
			0x3f000002, // 0x30: r1's entry
			0x00150016, //
			0x6b0951ef, //
			0x00045867, //
		),
		zeros(24), // 0x40: 24 B never written
	)
)

// §6: ioam6_events on r2, layout b, 3 slots.
var eventS6R2 = EventAttrs{
	NamespaceID: 123,        // attr 1 TRACE_NAMESPACE
	NodeLen:     4,          // attr 2 TRACE_NODELEN
	Type:        0xf0000000, // attr 3 TRACE_TYPE: 0xf00000 << 8
	Data: cat( // attr 4 TRACE_DATA (56 B)
		wire(
			0x3e000003, // r2 (this node, first): hop limit 62 | node id 3
			0x001f0020, //   ingress 31 | egress 32
			0x6b095228, //   seconds
			0x00084c90, //   543888 µs
			0x3f000002, // r1: hop limit 63 | node id 2
			0x00150016, //   ingress 21 | egress 22
			0x6b095228, //   seconds
			0x00084c7f, //   543871 µs
		),
		docIDWords, // IDs (layout b)
	),
}

var (
	tailCC = CarrierConfig{Carrier: CarrierTail}
	ossCC  = CarrierConfig{Carrier: CarrierOSS, SchemaID: DefaultSchemaID}
	cltCC  = CarrierConfig{Carrier: CarrierCLTv1}
)

func TestGoldenDumps(t *testing.T) {
	client := withEmptySnapshot(basicNode(64, 1, 0xffff, 10, 0x6b0951fa, 755242))
	client.Snapshot = Snapshot{Len: 6, SchemaID: DefaultSchemaID, Data: docIDWords}
	tests := []struct {
		name      string
		hbh       []byte
		cc        CarrierConfig
		optOffset int
		header    TraceHeader
		ids       *IDs   // nil: no IDs
		path      []Node // path order
	}{
		{
			name: "s4 r1 ingress", hbh: dumpS4R1Ingress, cc: tailCC, optOffset: 4,
			header: TraceHeader{NamespaceID: 123, NodeLen: 4, RemainingLen: 16, Type: typeBasic},
			ids:    &docIDs,
		},
		{
			name: "s4 r1 egress", hbh: dumpS4R1Egress, cc: tailCC, optOffset: 4,
			header: TraceHeader{NamespaceID: 123, NodeLen: 4, RemainingLen: 12, Type: typeBasic},
			ids:    &docIDs, path: []Node{s4R1},
		},
		{
			name: "s4 server ingress", hbh: dumpS4ServerIngress, cc: tailCC, optOffset: 4,
			header: TraceHeader{NamespaceID: 123, NodeLen: 4, RemainingLen: 8, Type: typeBasic},
			ids:    &docIDs, path: []Node{s4R1, s4R2},
		},
		{
			name: "s4 server socket", hbh: dumpS4ServerSocket, cc: tailCC, optOffset: 4,
			header: TraceHeader{NamespaceID: 123, NodeLen: 4, RemainingLen: 4, Type: typeBasic},
			ids:    &docIDs, path: []Node{s4R1, s4R2, s4Server},
		},
		{
			name: "s5 b tail slots 1 overflow", hbh: dumpS5TailSlots1, cc: tailCC, optOffset: 4,
			header: TraceHeader{NamespaceID: 123, NodeLen: 4, Overflow: true, Type: typeBasic},
			ids:    &docIDs, path: []Node{basicNode(63, 2, 21, 22, 0x6b0951f1, 394605)},
		},
		{
			// The IDs travel in option 0x1E, which is not a carrier: the trace has none.
			name: "s5 o separate option", hbh: dumpS5Sep0x1E, cc: ossCC, optOffset: 28,
			header: TraceHeader{NamespaceID: 123, NodeLen: 4, Overflow: true, Type: typeBasic},
			path:   []Node{basicNode(63, 2, 21, 22, 0x6b0951f5, 564404)},
		},
		{
			name: "s5 c oss slots 2 overflow", hbh: dumpS5OSSSlots2, cc: ossCC, optOffset: 4,
			header: TraceHeader{NamespaceID: 123, NodeLen: 4, Overflow: true, Type: typeBasic | BitOpaqueStateSnapshot},
			ids:    &docIDs,
			path: []Node{
				client,
				withEmptySnapshot(basicNode(63, 2, 21, 22, 0x6b0951fa, 755482)),
				withEmptySnapshot(basicNode(62, 3, 31, 32, 0x6b0951fa, 755499)),
			},
		},
		{
			// Stock kernels overwrite clt-v1's IDs: what decodes as "IDs" is the
			// server's entry and half of r2's, and the area holds shifted
			// halves. This is why clt-v1 is never encoded by default.
			name: "s5 a clt-v1 on a stock kernel", hbh: dumpS5CLTv1Slots3, cc: cltCC, optOffset: 4,
			header: TraceHeader{NamespaceID: 123, NodeLen: 4, Type: typeBasic},
			ids: &IDs{
				TraceID: [16]byte{0x3d, 0, 0, 4, 0, 0x28, 0xff, 0xff, 0x6b, 0x09, 0x51, 0xef, 0, 0x04, 0x58, 0x80},
				SpanID:  [8]byte{0x3e, 0, 0, 3, 0, 0x1f, 0, 0x20},
			},
			path: []Node{
				{Fields: typeBasic},                                               // the 24 never-written bytes, seen as zero entries
				basicNode(0x6b, 0x0951ef, 0x0004, 0x5867, 0, 0),                   // r1's second half + 8 zero bytes
				basicNode(0x6b, 0x0951ef, 0x0004, 0x5876, 0x3f000002, 0x00150016), // r2's second half + r1's first
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt, off, err := FindIOAMOption(tt.hbh)
			require.NoError(t, err)
			assert.Equal(t, tt.optOffset, off)
			tr, err := DecodeTrace(opt, tt.cc)
			require.NoError(t, err)
			assert.Equal(t, tt.header, tr.Header)
			assert.Equal(t, tt.header.Overflow, tr.Overflow())
			assert.Equal(t, tt.ids != nil, tr.HasIDs)
			if tt.ids != nil {
				assert.Equal(t, *tt.ids, tr.IDs)
			}
			assert.Equal(t, len(tt.path), tr.Hops())
			if d := cmp.Diff(tt.path, pathNodes(t, &tr), nodeCmp); d != "" {
				t.Errorf("path (-want +got):\n%s", d)
			}
			newest, ok := tr.Newest()
			require.Equal(t, len(tt.path) > 0, ok)
			if ok {
				assert.Empty(t, cmp.Diff(tt.path[len(tt.path)-1], newest, nodeCmp))
			}
			// Re-encoding the option gives back the same bytes (every dump's
			// unused area is zero).
			re, err := tr.AppendOption(nil)
			require.NoError(t, err)
			assert.Equal(t, opt, re)
		})
	}
}

// The server socket dump of §4 decodes to exactly the documented fields.
func TestGoldenS4Fields(t *testing.T) {
	opt, _, err := FindIOAMOption(dumpS4ServerSocket)
	require.NoError(t, err)
	tr, err := DecodeTrace(opt, tailCC)
	require.NoError(t, err)
	var hl, ids, in, eg, us []uint32
	for it := tr.Nodes(); it.Next(); {
		n := it.Node()
		hl = append(hl, uint32(n.HopLimit))
		ids = append(ids, n.NodeID)
		in = append(in, uint32(n.IngressIf))
		eg = append(eg, uint32(n.EgressIf))
		us = append(us, n.TimestampFrac)
	}
	assert.Equal(t, []uint32{63, 62, 61}, hl, "hop limit on arrival − 1")
	assert.Equal(t, []uint32{2, 3, 4}, ids, "node ids in path order")
	assert.Equal(t, []uint32{21, 31, 40}, in)
	assert.Equal(t, []uint32{22, 32, 0xffff}, eg)
	assert.Equal(t, []uint32{476470, 476484, 476495}, us, "microseconds, increasing per hop")
}

// §6: the event r2 sent, decoded with the tail carrier.
func TestGoldenEventS6(t *testing.T) {
	tr, err := DecodeEvent(eventS6R2, tailCC)
	require.NoError(t, err)
	assert.True(t, tr.FromEvent())
	assert.Equal(t, TraceHeader{NamespaceID: 123, NodeLen: 4, Type: typeBasic}, tr.Header)
	assert.True(t, tr.HasIDs)
	assert.Equal(t, docIDs, tr.IDs)
	assert.Equal(t, 2, tr.Hops())
	want := []Node{
		basicNode(63, 2, 21, 22, 0x6b095228, 543871),
		basicNode(62, 3, 31, 32, 0x6b095228, 543888),
	}
	assert.Empty(t, cmp.Diff(want, pathNodes(t, &tr), nodeCmp))
	newest, ok := tr.Newest()
	require.True(t, ok)
	assert.Equal(t, uint32(3), newest.NodeID, "r2 wrote: the newest entry is its own")
	assert.Equal(t, eventS6R2, tr.EventAttrs())
}

// §3.1 and §3.4: the headers the experiments sent, rebuilt by AppendHBH.
func TestGoldenBuilder(t *testing.T) {
	t.Run("s3.1 tail 4 slots 104 B", func(t *testing.T) {
		want := cat(
			wire(
				0x000c0100, // Next Header (kernel overwrites) | Hdr Ext Len 12 | PadN(0)
				0x31620000, // IOAM option, Opt Data Len 98 | pre-allocated trace
				0x007b2010, // NS 123 | NodeLen 4 | RemainingLen 16
				0xf0000000, // type 0xf00000
			),
			zeros(64), // 4 slots x 16 B
			docIDWords,
		)
		spec := HBHSpec{NamespaceID: 123, Type: typeBasic, Slots: 4, Carrier: tailCC}
		got, err := AppendHBH(nil, spec, docIDs)
		require.NoError(t, err)
		assert.Equal(t, want, got)
		n, err := spec.Len()
		require.NoError(t, err)
		assert.Equal(t, 104, n)
		// With Next Header 17 it is exactly what r1 received (§4).
		spec.NextHeader = 17
		got, err = AppendHBH(nil, spec, docIDs)
		require.NoError(t, err)
		assert.Equal(t, dumpS4R1Ingress, got)
	})
	t.Run("s3.4 tc-bpf tail 3 slots 88 B", func(t *testing.T) {
		want := cat(
			wire(
				0x000a0100, // Hdr Ext Len 10 (88 B) | PadN(0)
				0x31520000, // IOAM option, Opt Data Len 82
				0x007b200c, // NS 123 | NodeLen 4 | RemainingLen 12
				0xf0000000, // type 0xf00000
			),
			zeros(48),
			docIDWords,
		)
		got, err := AppendHBH(nil, HBHSpec{NamespaceID: 123, Type: typeBasic, Slots: 3, Carrier: tailCC}, docIDs)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	})
}

// §4 and §5 (b), (c) end to end: build with AppendHBH, let simulated Linux
// nodes write (the algorithm of §5), and compare with the captured bytes.
func TestGoldenKernelSimulation(t *testing.T) {
	t.Run("s4 tail 4 slots", func(t *testing.T) {
		hbh, err := AppendHBH(nil, HBHSpec{NextHeader: 17, NamespaceID: 123, Type: typeBasic, Slots: 4, Carrier: tailCC}, docIDs)
		require.NoError(t, err)
		require.Equal(t, dumpS4R1Ingress, hbh)
		ev := kernelHop(t, hbh, s4R1)
		assert.Equal(t, dumpS4R1Egress, hbh)
		assert.Len(t, ev, 40, "event DATA at r1")
		ev = kernelHop(t, hbh, s4R2)
		assert.Equal(t, dumpS4ServerIngress, hbh)
		assert.Len(t, ev, 56, "event DATA at r2")
		ev = kernelHop(t, hbh, s4Server)
		assert.Equal(t, dumpS4ServerSocket, hbh)
		assert.Len(t, ev, 72, "event DATA at the server")
	})
	t.Run("s5 b tail 1 slot", func(t *testing.T) {
		hbh, err := AppendHBH(nil, HBHSpec{NextHeader: 17, NamespaceID: 123, Type: typeBasic, Slots: 1, Carrier: tailCC}, docIDs)
		require.NoError(t, err)
		r1 := kernelHop(t, hbh, basicNode(63, 2, 21, 22, 0x6b0951f1, 394605))
		r2 := kernelHop(t, hbh, basicNode(62, 3, 31, 32, 0x6b0951f1, 394700))
		s := kernelHop(t, hbh, basicNode(61, 4, 40, 0xffff, 0x6b0951f1, 394800))
		assert.Equal(t, dumpS5TailSlots1, hbh)
		// §6: on overflow r2 and the server report only r1's entry.
		assert.Equal(t, r1, r2)
		assert.Equal(t, r1, s)
		tr, err := DecodeEvent(EventAttrs{NamespaceID: 123, NodeLen: 4, Type: uint32(typeBasic) << 8, Data: s}, tailCC)
		require.NoError(t, err)
		newest, ok := tr.Newest()
		require.True(t, ok)
		assert.NotEqual(t, uint32(4), newest.NodeID, "the server did not write")
	})
	t.Run("s5 c oss 2 slots", func(t *testing.T) {
		spec := HBHSpec{
			NextHeader: 17, NamespaceID: 123, Type: typeBasic, Slots: 2, Carrier: ossCC,
			Own: Node{HopLimit: 64, NodeID: 1, IngressIf: 0xffff, EgressIf: 10, TimestampSec: 0x6b0951fa, TimestampFrac: 755242},
		}
		hbh, err := AppendHBH(nil, spec, docIDs)
		require.NoError(t, err)
		n, err := spec.Len()
		require.NoError(t, err)
		require.Len(t, hbh, n)
		// Before any transit node: RemainingLen 10 = 2 × (NodeLen 4 + 1).
		h := parseHeader(hbh[8:])
		assert.Equal(t, TraceHeader{NamespaceID: 123, NodeLen: 4, RemainingLen: 10, Type: 0xf00002}, h)
		kernelHop(t, hbh, basicNode(63, 2, 21, 22, 0x6b0951fa, 755482))
		r2 := kernelHop(t, hbh, basicNode(62, 3, 31, 32, 0x6b0951fa, 755499))
		s := kernelHop(t, hbh, basicNode(61, 4, 40, 0xffff, 0x6b0951fa, 755510))
		assert.Equal(t, dumpS5OSSSlots2, hbh)
		assert.Equal(t, r2, s, "overflow: the server's event repeats r2's data")
		// The event carries the IDs: the last 24 B, 06000c17 before them.
		assert.Equal(t, docIDWords, s[len(s)-24:])
		assert.Equal(t, wire(0x06000c17), s[len(s)-28:len(s)-24])
		tr, err := DecodeEvent(EventAttrs{NamespaceID: 123, NodeLen: 4, Type: 0xf0000200, Data: s}, ossCC)
		require.NoError(t, err)
		assert.True(t, tr.HasIDs)
		assert.Equal(t, docIDs, tr.IDs)
		assert.Equal(t, 3, tr.Hops())
		var path []uint32
		for it := tr.Nodes(); it.Next(); {
			path = append(path, it.Node().NodeID)
		}
		assert.Equal(t, []uint32{1, 2, 3}, path)
	})
}

// §4 field table: every bit as Linux 6.18 fills it, type 0xFFF002 (bits 0–11
// and 22, NodeLen 15) written by r2, plus bit 12 and a schema snapshot.
func TestGoldenFieldTable(t *testing.T) {
	tests := []struct {
		name string
		typ  TraceType
		b    []byte
		want Node
	}{
		{
			name: "0xfff002 r2",
			typ:  0xFFF002,
			b: wire(
				0x3e000003, // bit 0: hop limit 62 | node id 3
				0x001f0020, // bit 1: ingress 31 | egress 32
				0x6b0951e6, // bit 2: seconds
				0x00074544, // bit 3: microseconds
				0xffffffff, // bit 4: transit delay unavailable
				0x12300003, // bit 5: namespace data (ip ioam namespace add 123 data 0x12300003)
				0x00000000, // bit 6: queue depth 0 (veth, noqueue)
				0xffffffff, // bit 7: checksum complement unavailable
				0x3e000000, // bit 8: hop limit 62 | wide node id (56 bit) ...
				0x01000003, //        ... 0x1000003
				0x0001001f, // bit 9: wide ingress 65567
				0x00010020, //        wide egress 65568
				0x12300000, // bit 10: wide namespace data ...
				0x00000003, //         ... 0x1230000000000003
				0xffffffff, // bit 11: buffer occupancy unavailable
				0x00ffffff, // bit 22: empty snapshot (no schema)
			),
			want: Node{
				Fields: 0xFFF002, HopLimit: 62, NodeID: 3, IngressIf: 31, EgressIf: 32,
				TimestampSec: 0x6b0951e6, TimestampFrac: 476484, TransitDelay: U32Unavailable,
				NamespaceData: 0x12300003, ChecksumComplement: U32Unavailable,
				WideHopLimit: 62, WideNodeID: 0x1000003, WideIngressIf: 65567, WideEgressIf: 65568,
				WideNamespaceData: 0x1230000000000003, BufferOccupancy: U32Unavailable,
				Snapshot: Snapshot{SchemaID: SchemaIDNone},
			},
		},
		{
			name: "bit 12 undefined",
			typ:  BitHopLimitNodeID | BitUndefined12,
			b: wire(
				0x3e000003, // bit 0
				0xffffffff, // bit 12: undefined, filled with 0xffffffff
			),
			want: Node{Fields: BitHopLimitNodeID | BitUndefined12, HopLimit: 62, NodeID: 3,
				Undefined: [10]uint32{U32Unavailable}},
		},
		{
			name: "schema 777 snapshot",
			typ:  BitHopLimitNodeID | BitOpaqueStateSnapshot,
			b: wire(
				0x3e000003, // bit 0
				0x01000309, // bit 22: Length 1 word | Schema ID 777
				0x41424344, //         "ABCD"
			),
			want: Node{Fields: BitHopLimitNodeID | BitOpaqueStateSnapshot, HopLimit: 62, NodeID: 3,
				Snapshot: Snapshot{Len: 1, SchemaID: 777, Data: []byte("ABCD")}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, l, err := DecodeNode(tt.b, tt.typ)
			require.NoError(t, err)
			assert.Equal(t, len(tt.b), l)
			assert.Empty(t, cmp.Diff(tt.want, n, nodeCmp))
			enc, err := AppendNode(nil, &n)
			require.NoError(t, err)
			assert.Equal(t, tt.b, enc)
		})
	}
	assert.Equal(t, 15, TraceType(0xFFF002).NodeLen())
}
