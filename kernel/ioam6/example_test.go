package ioam6_test

import (
	"encoding/hex"
	"fmt"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// Decode the Hop-by-Hop header a destination received (docs/wire-format.md §5 (c):
// oss carrier, 2 transit slots, overflow at the server).
func ExampleDecodeTrace() {
	hbh, _ := hex.DecodeString("" +
		"110c0100315e0000007b2400f0000200" + // HBH, IOAM option, trace header (type 0xf00002, overflow)
		"3e000003001f00206b0951fa000b872b00ffffff" + // r2 + empty snapshot
		"3f000002001500166b0951fa000b871a00ffffff" + // r1 + empty snapshot
		"40000001ffff000a6b0951fa000b862a" + // the client's own entry
		"06000c170123456789abcdeffedcba98765432105a5a000000000000" + // its snapshot: the IDs
		"01020000") // PadN
	opt, _, err := ioam6.FindIOAMOption(hbh)
	if err != nil {
		panic(err)
	}
	tr, err := ioam6.DecodeTrace(opt, ioam6.CarrierConfig{Carrier: ioam6.CarrierOSS})
	if err != nil {
		panic(err)
	}
	fmt.Printf("ns %d type %s hops %d overflow %v\n", tr.Header.NamespaceID, tr.Header.Type, tr.Hops(), tr.Overflow())
	fmt.Printf("trace %x span %x\n", tr.IDs.TraceID, tr.IDs.SpanID)
	for it := tr.Nodes(); it.Next(); {
		n := it.Node()
		fmt.Printf("hop %d: node %d hlim %d in %#x out %#x t %d.%06d\n",
			it.Index(), n.NodeID, n.HopLimit, n.IngressIf, n.EgressIf, n.TimestampSec, n.TimestampFrac)
	}
	// Output:
	// ns 123 type 0xf00002 hops 3 overflow true
	// trace 0123456789abcdeffedcba9876543210 span 5a5a000000000000
	// hop 0: node 1 hlim 64 in 0xffff out 0xa t 1795772922.755242
	// hop 1: node 2 hlim 63 in 0x15 out 0x16 t 1795772922.755482
	// hop 2: node 3 hlim 62 in 0x1f out 0x20 t 1795772922.755499
}

// Decode an ioam6_events message (docs/wire-format.md §6, r2, tail carrier) and
// tell whether the reporting node wrote its entry.
func ExampleDecodeEvent() {
	data, _ := hex.DecodeString("" +
		"3e000003001f00206b09522800084c90" + // r2 (newest first)
		"3f000002001500166b09522800084c7f" + // r1
		"0123456789abcdeffedcba98765432105a5a000000000000") // IDs
	ev := ioam6.EventAttrs{NamespaceID: 123, NodeLen: 4, Type: 0xf0000000, Data: data}
	tr, err := ioam6.DecodeEvent(ev, ioam6.CarrierConfig{Carrier: ioam6.CarrierTail})
	if err != nil {
		panic(err)
	}
	const localNodeID = 3 // net.ipv6.ioam6_id of the reporting node
	newest, ok := tr.Newest()
	fmt.Println("hops:", tr.Hops(), "local node wrote:", ok && newest.NodeID == localNodeID)
	// Output:
	// hops: 2 local node wrote: true
}

// Build the header an application sets with IPV6_HOPOPTS.
func ExampleAppendHBH() {
	spec := ioam6.HBHSpec{
		NamespaceID: 123,
		Type:        ioam6.BitHopLimitNodeID | ioam6.BitIfIDs | ioam6.BitTimestampSec | ioam6.BitTimestampFrac,
		Slots:       2,
		Own:         ioam6.Node{HopLimit: 64, NodeID: 1, IngressIf: ioam6.IfIDUnavailable, EgressIf: 10},
	}
	ids := ioam6.IDs{TraceID: [16]byte{15: 1}, SpanID: [8]byte{7: 2}}
	buf := make([]byte, 0, 128)
	hbh, err := ioam6.AppendHBH(buf, spec, ids)
	if err != nil {
		panic(err)
	}
	fmt.Println(len(hbh), hex.EncodeToString(hbh[:16]))
	// Output:
	// 104 000c0100315e0000007b200af0000200
}
