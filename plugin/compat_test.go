package plugin

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/api/compat/ioamapi"
	"github.com/cross-layer-telemetry/clt/api/compat/ioamtrace"
	"github.com/cross-layer-telemetry/clt/api/storagev2"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// lockedBuffer is a log sink the server may write from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// exportRaw exports one span with the given trace and span ids.
func exportRaw(t *testing.T, e *env, traceID, spanID []byte, service string, start time.Time) {
	t.Helper()
	rs := spanSpec{service: service, name: "op", start: start, dur: time.Millisecond}.resourceSpans()
	sp := rs.ScopeSpans[0].Spans[0]
	sp.TraceId, sp.SpanId = traceID, spanID
	_, err := e.otlp.Export(t.Context(), &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{rs}})
	require.NoError(t, err)
}

// Trace-type bits as uint32 for hop field masks.
func tt(bits ...ioam6.TraceType) uint32 {
	var v ioam6.TraceType
	for _, b := range bits {
		v |= b
	}
	return uint32(v)
}

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
	r, dropped := FromIOAMTrace(in, now)
	require.Empty(t, dropped)
	require.Empty(t, validateRecord("r", r, 64))
	assert.Equal(t, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, r.TraceId)
	assert.Equal(t, []byte{0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18}, r.SpanId)
	assert.Equal(t, uint32(0xf40000), r.TraceType, "bits 0-3 and 5")
	assert.Equal(t, uint32(2), r.ReporterNodeId, "the sink reports")
	assert.Equal(t, "clt-v1", r.Carrier)
	assert.Equal(t, uint64(1), r.Packets)
	assert.Equal(t, uint64(now.UnixNano()), r.FirstSeenUnixNano)
	require.Len(t, r.Hops, 2)
	assert.Equal(t, uint32(1), r.Hops[0].NodeId)
	assert.Equal(t, uint32(64), r.Hops[0].HopLimit)
	assert.Equal(t, uint32(11), r.Hops[0].IngressIf)
	assert.Equal(t, uint32(9), r.Hops[0].NamespaceData)
	assert.Equal(t, uint32(9), r.Hops[1].TimestampFrac)
	assert.Equal(t, uint64(1800000000_000009000), r.Hops[1].FirstTimestampUnixNano, "seconds + microseconds")
	assert.Equal(t, r.Hops[1].FirstTimestampUnixNano, r.Hops[1].LastTimestampUnixNano)
}

// The prototype agent (IurmanJ/cross-layer-telemetry ioam-agent.py) builds
// its message like this: BitField from type2bitfield, wide ids in the WideId
// oneof, wide interface ids in the short fields, wide namespace data cut to
// its first 4 octets (bitstruct r32 of an 8-octet slice) and the snapshot data
// cut to Length bytes.
func TestFromIOAMTracePrototypeShapes(t *testing.T) {
	now := time.Unix(1800000000, 0)
	base := func(bf uint32, nodes ...*ioamtrace.IOAMNode) *ioamtrace.IOAMTrace {
		return &ioamtrace.IOAMTrace{TraceId_High: 0xab, TraceId_Low: 1, SpanId: 2, NamespaceId: 7, BitField: bf, Nodes: nodes}
	}

	t.Run("wide only", func(t *testing.T) {
		r, dropped := FromIOAMTrace(base(demoHopLimit|demoNodeID|demoIngressID|demoEgressID|demoNamespaceData,
			&ioamtrace.IOAMNode{HopLimit: 63, Node: &ioamtrace.IOAMNode_WideId{WideId: 0x00a1b2c3d4e5f6}, IngressId: 0x10001, EgressId: 2,
				Namespace: &ioamtrace.IOAMNode_WideData{WideData: []byte{1, 2, 3, 4}}}), now)
		require.Empty(t, dropped)
		require.Empty(t, validateRecord("r", r, 64))
		assert.Equal(t, tt(ioam6.BitWideHopLimitNodeID, ioam6.BitWideIfIDs, ioam6.BitWideNamespaceData), r.TraceType)
		h := r.Hops[0]
		assert.Equal(t, uint64(0x00a1b2c3d4e5f6), h.WideNodeId)
		assert.Equal(t, uint32(63), h.HopLimit)
		assert.Equal(t, [2]uint32{0x10001, 2}, [2]uint32{h.WideIngressIf, h.WideEgressIf})
		assert.Equal(t, uint64(0x0102030400000000), h.WideNamespaceData, "the 4 octets sent are the field's first 4")
		assert.Equal(t, uint32(0xffffff), r.ReporterNodeId, "no short id: unknown, not the wide id cut to 24 bits")
	})

	t.Run("snapshot cut to Length bytes", func(t *testing.T) {
		// A 6-word snapshot arrives as its first 6 bytes: not whole words,
		// so the data is dropped (counted) and the schema id kept.
		r, dropped := FromIOAMTrace(base(demoHopLimit|demoNodeID|demoOpaqueState,
			&ioamtrace.IOAMNode{HopLimit: 64, Node: &ioamtrace.IOAMNode_Id{Id: 1}, OSS: &ioamtrace.OpaqueState{SchemaId: 0xc17, Data: []byte{1, 2, 3, 4, 5, 6}}},
			&ioamtrace.IOAMNode{HopLimit: 63, Node: &ioamtrace.IOAMNode_Id{Id: 2}, OSS: &ioamtrace.OpaqueState{SchemaId: 0xc18, Data: []byte{1, 2, 3, 4}}}), now)
		assert.Equal(t, []string{dropSnapshotData}, dropped)
		require.Empty(t, validateRecord("r", r, 64), "the rest of the report is kept")
		assert.Equal(t, tt(ioam6.BitOpaqueStateSnapshot), r.Hops[0].Fields&tt(ioam6.BitOpaqueStateSnapshot))
		assert.Equal(t, uint32(0xc17), r.Hops[0].SnapshotSchemaId)
		assert.Empty(t, r.Hops[0].SnapshotData)
		assert.Equal(t, uint32(1), r.Hops[0].NodeId)
		assert.Equal(t, []byte{1, 2, 3, 4}, r.Hops[1].SnapshotData, "whole words are taken as sent")
	})

	t.Run("seconds only and fraction only", func(t *testing.T) {
		r, _ := FromIOAMTrace(base(demoHopLimit|demoNodeID|demoTimestamp,
			&ioamtrace.IOAMNode{Node: &ioamtrace.IOAMNode_Id{Id: 1}, Timestamp: 1800000001}), now)
		require.Empty(t, validateRecord("r", r, 64))
		assert.Equal(t, uint32(1800000001), r.Hops[0].TimestampSec)
		assert.Equal(t, uint64(1800000001_000000000), r.Hops[0].FirstTimestampUnixNano, "seconds alone are a time (fraction 0)")

		r, _ = FromIOAMTrace(base(demoHopLimit|demoNodeID|demoTimestampSub,
			&ioamtrace.IOAMNode{Node: &ioamtrace.IOAMNode_Id{Id: 1}, TimestampSub: 77}), now)
		require.Empty(t, validateRecord("r", r, 64))
		assert.Equal(t, tt(ioam6.BitHopLimitNodeID, ioam6.BitTimestampFrac), r.Hops[0].Fields, "the fraction is kept as a field")
		assert.Equal(t, uint32(77), r.Hops[0].TimestampFrac)
		assert.Zero(t, r.Hops[0].FirstTimestampUnixNano, "a fraction alone is no time")
	})

	t.Run("out of range fields dropped, not the report", func(t *testing.T) {
		r, dropped := FromIOAMTrace(base(demoHopLimit|demoNodeID|demoNamespaceData,
			&ioamtrace.IOAMNode{HopLimit: 300, Node: &ioamtrace.IOAMNode_Id{Id: 1 << 25}, Namespace: &ioamtrace.IOAMNode_Data{Data: []byte{1, 2, 3, 4, 5}}}), now)
		assert.ElementsMatch(t, []string{dropHopLimit, dropNodeID, dropNSData}, dropped)
		require.Empty(t, validateRecord("r", r, 64))
	})
}

// The Go ioam-agent (internal/parser/parser.go) sends BitField = traceType << 8
// for every trace type; the nodes carry the fields of the type's bits only.
func TestFromIOAMAPITraceBitField(t *testing.T) {
	for _, c := range []struct {
		name     string
		bitField uint32
		want     uint32
	}{
		{"short fields", 0xf0000000, 0xf00000},
		{"wide only (bit 8)", 0x00800000, 0x008000},
		{"wide ids, ifs, data + snapshot", 0x00e00200, 0x00e002},
		{"snapshot only", 0x00000200, 0x000002},
		{"full", 0xfff00200, 0xfff002},
		{"24-bit value with a set low octet (Python, non-CLT)", 0xf00002, 0xf00002},
	} {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, APITraceType(c.bitField))
		})
	}

	// The reproduction: type 0x00e002 used to read as 0xe00200 with
	// path "0 > 0 > 0" and the wide and snapshot fields lost.
	node := func(id uint64) *ioamapi.IOAMNode {
		return &ioamapi.IOAMNode{HopLimit: 60, IdWide: id, IngressIdWide: 100_000, EgressIdWide: 7,
			NamespaceDataWide: []byte{1, 2, 3, 4, 5, 6, 7, 8}, OSS: &ioamapi.Opaque{SchemaId: 0xc17, Data: []byte{9, 9, 9, 9, 8, 8, 8, 8}}}
	}
	r, dropped := FromIOAMAPITrace(&ioamapi.IOAMTrace{TraceId_Low: 1, SpanId: 2, NamespaceId: 7, BitField: 0x00e00200,
		Nodes: []*ioamapi.IOAMNode{node(1 << 40), node(2 << 40), node(3 << 40)}}, time.Now())
	require.Empty(t, dropped)
	require.Empty(t, validateRecord("r", r, 64))
	assert.Equal(t, uint32(0x00e002), r.TraceType)
	for i, h := range r.Hops {
		assert.Equal(t, uint32(0x00e002), h.Fields)
		assert.Equal(t, uint64(i+1)<<40, h.WideNodeId)
		assert.Equal(t, uint32(60), h.HopLimit)
		assert.Equal(t, [2]uint32{100_000, 7}, [2]uint32{h.WideIngressIf, h.WideEgressIf})
		assert.Equal(t, uint64(0x0102030405060708), h.WideNamespaceData)
		assert.Equal(t, uint32(0xc17), h.SnapshotSchemaId)
		assert.Equal(t, []byte{9, 9, 9, 9, 8, 8, 8, 8}, h.SnapshotData)
		assert.Zero(t, h.NodeId, "no short id in this type")
	}
	sr, err := toStoreRecord(r, time.Now())
	require.NoError(t, err)
	assert.Equal(t, []uint64{1 << 40, 2 << 40, 3 << 40}, sr.NodeIDs, "wide ids indexed in full")
}

// TestCompatEndpoints sends the exact shapes of the original agents through
// the real server and badger, then checks what was joined, field by field.
func TestCompatEndpoints(t *testing.T) {
	e := startEnv(t, func(c *Config) { c.Collector.CompatFlushInterval = 50 * time.Millisecond })
	now := time.Now()
	// Trace 1: 128-bit id; trace 2: 64-bit id (OTLP left-pads it).
	e.export(t, spanSpec{trace: 1, span: 1, service: "svc", name: "op", start: now, dur: time.Millisecond},
		spanSpec{trace: 1, span: 2, service: "svc", name: "op2", start: now, dur: time.Millisecond})
	short := make([]byte, 16)
	binary.BigEndian.PutUint64(short[8:], 0x1122334455667788)
	exportRaw(t, e, short, sid(3), "svc", now)
	high, low := uint64(0xab00000000000000), uint64(1)
	span1, span2 := uint64(0xcd00000000000001), uint64(0xcd00000000000002)

	demo := ioamtrace.NewIOAMServiceClient(e.collConn)
	_, err := demo.Report(t.Context(), &ioamtrace.IOAMTrace{TraceId_High: high, TraceId_Low: low, SpanId: span1, NamespaceId: 1,
		BitField: demoHopLimit | demoNodeID | demoTimestamp,
		Nodes: []*ioamtrace.IOAMNode{{HopLimit: 64, Node: &ioamtrace.IOAMNode_Id{Id: 1}, Timestamp: 1800000000},
			{HopLimit: 63, Node: &ioamtrace.IOAMNode_Id{Id: 2}, Timestamp: 1800000001}}})
	require.NoError(t, err)
	_, err = demo.Report(t.Context(), &ioamtrace.IOAMTrace{SpanId: span1})
	assert.Equal(t, codes.InvalidArgument, status.Code(err), "zero trace id")

	// A stream that is never closed, as the Go ioam-agent keeps it: its
	// traces must be written within the flush interval.
	api := ioamapi.NewIOAMServiceClient(e.collConn)
	st, err := api.Report(t.Context())
	require.NoError(t, err)
	require.NoError(t, st.Send(&ioamapi.IOAMTrace{TraceId_High: high, TraceId_Low: low, SpanId: span2, NamespaceId: 1, BitField: 0x00800000,
		Nodes: []*ioamapi.IOAMNode{{HopLimit: 64, IdWide: 0x00a1b2c3d4e5f6}, {HopLimit: 63, IdWide: 3}}}))
	require.NoError(t, st.Send(&ioamapi.IOAMTrace{SpanId: span2})) // invalid: counted, logged, dropped
	require.NoError(t, st.Send(&ioamapi.IOAMTrace{TraceId_Low: 0x1122334455667788, SpanId: 0xcd00000000000003, NamespaceId: 1, BitField: 0xf0000000,
		Nodes: []*ioamapi.IOAMNode{{HopLimit: 64, Id: 5, IngressId: 1, EgressId: 2, TimestampSecs: 1800000000, TimestampFrac: 250}}}))

	recs := func(traceID []byte) map[byte]*collectorv1.IOAMRecord {
		stored, err := e.srv.store.GetRecords(t.Context(), [16]byte(traceID))
		require.NoError(t, err)
		out := map[byte]*collectorv1.IOAMRecord{}
		for _, s := range stored {
			r := &collectorv1.IOAMRecord{}
			require.NoError(t, proto.Unmarshal(s.Data, r))
			out[s.SpanID[7]] = r
		}
		return out
	}
	require.Eventually(t, func() bool { return len(recs(tid(1))) == 2 && len(recs(short)) == 1 }, 5*time.Second, 20*time.Millisecond,
		"traces of an open stream are written within the flush interval")

	r1, r2 := recs(tid(1))[1], recs(tid(1))[2]
	assert.Equal(t, tid(1), r1.TraceId, "High/Low make the 128-bit id")
	assert.Equal(t, uint32(1), r1.NamespaceId)
	assert.Equal(t, tt(ioam6.BitHopLimitNodeID, ioam6.BitTimestampSec), r1.TraceType)
	assert.Equal(t, []uint32{1, 2}, []uint32{r1.Hops[0].NodeId, r1.Hops[1].NodeId})
	assert.Equal(t, uint64(1800000001_000000000), r1.Hops[1].FirstTimestampUnixNano)
	assert.Equal(t, uint32(0x008000), r2.TraceType)
	assert.Equal(t, []uint64{0x00a1b2c3d4e5f6, 3}, []uint64{r2.Hops[0].WideNodeId, r2.Hops[1].WideNodeId})
	assert.Equal(t, []uint32{64, 63}, []uint32{r2.Hops[0].HopLimit, r2.Hops[1].HopLimit})
	r3 := recs(short)[3]
	assert.Equal(t, short, r3.TraceId, "a 64-bit id is Low with High 0")
	assert.Equal(t, uint32(0xf00000), r3.TraceType)
	h := r3.Hops[0]
	assert.Equal(t, []uint32{5, 64, 1, 2, 1800000000, 250}, []uint32{h.NodeId, h.HopLimit, h.IngressIf, h.EgressIf, h.TimestampSec, h.TimestampFrac})

	// The join: every span with records is enriched (hop events), the span
	// without records is returned as stored.
	for _, sp := range spansOf(e.getTraces(t, tid(1), short)) {
		switch sp.SpanId[7] {
		case 1, 2, 3:
			assert.NotEmpty(t, sp.Events, "span %d has its hops", sp.SpanId[7])
		}
	}
	// Wide ids are searchable by the value as shown and in decimal.
	for _, v := range []string{"0xa1b2c3d4e5f6", "177789161760246"} {
		found := e.findTraces(t, &storagev2.TraceQueryParameters{Attributes: []*storagev2.KeyValue{strKV("ioam.node_id", v)}})
		require.NotEmpty(t, found, v)
		assert.Equal(t, tid(1), spansOf(found)[0].TraceId, v)
	}

	body := e.scrape(t)
	assert.Contains(t, body, `clt_storage_records_rejected_total{reason="trace_id"} 2`)
	assert.Contains(t, body, `clt_storage_compat_stream_flushes_total{trigger="interval"}`)
	require.NoError(t, st.CloseSend())
	_, err = st.CloseAndRecv()
	require.NoError(t, err)
}

// A stream's traces are written when compat_max_batch are waiting, without
// waiting for the interval.
func TestCompatStreamBatchSize(t *testing.T) {
	e := startEnv(t, func(c *Config) { c.Collector.CompatFlushInterval = time.Minute; c.Collector.CompatMaxBatch = 2 })
	st, err := ioamapi.NewIOAMServiceClient(e.collConn).Report(t.Context())
	require.NoError(t, err)
	for i := range 3 {
		require.NoError(t, st.Send(&ioamapi.IOAMTrace{TraceId_Low: 9, SpanId: uint64(i + 1), BitField: 0x80000000,
			Nodes: []*ioamapi.IOAMNode{{HopLimit: 64, Id: 1}}}))
	}
	id := [16]byte{15: 9}
	require.Eventually(t, func() bool {
		stored, err := e.srv.store.GetRecords(t.Context(), id)
		return err == nil && len(stored) == 2
	}, 5*time.Second, 20*time.Millisecond)
	assert.Contains(t, e.scrape(t), `clt_storage_compat_stream_flushes_total{trigger="size"} 1`)
	_, err = st.CloseAndRecv()
	require.NoError(t, err)
	stored, err := e.srv.store.GetRecords(t.Context(), id)
	require.NoError(t, err)
	assert.Len(t, stored, 3, "the third at the stream's end")
}

// Invalid stream messages are logged once per reason and stream.
func TestCompatStreamLogsOncePerReason(t *testing.T) {
	var logs lockedBuffer
	e := startEnvWith(t, nil, Settings{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	st, err := ioamapi.NewIOAMServiceClient(e.collConn).Report(t.Context())
	require.NoError(t, err)
	for range 3 {
		require.NoError(t, st.Send(&ioamapi.IOAMTrace{SpanId: 1})) // zero trace id
	}
	require.NoError(t, st.Send(&ioamapi.IOAMTrace{TraceId_Low: 1})) // zero span id
	_, err = st.CloseAndRecv()
	require.NoError(t, err)
	out := logs.String()
	assert.Equal(t, 1, strings.Count(out, "reason=trace_id"), out)
	assert.Equal(t, 1, strings.Count(out, "reason=span_id"), out)
	assert.Contains(t, e.scrape(t), `clt_storage_records_rejected_total{reason="trace_id"} 3`)
}

// The invalid-batch error is matchable and still an InvalidArgument status.
func TestBatchErrorSentinel(t *testing.T) {
	err := batchError([]fieldError{{path: "records[0].trace_id", reason: "trace_id", msg: "all zero"}})
	assert.ErrorIs(t, err, ErrInvalidRecords)
	assert.Equal(t, codes.InvalidArgument, status.Code(err))
	assert.Equal(t, "invalid records: records[0].trace_id: all zero", status.Convert(err).Message())
}
