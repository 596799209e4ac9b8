package agent

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

const typeBasic = ioam6.BitHopLimitNodeID | ioam6.BitIfIDs | ioam6.BitTimestampSec | ioam6.BitTimestampFrac |
	ioam6.BitTransitDelay | ioam6.BitQueueDepth

func hop(node uint32, sec, usec, delay, qd uint32) HopData {
	return HopData{
		Fields: typeBasic, HopLimit: 64 - uint8(node), NodeID: node, IngressIf: uint16(node*10 + 1),
		EgressIf: uint16(node*10 + 2), TimestampSec: sec, TimestampFrac: usec, TransitDelay: delay, QueueDepth: qd,
	}
}

func obs(trace, span byte, seen int64, hops ...HopData) *Observation {
	o := &Observation{NamespaceID: 123, TraceType: uint32(typeBasic), Carrier: "oss", ReporterWrote: true,
		SeenUnixNano: seen, Hops: hops}
	o.TraceID[15] = trace
	o.SpanID[7] = span
	return o
}

type sink struct{ recs []*collectorv1.IOAMRecord }

func (s *sink) emit(r []*collectorv1.IOAMRecord) { s.recs = append(s.recs, r...) }

func TestAggregatorFoldsPacketsPerTraceSpanPath(t *testing.T) {
	m := NewMetrics()
	var s sink
	a := NewAggregator(100, 3, m, s.emit)

	a.Add(obs(1, 1, 1000, hop(2, 10, 5, 100, 7), hop(3, 10, 20, 300, 1)))
	a.Add(obs(1, 1, 3000, hop(2, 10, 50, 50, 9), hop(3, 11, 0, 200, 4)))
	a.Add(obs(1, 1, 2000, hop(2, 10, 30, ioam6.U32Unavailable, 8), hop(3, 10, 900, 250, 2)))
	// Same span, other path (r2 replaced by node 4): its own record.
	a.Add(obs(1, 1, 4000, hop(2, 12, 0, 1, 1), hop(4, 12, 1, 1, 1)))
	// Other span.
	a.Add(obs(1, 2, 5000, hop(2, 12, 0, 1, 1), hop(3, 12, 1, 1, 1)))
	require.Equal(t, 3, a.Open())
	assert.Equal(t, 3.0, testutil.ToFloat64(m.AggregatesOpen))
	require.Empty(t, s.recs, "nothing leaves before the window ends")

	a.Flush()
	require.Len(t, s.recs, 3)
	assert.Equal(t, 0, a.Open())
	assert.Equal(t, 3.0, testutil.ToFloat64(m.RecordsFlushed))

	r := s.recs[0]
	assert.Equal(t, uint64(3), r.Packets)
	assert.Equal(t, uint64(1000), r.FirstSeenUnixNano)
	assert.Equal(t, uint64(3000), r.LastSeenUnixNano)
	assert.Equal(t, uint32(3), r.ReporterNodeId)
	assert.True(t, r.ReporterWrote)
	assert.False(t, r.Overflow)
	assert.Equal(t, uint32(123), r.NamespaceId)
	assert.Equal(t, uint32(typeBasic), r.TraceType)
	assert.Len(t, r.TraceId, 16)
	assert.Len(t, r.SpanId, 8)
	require.Len(t, r.Hops, 2)

	h0 := r.Hops[0]
	assert.Equal(t, uint32(2), h0.NodeId)
	assert.Equal(t, uint32(62), h0.HopLimit)
	assert.Equal(t, uint32(21), h0.IngressIf)
	assert.Equal(t, uint32(ioam6.U32Unavailable), h0.TransitDelay, "plain fields are the last packet's")
	assert.Equal(t, uint32(50), h0.TransitDelayMin, "unavailable values are left out of min/max")
	assert.Equal(t, uint32(100), h0.TransitDelayMax)
	assert.Equal(t, uint32(7), h0.QueueDepthMin)
	assert.Equal(t, uint32(9), h0.QueueDepthMax)
	assert.Equal(t, uint32(8), h0.QueueDepth)
	assert.Equal(t, uint64(10e9+5e3), h0.FirstTimestampUnixNano)
	assert.Equal(t, uint64(10e9+50e3), h0.LastTimestampUnixNano)

	h1 := r.Hops[1]
	assert.Equal(t, uint64(10e9+20e3), h1.FirstTimestampUnixNano)
	assert.Equal(t, uint64(11e9), h1.LastTimestampUnixNano)
	assert.Equal(t, uint32(200), h1.TransitDelayMin)
	assert.Equal(t, uint32(300), h1.TransitDelayMax)

	assert.Equal(t, uint32(4), s.recs[1].Hops[1].NodeId)
	assert.Equal(t, byte(2), s.recs[2].SpanId[7])

	// A flushed aggregate starts over.
	a.Add(obs(1, 1, 9000, hop(2, 10, 5, 100, 7), hop(3, 10, 20, 300, 1)))
	a.Flush()
	require.Len(t, s.recs, 4)
	assert.Equal(t, uint64(1), s.recs[3].Packets)
	assert.Equal(t, uint32(100), s.recs[3].Hops[0].TransitDelayMax)
}

func TestAggregatorOverflowAndReporterWroteSplitRecords(t *testing.T) {
	m := NewMetrics()
	var s sink
	a := NewAggregator(100, 9, m, s.emit)
	o := obs(1, 1, 1, hop(2, 1, 1, 1, 1))
	a.Add(o)
	o2 := obs(1, 1, 2, hop(2, 1, 1, 1, 1))
	o2.ReporterWrote, o2.Overflow = false, true
	a.Add(o2)
	a.Flush()
	require.Len(t, s.recs, 2)
	assert.True(t, s.recs[0].ReporterWrote)
	assert.False(t, s.recs[1].ReporterWrote)
	assert.True(t, s.recs[1].Overflow)
}

func TestAggregatorEvictsOldestWhenFull(t *testing.T) {
	m := NewMetrics()
	var s sink
	a := NewAggregator(2, 1, m, s.emit)
	a.Add(obs(1, 1, 1, hop(2, 1, 1, 1, 1)))
	a.Add(obs(2, 1, 2, hop(2, 1, 1, 1, 1)))
	a.Add(obs(1, 1, 3, hop(2, 1, 1, 1, 1))) // hit, no eviction
	require.Empty(t, s.recs)
	a.Add(obs(3, 1, 4, hop(2, 1, 1, 1, 1))) // full: trace 1 is the oldest
	require.Len(t, s.recs, 1, "evicted aggregate is flushed early, not lost")
	assert.Equal(t, byte(1), s.recs[0].TraceId[15])
	assert.Equal(t, uint64(2), s.recs[0].Packets)
	assert.Equal(t, 1.0, testutil.ToFloat64(m.AggregatesEvict))
	assert.Equal(t, 2, a.Open())

	a.Add(obs(4, 1, 5, hop(2, 1, 1, 1, 1))) // evicts trace 2
	require.Len(t, s.recs, 2)
	assert.Equal(t, byte(2), s.recs[1].TraceId[15])
	a.Flush()
	require.Len(t, s.recs, 4)
	var total uint64
	for _, r := range s.recs {
		total += r.Packets
	}
	assert.Equal(t, uint64(5), total, "every packet is in exactly one record")
	assert.Equal(t, 2.0, testutil.ToFloat64(m.AggregatesEvict))
}

func TestAggregatorManyEvictionsStayBounded(t *testing.T) {
	m := NewMetrics()
	var s sink
	a := NewAggregator(16, 1, m, s.emit)
	const n = 5000
	for i := range n {
		o := obs(byte(i), byte(i>>8), int64(i), hop(2, 1, 1, 1, 1))
		a.Add(o)
		require.LessOrEqual(t, a.Open(), 16)
	}
	a.Flush()
	var total uint64
	for _, r := range s.recs {
		total += r.Packets
	}
	assert.Equal(t, uint64(n), total)
	assert.Equal(t, float64(n-16), testutil.ToFloat64(m.AggregatesEvict))
	assert.Less(t, len(a.order), 2048, "eviction order list is compacted")
}

func TestAggregatorSnapshotAndWideFields(t *testing.T) {
	m := NewMetrics()
	var s sink
	a := NewAggregator(4, 1, m, s.emit)
	buf := []byte{1, 2, 3, 4}
	h := HopData{
		Fields:     ioam6.BitWideHopLimitNodeID | ioam6.BitUndefined12 | ioam6.BitUndefined14 | ioam6.BitOpaqueStateSnapshot,
		WideNodeID: 0x1000002, WideHopLimit: 63,
		Undefined: [10]uint32{0: 0xFFFFFFFF, 2: 7},
		Snapshot:  ioam6.Snapshot{Len: 1, SchemaID: 777, Data: buf},
	}
	o := obs(1, 1, 1, h)
	o.TraceType = uint32(h.Fields)
	a.Add(o)
	buf[0] = 99 // the decoder reuses its buffer
	a.Flush()
	require.Len(t, s.recs, 1)
	p := s.recs[0].Hops[0]
	assert.Equal(t, uint64(0x1000002), p.WideNodeId)
	assert.Equal(t, uint32(63), p.HopLimit)
	assert.Equal(t, []uint32{0xFFFFFFFF, 7}, p.UndefinedFields)
	assert.Equal(t, uint32(777), p.SnapshotSchemaId)
	assert.Equal(t, []byte{1, 2, 3, 4}, p.SnapshotData, "snapshot is copied, not aliased")
	assert.Zero(t, p.FirstTimestampUnixNano, "no timestamps without bits 2 and 3")
}

// TestAggregatorFieldRulesAreIOAM6s: the values left out of min/max and of
// the timestamps are kernel/ioam6's: all-ones and overflowed transit delays,
// all-ones queue depths, a fraction that is not microseconds (≥ 10⁶) or
// all-ones seconds; a seconds-only timestamp has a zero fraction.
func TestAggregatorFieldRulesAreIOAM6s(t *testing.T) {
	var s sink
	a := NewAggregator(100, 3, NewMetrics(), s.emit)
	a.Add(obs(1, 1, 1, hop(2, 10, 1_000_000, ioam6.U32Unavailable, ioam6.U32Unavailable))) // PTP-like fraction
	a.Add(obs(1, 1, 2, hop(2, ioam6.U32Unavailable, 5, 1<<31|7, 4)))                       // no seconds; delay overflowed
	a.Add(obs(1, 1, 3, hop(2, 20, 999_999, 40, 6)))
	a.Flush()
	require.Len(t, s.recs, 1)
	h := s.recs[0].Hops[0]
	assert.Equal(t, uint64(20e9+999_999e3), h.FirstTimestampUnixNano, "only the valid timestamp counts")
	assert.Equal(t, uint64(20e9+999_999e3), h.LastTimestampUnixNano)
	assert.Equal(t, []uint32{40, 40}, []uint32{h.TransitDelayMin, h.TransitDelayMax})
	assert.Equal(t, []uint32{4, 6}, []uint32{h.QueueDepthMin, h.QueueDepthMax})

	secOnly := hop(2, 30, 0, 1, 1)
	secOnly.Fields &^= ioam6.BitTimestampFrac
	o := obs(2, 1, 4, secOnly)
	o.TraceType = uint32(secOnly.Fields)
	a.Add(o)
	a.Flush()
	require.Len(t, s.recs, 2)
	assert.Equal(t, uint64(30e9), s.recs[1].Hops[0].FirstTimestampUnixNano, "seconds without fraction")
}
