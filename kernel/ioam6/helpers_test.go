package ioam6

import (
	"encoding/binary"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// wire returns 32-bit wire words as big-endian bytes, so fixtures read one
// wire word per line like the dumps in docs/wire-format.md.
func wire(words ...uint32) []byte {
	b := make([]byte, 0, 4*len(words))
	for _, w := range words {
		b = binary.BigEndian.AppendUint32(b, w)
	}
	return b
}

// cat concatenates byte slices into a new slice.
func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// zeros returns n zero bytes.
func zeros(n int) []byte { return make([]byte, n) }

// nodeCmp compares Nodes treating a nil and an empty Snapshot.Data alike.
var nodeCmp = cmp.Options{cmpopts.EquateEmpty()}

// pathNodes collects a trace's nodes in path order and fails on an iterator error.
func pathNodes(t testing.TB, tr *Trace) []Node {
	t.Helper()
	var out []Node
	it := tr.Nodes()
	for it.Next() {
		if it.Index() != len(out) {
			t.Fatalf("Index() = %d, want %d", it.Index(), len(out))
		}
		out = append(out, it.Node())
	}
	if err := it.Err(); err != nil {
		t.Fatalf("node iterator: %v", err)
	}
	return out
}

// The trace context of every experiment in docs/wire-format.md §1.
var docIDs = IDs{
	TraceID: [16]byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10},
	SpanID:  [8]byte{0x5a, 0x5a},
}

// docIDWords is docIDs on the wire (trace id hi, lo, span id).
var docIDWords = wire(
	0x01234567, 0x89abcdef, // trace id (hi)
	0xfedcba98, 0x76543210, // trace id (lo)
	0x5a5a0000, 0x00000000, // span id
)

// kernelHop mimics one Linux IOAM node (net/ipv6/exthdrs.c ipv6_hop_ioam and
// net/ipv6/ioam6.c ioam6_fill_trace_data, docs/wire-format.md §5) on a Hop-by-Hop
// header in place: it writes n (with the header's trace type; an empty
// snapshot 00ffffff unless n has one) at data + (RemLen − NodeLen − sclen)·4,
// lowers RemLen, or sets Overflow when there is no room. It returns the
// IOAM6_EVENT_ATTR_TRACE_DATA the kernel would then send (a copy).
func kernelHop(t testing.TB, hbh []byte, n Node) []byte {
	t.Helper()
	opt, _, err := FindIOAMOption(hbh)
	if err != nil {
		t.Fatalf("kernel hop: %v", err)
	}
	h := parseHeader(opt[optTraceHdrOff:])
	data := opt[optTraceDataOff:]
	if 4*int(h.RemainingLen) > len(data) || int(h.NodeLen) != h.Type.NodeLen() {
		t.Fatalf("kernel hop: the kernel would drop this packet: %+v, %d data bytes", h, len(data))
	}
	n.Fields = h.Type &^ BitReserved
	sclen := 0
	if n.Fields&BitOpaqueStateSnapshot != 0 {
		if n.Snapshot.Data == nil && n.Snapshot.Len == 0 && n.Snapshot.SchemaID == 0 {
			n.Snapshot.SchemaID = SchemaIDNone
		}
		sclen = 1 + int(n.Snapshot.Len)
	}
	switch {
	case h.Overflow:
	case int(h.RemainingLen) < int(h.NodeLen)+sclen:
		opt[optTraceHdrOff+hdrNodeLenOff] |= overflowMask
	default:
		at := 4 * (int(h.RemainingLen) - int(h.NodeLen) - sclen)
		enc, err := AppendNode(nil, &n)
		if err != nil {
			t.Fatalf("kernel hop: %v", err)
		}
		copy(data[at:], enc)
		opt[optTraceHdrOff+hdrRemLenOff] = h.RemainingLen - uint8(h.NodeLen) - uint8(sclen)
	}
	h = parseHeader(opt[optTraceHdrOff:])
	return append([]byte(nil), data[4*int(h.RemainingLen):]...)
}
