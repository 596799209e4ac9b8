package plugin

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/api/storagev2"
)

// TestSearchEnrichedTags: a search on an ioam.* tag finds exactly the traces
// whose enriched spans carry it, through FindTraceIDs and FindTraces.
func TestSearchEnrichedTags(t *testing.T) {
	e := startEnv(t, nil)
	now := time.Now().Add(-time.Minute)
	overflowed := func(r *collectorv1.IOAMRecord) *collectorv1.IOAMRecord {
		r.Overflow, r.ReporterWrote = true, false
		return r
	}
	traces := map[byte][]*collectorv1.IOAMRecord{
		1: {overflowed(rec(4, 0, 1, 2))},
		2: {rec(3, 0, 1, 2, 3), rec(3, 5, 1, 4, 3)},
		3: {rec(3, 0, 1, 4, 3), rec(2, 0, 1, 2)},
		4: {rec(3, 0, 1, 2, 3), rec(2, 0, 1, 2)},
		5: nil, // no records
	}
	var recs []*collectorv1.IOAMRecord
	for id, rs := range traces {
		e.export(t, spanSpec{trace: id, span: 1, service: "svc", name: "op", start: now.Add(time.Duration(id) * time.Second), dur: time.Millisecond},
			spanSpec{trace: id, span: 2, service: "svc", name: "child", start: now, dur: time.Millisecond, parent: 1})
		for _, r := range rs {
			r.TraceId, r.SpanId = tid(id), sid(1)
			recs = append(recs, r)
		}
	}
	_, err := e.collector.Report(t.Context(), &collectorv1.ReportRequest{Records: recs})
	require.NoError(t, err)
	// An application's own ioam.* attribute on a span without records.
	e.export(t, spanSpec{trace: 6, span: 1, service: "svc", name: "op", start: now, dur: time.Millisecond,
		attrs: []*commonpb.KeyValue{strAttr("ioam.custom", "x"), strAttr(AttrPath, "9 > 9")}})

	tests := []struct {
		tags map[string]string
		want []byte // trace numbers
	}{
		{map[string]string{AttrOverflow: "true"}, []byte{1}},
		{map[string]string{AttrPathChanged: "true"}, []byte{2}},
		{map[string]string{AttrUnconfirmed: "true"}, []byte{3}},
		{map[string]string{AttrPath: "1 > 2 > 3"}, []byte{2, 4}},
		{map[string]string{AttrPath: "1 > 4 > 3"}, []byte{3}},
		{map[string]string{AttrHopCount: "3"}, []byte{2, 3, 4}},
		{map[string]string{AttrHopCount: "2"}, []byte{1}},
		{map[string]string{AttrReporters: "2"}, []byte{3, 4}},
		{map[string]string{AttrWarning: WarningPathChanged}, []byte{2}},
		{map[string]string{AttrWarningPath: "1 > 4 > 3"}, []byte{2}},
		{map[string]string{AttrPath: "1 > 2 > 3", AttrReporters: "2"}, []byte{4}},
		{map[string]string{AttrPath: "1 > 2 > 3", AttrNodeID: "4"}, []byte{2}},
		{map[string]string{AttrOverflow: "true", AttrNodeID: "3"}, nil},
		{map[string]string{AttrHopCount: "3", "error": "false"}, []byte{2, 3, 4}},
		{map[string]string{AttrPathChanged: "false"}, nil},
		{map[string]string{AttrOverflow: "true", AttrPath: "1 > 2 > 3"}, nil},
		// The ioam. prefix belongs to clt-storage: an application's own
		// ioam.* attributes are not what the search answers.
		{map[string]string{"ioam.custom": "x"}, nil},
		{map[string]string{AttrPath: "9 > 9"}, nil},
	}
	for _, tc := range tests {
		var attrs []*storagev2.KeyValue
		for k, v := range tc.tags {
			attrs = append(attrs, strKV(k, v))
		}
		q := &storagev2.TraceQueryParameters{ServiceName: "svc", SearchDepth: 20, Attributes: attrs}
		ids, err := e.reader.FindTraceIDs(t.Context(), &storagev2.FindTracesRequest{Query: q})
		require.NoError(t, err)
		var got []byte
		for _, f := range ids.TraceIds {
			got = append(got, f.TraceId[15])
		}
		slices.Sort(got)
		assert.Equal(t, tc.want, got, "FindTraceIDs %v", tc.tags)
		got = nil
		for _, id := range traceIDsOf(e.findTraces(t, q)) {
			got = append(got, id[15])
		}
		slices.Sort(got)
		assert.Equal(t, tc.want, got, "FindTraces %v", tc.tags)
	}
	// The enriched span really carries what was searched.
	chunks := e.findTraces(t, &storagev2.TraceQueryParameters{ServiceName: "svc", SearchDepth: 20,
		Attributes: []*storagev2.KeyValue{strKV(AttrOverflow, "true")}})
	real, _ := splitSynthetic(spansOf(chunks))
	assert.True(t, attrMap(real[0].Attributes)[AttrOverflow].GetBoolValue())
}

// TestSearchEnrichedTagsBudget: a search on read-time tags enriches at most
// search_depth × 100 candidates, newest first, and counts when it stops.
func TestSearchEnrichedTagsBudget(t *testing.T) {
	e := startEnv(t, nil)
	now := time.Now().Add(-time.Minute)
	var recs []*collectorv1.IOAMRecord
	for i := range 102 {
		id := byte(i + 1)
		e.export(t, spanSpec{trace: id, span: 1, service: "svc", name: "op", start: now.Add(time.Duration(i) * time.Millisecond), dur: time.Millisecond})
		r := rec(3, 0, 1, 2, 3)
		if i == 0 { // the oldest trace overflowed
			r.Overflow = true
		}
		r.TraceId, r.SpanId = tid(id), sid(1)
		recs = append(recs, r)
	}
	_, err := e.collector.Report(t.Context(), &collectorv1.ReportRequest{Records: recs})
	require.NoError(t, err)
	find := func(depth int32) int {
		ids, err := e.reader.FindTraceIDs(t.Context(), &storagev2.FindTracesRequest{Query: &storagev2.TraceQueryParameters{
			ServiceName: "svc", SearchDepth: depth, Attributes: []*storagev2.KeyValue{strKV(AttrOverflow, "true")}}})
		require.NoError(t, err)
		return len(ids.TraceIds)
	}
	assert.Equal(t, 0, find(1), "101 newer candidates exceed 1 × 100")
	assert.Contains(t, e.scrape(t), "clt_storage_query_derived_cut_total 1")
	assert.Equal(t, 1, find(2))
}
