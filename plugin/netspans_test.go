package plugin

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
)

// netSpansOf builds the network spans of a span with recs, ids assigned.
func netSpansOf(t *testing.T, sp *tracepb.Span, recs []*collectorv1.IOAMRecord, labels NodeLabeler, used map[[8]byte]struct{}) (services []string, spans []*tracepb.Span) {
	t.Helper()
	a := analyzeSpan(sp, recs)
	require.NotNil(t, a)
	if used == nil {
		used = map[[8]byte]struct{}{}
	}
	for _, rs := range assignIDs(a.networkSpans(sp, labels), used) {
		svc := attrMap(rs.Resource.Attributes)[AttrOTelServiceName].GetStringValue()
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				services = append(services, svc)
				spans = append(spans, s)
			}
		}
	}
	return services, spans
}

// spanOver returns a span that lasts d from the records' first timestamps.
func spanOver(d time.Duration) *tracepb.Span {
	sp := newSpan()
	sp.EndTimeUnixNano = sp.StartTimeUnixNano + uint64(d)
	return sp
}

func TestNetworkSpansLinks(t *testing.T) {
	sp := spanOver(time.Second)
	labels := fakeLabels{1: "athos", 2: "porthos", 3: "aramis"}
	recs := []*collectorv1.IOAMRecord{rec(3, 0, 1, 2, 3)}
	services, spans := netSpansOf(t, sp, recs, labels, nil)
	require.Len(t, spans, 2)
	assert.Equal(t, []string{"porthos", "aramis"}, services, "the service is the node that received the packet")
	for i, s := range spans {
		assert.Equal(t, sp.TraceId, s.TraceId)
		assert.Equal(t, sp.SpanId, s.ParentSpanId)
		assert.Equal(t, tracepb.Span_SPAN_KIND_INTERNAL, s.Kind)
		assert.Len(t, s.SpanId, 8)
		// Hop i at span start + 100·(i+1) µs.
		assert.Equal(t, spanStart+uint64(100*(i+1))*uint64(time.Microsecond), s.StartTimeUnixNano)
		assert.Equal(t, spanStart+uint64(100*(i+2))*uint64(time.Microsecond), s.EndTimeUnixNano)
		a := attrMap(s.Attributes)
		assert.True(t, a[AttrSynthetic].GetBoolValue())
		assert.Equal(t, int64(i+1), a[AttrHopIndex].GetIntValue(), "the receiving hop's fields")
		assert.Equal(t, int64(i+2), a[AttrNodeID].GetIntValue())
		assert.Equal(t, int64(100_000), a[AttrLinkDelayNs].GetIntValue())
		assert.Empty(t, warningsOf(s))
		assert.Nil(t, s.Status)
	}
	assert.Equal(t, "ioam athos → porthos", spans[0].Name)
	assert.Equal(t, "ioam porthos → aramis", spans[1].Name)

	// Deterministic: the same ids on every read.
	_, again := netSpansOf(t, spanOver(time.Second), recs, labels, nil)
	for i := range spans {
		assert.Equal(t, spans[i].SpanId, again[i].SpanId)
	}
	assert.NotEqual(t, spans[0].SpanId, spans[1].SpanId)

	// A real span holding the derived id: re-derived.
	used := map[[8]byte]struct{}{[8]byte(spans[0].SpanId): {}}
	_, moved := netSpansOf(t, spanOver(time.Second), recs, labels, used)
	assert.NotEqual(t, spans[0].SpanId, moved[0].SpanId)
	assert.Equal(t, spans[1].SpanId, moved[1].SpanId)
}

func TestNetworkSpansClockTrouble(t *testing.T) {
	noTimestamps := func() *collectorv1.IOAMRecord {
		r := rec(3, 0, 1, 2)
		r.TraceType = 0x800000
		for _, h := range r.Hops {
			h.Fields = 0x800000
		}
		return r
	}
	tests := []struct {
		name       string
		span       *tracepb.Span
		rec        func() *collectorv1.IOAMRecord
		start, end uint64
		warn       string
	}{
		{
			name:  "earlier timestamp: zero length",
			span:  spanOver(time.Second),
			rec:   func() *collectorv1.IOAMRecord { r := rec(3, 0, 1, 2); r.Hops[1].TimestampFrac = 50; return r },
			start: spanStart + 100_000, end: spanStart + 100_000,
			warn: "ioam: clock: hop 1's timestamp is 50µs before hop 0's (clocks not synchronised): link shown with zero length",
		},
		{
			name:  "outside the span: clamped",
			span:  spanOver(150 * time.Microsecond),
			rec:   func() *collectorv1.IOAMRecord { return rec(3, 0, 1, 2) },
			start: spanStart + 100_000, end: spanStart + 150_000,
			warn: "ioam: clock: link timestamps fall outside the span (clock skew between hosts?): clamped to the span's bounds",
		},
		{
			name:  "hours away: clamped to the span",
			span:  spanOver(time.Second),
			rec:   func() *collectorv1.IOAMRecord { return rec(3, 7200, 1, 2) },
			start: spanStart + uint64(time.Second), end: spanStart + uint64(time.Second),
			warn: "ioam: clock: link timestamps fall outside the span (clock skew between hosts?): clamped to the span's bounds",
		},
		{
			name:  "no timestamps",
			span:  spanOver(time.Second),
			rec:   noTimestamps,
			start: spanStart, end: spanStart,
			warn: "ioam: clock: hop 0 or hop 1 carries no timestamp: link shown with zero length at the span start",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, spans := netSpansOf(t, tc.span, []*collectorv1.IOAMRecord{tc.rec()}, nil, nil)
			require.Len(t, spans, 1)
			s := spans[0]
			assert.Equal(t, tc.start, s.StartTimeUnixNano)
			assert.Equal(t, tc.end, s.EndTimeUnixNano)
			assert.GreaterOrEqual(t, s.EndTimeUnixNano, s.StartTimeUnixNano)
			assert.Contains(t, warningsOf(s), tc.warn)
		})
	}
}

func TestNetworkSpansWarnings(t *testing.T) {
	sp := spanOver(10 * time.Second)
	recs := []*collectorv1.IOAMRecord{rec(3, 0, 1, 2, 3), rec(3, 1, 1, 4, 3), rec(5, 2, 1, 5)}
	services, spans := netSpansOf(t, sp, recs, fakeLabels{4: "dartagnan"}, nil)
	require.Len(t, spans, 4, "2 links, 2 warnings")
	var warns []*tracepb.Span
	for i, s := range spans {
		if strings.HasPrefix(s.Name, "ioam ⚠ ") {
			warns = append(warns, s)
			assert.Equal(t, tracepb.Status_STATUS_CODE_ERROR, s.Status.GetCode(), "flagged in the timeline and the search results")
			assert.Equal(t, s.StartTimeUnixNano, s.EndTimeUnixNano)
			assert.True(t, attrMap(s.Attributes)[AttrSynthetic].GetBoolValue())
			assert.Equal(t, []string{s.Status.GetMessage()}, warningsOf(s))
			_ = services[i]
		}
	}
	require.Len(t, warns, 2)
	assert.Equal(t, "ioam ⚠ path changed during the span: 1 > 2 > 3 then 1 > 4 > 3", warns[0].Name)
	assert.Equal(t, "ioam ⚠ report from node 5 not confirmed downstream (path 1 > 5)", warns[1].Name)
	assert.Equal(t, []string{"node 2", "node 3", "dartagnan", "node 5"}, services, "a path change shows at the node where the path forked")
	a := attrMap(warns[0].Attributes)
	assert.Equal(t, "1 > 4 > 3", a[AttrWarningPath].GetStringValue())
	assert.Equal(t, spanStart+uint64(time.Second), warns[0].StartTimeUnixNano, "when the other path was first seen")
}

func TestNetworkSpansConfigSwitch(t *testing.T) {
	cfg, err := ParseConfig([]byte("enrich:\n  network_spans: false\n"))
	require.NoError(t, err)
	assert.False(t, cfg.Enrich.NetworkSpans)
	assert.True(t, DefaultConfig().Enrich.NetworkSpans, "on by default")

	for _, on := range []bool{true, false} {
		e := startEnv(t, func(c *Config) { c.Enrich.NetworkSpans = on })
		e.export(t, spanSpec{trace: 1, span: 1, service: "svc", name: "op", start: time.Now(), dur: time.Millisecond},
			spanSpec{trace: 2, span: 1, service: "svc", name: "no records", start: time.Now(), dur: time.Millisecond})
		r := rec(3, 0, 1, 2, 3)
		r.TraceId, r.SpanId = tid(1), sid(1)
		_, err := e.collector.Report(t.Context(), &collectorv1.ReportRequest{Records: []*collectorv1.IOAMRecord{r}})
		require.NoError(t, err)
		real, synthetic := splitSynthetic(spansOf(e.getTraces(t, tid(1))))
		require.Len(t, real, 1)
		assert.Equal(t, "1 > 2 > 3", attrMap(real[0].Attributes)[AttrPath].GetStringValue())
		if on {
			assert.Len(t, synthetic, 2)
		} else {
			assert.Empty(t, synthetic)
		}
		plain := spansOf(e.getTraces(t, tid(2)))
		require.Len(t, plain, 1, "a trace without records is returned unchanged")
		assert.Empty(t, plain[0].Events)
	}
}
