package ioamstore

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNodesRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, true)
	require.NoError(t, s.WriteNodes(ctx, []Node{
		{ID: 3, Name: "aramis", Receiver: true},
		{ID: 0xa1b2c3d4e5f6, Wide: true, Name: "porthos"},
		{ID: 1},
	}))
	require.NoError(t, s.WriteNodes(ctx, []Node{{ID: 1, Name: "athos"}}), "rewrite")
	nodes, err := s.Nodes(ctx)
	require.NoError(t, err)
	assert.Equal(t, []Node{{ID: 1, Name: "athos"}, {ID: 3, Name: "aramis", Receiver: true}, {ID: 0xa1b2c3d4e5f6, Wide: true, Name: "porthos"}}, nodes)
	require.NoError(t, s.Purge(ctx))
	nodes, err = s.Nodes(ctx)
	require.NoError(t, err)
	assert.Empty(t, nodes)
}

func TestNodeRecords(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, true)
	now := time.Now()
	const wide = 0xa1b2c3d4e5f6
	_, _, err := s.WriteRecords(ctx, []Record{
		{TraceID: tid(1), SpanID: sid(1), NodeIDs: []uint64{1, 2}, Received: now, Data: []byte("a")},
		{TraceID: tid(2), SpanID: sid(1), NodeIDs: []uint64{2, wide}, Received: now.Add(time.Second), Data: []byte("b")},
		{TraceID: tid(3), SpanID: sid(1), NodeIDs: []uint64{3}, Received: now, Data: []byte("c")},
		// Same span, a record without node 2: not returned for node 2.
		{TraceID: tid(2), SpanID: sid(1), NodeIDs: []uint64{9}, Received: now, Data: []byte("d")},
	})
	require.NoError(t, err)
	data := func(recs []Record) []string {
		var out []string
		for _, r := range recs {
			out = append(out, string(r.Data))
		}
		return out
	}
	recs, err := s.NodeRecords(ctx, []uint64{2}, 10)
	require.NoError(t, err)
	assert.Equal(t, []string{"b", "a"}, data(recs), "newest first")
	recs, err = s.NodeRecords(ctx, []uint64{2}, 1)
	require.NoError(t, err)
	assert.Equal(t, []string{"b"}, data(recs), "limit")
	recs, err = s.NodeRecords(ctx, []uint64{wide, 2}, 10)
	require.NoError(t, err)
	assert.Equal(t, []string{"b", "a"}, data(recs), "each record once")
	recs, err = s.NodeRecords(ctx, []uint64{4}, 10)
	require.NoError(t, err)
	assert.Empty(t, recs)
}

func TestGetDependenciesRecorded(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, true)
	now := time.Now()
	write(t, s,
		resSpans("front", nil, nil, newSpan(tid(1), 1, "GET", now, time.Millisecond)),
		resSpans("back", nil, nil, newSpan(tid(1), 2, "q", now, time.Millisecond, withParent(1)),
			newSpan(tid(1), 3, "q", now, time.Millisecond, withParent(1))))
	_, _, err := s.WriteRecords(ctx, []Record{
		{TraceID: tid(1), SpanID: sid(1), NodeIDs: []uint64{1}, Received: now, Data: []byte("r1")},
		{TraceID: tid(1), SpanID: sid(9), NodeIDs: []uint64{1}, Received: now, Data: []byte("no span")},
	})
	require.NoError(t, err)
	var got []RecordedSpan
	deps, err := s.GetDependenciesRecorded(ctx, time.Time{}, time.Time{}, func(rs RecordedSpan) { got = append(got, rs) })
	require.NoError(t, err)
	assert.Equal(t, []Dependency{{Parent: "front", Child: "back", CallCount: 2}}, deps)
	assert.Equal(t, []RecordedSpan{{Service: "front", Children: []string{"back", "back"}, Records: [][]byte{[]byte("r1")}}}, got,
		"records of a span that is not stored are not handed over")
}
