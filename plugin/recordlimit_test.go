package plugin

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/api/storagev2"
)

// TestRecordsPerSpanLimit: a span flooded with records is served with
// storage.max_records_per_span of them and says, in a warning, its
// attributes and a warning span, how many were left out; the metric counts
// them (issue 12 item 4: never silently dropped).
func TestRecordsPerSpanLimit(t *testing.T) {
	e := startEnv(t, func(c *Config) { c.Storage.MaxRecordsPerSpan = 20 })
	now := time.Now().Add(-time.Minute)
	e.export(t, spanSpec{trace: 1, span: 1, service: "svc", name: "op", start: now, dur: time.Millisecond},
		spanSpec{trace: 1, span: 2, service: "svc", name: "child", start: now, dur: time.Millisecond, parent: 1})
	var recs []*collectorv1.IOAMRecord
	for i := range 50 {
		r := rec(3, i, 1, 2, 3) // distinct records (times) on one path
		r.TraceId, r.SpanId = tid(1), sid(1)
		recs = append(recs, r)
	}
	for i := range 3 {
		r := rec(3, i, 1, 2, 3)
		r.TraceId, r.SpanId = tid(1), sid(2)
		recs = append(recs, r)
	}
	_, err := e.collector.Report(t.Context(), &collectorv1.ReportRequest{Records: recs})
	require.NoError(t, err)

	want := "ioam: records: 30 more records for this span not joined (limit 20, storage.max_records_per_span)"
	check := func(chunks []*tracepb.TracesData) {
		t.Helper()
		spans, synthetic := splitSynthetic(spansOf(chunks))
		require.Len(t, spans, 2)
		for _, sp := range spans {
			a := attrMap(sp.Attributes)
			if sp.SpanId[7] == 2 {
				assert.NotContains(t, a, AttrRecordsNotJoined)
				assert.Empty(t, warningsOf(sp))
				continue
			}
			assert.Equal(t, []string{want}, warningsOf(sp))
			assert.Equal(t, int64(30), a[AttrRecordsNotJoined].GetIntValue())
			assert.Equal(t, int64(20*3), a[AttrPackets].GetIntValue(), "20 records of 3 packets joined")
			var ev *tracepb.Span_Event
			for _, x := range sp.Events {
				if x.Name == want {
					ev = x
				}
			}
			require.NotNil(t, ev, "warning event")
			assert.Equal(t, WarningRecordsLimit, attrMap(ev.Attributes)[AttrWarning].GetStringValue())
			assert.Equal(t, int64(30), attrMap(ev.Attributes)[AttrRecordsNotJoined].GetIntValue())
		}
		var warnSpan *tracepb.Span
		for _, sp := range synthetic {
			if sp.Name == WarningSpanName(want) {
				warnSpan = sp
			}
		}
		require.NotNil(t, warnSpan, "warning span")
		assert.Equal(t, tracepb.Status_STATUS_CODE_ERROR, warnSpan.GetStatus().GetCode())
		var service string
		for _, td := range chunks {
			for _, rs := range td.ResourceSpans {
				for _, ss := range rs.ScopeSpans {
					for _, sp := range ss.Spans {
						if sp == warnSpan {
							service = attrMap(rs.GetResource().GetAttributes())[AttrOTelServiceName].GetStringValue()
						}
					}
				}
			}
		}
		assert.Equal(t, storageService, service)
	}
	check(e.getTraces(t, tid(1)))
	check(e.findTraces(t, &storagev2.TraceQueryParameters{ServiceName: "svc", SearchDepth: 10}))
	// The count is searchable like every ioam.* tag.
	found := e.findTraces(t, &storagev2.TraceQueryParameters{ServiceName: "svc", SearchDepth: 10,
		Attributes: []*storagev2.KeyValue{strKV(AttrRecordsNotJoined, "30")}})
	assert.Len(t, traceIDsOf(found), 1)
	assert.Contains(t, strings.Split(e.scrape(t), "\n"), fmt.Sprintf("clt_storage_records_not_joined_total %d", 3*30))
}
