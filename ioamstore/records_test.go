package ioamstore

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRecordsIdempotent(t *testing.T) {
	for _, mem := range []bool{true, false} {
		s := openTest(t, mem)
		ctx := context.Background()
		recv := time.Unix(1700000000, 123).UTC()
		r1 := Record{TraceID: tid(1), SpanID: sid(2), NodeIDs: []uint64{1, 2, 3}, NamespaceID: 123, Received: recv, Data: []byte("one")}
		r2 := Record{TraceID: tid(1), SpanID: sid(1), NodeIDs: []uint64{4}, NamespaceID: 5, Received: recv.Add(time.Second), Data: []byte("two")}
		r3 := r1
		r3.SpanID = sid(3) // same data, other span: a different record
		acc, dup, err := s.WriteRecords(ctx, []Record{r1, r2, r1, r3})
		require.NoError(t, err)
		assert.Equal(t, 3, acc)
		assert.Equal(t, 1, dup)
		acc, dup, err = s.WriteRecords(ctx, []Record{r1, r2})
		require.NoError(t, err)
		assert.Equal(t, 0, acc)
		assert.Equal(t, 2, dup)
		r4 := r1
		r4.Data = []byte("one'") // new content for the same span is a new record
		acc, dup, err = s.WriteRecords(ctx, []Record{r4})
		require.NoError(t, err)
		assert.Equal(t, 1, acc)
		assert.Equal(t, 0, dup)

		got, err := s.GetRecords(ctx, tid(1))
		require.NoError(t, err)
		assert.Equal(t, []Record{r2, r1, r4, r3}, got, "sorted by span, received, data")
		got, err = s.GetRecords(ctx, tid(2))
		require.NoError(t, err)
		assert.Empty(t, got)
		st := s.Stats()
		assert.EqualValues(t, 4, st.RecordsWritten)
		assert.EqualValues(t, 3, st.RecordDuplicates)
	}
}

func TestRecordsInvalid(t *testing.T) {
	s := openTest(t, true)
	_, _, err := s.WriteRecords(context.Background(), []Record{{NodeIDs: make([]uint64, maxRecordNodeIDs+1)}})
	require.ErrorIs(t, err, ErrInvalidRecord)
	// zero received time and empty data are fine
	acc, _, err := s.WriteRecords(context.Background(), []Record{{TraceID: tid(1)}})
	require.NoError(t, err)
	assert.Equal(t, 1, acc)
	got, err := s.GetRecords(context.Background(), tid(1))
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.True(t, got[0].Received.IsZero())
}

// spanFlood writes n records on (trace, span), the i-th with nodes 7 and
// base+i.
func spanFlood(t *testing.T, s *Store, trace [16]byte, span [8]byte, n, base int) {
	t.Helper()
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{TraceID: trace, SpanID: span, NodeIDs: []uint64{7, uint64(base + i)}, NamespaceID: 1,
			Received: time.Unix(1700000000, int64(i)).UTC(), Data: fmt.Appendf(nil, "record %d", base+i)}
	}
	acc, _, err := s.WriteRecords(context.Background(), recs)
	require.NoError(t, err)
	require.Equal(t, n, acc)
}

// excessBySpan counts the records and sums Excess per span.
func excessBySpan(recs []Record) (count, excess map[[8]byte]int) {
	count, excess = map[[8]byte]int{}, map[[8]byte]int{}
	for _, r := range recs {
		count[r.SpanID]++
		excess[r.SpanID] += r.Excess
	}
	return count, excess
}

// A flood of records on one span is read up to MaxRecordsPerSpan, the rest
// only counted; other spans (also the last possible span id, whose skip
// ends the trace's key range) are unaffected.
func TestRecordsLimitPerSpan(t *testing.T) {
	for _, mem := range []bool{true, false} {
		s := openTest(t, mem, func(c *Config) { c.MaxRecordsPerSpan = 100 })
		ctx := context.Background()
		last := [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
		spanFlood(t, s, tid(1), sid(1), 250, 1000)
		spanFlood(t, s, tid(1), sid(2), 3, 2000)
		spanFlood(t, s, tid(1), last, 130, 3000)
		spanFlood(t, s, tid(2), sid(1), 5, 4000) // the next trace is not counted
		now := time.Now()
		write(t, s, resSpans("svc", nil, nil, newSpan(tid(1), 1, "a", now, time.Millisecond),
			newSpan(tid(1), 2, "b", now, time.Millisecond), newSpan(tid(1), 1<<64-1, "c", now, time.Millisecond)))
		got, err := s.GetRecords(ctx, tid(1))
		require.NoError(t, err)
		count, excess := excessBySpan(got)
		assert.Equal(t, map[[8]byte]int{sid(1): 100, sid(2): 3, last: 100}, count)
		assert.Equal(t, map[[8]byte]int{sid(1): 150, sid(2): 0, last: 30}, excess)
		again, err := s.GetRecords(ctx, tid(1))
		require.NoError(t, err)
		assert.Equal(t, got, again, "every read joins the same records")

		// FindTraces hands over the same records, and a node search sees
		// only those too.
		var matched []Record
		require.NoError(t, s.FindTraces(ctx, Query{Attributes: map[string]string{AttrNodeID: "7"}, SearchDepth: 10},
			func(m TraceMatch) error {
				if m.TraceID == tid(1) {
					matched = m.Records
				}
				return nil
			}))
		assert.Equal(t, got, matched)
		joined := map[uint64]bool{}
		for _, r := range got {
			if r.SpanID == sid(1) {
				joined[r.NodeIDs[1]] = true
			}
		}
		for node := uint64(1000); node < 1250; node++ {
			ids := find(t, s, Query{Attributes: map[string]string{AttrNodeID: fmt.Sprint(node)}, SearchDepth: 10})
			assert.Equal(t, joined[node], slices.Contains(ids, tid(1)), "node %d: found only when its record is joined", node)
		}
	}
}

func TestLimitRecords(t *testing.T) {
	var recs []Record
	for i := range 5 {
		recs = append(recs, Record{SpanID: sid(1), Data: []byte{byte(i)}})
	}
	recs = append(recs, Record{SpanID: sid(2)}, Record{SpanID: sid(3)}, Record{SpanID: sid(3)}, Record{SpanID: sid(3)})
	count, excess := excessBySpan(LimitRecords(slices.Clone(recs), 2))
	assert.Equal(t, map[[8]byte]int{sid(1): 2, sid(2): 1, sid(3): 2}, count)
	assert.Equal(t, map[[8]byte]int{sid(1): 3, sid(2): 0, sid(3): 1}, excess)
	assert.Equal(t, recs, LimitRecords(slices.Clone(recs), 0), "0 keeps all")
}

func TestPrefixSuccessor(t *testing.T) {
	assert.Equal(t, []byte{1, 3}, prefixSuccessor([]byte{1, 2}))
	assert.Equal(t, []byte{2}, prefixSuccessor([]byte{1, 0xff, 0xff}))
	assert.Nil(t, prefixSuccessor([]byte{0xff}))
}
