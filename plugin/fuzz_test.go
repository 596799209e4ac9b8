package plugin

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/api/compat/ioamapi"
	"github.com/cross-layer-telemetry/clt/api/compat/ioamtrace"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// FuzzRecord feeds arbitrary collector bytes through what the server does
// with a record: validate, convert for the store, and enrich a span with it
// (valid or not, since enrichment must also survive a corrupted store). None
// of it may panic, and a valid record must round-trip the store encoding.
func FuzzRecord(f *testing.F) {
	for _, r := range []*collectorv1.IOAMRecord{rec(3, 0, 1, 2, 3), rec(2, 0, 1), {}} {
		b, err := proto.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, b)
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var ra, rb collectorv1.IOAMRecord
		if proto.Unmarshal(a, &ra) != nil || proto.Unmarshal(b, &rb) != nil {
			return
		}
		ra.SpanId, rb.SpanId = testSpanID, testSpanID
		sp := newSpan()
		recs := []*collectorv1.IOAMRecord{&ra, &rb}
		// Network spans: never negative, never outside the span.
		if a := analyzeSpan(sp, recs); a != nil {
			for _, rs := range assignIDs(a.networkSpans(sp, nil), map[[8]byte]struct{}{}) {
				for _, ns := range rs.ScopeSpans[0].Spans {
					if ns.EndTimeUnixNano < ns.StartTimeUnixNano || ns.StartTimeUnixNano < sp.StartTimeUnixNano || ns.EndTimeUnixNano > sp.EndTimeUnixNano {
						t.Fatalf("network span %q [%d, %d] outside [%d, %d]", ns.Name, ns.StartTimeUnixNano, ns.EndTimeUnixNano, sp.StartTimeUnixNano, sp.EndTimeUnixNano)
					}
				}
			}
		}
		EnrichSpan(sp, recs)
		if len(validateRecord("r", &ra, 64)) != 0 {
			return
		}
		sr, err := toStoreRecord(&ra, time.Unix(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		var back collectorv1.IOAMRecord
		if err := proto.Unmarshal(sr.Data, &back); err != nil || !proto.Equal(&ra, &back) {
			t.Fatalf("store encoding does not round-trip: %v", err)
		}
	})
}

// FuzzCompat feeds arbitrary bytes as reports of the original CLT agents.
// Whatever the input, the mapped record keeps the report's ids, namespace
// and one hop per node, its trace type covers every hop's fields, and the
// reporter is the last node; a record that validates round-trips the store
// encoding.
func FuzzCompat(f *testing.F) {
	seed, _ := proto.Marshal(&ioamapi.IOAMTrace{TraceId_Low: 1, SpanId: 2, BitField: 0xf00000,
		Nodes: []*ioamapi.IOAMNode{{Id: 1, NamespaceData: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9}}}})
	f.Add(seed)
	seed, _ = proto.Marshal(&ioamtrace.IOAMTrace{TraceId_High: 7, TraceId_Low: 1, SpanId: 2, NamespaceId: 123,
		BitField: 0xf0000000, Nodes: []*ioamtrace.IOAMNode{{Node: &ioamtrace.IOAMNode_Id{Id: 1}}, {Node: &ioamtrace.IOAMNode_Id{Id: 2}, EgressId: 1 << 20}}})
	f.Add(seed)
	// Invariant: a compat report is never rejected for a hop's field (those
	// are dropped from the hop and named); only record-level problems (ids,
	// namespace, hop count) reject it.
	hopLevel := func(t *testing.T, r *collectorv1.IOAMRecord) {
		for _, fe := range validateRecord("r", r, 64) {
			if strings.HasPrefix(fe.path, "r.hops[") {
				t.Fatalf("compat record rejected for a hop field: %v", fe)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var a ioamapi.IOAMTrace
		if proto.Unmarshal(b, &a) == nil {
			r, _ := FromIOAMAPITrace(&a, time.Unix(0, 0))
			checkCompatRecord(t, r, a.GetTraceId_High(), a.GetTraceId_Low(), a.GetSpanId(), a.GetNamespaceId(), len(a.GetNodes()))
			assert.LessOrEqual(t, r.GetTraceType(), uint32(ioam6.TraceTypeMask), "24-bit trace type")
			hopLevel(t, r)
		}
		var d ioamtrace.IOAMTrace
		if proto.Unmarshal(b, &d) == nil {
			r, _ := FromIOAMTrace(&d, time.Unix(0, 0))
			checkCompatRecord(t, r, d.GetTraceId_High(), d.GetTraceId_Low(), d.GetSpanId(), d.GetNamespaceId(), len(d.GetNodes()))
			hopLevel(t, r)
		}
	})
}

func checkCompatRecord(t *testing.T, r *collectorv1.IOAMRecord, high, low, span uint64, ns uint32, nodes int) {
	t.Helper()
	require.Len(t, r.GetTraceId(), 16)
	assert.Equal(t, high, binary.BigEndian.Uint64(r.GetTraceId()[:8]))
	assert.Equal(t, low, binary.BigEndian.Uint64(r.GetTraceId()[8:]))
	require.Len(t, r.GetSpanId(), 8)
	assert.Equal(t, span, binary.BigEndian.Uint64(r.GetSpanId()))
	assert.Equal(t, ns, r.GetNamespaceId())
	assert.EqualValues(t, 1, r.GetPackets(), "one report is one packet")
	require.Len(t, r.GetHops(), nodes)
	for i, h := range r.GetHops() {
		assert.Zero(t, h.GetFields()&^r.GetTraceType(), "hop %d has fields outside the trace type", i)
	}
	if nodes > 0 {
		if last := r.GetHops()[nodes-1]; last.GetFields()&uint32(ioam6.BitHopLimitNodeID) != 0 {
			assert.Equal(t, last.GetNodeId(), r.GetReporterNodeId(), "the sink (last node) reports")
		}
	}
	EnrichSpan(newSpan(), []*collectorv1.IOAMRecord{r})
	if len(validateRecord("r", r, 64)) != 0 {
		return
	}
	sr, err := toStoreRecord(r, time.Unix(0, 0))
	require.NoError(t, err)
	var back collectorv1.IOAMRecord
	require.NoError(t, proto.Unmarshal(sr.Data, &back))
	assert.True(t, proto.Equal(r, &back), "store encoding does not round-trip")
}
