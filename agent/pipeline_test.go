package agent

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// typeOSS is what the encapsulator sends: bits 0-3 and 22 (0xF00002).
const typeOSS = ioam6.BitHopLimitNodeID | ioam6.BitIfIDs | ioam6.BitTimestampSec | ioam6.BitTimestampFrac |
	ioam6.BitOpaqueStateSnapshot

var testIDs = ioam6.IDs{
	TraceID: [16]byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10},
	SpanID:  [8]byte{0x5a, 0x5a, 0, 0, 0, 0, 0, 1},
}

// emitTo adapts a function to the Exporter interface (tests, benchmarks).
type emitTo func([]*collectorv1.IOAMRecord)

func (f emitTo) Export(recs []*collectorv1.IOAMRecord) { f(recs) }
func (emitTo) Start(context.Context) error             { return nil }
func (emitTo) Close() error                            { return nil }

// linuxNode is what a Linux transit node writes for typeOSS without a schema.
func linuxNode(id uint32, hlim uint8, usec uint32) ioam6.Node {
	return ioam6.Node{Fields: typeOSS, HopLimit: hlim, NodeID: id, IngressIf: uint16(id*10 + 1), EgressIf: uint16(id*10 + 2),
		TimestampSec: 1700000000, TimestampFrac: usec, Snapshot: ioam6.Snapshot{SchemaID: ioam6.SchemaIDNone}}
}

// ownNode is the encapsulating host's entry holding the IDs (oss carrier).
func ownNode(t testing.TB, id uint32, ids ioam6.IDs, schema uint32) ioam6.Node {
	t.Helper()
	data := append(append([]byte(nil), ids.TraceID[:]...), ids.SpanID[:]...)
	return ioam6.Node{Fields: typeOSS, HopLimit: 64, NodeID: id, IngressIf: 0xFFFF, EgressIf: 10,
		TimestampSec: 1700000000, TimestampFrac: 1, Snapshot: ioam6.Snapshot{Len: 6, SchemaID: schema, Data: data}}
}

// eventData builds IOAM6_EVENT_ATTR_TRACE_DATA: entries newest first.
func eventData(t testing.TB, newestFirst ...ioam6.Node) []byte {
	t.Helper()
	var b []byte
	for i := range newestFirst {
		var err error
		b, err = ioam6.AppendNode(b, &newestFirst[i])
		require.NoError(t, err)
	}
	return b
}

func testConfig() Config {
	c := DefaultConfig()
	c.Namespaces = []NamespaceConfig{{ID: 123, Carrier: CarrierOSS}}
	return c
}

type recSink struct {
	mu   sync.Mutex
	recs []*collectorv1.IOAMRecord
}

func (s *recSink) Export(r []*collectorv1.IOAMRecord) {
	s.mu.Lock()
	s.recs = append(s.recs, r...)
	s.mu.Unlock()
}
func (s *recSink) get() []*collectorv1.IOAMRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*collectorv1.IOAMRecord(nil), s.recs...)
}

func newTestPipeline(t *testing.T, cfg Config, local uint32) (*Pipeline, *recSink, *Metrics) {
	t.Helper()
	return newTestPipelineFor(t, cfg, LocalNode{ID: local, WideID: ioam6.WideNodeIDUnavailable})
}

func newTestPipelineFor(t *testing.T, cfg Config, local LocalNode) (*Pipeline, *recSink, *Metrics) {
	t.Helper()
	m := NewMetrics()
	s := &recSink{}
	p := NewPipeline(cfg, local, SourceNetlink, m, emitTo(s.Export))
	return p, s, m
}

func TestPipelineDecodesEventsIntoRecords(t *testing.T) {
	p, s, m := newTestPipeline(t, testConfig(), 3)
	own := ownNode(t, 1, testIDs, ioam6.DefaultSchemaID)
	ev := func(usec uint32) Event {
		return Event{NamespaceID: 123, NodeLen: 4, TraceType: uint32(typeOSS),
			Data: eventData(t, linuxNode(3, 62, usec+10), linuxNode(2, 63, usec), own)}
	}
	p.Handle([]Event{ev(100), ev(200)})
	// r2 (node 3) overflowed on this one: only r1 and the host wrote.
	p.Handle([]Event{{NamespaceID: 123, NodeLen: 4, TraceType: uint32(typeOSS),
		Data: eventData(t, linuxNode(2, 63, 300), own)}})
	p.Flush()

	recs := s.get()
	require.Len(t, recs, 2)
	r := recs[0]
	assert.Equal(t, testIDs.TraceID[:], r.TraceId)
	assert.Equal(t, testIDs.SpanID[:], r.SpanId)
	assert.Equal(t, uint64(2), r.Packets)
	assert.True(t, r.ReporterWrote)
	assert.False(t, r.Overflow)
	assert.Equal(t, "oss", r.Carrier)
	assert.Equal(t, uint32(0xF00002), r.TraceType)
	require.Len(t, r.Hops, 3)
	for i, want := range []uint32{1, 2, 3} {
		assert.Equal(t, want, r.Hops[i].NodeId, "hop %d in path order", i)
	}
	assert.Equal(t, uint32(0xC17), r.Hops[0].SnapshotSchemaId)
	assert.Equal(t, uint64(1700000000e9+110e3), r.Hops[2].FirstTimestampUnixNano)
	assert.Equal(t, uint64(1700000000e9+210e3), r.Hops[2].LastTimestampUnixNano)

	o := recs[1]
	assert.False(t, o.ReporterWrote)
	assert.True(t, o.Overflow)
	assert.Len(t, o.Hops, 2)

	assert.Equal(t, 3.0, testutil.ToFloat64(m.EventsReceived.WithLabelValues(SourceNetlink)))
	assert.Equal(t, 3.0, testutil.ToFloat64(m.EventsDecoded))
}

func TestPipelineCountsMalformedByReason(t *testing.T) {
	p, s, m := newTestPipeline(t, testConfig(), 3)
	own := ownNode(t, 1, testIDs, ioam6.DefaultSchemaID)
	good := eventData(t, linuxNode(3, 62, 1), own)
	wrongSchema := eventData(t, linuxNode(3, 62, 1), ownNode(t, 1, testIDs, 0x777))
	badSnapLen := eventData(t, linuxNode(3, 62, 1), own)
	badSnapLen[len(badSnapLen)-28] = 9 // snapshot claims 9 words: runs past the data
	ev := func(ns uint16, nodeLen uint8, data []byte) Event {
		return Event{NamespaceID: ns, NodeLen: nodeLen, TraceType: uint32(typeOSS), Data: data}
	}
	// A snapshot of 5 words with the CLT schema: the carrier's length is wrong.
	odd := own
	odd.Snapshot.Len, odd.Snapshot.Data = 5, odd.Snapshot.Data[:20]
	badOSSLen := eventData(t, linuxNode(3, 62, 1), odd)
	zeroIDs := eventData(t, linuxNode(3, 62, 1), ownNode(t, 1, ioam6.IDs{}, ioam6.DefaultSchemaID))

	cases := []struct {
		ev     Event
		reason string
	}{
		{ev(999, 4, good), ReasonUnconfiguredNamespace},
		{ev(123, 5, good), ReasonNodeLen},
		{ev(123, 2, good), ReasonNodeLen},
		{ev(123, 4, good[:len(good)-3]), ReasonSnapshot},
		{ev(123, 4, good[:10]), ReasonTruncated},
		{ev(123, 4, wrongSchema), ReasonCarrier},
		{ev(123, 4, badSnapLen), ReasonSnapshot},
		{ev(123, 4, badOSSLen), ReasonCarrier},
		{ev(123, 4, nil), ReasonCarrier}, // no entry at all: no IDs
		{ev(123, 4, zeroIDs), ReasonCarrier},
	}
	for _, c := range cases {
		before := testutil.ToFloat64(m.EventsMalformed.WithLabelValues(c.reason))
		p.Handle([]Event{c.ev})
		assert.Equal(t, before+1, testutil.ToFloat64(m.EventsMalformed.WithLabelValues(c.reason)), "reason %s", c.reason)
	}
	p.Handle([]Event{ev(123, 4, good)})
	p.Flush()
	assert.Len(t, s.get(), 1, "the pipeline keeps working after malformed input")
	assert.Equal(t, 1.0, testutil.ToFloat64(m.EventsDecoded))
}

func TestPipelineDecodesCapturedOption(t *testing.T) {
	p, s, m := newTestPipeline(t, testConfig(), 2)
	spec := ioam6.HBHSpec{NextHeader: 17, NamespaceID: 123, Type: typeOSS &^ ioam6.BitOpaqueStateSnapshot, Slots: 1,
		Carrier: ioam6.CarrierConfig{Carrier: ioam6.CarrierOSS}, Own: ownNode(t, 1, testIDs, 0)}
	hbh, err := ioam6.AppendHBH(nil, spec, testIDs)
	require.NoError(t, err)
	opt, _, err := ioam6.FindIOAMOption(hbh)
	require.NoError(t, err)
	p.Handle([]Event{{Option: opt}})
	p.Handle([]Event{{Option: opt[:7]}})
	p.Flush()
	recs := s.get()
	require.Len(t, recs, 1)
	assert.Equal(t, testIDs.SpanID[:], recs[0].SpanId)
	require.Len(t, recs[0].Hops, 1, "only the host's own entry is written")
	assert.False(t, recs[0].ReporterWrote)
	assert.False(t, recs[0].Overflow, "a captured header says whether it overflowed")
	assert.Equal(t, 1.0, testutil.ToFloat64(m.EventsMalformed.WithLabelValues(ReasonTruncated)))
}

func TestPipelineWindowFlushes(t *testing.T) {
	cfg := testConfig()
	cfg.Aggregation.Window = 20 * time.Millisecond
	p, s, _ := newTestPipeline(t, cfg, 3)
	require.NoError(t, p.Start(t.Context()))
	defer p.Close()
	data := eventData(t, linuxNode(3, 62, 1), ownNode(t, 1, testIDs, ioam6.DefaultSchemaID))
	p.Handle([]Event{{NamespaceID: 123, NodeLen: 4, TraceType: uint32(typeOSS), Data: data}})
	waitFor(t, "window flush", func() bool { return len(s.get()) == 1 })
	p.Handle([]Event{{NamespaceID: 123, NodeLen: 4, TraceType: uint32(typeOSS), Data: data}})
	require.NoError(t, p.Close())
	require.NoError(t, p.Close())
	assert.Len(t, s.get(), 2, "Close flushes the open aggregate")
}

func TestPipelineZeroWindowEmitsEveryEvent(t *testing.T) {
	cfg := testConfig()
	cfg.Aggregation.Window = 0
	p, s, _ := newTestPipeline(t, cfg, 3)
	data := eventData(t, linuxNode(3, 62, 1), ownNode(t, 1, testIDs, ioam6.DefaultSchemaID))
	e := Event{NamespaceID: 123, NodeLen: 4, TraceType: uint32(typeOSS), Data: data}
	p.Handle([]Event{e, e, e})
	assert.Len(t, s.get(), 3)
}
