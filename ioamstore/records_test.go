package ioamstore

import (
	"context"
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
