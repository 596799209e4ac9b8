package ioam6

// Native fuzz targets for every decoder, seeded from the golden dumps and the
// error tables. Properties: no panic; on error the result is the zero value;
// decode → encode → decode gives an equal value (and the same bytes where
// the encoding is canonical). Run them with scripts/fuzz.sh, or e.g.
//
//	go test -run '^$' -fuzz '^FuzzDecodeTrace$' -fuzztime 10s ./kernel/ioam6/

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var goldenHBH = [][]byte{
	dumpS4R1Ingress, dumpS4R1Egress, dumpS4ServerIngress, dumpS4ServerSocket,
	dumpS5TailSlots1, dumpS5Sep0x1E, dumpS5OSSSlots2, dumpS5CLTv1Slots3,
}

var fuzzCarriers = []CarrierConfig{ossCC, tailCC, cltCC}

func fuzzCC(carrier uint8, schema uint32) CarrierConfig {
	return CarrierConfig{Carrier: Carrier(carrier % 4), SchemaID: schema & 0x1FFFFFF} // includes invalid ones
}

var traceCmp = cmp.Options{cmp.AllowUnexported(Trace{})}

// checkTraceRoundTrip re-encodes a decoded trace as an option and as an event
// and checks both decode to the same trace.
func checkTraceRoundTrip(t *testing.T, tr *Trace, cc CarrierConfig) {
	t.Helper()
	nodes := pathNodes(t, tr)
	if tr.Hops() != len(nodes) {
		t.Fatalf("Hops() = %d, iterator gave %d", tr.Hops(), len(nodes))
	}
	if newest, ok := tr.Newest(); ok != (len(nodes) > 0) || ok && !cmp.Equal(newest, nodes[len(nodes)-1], nodeCmp) {
		t.Fatalf("Newest() = %+v, %v; path %+v", newest, ok, nodes)
	}
	for _, n := range nodes {
		enc, err := AppendNode(nil, &n)
		if err != nil {
			t.Fatalf("AppendNode(decoded node): %v", err)
		}
		if enc == nil && n.Len() != 0 || len(enc) != n.Len() {
			t.Fatalf("AppendNode length %d, Len() %d", len(enc), n.Len())
		}
	}
	if !tr.FromEvent() {
		opt, err := tr.AppendOption(nil)
		if err != nil {
			t.Fatalf("AppendOption: %v", err)
		}
		tr2, err := DecodeTrace(opt, cc)
		if err != nil {
			t.Fatalf("DecodeTrace(AppendOption): %v", err)
		}
		if tr2.Header != tr.Header || tr2.IDs != tr.IDs || tr2.HasIDs != tr.HasIDs || tr2.Hops() != tr.Hops() ||
			!bytes.Equal(tr2.NodeData(), tr.NodeData()) {
			t.Fatalf("option round trip:\n%+v\n%+v", tr, &tr2)
		}
		if d := cmp.Diff(nodes, pathNodes(t, &tr2), nodeCmp); d != "" {
			t.Fatalf("option round trip nodes (-first +second):\n%s", d)
		}
		opt2, err := tr2.AppendOption(nil)
		if err != nil || !bytes.Equal(opt, opt2) {
			t.Fatalf("option re-encoding differs: %v\n%x\n%x", err, opt, opt2)
		}
	}
	ev, err := DecodeEvent(tr.EventAttrs(), cc)
	if err != nil {
		t.Fatalf("DecodeEvent(EventAttrs): %v", err)
	}
	if cc.Carrier != CarrierCLTv1 && (ev.IDs != tr.IDs || ev.HasIDs != tr.HasIDs) {
		t.Fatalf("event round trip IDs: %+v %v, want %+v %v", ev.IDs, ev.HasIDs, tr.IDs, tr.HasIDs)
	}
	if d := cmp.Diff(nodes, pathNodes(t, &ev), nodeCmp); d != "" {
		t.Fatalf("event round trip nodes (-trace +event):\n%s", d)
	}
}

func FuzzFindIOAMOption(f *testing.F) {
	for _, b := range goldenHBH {
		f.Add(b)
	}
	for _, tt := range findOptionErrorTests {
		f.Add(tt.hbh)
	}
	f.Fuzz(func(t *testing.T, hbh []byte) {
		opt, off, err := FindIOAMOption(hbh)
		if err != nil {
			if opt != nil || off != 0 {
				t.Fatalf("error %v with opt %x, offset %d", err, opt, off)
			}
			return
		}
		if off%4 != 0 || len(opt) < 2 || opt[0] != IPv6OptionIOAM || len(opt) != 2+int(opt[1]) ||
			off+len(opt) > (int(hbh[1])+1)*8 || !bytes.Equal(hbh[off:off+len(opt)], opt) {
			t.Fatalf("bad option %x at %d in %x", opt, off, hbh)
		}
		for _, cc := range fuzzCarriers {
			tr, err := DecodeTrace(opt, cc)
			if err != nil {
				if !cmp.Equal(tr, Trace{}, traceCmp) {
					t.Fatalf("error %v with a non-zero trace", err)
				}
				continue
			}
			checkTraceRoundTrip(t, &tr, cc)
		}
	})
}

func FuzzDecodeTrace(f *testing.F) {
	for _, b := range goldenHBH {
		opt, _, err := FindIOAMOption(b)
		if err != nil {
			f.Fatal(err)
		}
		for _, cc := range fuzzCarriers {
			f.Add(opt, uint8(cc.Carrier), cc.SchemaID)
		}
	}
	for _, tt := range decodeTraceErrorTests {
		f.Add(tt.opt, uint8(tt.cc.Carrier), tt.cc.SchemaID)
	}
	f.Fuzz(func(t *testing.T, opt []byte, carrier uint8, schema uint32) {
		cc := fuzzCC(carrier, schema)
		tr, err := DecodeTrace(opt, cc)
		if err != nil {
			if !cmp.Equal(tr, Trace{}, traceCmp) {
				t.Fatalf("error %v with a non-zero trace", err)
			}
			return
		}
		if 4*int(tr.Header.RemainingLen)+len(tr.NodeData()) > len(opt) {
			t.Fatalf("RemainingLen %d and %d node bytes exceed %d input bytes", tr.Header.RemainingLen, len(tr.NodeData()), len(opt))
		}
		checkTraceRoundTrip(t, &tr, cc)
	})
}

func FuzzDecodeEvent(f *testing.F) {
	f.Add(eventS6R2.NamespaceID, eventS6R2.NodeLen, eventS6R2.Type, eventS6R2.Data, uint8(CarrierTail), uint32(0))
	f.Add(uint16(123), uint8(4), uint32(0xf0000200), dumpS5OSSSlots2[16:100], uint8(CarrierOSS), uint32(DefaultSchemaID))
	for _, tt := range decodeEventErrorTests {
		f.Add(tt.ev.NamespaceID, tt.ev.NodeLen, tt.ev.Type, tt.ev.Data, uint8(tt.cc.Carrier), tt.cc.SchemaID)
	}
	f.Fuzz(func(t *testing.T, ns uint16, nodeLen uint8, typ uint32, data []byte, carrier uint8, schema uint32) {
		cc := fuzzCC(carrier, schema)
		tr, err := DecodeEvent(EventAttrs{NamespaceID: ns, NodeLen: nodeLen, Type: typ, Data: data}, cc)
		if err != nil {
			if !cmp.Equal(tr, Trace{}, traceCmp) {
				t.Fatalf("error %v with a non-zero trace", err)
			}
			return
		}
		ev := tr.EventAttrs()
		if ev.NamespaceID != ns || ev.NodeLen != nodeLen || ev.Type != typ&^0xFF {
			t.Fatalf("EventAttrs() = %+v", ev)
		}
		if cc.Carrier != CarrierCLTv1 && !bytes.Equal(ev.Data, data) {
			t.Fatalf("event data re-encoding differs:\n%x\n%x", data, ev.Data)
		}
		checkTraceRoundTrip(t, &tr, cc)
	})
}

func FuzzDecodeNode(f *testing.F) {
	f.Add(dumpS4ServerSocket[32:48], uint32(typeBasic))
	f.Add(dumpS5OSSSlots2[16:36], uint32(typeBasic|BitOpaqueStateSnapshot))
	f.Add(dumpS5OSSSlots2[56:100], uint32(typeBasic|BitOpaqueStateSnapshot))
	full := fullNode(TypeFull)
	fb, _ := AppendNode(nil, &full)
	f.Add(fb, uint32(TypeFull))
	for _, tt := range decodeNodeErrorTests {
		f.Add(tt.b, uint32(tt.typ))
	}
	f.Fuzz(func(t *testing.T, b []byte, typ uint32) {
		n, l, err := DecodeNode(b, TraceType(typ))
		if err != nil {
			if l != 0 || !cmp.Equal(n, Node{}) {
				t.Fatalf("error %v with %+v, %d", err, n, l)
			}
			return
		}
		if l > len(b) || l != n.Len() {
			t.Fatalf("length %d, Len() %d, input %d", l, n.Len(), len(b))
		}
		enc, err := AppendNode(nil, &n)
		if err != nil {
			t.Fatalf("AppendNode(decoded): %v", err)
		}
		if !bytes.Equal(enc, b[:l]) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b[:l], enc)
		}
		n2, l2, err := DecodeNode(enc, n.Fields)
		if err != nil || l2 != l || !cmp.Equal(n, n2, nodeCmp) {
			t.Fatalf("round trip: %v %d\n%+v\n%+v", err, l2, n, n2)
		}
	})
}

func FuzzUnmarshalTraceHeader(f *testing.F) {
	for _, b := range goldenHBH {
		f.Add(b[8:16])
	}
	f.Add(wire(0xBEEFCC7F, 0xFFFFFFFF))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		var h TraceHeader
		if err := h.UnmarshalBinary(b); err != nil {
			if h != (TraceHeader{}) || len(b) >= TraceHeaderLen {
				t.Fatalf("error %v with %+v for %d bytes", err, h, len(b))
			}
			return
		}
		enc, err := h.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary(decoded): %v", err)
		}
		// Equal to the input except the reserved flags and octet (zeroed).
		want := append([]byte(nil), b[:TraceHeaderLen]...)
		want[2] &^= 0x03
		want[3] &^= 0x80
		want[7] = 0
		if !bytes.Equal(enc, want) {
			t.Fatalf("re-encoding differs:\n%x\n%x", want, enc)
		}
		var h2 TraceHeader
		if err := h2.UnmarshalBinary(enc); err != nil || h2 != h {
			t.Fatalf("round trip: %v %+v %+v", err, h, h2)
		}
	})
}

func FuzzAppendHBH(f *testing.F) {
	f.Add(uint8(17), uint16(123), uint32(typeBasic), 2, uint8(CarrierOSS), uint32(0), false, docIDWords, uint32(1))
	f.Add(uint8(0), uint16(123), uint32(typeBasic), 4, uint8(CarrierTail), uint32(0), false, docIDWords, uint32(0))
	f.Add(uint8(6), uint16(7), uint32(TypeFull), 1, uint8(CarrierCLTv1), uint32(0), true, docIDWords, uint32(9))
	f.Add(uint8(6), uint16(7), uint32(0), 0, uint8(CarrierOSS), uint32(0xfff), true, docIDWords[:3], uint32(9))
	f.Fuzz(func(t *testing.T, nh uint8, ns uint16, typ uint32, slots int, carrier uint8, schema uint32, short bool, idb []byte, own uint32) {
		var ids IDs
		copy(ids.TraceID[:], idb)
		if len(idb) > 16 {
			copy(ids.SpanID[:], idb[16:])
		}
		if ids.Short = short; short {
			clear(ids.TraceID[:8])
		}
		spec := HBHSpec{NextHeader: nh, NamespaceID: ns, Type: TraceType(typ), Slots: slots, Carrier: fuzzCC(carrier, schema),
			Own: fullNode(0)}
		spec.Own.NodeID = own
		dst := []byte{0xEE}
		hbh, err := AppendHBH(dst, spec, ids)
		n, lerr := spec.LenFor(ids)
		if err != nil {
			if !bytes.Equal(hbh, dst) {
				t.Fatalf("error %v but dst changed", err)
			}
			return
		}
		hbh = hbh[1:]
		if lerr != nil || n != len(hbh) || len(hbh)%8 != 0 {
			t.Fatalf("LenFor = %d, %v; built %d bytes", n, lerr, len(hbh))
		}
		opt, _, err := FindIOAMOption(hbh)
		if err != nil {
			t.Fatalf("FindIOAMOption(AppendHBH): %v", err)
		}
		tr, err := DecodeTrace(opt, spec.Carrier)
		if err != nil {
			t.Fatalf("DecodeTrace(AppendHBH): %v", err)
		}
		want := ids
		if spec.Carrier.Carrier != CarrierOSS {
			want.Short = false
		}
		if !tr.HasIDs || tr.IDs != want || tr.Header.NamespaceID != ns {
			t.Fatalf("decoded %+v, want IDs %+v", tr, want)
		}
		checkTraceRoundTrip(t, &tr, spec.Carrier)
	})
}
