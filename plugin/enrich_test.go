package plugin

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
)

var (
	testTraceID = []byte{0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c}
	testSpanID  = []byte{0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74}
	otherSpanID = []byte{1, 2, 3, 4, 5, 6, 7, 8}
	spanStart   = uint64(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC).UnixNano())
)

// Trace type 0xf00000 | bit 6: hop limit + node id, interface ids,
// timestamp seconds + fraction, and queue depth.
const testTraceType = 0xf00000 | 1<<(23-6) | 1<<(23-4)

// rec builds a record reported by reporter that saw path (node ids, first hop
// first), seen at offset seconds after the span start.
func rec(reporter uint32, offset int, path ...uint32) *collectorv1.IOAMRecord {
	r := &collectorv1.IOAMRecord{
		TraceId: testTraceID, SpanId: testSpanID, NamespaceId: 123, TraceType: testTraceType,
		ReporterNodeId: reporter, ReporterWrote: true, Packets: 3,
		FirstSeenUnixNano: spanStart + uint64(offset)*uint64(time.Second),
		LastSeenUnixNano:  spanStart + uint64(offset+1)*uint64(time.Second),
		Carrier:           "oss",
	}
	for i, id := range path {
		r.Hops = append(r.Hops, &collectorv1.Hop{
			Fields: testTraceType, HopLimit: uint32(64 - i), NodeId: id,
			IngressIf: 10 + id, EgressIf: 20 + id,
			TimestampSec:  uint32(spanStart/uint64(time.Second)) + uint32(offset),
			TimestampFrac: uint32(100 * (i + 1)),
			TransitDelay:  1000 * id, TransitDelayMin: 900 * id, TransitDelayMax: 1100 * id,
			QueueDepth: id, QueueDepthMin: 0, QueueDepthMax: 2 * id,
		})
	}
	return r
}

func newSpan() *tracepb.Span {
	return &tracepb.Span{TraceId: testTraceID, SpanId: testSpanID, Name: "GET /api",
		StartTimeUnixNano: spanStart, EndTimeUnixNano: spanStart + uint64(time.Second)}
}

func attrMap(kvs []*commonpb.KeyValue) map[string]*commonpb.AnyValue {
	m := map[string]*commonpb.AnyValue{}
	for _, kv := range kvs {
		m[kv.GetKey()] = kv.GetValue()
	}
	return m
}

func warningsOf(sp *tracepb.Span) []string {
	var out []string
	for _, v := range attrMap(sp.Attributes)[AttrJaegerWarnings].GetArrayValue().GetValues() {
		out = append(out, v.GetStringValue())
	}
	return out
}

func TestEnrichSpanAttributesAndEvents(t *testing.T) {
	sp := newSpan()
	EnrichSpan(sp, []*collectorv1.IOAMRecord{
		rec(2, 0, 1, 2),    // router 2 reports the prefix
		rec(3, 0, 1, 2, 3), // destination reports the whole path
		rec(3, 5, 1, 2, 3), // a later window of the destination
	})
	a := attrMap(sp.Attributes)
	assert.Equal(t, int64(123), a[AttrNamespaceID].GetIntValue())
	assert.Equal(t, "0xfa0000", a[AttrTraceType].GetStringValue())
	assert.Equal(t, int64(3), a[AttrHopCount].GetIntValue())
	assert.Equal(t, "1 > 2 > 3", a[AttrPath].GetStringValue())
	assert.Equal(t, int64(6), a[AttrPackets].GetIntValue(), "destination's two windows of 3 packets")
	assert.Equal(t, int64(2), a[AttrReporters].GetIntValue())
	assert.Equal(t, int64(3300), a[AttrTransitDelayMaxNs].GetIntValue())
	assert.Equal(t, int64(6), a[AttrQueueDepthMax].GetIntValue())
	assert.NotContains(t, a, AttrOverflow)
	assert.Empty(t, warningsOf(sp), "a prefix from an upstream router is confirmed")

	require.Len(t, sp.Events, 3)
	for i, ev := range sp.Events {
		assert.Equal(t, EventHop, ev.Name)
		e := attrMap(ev.Attributes)
		assert.Equal(t, int64(i), e[AttrHopIndex].GetIntValue())
		assert.Equal(t, int64(i+1), e[AttrNodeID].GetIntValue())
		assert.Equal(t, int64(64-i), e[AttrHopLimit].GetIntValue())
		assert.Equal(t, int64(11+i), e[AttrIngressIf].GetIntValue())
		assert.Equal(t, int64(21+i), e[AttrEgressIf].GetIntValue())
		assert.Equal(t, int64(6), e[AttrPackets].GetIntValue())
		// Timestamp of the first window: seconds + fraction in µs.
		want := spanStart + uint64(100*(i+1))*uint64(time.Microsecond)
		assert.Equal(t, want, ev.TimeUnixNano)
		assert.Equal(t, time.Unix(0, int64(want)).UTC().Format(time.RFC3339Nano), e[AttrTimestamp].GetStringValue())
		assert.Equal(t, int64(900*(i+1)), e[AttrTransitDelayMinNs].GetIntValue())
		assert.Equal(t, int64(1100*(i+1)), e[AttrTransitDelayMaxNs].GetIntValue())
		assert.Equal(t, int64(1000*(i+1)), e[AttrTransitDelayNs].GetIntValue())
		assert.Equal(t, int64(2*(i+1)), e[AttrQueueDepthMax].GetIntValue())
		assert.NotContains(t, e, AttrWideNodeID, "bit 8 not in the trace type")
		assert.NotContains(t, e, AttrNamespaceData)
	}
}

func TestEnrichSpanIgnoresOtherSpans(t *testing.T) {
	sp := newSpan()
	r := rec(3, 0, 1, 2, 3)
	r.SpanId = otherSpanID
	EnrichSpan(sp, []*collectorv1.IOAMRecord{r})
	assert.Empty(t, sp.Attributes)
	assert.Empty(t, sp.Events)
}

func TestEnrichSpanNoTimestampUsesSpanStart(t *testing.T) {
	sp := newSpan()
	r := rec(2, 0, 1, 2)
	r.TraceType = 0x800000 // node id only
	for _, h := range r.Hops {
		h.Fields = 0x800000
	}
	EnrichSpan(sp, []*collectorv1.IOAMRecord{r})
	require.Len(t, sp.Events, 2)
	for _, ev := range sp.Events {
		assert.Equal(t, spanStart, ev.TimeUnixNano)
		e := attrMap(ev.Attributes)
		assert.NotContains(t, e, AttrTimestamp)
		assert.NotContains(t, e, AttrIngressIf)
		assert.NotContains(t, e, AttrTransitDelayNs)
	}
	a := attrMap(sp.Attributes)
	assert.NotContains(t, a, AttrTransitDelayMaxNs)
	assert.NotContains(t, a, AttrQueueDepthMax)
}

func TestEnrichSpanWideAndSnapshotFields(t *testing.T) {
	sp := newSpan()
	const tt = 1<<(23-8) | 1<<(23-9) | 1<<(23-10) | 1<<(23-11) | 1<<(23-22) | 1<<(23-5) | 1<<(23-7)
	r := &collectorv1.IOAMRecord{TraceId: testTraceID, SpanId: testSpanID, TraceType: tt, ReporterNodeId: 9,
		Packets: 1, Hops: []*collectorv1.Hop{{Fields: tt, HopLimit: 63, WideNodeId: 1 << 40, WideIngressIf: 70000,
			WideEgressIf: 80000, WideNamespaceData: 0xdeadbeefcafef00d, BufferOccupancy: 17, SnapshotSchemaId: 0xc17,
			SnapshotData: make([]byte, 24), NamespaceData: 5, ChecksumComplement: 6}}}
	EnrichSpan(sp, []*collectorv1.IOAMRecord{r})
	require.Len(t, sp.Events, 1)
	e := attrMap(sp.Events[0].Attributes)
	assert.Equal(t, int64(1<<40), e[AttrWideNodeID].GetIntValue())
	assert.Equal(t, int64(63), e[AttrHopLimit].GetIntValue())
	assert.Equal(t, int64(70000), e[AttrWideIngressIf].GetIntValue())
	assert.Equal(t, int64(80000), e[AttrWideEgressIf].GetIntValue())
	assert.Equal(t, "0xdeadbeefcafef00d", e[AttrWideNamespaceData].GetStringValue())
	assert.Equal(t, int64(17), e[AttrBufferOccupancy].GetIntValue())
	assert.Equal(t, int64(0xc17), e[AttrSnapshotSchemaID].GetIntValue())
	assert.Equal(t, int64(24), e[AttrSnapshotLen].GetIntValue())
	assert.Equal(t, int64(5), e[AttrNamespaceData].GetIntValue())
	assert.Equal(t, int64(6), e[AttrChecksumComplement].GetIntValue())
	assert.NotContains(t, e, AttrNodeID)
	assert.Equal(t, "1099511627776", attrMap(sp.Attributes)[AttrPath].GetStringValue())
}

func TestEnrichSpanTransitDelayOverflowIgnored(t *testing.T) {
	sp := newSpan()
	r := rec(2, 0, 1)
	r.Hops[0].TransitDelay, r.Hops[0].TransitDelayMin, r.Hops[0].TransitDelayMax = 1<<31|5, 1<<31|5, 1<<31|5
	EnrichSpan(sp, []*collectorv1.IOAMRecord{r})
	assert.NotContains(t, attrMap(sp.Attributes), AttrTransitDelayMaxNs)
	assert.NotContains(t, attrMap(sp.Events[0].Attributes), AttrTransitDelayNs)
}

func TestEnrichSpanUnavailableValuesLeftOut(t *testing.T) {
	sp := newSpan()
	r := rec(3, 0, 2, 3)
	// The destination's egress interface and a queue depth Linux could not read.
	r.Hops[1].EgressIf = 0xFFFF
	r.Hops[1].QueueDepth, r.Hops[1].QueueDepthMin, r.Hops[1].QueueDepthMax = 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF
	EnrichSpan(sp, []*collectorv1.IOAMRecord{r})
	require.Len(t, sp.Events, 2)
	first, last := attrMap(sp.Events[0].Attributes), attrMap(sp.Events[1].Attributes)
	assert.Equal(t, int64(22), first[AttrEgressIf].GetIntValue())
	assert.Equal(t, int64(2), first[AttrQueueDepth].GetIntValue())
	assert.Equal(t, int64(13), last[AttrIngressIf].GetIntValue())
	assert.NotContains(t, last, AttrEgressIf)
	assert.NotContains(t, last, AttrQueueDepth)
	assert.NotContains(t, last, AttrQueueDepthMax)
	// The span summary is the maximum over the hops that measured one.
	assert.Equal(t, int64(4), attrMap(sp.Attributes)[AttrQueueDepthMax].GetIntValue())
}

func TestEnrichSpanWarnings(t *testing.T) {
	tests := []struct {
		name string
		recs []*collectorv1.IOAMRecord
		want []string // exact warnings
	}{
		{
			name: "clean path",
			recs: []*collectorv1.IOAMRecord{rec(3, 0, 1, 2, 3)},
		},
		{
			name: "overflow with skipped reporters",
			recs: func() []*collectorv1.IOAMRecord {
				a, b := rec(4, 0, 1, 2), rec(5, 0, 1, 2)
				a.Overflow, a.ReporterWrote = true, false
				b.Overflow, b.ReporterWrote = true, false
				return []*collectorv1.IOAMRecord{a, b}
			}(),
			want: []string{"ioam: trace overflowed at node 2: 2 hop(s) missing"},
		},
		{
			name: "overflow count unknown",
			recs: func() []*collectorv1.IOAMRecord {
				a := rec(2, 0, 1, 2)
				a.Overflow = true
				return []*collectorv1.IOAMRecord{a}
			}(),
			want: []string{"ioam: trace overflowed: hops missing after node 2"},
		},
		{
			name: "path changed at the destination",
			recs: []*collectorv1.IOAMRecord{rec(3, 0, 1, 2, 3), rec(3, 5, 1, 4, 3)},
			want: []string{"ioam: path changed during the span: 1 > 2 > 3 then 1 > 4 > 3"},
		},
		{
			name: "router report not confirmed",
			recs: []*collectorv1.IOAMRecord{rec(3, 0, 1, 4, 3), rec(2, 0, 1, 2)},
			want: []string{
				"ioam: path changed during the span: 1 > 4 > 3 then 1 > 2",
				"ioam: report from node 2 not confirmed downstream (path 1 > 2)",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sp := newSpan()
			EnrichSpan(sp, tc.recs)
			assert.Equal(t, tc.want, warningsOf(sp))
			for _, w := range warningsOf(sp) {
				assert.True(t, strings.HasPrefix(w, "ioam: "), w)
			}
		})
	}
}

func TestEnrichSpanOverflowAttribute(t *testing.T) {
	sp := newSpan()
	r := rec(2, 0, 1, 2)
	r.Overflow = true
	EnrichSpan(sp, []*collectorv1.IOAMRecord{r})
	assert.True(t, attrMap(sp.Attributes)[AttrOverflow].GetBoolValue())
}

func TestEnrichSpanAppendsToExistingWarnings(t *testing.T) {
	sp := newSpan()
	sp.Attributes = []*commonpb.KeyValue{{Key: AttrJaegerWarnings, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{
		ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{{Value: &commonpb.AnyValue_StringValue{StringValue: "app warning"}}}}}}}}
	EnrichSpan(sp, []*collectorv1.IOAMRecord{rec(3, 0, 1, 2, 3), rec(3, 5, 1, 4, 3)})
	w := warningsOf(sp)
	require.Len(t, w, 2)
	assert.Equal(t, "app warning", w[0])
	n := 0
	for _, kv := range sp.Attributes {
		if kv.Key == AttrJaegerWarnings {
			n++
		}
	}
	assert.Equal(t, 1, n, "one warnings attribute")
}

func TestEnrichSpanDeterministic(t *testing.T) {
	recs := []*collectorv1.IOAMRecord{rec(3, 0, 1, 2, 3), rec(3, 5, 1, 4, 3), rec(2, 1, 1, 2), rec(7, 2, 1, 7)}
	a, b := newSpan(), newSpan()
	EnrichSpan(a, recs)
	EnrichSpan(b, []*collectorv1.IOAMRecord{recs[3], recs[2], recs[1], recs[0]})
	assert.Equal(t, warningsOf(a), warningsOf(b))
	assert.Equal(t, attrMap(a.Attributes)[AttrPath].GetStringValue(), attrMap(b.Attributes)[AttrPath].GetStringValue())
}

func TestFormatPath(t *testing.T) {
	assert.Equal(t, "", FormatPath(nil))
	assert.Equal(t, "7", FormatPath([]int64{7}))
	assert.Equal(t, "1 > ? > 3", FormatPath([]int64{1, -1, 3}))
}
