package ioamstore

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
)

// fakeDeriver derives "x.flag" = the records' Data of the span.
type fakeDeriver struct{ calls *int }

func (fakeDeriver) Derives(key string) bool { return key == "x.flag" }

func (d fakeDeriver) Attributes(_ [8]byte, recs []Record) []*commonpb.KeyValue {
	*d.calls++
	var out []*commonpb.KeyValue
	for _, r := range recs {
		out = append(out, strKV("x.flag", string(r.Data)))
	}
	return out
}

func TestFindDerivedAttributes(t *testing.T) {
	s := openTest(t, true)
	ctx := context.Background()
	now := time.Now().Add(-time.Minute)
	for i := uint64(1); i <= 4; i++ {
		var opts []spanOpt
		if i == 4 {
			opts = append(opts, withAttrs(strKV("x.flag", "on"))) // stored, no records
		}
		write(t, s, resSpans("svc", nil, nil, newSpan(tid(i), 1, "op", now.Add(time.Duration(i)*time.Second), time.Millisecond, opts...),
			newSpan(tid(i), 2, "child", now, time.Millisecond, withParent(1))))
	}
	// Trace 1: records say "on"; trace 2: "off"; trace 3: none.
	_, _, err := s.WriteRecords(ctx, []Record{
		{TraceID: tid(1), SpanID: sid(1), NodeIDs: []uint64{7}, Received: now, Data: []byte("on")},
		{TraceID: tid(2), SpanID: sid(1), NodeIDs: []uint64{7}, Received: now, Data: []byte("off")},
	})
	require.NoError(t, err)

	calls := 0
	q := Query{Service: "svc", Attributes: map[string]string{"x.flag": "on"}, Derived: fakeDeriver{&calls}}
	before := s.Stats().QueriesCandidates
	assert.Equal(t, [][16]byte{tid(1)}, find(t, s, q), "derived keys are answered by the Deriver only (trace 4's stored value is not)")
	assert.Equal(t, uint64(2), s.Stats().QueriesCandidates-before, "traces 3 and 4 (no records) are not candidates")
	assert.Equal(t, 2, calls, "derived once per span with records")

	// The budget stops the search: the newest candidate with records is
	// trace 2 ("off"), so with a budget of 1 nothing is found.
	q.DerivedBudget = 1
	cut := s.Stats().QueriesDerivedCut
	assert.Empty(t, find(t, s, q))
	assert.Equal(t, cut+1, s.Stats().QueriesDerivedCut)
	q.DerivedBudget = 2
	assert.Equal(t, [][16]byte{tid(1)}, find(t, s, q))
	q.DerivedBudget = 0

	q.Attributes["ioam.node_id"] = "7"
	assert.Equal(t, [][16]byte{tid(1)}, find(t, s, q), "with the record index")

	var matched []TraceMatch
	q = Query{Service: "svc", Attributes: map[string]string{"x.flag": "off"}, Derived: fakeDeriver{&calls}, SearchDepth: 10}
	require.NoError(t, s.FindTraces(ctx, q, func(m TraceMatch) error { matched = append(matched, m); return nil }))
	require.Len(t, matched, 1)
	assert.Equal(t, tid(2), matched[0].TraceID)
	assert.Len(t, matched[0].Records, 1, "the records come along")

	// Without a Deriver the key is an ordinary attribute.
	assert.Equal(t, [][16]byte{tid(4)}, find(t, s, Query{Service: "svc", Attributes: map[string]string{"x.flag": "on"}}))
}
