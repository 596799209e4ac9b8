package ioam6

import "testing"

// benchOSS is a 3-hop oss trace with IDs as the destination sees it: the
// client's own entry, r1 and r2, 1 slot spare (docs/wire-format.md §5 (c) shape).
func benchOSS(b *testing.B) []byte {
	spec := HBHSpec{NextHeader: 17, NamespaceID: 123, Type: typeBasic, Slots: 3,
		Own: Node{HopLimit: 64, NodeID: 1, IngressIf: 0xffff, EgressIf: 10, TimestampSec: 0x6b0951fa, TimestampFrac: 755242}}
	hbh, err := AppendHBH(nil, spec, docIDs)
	if err != nil {
		b.Fatal(err)
	}
	kernelHop(b, hbh, basicNode(63, 2, 21, 22, 0x6b0951fa, 755482))
	kernelHop(b, hbh, basicNode(62, 3, 31, 32, 0x6b0951fa, 755499))
	return hbh
}

// BenchmarkDecodeTraceOSS: DecodeTrace of a 3-hop oss option with IDs (goal ≤ 50 ns, 0 allocs).
func BenchmarkDecodeTraceOSS(b *testing.B) {
	opt, _, err := FindIOAMOption(benchOSS(b))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(opt)))
	for b.Loop() {
		tr, err := DecodeTrace(opt, ossCC)
		if err != nil || tr.Hops() != 3 || !tr.HasIDs {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeHBHAndNodesOSS: FindIOAMOption + DecodeTrace + iterating
// the 3 nodes in path order, what a packet-capture source does per packet.
func BenchmarkDecodeHBHAndNodesOSS(b *testing.B) {
	hbh := benchOSS(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(hbh)))
	var sum uint32
	for b.Loop() {
		opt, _, err := FindIOAMOption(hbh)
		if err != nil {
			b.Fatal(err)
		}
		tr, err := DecodeTrace(opt, ossCC)
		if err != nil {
			b.Fatal(err)
		}
		for it := tr.Nodes(); it.Next(); {
			sum += it.Node().NodeID
		}
	}
	if sum == 0 {
		b.Fatal("no nodes")
	}
}

// BenchmarkDecodeEventOSS: DecodeEvent of the same trace as r2's event DATA, plus the node walk.
func BenchmarkDecodeEventOSS(b *testing.B) {
	opt, _, err := FindIOAMOption(benchOSS(b))
	if err != nil {
		b.Fatal(err)
	}
	tr, err := DecodeTrace(opt, ossCC)
	if err != nil {
		b.Fatal(err)
	}
	ev := tr.EventAttrs()
	b.ReportAllocs()
	b.SetBytes(int64(len(ev.Data)))
	for b.Loop() {
		tr, err := DecodeEvent(ev, ossCC)
		if err != nil {
			b.Fatal(err)
		}
		for it := tr.Nodes(); it.Next(); {
			_ = it.Node()
		}
	}
}

// BenchmarkAppendHBHOSS: building an oss header into the caller's buffer (goal ≤ 100 ns, 0 allocs).
func BenchmarkAppendHBHOSS(b *testing.B) {
	spec := HBHSpec{NamespaceID: 123, Type: typeBasic, Slots: 3,
		Own: Node{HopLimit: 64, NodeID: 1, IngressIf: 0xffff, EgressIf: 10, TimestampSec: 0x6b0951fa, TimestampFrac: 755242}}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = AppendHBH(buf[:0], spec, docIDs); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkUpdateIDsOSS: rewriting only the IDs of an existing header (per HTTP request).
func BenchmarkUpdateIDsOSS(b *testing.B) {
	spec := HBHSpec{NamespaceID: 123, Type: typeBasic, Slots: 3}
	hbh, err := AppendHBH(nil, spec, docIDs)
	if err != nil {
		b.Fatal(err)
	}
	ids := docIDs
	b.ReportAllocs()
	for b.Loop() {
		ids.SpanID[7]++
		if err := UpdateIDs(hbh, ossCC, ids); err != nil {
			b.Fatal(err)
		}
	}
}
