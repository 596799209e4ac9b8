package plugin

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cross-layer-telemetry/clt/api/compat/ioamapi"
	"github.com/cross-layer-telemetry/clt/api/compat/ioamtrace"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

func TestFromIOAMTrace(t *testing.T) {
	now := time.Unix(1800000000, 0)
	in := &ioamtrace.IOAMTrace{
		TraceId_High: 0x0102030405060708, TraceId_Low: 0x090a0b0c0d0e0f10, SpanId: 0x1112131415161718,
		NamespaceId: 123,
		BitField:    demoHopLimit | demoNodeID | demoIngressID | demoEgressID | demoTimestamp | demoTimestampSub | demoNamespaceData,
		Nodes: []*ioamtrace.IOAMNode{
			{HopLimit: 64, Node: &ioamtrace.IOAMNode_Id{Id: 1}, IngressId: 11, EgressId: 12, Timestamp: 1800000000, TimestampSub: 5,
				Namespace: &ioamtrace.IOAMNode_Data{Data: []byte{0, 0, 0, 9}}},
			{HopLimit: 63, Node: &ioamtrace.IOAMNode_Id{Id: 2}, IngressId: 21, EgressId: 22, Timestamp: 1800000000, TimestampSub: 9,
				Namespace: &ioamtrace.IOAMNode_Data{Data: []byte{0, 0, 0, 10}}},
		},
	}
	r := FromIOAMTrace(in, now)
	require.Empty(t, validateRecord("r", r, 64))
	assert.Equal(t, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, r.TraceId)
	assert.Equal(t, []byte{0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18}, r.SpanId)
	assert.Equal(t, uint32(0xf40000), r.TraceType, "bits 0-3 and 5")
	assert.Equal(t, uint32(2), r.ReporterNodeId, "the sink reports")
	assert.Equal(t, uint64(1), r.Packets)
	assert.Equal(t, uint64(now.UnixNano()), r.FirstSeenUnixNano)
	require.Len(t, r.Hops, 2)
	assert.Equal(t, uint32(1), r.Hops[0].NodeId)
	assert.Equal(t, uint32(64), r.Hops[0].HopLimit)
	assert.Equal(t, uint32(11), r.Hops[0].IngressIf)
	assert.Equal(t, uint32(9), r.Hops[0].NamespaceData)
	assert.Equal(t, uint32(9), r.Hops[1].TimestampFrac)

	// Wide ids and wide namespace data come from the oneofs.
	in.Nodes = []*ioamtrace.IOAMNode{{Node: &ioamtrace.IOAMNode_WideId{WideId: 1 << 40}, Namespace: &ioamtrace.IOAMNode_WideData{WideData: []byte{1, 2, 3, 4, 5, 6, 7, 8}}}}
	in.BitField = demoNodeID | demoNamespaceData
	r = FromIOAMTrace(in, now)
	require.Empty(t, validateRecord("r", r, 64))
	assert.Equal(t, uint32(ioam6.BitWideHopLimitNodeID|ioam6.BitWideNamespaceData), r.TraceType)
	assert.Equal(t, uint64(1<<40), r.Hops[0].WideNodeId)
	assert.Equal(t, uint64(0x0102030405060708), r.Hops[0].WideNamespaceData)
}

func TestFromIOAMAPITraceBitFieldForms(t *testing.T) {
	for name, bf := range map[string]uint32{"24-bit": 0xf00000, "32-bit word": 0xf0000000} {
		t.Run(name, func(t *testing.T) {
			r := FromIOAMAPITrace(&ioamapi.IOAMTrace{TraceId_Low: 1, SpanId: 2, NamespaceId: 7, BitField: bf,
				Nodes: []*ioamapi.IOAMNode{{HopLimit: 64, Id: 1, IngressId: 1, EgressId: 2}, {HopLimit: 63, Id: 5, TimestampSecs: 3, TimestampFrac: 4}}}, time.Now())
			require.Empty(t, validateRecord("r", r, 64))
			assert.Equal(t, uint32(0xf00000), r.TraceType)
			assert.Equal(t, uint32(5), r.ReporterNodeId)
			assert.Equal(t, "1 > 5", formatPath(pathOf(r)))
		})
	}
}

func TestCompatEndpoints(t *testing.T) {
	e := startEnv(t, nil)
	e.export(t, spanSpec{trace: 1, span: 1, service: "svc", name: "op", start: time.Now(), dur: time.Millisecond},
		spanSpec{trace: 1, span: 2, service: "svc", name: "op2", start: time.Now(), dur: time.Millisecond})
	high, low := uint64(0xab00000000000000), uint64(1)
	span1, span2 := uint64(0xcd00000000000001), uint64(0xcd00000000000002)

	demo := ioamtrace.NewIOAMServiceClient(e.collConn)
	_, err := demo.Report(t.Context(), &ioamtrace.IOAMTrace{TraceId_High: high, TraceId_Low: low, SpanId: span1, NamespaceId: 1,
		BitField: demoHopLimit | demoNodeID, Nodes: []*ioamtrace.IOAMNode{{HopLimit: 64, Node: &ioamtrace.IOAMNode_Id{Id: 1}}, {HopLimit: 63, Node: &ioamtrace.IOAMNode_Id{Id: 2}}}})
	require.NoError(t, err)
	_, err = demo.Report(t.Context(), &ioamtrace.IOAMTrace{SpanId: span1})
	assert.Equal(t, codes.InvalidArgument, status.Code(err), "zero trace id")

	api := ioamapi.NewIOAMServiceClient(e.collConn)
	st, err := api.Report(t.Context())
	require.NoError(t, err)
	require.NoError(t, st.Send(&ioamapi.IOAMTrace{TraceId_High: high, TraceId_Low: low, SpanId: span2, NamespaceId: 1, BitField: 0x800000,
		Nodes: []*ioamapi.IOAMNode{{HopLimit: 64, Id: 1}, {HopLimit: 63, Id: 3}}}))
	require.NoError(t, st.Send(&ioamapi.IOAMTrace{SpanId: span2})) // invalid: counted and dropped
	_, err = st.CloseAndRecv()
	require.NoError(t, err)

	paths := map[byte]string{}
	real, _ := splitSynthetic(spansOf(e.getTraces(t, tid(1))))
	for _, sp := range real {
		paths[sp.SpanId[7]] = attrMap(sp.Attributes)[AttrPath].GetStringValue()
	}
	assert.Equal(t, map[byte]string{1: "1 > 2", 2: "1 > 3"}, paths)
	assert.Contains(t, e.scrape(t), `clt_storage_records_rejected_total{reason="trace_id"} 2`)
}
