package agent

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// Trace types of the table tests; the oss carrier needs bit 22 in each.
const (
	typeWideOnly     = ioam6.BitWideHopLimitNodeID | ioam6.BitWideIfIDs | ioam6.BitOpaqueStateSnapshot // 0x00c002
	typeShortAndWide = ioam6.BitHopLimitNodeID | ioam6.BitIfIDs | ioam6.BitWideHopLimitNodeID | ioam6.BitOpaqueStateSnapshot
	typeSnapshotOnly = ioam6.BitOpaqueStateSnapshot // 0x000002
	// typeAllDefined is every defined field, bits 0-11 and 22 (0xfff002):
	// three entries fill 216 of the 244 bytes an option holds.
	typeAllDefined = ioam6.TraceType(0xFFF000) | ioam6.BitOpaqueStateSnapshot
)

// wideOf is the wide node id netnstest.Chain gives node id.
func wideOf(id uint32) uint64 { return 0x1000000 + uint64(id) }

// linuxEntry is what Linux writes for node id with trace type t (kernel
// defaults for what it cannot fill, no schema).
func linuxEntry(t ioam6.TraceType, id uint32, hlim uint8) ioam6.Node {
	n := ioam6.Node{
		Fields: t, HopLimit: hlim, NodeID: id, IngressIf: uint16(id*10 + 1), EgressIf: uint16(id*10 + 2),
		TimestampSec: 1700000000, TimestampFrac: 100 * id, TransitDelay: ioam6.U32Unavailable,
		NamespaceData: 0x12300000 + id, QueueDepth: 0, ChecksumComplement: ioam6.U32Unavailable,
		WideHopLimit: hlim, WideNodeID: wideOf(id), WideIngressIf: 0x10000 + id*10 + 1, WideEgressIf: 0x10000 + id*10 + 2,
		WideNamespaceData: 0x1230000000000000 + uint64(id), BufferOccupancy: ioam6.U32Unavailable,
		Snapshot: ioam6.Snapshot{SchemaID: ioam6.SchemaIDNone},
	}
	for i := range n.Undefined {
		n.Undefined[i] = ioam6.U32Unavailable
	}
	return n
}

// hostEntry is the sender's own entry of type t holding the IDs (oss).
func hostEntry(t ioam6.TraceType, id uint32) ioam6.Node {
	n := linuxEntry(t, id, 64)
	n.IngressIf, n.WideIngressIf = ioam6.IfIDUnavailable, ioam6.WideIfIDUnavailable
	data := append(append([]byte(nil), testIDs.TraceID[:]...), testIDs.SpanID[:]...)
	n.Snapshot = ioam6.Snapshot{Len: 6, SchemaID: ioam6.DefaultSchemaID, Data: data}
	return n
}

// capturedOption builds the IOAM option a router's egress copy shows: the
// header (RemainingLen words free, the Overflow flag), the unused area and
// the entries newest first.
func capturedOption(t testing.TB, typ ioam6.TraceType, remWords uint8, overflow bool, newestFirst ...ioam6.Node) []byte {
	t.Helper()
	h := ioam6.TraceHeader{NamespaceID: 123, NodeLen: uint8(typ.NodeLen()), Overflow: overflow, RemainingLen: remWords, Type: typ}
	body, err := h.AppendBinary(nil)
	require.NoError(t, err)
	body = append(body, make([]byte, 4*int(remWords))...)
	body = append(body, eventData(t, newestFirst...)...)
	require.LessOrEqual(t, len(body)+2, 255)
	return append([]byte{ioam6.IPv6OptionIOAM, byte(len(body) + 2), 0, byte(ioam6.OptionPreallocatedTrace)}, body...)
}

// TestPipelineTraceTypes: the reporter (r2, node 3, wide id 0x1000003) on a
// host → r1 → r2 path, for each trace type, with and without room for r2,
// from the netlink event and from the captured egress option. Before the
// agent learnt its wide id, every wide-only report said overflow.
func TestPipelineTraceTypes(t *testing.T) {
	local := LocalNode{ID: 3, WideID: wideOf(3)}
	types := []struct {
		name string
		typ  ioam6.TraceType
		// tellsWriter: the type has a node id, so writing and overflow are known.
		tellsWriter bool
	}{
		{"wide-only", typeWideOnly, true},
		{"short+wide", typeShortAndWide, true},
		{"snapshot-only", typeSnapshotOnly, false},
		{"full", typeAllDefined, true},
	}
	for _, tc := range types {
		host, r1, r2 := hostEntry(tc.typ, 1), linuxEntry(tc.typ, 2, 63), linuxEntry(tc.typ, 3, 62)
		for _, overflow := range []bool{false, true} {
			entries := []ioam6.Node{r2, r1, host}
			if overflow {
				entries = entries[1:]
			}
			wantWrote := tc.tellsWriter && !overflow
			for _, src := range []string{"netlink", "capture"} {
				name := tc.name + "/" + src
				if overflow {
					name += "/overflow"
				}
				t.Run(name, func(t *testing.T) {
					p, s, m := newTestPipelineFor(t, testConfig(), local)
					ev := Event{NamespaceID: 123, NodeLen: uint8(tc.typ.NodeLen()), TraceType: uint32(tc.typ),
						Data: eventData(t, entries...)}
					wantOverflow := tc.tellsWriter && overflow
					if src == "capture" {
						// Exactly full, or full before r2.
						ev = Event{Option: capturedOption(t, tc.typ, 0, overflow, entries...)}
						wantOverflow = overflow // the header says so, whatever the type
					}
					p.Handle([]Event{ev})
					p.Flush()
					require.Equal(t, 1.0, testutil.ToFloat64(m.EventsDecoded))
					recs := s.get()
					require.Len(t, recs, 1)
					r := recs[0]
					assert.Equal(t, uint32(tc.typ), r.TraceType)
					assert.Len(t, r.Hops, len(entries), "hop count")
					assert.Equal(t, wantWrote, r.ReporterWrote, "reporter_wrote")
					assert.Equal(t, wantOverflow, r.Overflow, "overflow")
					assert.Equal(t, uint32(3), r.ReporterNodeId)
					h0 := r.Hops[0]
					assert.Equal(t, uint32(tc.typ), h0.Fields)
					if tc.typ.Has(ioam6.BitHopLimitNodeID) {
						assert.Equal(t, uint32(1), h0.NodeId, "hop 0 short id")
					} else {
						assert.Zero(t, h0.NodeId)
					}
					if tc.typ.Has(ioam6.BitWideHopLimitNodeID) {
						assert.Equal(t, wideOf(1), h0.WideNodeId, "hop 0 wide id")
						assert.Equal(t, uint32(64), h0.HopLimit)
					} else {
						assert.Zero(t, h0.WideNodeId)
					}
					assert.Equal(t, uint32(ioam6.DefaultSchemaID), h0.SnapshotSchemaId)
					assert.Equal(t, testIDs.TraceID[:], r.TraceId)
					last := r.Hops[len(r.Hops)-1]
					if tc.typ.Has(ioam6.BitWideHopLimitNodeID) {
						want := wideOf(3)
						if overflow {
							want = wideOf(2)
						}
						assert.Equal(t, want, last.WideNodeId, "newest hop")
					}
				})
			}
		}
	}
}

// TestPipelineOSSWithoutSnapshotBitIsCarrier: under the oss carrier a trace
// type without bit 22 cannot carry the IDs; such events count as carrier,
// not as whatever their data then looks like (tail IDs read as a cut entry).
func TestPipelineOSSWithoutSnapshotBitIsCarrier(t *testing.T) {
	p, _, m := newTestPipeline(t, testConfig(), 3)
	const typ = ioam6.BitHopLimitNodeID | ioam6.BitIfIDs | ioam6.BitTimestampSec | ioam6.BitTimestampFrac // 0xf00000
	r1 := linuxEntry(typ, 2, 63)
	tailIDs := append(append([]byte(nil), testIDs.TraceID[:]...), testIDs.SpanID[:]...)
	withTail := append(eventData(t, r1), tailIDs...) // 16 + 24 bytes: not whole entries
	opt := capturedOption(t, typ, 4, false, r1)
	opt = append(opt, tailIDs...)
	opt[1] += byte(len(tailIDs))
	p.Handle([]Event{
		{NamespaceID: 123, NodeLen: 4, TraceType: uint32(typ), Data: withTail},
		{NamespaceID: 123, NodeLen: 4, TraceType: uint32(typ), Data: eventData(t, r1)},
		{Option: opt},
	})
	assert.Equal(t, 3.0, testutil.ToFloat64(m.EventsMalformed.WithLabelValues(ReasonCarrier)))
	assert.Zero(t, testutil.ToFloat64(m.EventsMalformed.WithLabelValues(ReasonTruncated)))
}
