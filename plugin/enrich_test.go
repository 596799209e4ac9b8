package plugin

import (
	"slices"
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

// eventsNamed splits the span's events into hop events and the others.
func hopEvents(sp *tracepb.Span) (hops, other []*tracepb.Span_Event) {
	for _, ev := range sp.Events {
		if IsHopEvent(ev.Name) {
			hops = append(hops, ev)
		} else {
			other = append(other, ev)
		}
	}
	return hops, other
}

// fakeLabels names nodes by short id.
type fakeLabels map[uint64]string

func (f fakeLabels) Label(id uint64, wide bool) string {
	if n, ok := f[id]; ok && !wide {
		return n
	}
	return FallbackNodeLabel(id, wide)
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
	assert.Equal(t, int64(6), a[AttrQueueDepthMaxBytes].GetIntValue())
	for _, k := range []string{AttrOverflow, AttrPathChanged, AttrUnconfirmed} {
		assert.NotContains(t, a, k)
	}
	assert.Empty(t, warningsOf(sp), "a prefix from an upstream router is confirmed")

	hops, other := hopEvents(sp)
	assert.Empty(t, other)
	require.Len(t, hops, 3)
	names := []string{"hop 0 · node 1 · if 11 → 21", "hop 1 · node 2 · if 12 → 22 · +0.100 ms", "hop 2 · node 3 · if 13 → 23 · +0.100 ms"}
	for i, ev := range hops {
		assert.Equal(t, names[i], ev.Name)
		e := attrMap(ev.Attributes)
		assert.Equal(t, int64(i), e[AttrHopIndex].GetIntValue())
		assert.Equal(t, int64(i+1), e[AttrNodeID].GetIntValue())
		assert.Equal(t, int64(64-i), e[AttrHopLimit].GetIntValue())
		assert.Equal(t, int64(11+i), e[AttrIngressIf].GetIntValue())
		assert.Equal(t, int64(21+i), e[AttrEgressIf].GetIntValue())
		assert.Equal(t, int64(6), e[AttrPackets].GetIntValue(), "the destination saw 6 of each hop's packets, router 2 only 3")
		// Timestamp of the first window: seconds + fraction in µs.
		want := spanStart + uint64(100*(i+1))*uint64(time.Microsecond)
		assert.Equal(t, want, ev.TimeUnixNano)
		assert.Equal(t, time.Unix(0, int64(want)).UTC().Format(time.RFC3339Nano), e[AttrTimestamp].GetStringValue())
		if i == 0 {
			assert.NotContains(t, e, AttrLinkDelayNs)
		} else {
			assert.Equal(t, int64(100_000), e[AttrLinkDelayNs].GetIntValue())
		}
		assert.Equal(t, int64(900*(i+1)), e[AttrTransitDelayMinNs].GetIntValue())
		assert.Equal(t, int64(1100*(i+1)), e[AttrTransitDelayMaxNs].GetIntValue())
		assert.Equal(t, int64(1000*(i+1)), e[AttrTransitDelayNs].GetIntValue())
		assert.Equal(t, int64(i+1), e[AttrQueueDepthBytes].GetIntValue())
		assert.Equal(t, int64(2*(i+1)), e[AttrQueueDepthMaxBytes].GetIntValue())
		assert.NotContains(t, e, AttrWideNodeID, "bit 8 not in the trace type")
		assert.NotContains(t, e, AttrNamespaceData)
	}
}

func TestEnrichHopSummaries(t *testing.T) {
	tests := []struct {
		name   string
		labels NodeLabeler
		recs   func() []*collectorv1.IOAMRecord
		want   []string
	}{
		{
			name:   "named nodes keep their id",
			labels: fakeLabels{1: "athos", 3: "aramis"},
			recs:   func() []*collectorv1.IOAMRecord { return []*collectorv1.IOAMRecord{rec(3, 0, 1, 2, 3)} },
			want:   []string{"hop 0 · athos (node 1) · if 11 → 21", "hop 1 · node 2 · if 12 → 22 · +0.100 ms", "hop 2 · aramis (node 3) · if 13 → 23 · +0.100 ms"},
		},
		{
			name: "unavailable egress and a 50 ms hop",
			recs: func() []*collectorv1.IOAMRecord {
				r := rec(3, 0, 2, 3)
				r.Hops[1].EgressIf = 0xFFFF
				r.Hops[1].TimestampFrac = r.Hops[0].TimestampFrac + 50_213
				return []*collectorv1.IOAMRecord{r}
			},
			want: []string{"hop 0 · node 2 · if 12 → 22", "hop 1 · node 3 · if 13 → – · +50.213 ms"},
		},
		{
			name: "earlier timestamp shows a negative delay",
			recs: func() []*collectorv1.IOAMRecord {
				r := rec(3, 0, 2, 3)
				r.Hops[1].TimestampFrac = 50
				return []*collectorv1.IOAMRecord{r}
			},
			want: []string{"hop 0 · node 2 · if 12 → 22", "hop 1 · node 3 · if 13 → 23 · -0.050 ms"},
		},
		{
			name: "no interfaces, no timestamps, unknown node",
			recs: func() []*collectorv1.IOAMRecord {
				r := rec(2, 0, 0xFFFFFF, 2)
				r.TraceType = 0x800000
				for _, h := range r.Hops {
					h.Fields = 0x800000
				}
				return []*collectorv1.IOAMRecord{r}
			},
			want: []string{"hop 0 · node ?", "hop 1 · node 2"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sp := newSpan()
			Enrich(sp, tc.recs(), tc.labels)
			hops, _ := hopEvents(sp)
			var got []string
			for _, ev := range hops {
				got = append(got, ev.Name)
			}
			assert.Equal(t, tc.want, got)
		})
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
		assert.NotContains(t, e, AttrLinkDelayNs)
		assert.NotContains(t, e, AttrIngressIf)
		assert.NotContains(t, e, AttrTransitDelayNs)
	}
	a := attrMap(sp.Attributes)
	assert.NotContains(t, a, AttrTransitDelayMaxNs)
	assert.NotContains(t, a, AttrQueueDepthMaxBytes)
}

// TestEnrichFormats: one format per field (docs/contracts.md): short ids
// decimal, wide ids, schema ids and opaque data hex.
func TestEnrichFormats(t *testing.T) {
	sp := newSpan()
	const tt = 1<<(23-8) | 1<<(23-9) | 1<<(23-10) | 1<<(23-11) | 1<<(23-22) | 1<<(23-5) | 1<<(23-7)
	r := &collectorv1.IOAMRecord{TraceId: testTraceID, SpanId: testSpanID, TraceType: tt, ReporterNodeId: 9,
		Packets: 1, Hops: []*collectorv1.Hop{{Fields: tt, HopLimit: 63, WideNodeId: 1 << 40, WideIngressIf: 70000,
			WideEgressIf: 80000, WideNamespaceData: 0xdeadbeefcafef00d, BufferOccupancy: 17, SnapshotSchemaId: 0xc17,
			SnapshotData: make([]byte, 24), NamespaceData: 5, ChecksumComplement: 6}}}
	EnrichSpan(sp, []*collectorv1.IOAMRecord{r})
	require.Len(t, sp.Events, 1)
	e := attrMap(sp.Events[0].Attributes)
	assert.Equal(t, "0x10000000000", e[AttrWideNodeID].GetStringValue())
	assert.Equal(t, int64(63), e[AttrHopLimit].GetIntValue())
	assert.Equal(t, "0x11170", e[AttrWideIngressIf].GetStringValue())
	assert.Equal(t, "0x13880", e[AttrWideEgressIf].GetStringValue())
	assert.Equal(t, "0xdeadbeefcafef00d", e[AttrWideNamespaceData].GetStringValue())
	assert.Equal(t, int64(17), e[AttrBufferOccupancy].GetIntValue())
	assert.Equal(t, "0x000c17", e[AttrSnapshotSchemaID].GetStringValue())
	assert.Equal(t, int64(24), e[AttrSnapshotLenBytes].GetIntValue())
	assert.Equal(t, "0x00000005", e[AttrNamespaceData].GetStringValue())
	assert.Equal(t, "0x00000006", e[AttrChecksumComplement].GetStringValue())
	assert.NotContains(t, e, AttrNodeID)
	assert.Equal(t, "hop 0 · node 0x10000000000 · if 0x11170 → 0x13880", sp.Events[0].Name)
	assert.Equal(t, "0x10000000000", attrMap(sp.Attributes)[AttrPath].GetStringValue())
}

// TestEnrichNotAvailableLeftOut: every value Linux or RFC 9197 marks "not
// available" is left out, snapshot fields included.
func TestEnrichNotAvailableLeftOut(t *testing.T) {
	const tt = 0xff0000 | 1<<(23-8) | 1<<(23-9) | 1<<(23-10) | 1<<(23-11) | 1<<(23-22)
	hop := func() *collectorv1.Hop {
		return &collectorv1.Hop{Fields: tt, HopLimit: 60, NodeId: 7, IngressIf: 1, EgressIf: 2, TimestampSec: 1_700_000_000,
			TimestampFrac: 5, TransitDelay: 10, NamespaceData: 1, QueueDepth: 3, ChecksumComplement: 1, WideNodeId: 7,
			WideIngressIf: 1, WideEgressIf: 2, WideNamespaceData: 1, BufferOccupancy: 1, SnapshotSchemaId: 0xc17, SnapshotData: []byte{1, 2, 3, 4}}
	}
	tests := []struct {
		name    string
		mutate  func(*collectorv1.Hop)
		missing []string
	}{
		{"node id", func(h *collectorv1.Hop) { h.NodeId = 0xFFFFFF }, []string{AttrNodeID}},
		{"wide node id", func(h *collectorv1.Hop) { h.WideNodeId = 0xFFFFFFFFFFFFFF }, []string{AttrWideNodeID}},
		{"ingress", func(h *collectorv1.Hop) { h.IngressIf = 0xFFFF }, []string{AttrIngressIf}},
		{"egress (destination)", func(h *collectorv1.Hop) { h.EgressIf = 0xFFFF }, []string{AttrEgressIf}},
		{"seconds", func(h *collectorv1.Hop) { h.TimestampSec = 0xFFFFFFFF }, []string{AttrTimestamp}},
		{"fraction not in µs", func(h *collectorv1.Hop) { h.TimestampFrac = 1_000_000 }, []string{AttrTimestamp}},
		{"transit delay", func(h *collectorv1.Hop) { h.TransitDelay = 0xFFFFFFFF }, []string{AttrTransitDelayNs, AttrTransitDelayMinNs, AttrTransitDelayMaxNs}},
		{"transit delay overflow bit", func(h *collectorv1.Hop) { h.TransitDelay = 1<<31 | 5 }, []string{AttrTransitDelayNs, AttrTransitDelayMinNs, AttrTransitDelayMaxNs}},
		{"namespace data", func(h *collectorv1.Hop) { h.NamespaceData = 0xFFFFFFFF }, []string{AttrNamespaceData}},
		{"queue depth (no qdisc)", func(h *collectorv1.Hop) { h.QueueDepth = 0xFFFFFFFF }, []string{AttrQueueDepthBytes, AttrQueueDepthMinBytes, AttrQueueDepthMaxBytes}},
		{"checksum complement", func(h *collectorv1.Hop) { h.ChecksumComplement = 0xFFFFFFFF }, []string{AttrChecksumComplement}},
		{"wide interfaces", func(h *collectorv1.Hop) { h.WideIngressIf, h.WideEgressIf = 0xFFFFFFFF, 0xFFFFFFFF }, []string{AttrWideIngressIf, AttrWideEgressIf}},
		{"wide namespace data", func(h *collectorv1.Hop) { h.WideNamespaceData = 0xFFFFFFFFFFFFFFFF }, []string{AttrWideNamespaceData}},
		{"buffer occupancy", func(h *collectorv1.Hop) { h.BufferOccupancy = 0xFFFFFFFF }, []string{AttrBufferOccupancy}},
		{"empty snapshot (no schema)", func(h *collectorv1.Hop) { h.SnapshotSchemaId, h.SnapshotData = 0xFFFFFF, nil },
			[]string{AttrSnapshotSchemaID, AttrSnapshotLenBytes}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := newSpan()
			EnrichSpan(base, []*collectorv1.IOAMRecord{{TraceId: testTraceID, SpanId: testSpanID, TraceType: tt, ReporterNodeId: 7, Packets: 1,
				Hops: []*collectorv1.Hop{hop()}}})
			full := attrMap(base.Events[0].Attributes)
			h := hop()
			tc.mutate(h)
			sp := newSpan()
			EnrichSpan(sp, []*collectorv1.IOAMRecord{{TraceId: testTraceID, SpanId: testSpanID, TraceType: tt, ReporterNodeId: 7, Packets: 1,
				Hops: []*collectorv1.Hop{h}}})
			got := attrMap(sp.Events[0].Attributes)
			for _, k := range tc.missing {
				assert.Contains(t, full, k, "present when available")
				assert.NotContains(t, got, k)
			}
			assert.Len(t, got, len(full)-len(tc.missing), "nothing else left out")
		})
	}
}

// TestEnrichPacketsMergedAcrossReporters: reporters on one path see the same
// packets; a hop forwarded the most one reporter saw, never their sum.
func TestEnrichPacketsMergedAcrossReporters(t *testing.T) {
	withPackets := func(r *collectorv1.IOAMRecord, n uint64) *collectorv1.IOAMRecord { r.Packets = n; return r }
	tests := []struct {
		name     string
		recs     []*collectorv1.IOAMRecord
		span     int64
		perHop   []int64
		hopCount int
	}{
		{
			name: "overflow seen by two reporters",
			recs: func() []*collectorv1.IOAMRecord {
				a, b := withPackets(rec(4, 0, 1, 2), 4), withPackets(rec(5, 0, 1, 2), 4)
				a.Overflow, a.ReporterWrote, b.Overflow, b.ReporterWrote = true, false, true, false
				return []*collectorv1.IOAMRecord{a, b}
			}(),
			span: 4, perHop: []int64{4, 4},
		},
		{
			name:   "destination lost packets a router forwarded",
			recs:   []*collectorv1.IOAMRecord{withPackets(rec(2, 0, 1, 2), 5), withPackets(rec(3, 0, 1, 2, 3), 3)},
			span:   5,
			perHop: []int64{5, 5, 3},
		},
		{
			name:   "windows of one reporter add up",
			recs:   []*collectorv1.IOAMRecord{withPackets(rec(3, 0, 1, 2), 2), withPackets(rec(3, 1, 1, 2), 3), withPackets(rec(2, 0, 1, 2), 4)},
			span:   5,
			perHop: []int64{5, 5},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sp := newSpan()
			EnrichSpan(sp, tc.recs)
			assert.Equal(t, tc.span, attrMap(sp.Attributes)[AttrPackets].GetIntValue())
			hops, _ := hopEvents(sp)
			var got []int64
			for _, ev := range hops {
				got = append(got, attrMap(ev.Attributes)[AttrPackets].GetIntValue())
			}
			assert.Equal(t, tc.perHop, got)
		})
	}
}

func TestEnrichSpanWarnings(t *testing.T) {
	overflowed := func(r *collectorv1.IOAMRecord, wrote bool) *collectorv1.IOAMRecord {
		r.Overflow, r.ReporterWrote = true, wrote
		return r
	}
	type event struct {
		kind, path string
		hops       int64
	}
	tests := []struct {
		name   string
		recs   []*collectorv1.IOAMRecord
		want   []string // exact warnings
		events []event
		flags  []string // searchable span flags
	}{
		{
			name: "clean path",
			recs: []*collectorv1.IOAMRecord{rec(3, 0, 1, 2, 3)},
		},
		{
			name:   "overflow with reporters that found it full",
			recs:   []*collectorv1.IOAMRecord{overflowed(rec(4, 0, 1, 2), false), overflowed(rec(5, 0, 1, 2), false)},
			want:   []string{"ioam: trace overflowed after node 2 (entries written by 1 > 2): at least 2 hop(s) not recorded downstream of node 2 (node(s) 4, 5 found the trace full)"},
			events: []event{{WarningOverflow, "1 > 2", 2}},
			flags:  []string{AttrOverflow},
		},
		{
			name:   "overflow count unknown",
			recs:   []*collectorv1.IOAMRecord{overflowed(rec(2, 0, 1, 2), true)},
			want:   []string{"ioam: trace overflowed after node 2 (entries written by 1 > 2): hops not recorded downstream of node 2 (how many is unknown: no reporter found the trace full)"},
			events: []event{{WarningOverflow, "1 > 2", 2}},
			flags:  []string{AttrOverflow},
		},
		{
			name:   "path changed at the destination",
			recs:   []*collectorv1.IOAMRecord{rec(3, 0, 1, 2, 3), rec(3, 5, 1, 4, 3)},
			want:   []string{"ioam: path changed during the span: 1 > 2 > 3 then 1 > 4 > 3"},
			events: []event{{WarningPathChanged, "1 > 4 > 3", 3}},
			flags:  []string{AttrPathChanged},
		},
		{
			name:   "router report not confirmed: one warning, not two",
			recs:   []*collectorv1.IOAMRecord{rec(3, 0, 1, 4, 3), rec(2, 0, 1, 2)},
			want:   []string{"ioam: report from node 2 not confirmed downstream (path 1 > 2)"},
			events: []event{{WarningUnconfirmed, "1 > 2", 2}},
			flags:  []string{AttrUnconfirmed},
		},
		{
			name: "path change and an unconfirmed report",
			recs: []*collectorv1.IOAMRecord{rec(3, 0, 1, 2, 3), rec(2, 0, 1, 2), rec(3, 1, 1, 4, 3), rec(5, 1, 1, 5)},
			want: []string{
				"ioam: path changed during the span: 1 > 2 > 3 then 1 > 4 > 3",
				"ioam: report from node 5 not confirmed downstream (path 1 > 5)",
			},
			events: []event{{WarningPathChanged, "1 > 4 > 3", 3}, {WarningUnconfirmed, "1 > 5", 2}},
			flags:  []string{AttrPathChanged, AttrUnconfirmed},
		},
		{
			name:   "other path confirmed by two routers",
			recs:   []*collectorv1.IOAMRecord{rec(3, 0, 1, 2, 3), rec(5, 1, 1, 5), rec(6, 1, 1, 5, 6)},
			want:   []string{"ioam: path changed during the span: 1 > 2 > 3 then 1 > 5 > 6"},
			events: []event{{WarningPathChanged, "1 > 5 > 6", 3}},
			flags:  []string{AttrPathChanged},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sp := newSpan()
			EnrichSpan(sp, tc.recs)
			assert.Equal(t, tc.want, warningsOf(sp))
			_, other := hopEvents(sp)
			var got []event
			for i, ev := range other {
				e := attrMap(ev.Attributes)
				assert.Equal(t, tc.want[i], ev.Name, "the event is named by its warning")
				got = append(got, event{e[AttrWarning].GetStringValue(), e[AttrWarningPath].GetStringValue(), e[AttrWarningHopCount].GetIntValue()})
			}
			assert.Equal(t, tc.events, got)
			a := attrMap(sp.Attributes)
			for _, k := range []string{AttrOverflow, AttrPathChanged, AttrUnconfirmed} {
				if slices.Contains(tc.flags, k) {
					assert.True(t, a[k].GetBoolValue(), k)
				} else {
					assert.NotContains(t, a, k)
				}
			}
		})
	}
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

func TestFormats(t *testing.T) {
	assert.Equal(t, "", formatPath(nil))
	assert.Equal(t, "7", formatPath([]nodeRef{{id: 7, known: true}}))
	assert.Equal(t, "1 > ? > 0xabc", formatPath([]nodeRef{{id: 1, known: true}, {}, {id: 0xabc, wide: true, known: true}}))
	assert.Equal(t, "node 3", FallbackNodeLabel(3, false))
	assert.Equal(t, "node 0x1000003", FallbackNodeLabel(0x1000003, true))
	assert.Equal(t, "+50.213 ms", FormatDelay(50_213_000))
	assert.Equal(t, "-0.050 ms", FormatDelay(-50_000))
	assert.Equal(t, "ioam porthos → aramis", NetworkSpanName("porthos", "aramis"))
	assert.Equal(t, "ioam ⚠ report from node 5 not confirmed downstream (path 1 > 5)",
		WarningSpanName("ioam: report from node 5 not confirmed downstream (path 1 > 5)"))
}
