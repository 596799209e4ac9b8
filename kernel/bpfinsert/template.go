package bpfinsert

import (
	"bytes"
	"fmt"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// ownHopLimit is what kernel/clt writes in the sender's own entry: the
// packet has not been forwarded yet.
const ownHopLimit = 64

// ownEntry fills the sender's own entry as kernel/clt does (Linux's
// "unavailable" all-ones for what a host does not know, ingress 0xFFFF since
// the packet originates here, egress the device's ioam6_id).
func ownEntry(nodeID uint32, wide uint64, egress uint16, egressWide uint32) ioam6.Node {
	n := ioam6.Node{
		HopLimit: ownHopLimit, NodeID: nodeID,
		IngressIf: ioam6.IfIDUnavailable, EgressIf: egress,
		TransitDelay: ioam6.U32Unavailable, NamespaceData: ioam6.U32Unavailable, QueueDepth: ioam6.U32Unavailable,
		ChecksumComplement: ioam6.U32Unavailable,
		WideHopLimit:       ownHopLimit, WideNodeID: wide,
		WideIngressIf: ioam6.WideIfIDUnavailable, WideEgressIf: egressWide,
		WideNamespaceData: ioam6.U64Unavailable,
		BufferOccupancy:   ioam6.U32Unavailable,
	}
	for i := range n.Undefined {
		n.Undefined[i] = ioam6.U32Unavailable
	}
	return n
}

// buildTemplate returns the header the program copies for IDs of the given
// shortness: AppendHBH's bytes with zero IDs and timestamps, and where the
// program patches the IDs and the timestamp. The positions are found by
// building the header again with other values and comparing, so the layout
// knowledge stays in kernel/ioam6.
func buildTemplate(spec ioam6.HBHSpec, short bool) (bpfTmpl, error) {
	var t bpfTmpl
	if spec.Carrier.Carrier != ioam6.CarrierOSS {
		short = false // tail and clt-v1 always carry 16 bytes of trace ID
	}
	spec.Own.TimestampSec, spec.Own.TimestampFrac = 0, 0
	ids := ioam6.IDs{Short: short}
	base, err := ioam6.AppendHBH(nil, spec, ids)
	if err != nil {
		return t, fmt.Errorf("bpfinsert: header: %w", err)
	}
	if len(base) > maxHdr {
		return t, fmt.Errorf("bpfinsert: header of %d bytes exceeds %d", len(base), maxHdr)
	}
	other := ids
	for i := range other.TraceID {
		if !short || i >= 8 {
			other.TraceID[i] = 0xff
		}
	}
	for i := range other.SpanID {
		other.SpanID[i] = 0xff
	}
	b, err := ioam6.AppendHBH(nil, spec, other)
	if err != nil {
		return t, fmt.Errorf("bpfinsert: header: %w", err)
	}
	off, n := diffRun(base, b)
	want := ioam6.IDLen
	if short && spec.Carrier.Carrier == ioam6.CarrierOSS {
		want = ioam6.ShortIDLen
	}
	if n != want {
		return t, fmt.Errorf("bpfinsert: ids found at %d+%d, want %d bytes", off, n, want)
	}
	t.IDsOff, t.IDsLen = uint16(off), uint16(n)
	if spec.Carrier.Carrier == ioam6.CarrierOSS {
		for _, f := range []struct {
			set func(*ioam6.HBHSpec)
			dst *uint16
		}{
			{func(s *ioam6.HBHSpec) { s.Own.TimestampSec = 0xffffffff }, &t.TSSecOff},
			{func(s *ioam6.HBHSpec) { s.Own.TimestampFrac = 0xffffffff }, &t.TSFracOff},
		} {
			s := spec
			f.set(&s)
			b, err := ioam6.AppendHBH(nil, s, ids)
			if err != nil {
				return t, fmt.Errorf("bpfinsert: header: %w", err)
			}
			off, n := diffRun(base, b)
			switch n {
			case 0: // the trace type has no such field
			case 4:
				*f.dst = uint16(off)
			default:
				return t, fmt.Errorf("bpfinsert: timestamp found at %d+%d, want 4 bytes", off, n)
			}
		}
	}
	copy(t.Hdr[:], base)
	t.Len = uint16(len(base))
	return t, nil
}

// diffRun returns the offset and length of the span where a and b differ.
func diffRun(a, b []byte) (off, n int) {
	if len(a) != len(b) || bytes.Equal(a, b) {
		return 0, 0
	}
	first, last := -1, -1
	for i := range a {
		if a[i] != b[i] {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	return first, last - first + 1
}
