package ioamstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// chunkCount counts the stored chunk values of a trace.
func chunkCount(t *testing.T, s *Store, id [16]byte) int {
	t.Helper()
	n := 0
	require.NoError(t, s.db.View(func(txn *badger.Txn) error {
		return eachChunk(context.Background(), txn, id, func(chunkHeader, []byte) error { n++; return nil })
	}))
	return n
}

// TestInMemoryLargeChunks: an in-memory store takes a 500-span stream batch
// of one trace whose chunk is far over badger's 64 KiB default value
// threshold (which badger enforces in memory), by splitting the chunk; the
// trace reads back whole and in order, a retry does not duplicate it, and a
// single span over the limit is a clear error, not a hex dump of the value.
func TestInMemoryLargeChunks(t *testing.T) {
	for _, inMemory := range []bool{true, false} {
		t.Run(map[bool]string{true: "in_memory", false: "on_disk"}[inMemory], func(t *testing.T) {
			s := openTest(t, inMemory)
			now := time.Now()
			pad := strings.Repeat("x", 3000) // 500 spans: about 1.5 MB, over 1 MiB too
			var spans []*tracepb.Span
			for i := range 500 {
				spans = append(spans, newSpan(tid(1), uint64(i+1), "op", now.Add(time.Duration(i)), time.Microsecond,
					withAttrs(strKV("pad", pad))))
			}
			batch := resSpans("svc", nil, nil, spans...)
			write(t, s, batch)
			write(t, s, cloneRS([]*tracepb.ResourceSpans{batch})...) // a retry rewrites the same keys
			got := readTrace(t, s, tid(1))
			var all []*tracepb.Span
			for _, r := range got {
				assert.True(t, proto.Equal(batch.Resource, r.Resource))
				for _, ss := range r.ScopeSpans {
					assert.True(t, proto.Equal(batch.ScopeSpans[0].Scope, ss.Scope))
					all = append(all, ss.Spans...)
				}
			}
			require.Len(t, all, len(spans))
			for i := range spans {
				require.True(t, proto.Equal(spans[i], all[i]), "span %d", i)
			}
			if inMemory {
				assert.GreaterOrEqual(t, chunkCount(t, s, tid(1)), 2, "the chunk is split to fit")
			} else {
				assert.Equal(t, 1, chunkCount(t, s, tid(1)), "on disk, large values go to the value log whole")
			}
			assert.Len(t, find(t, s, Query{Service: "svc"}), 1)

			big := newSpan(tid(2), 1, "op", now, time.Microsecond, withAttrs(strKV("pad", strings.Repeat("y", 2<<20))))
			n, err := s.WriteSpans(context.Background(), []*tracepb.ResourceSpans{resSpans("svc", nil, nil, big)})
			if !inMemory {
				require.NoError(t, err)
				assert.Equal(t, 1, n)
				return
			}
			require.ErrorIs(t, err, ErrValueTooLarge)
			assert.Equal(t, 0, n)
			assert.Less(t, len(err.Error()), 300, "the error names the size, not the bytes: %.300s", err)
			assert.Contains(t, err.Error(), "1048555 bytes")
			assert.Empty(t, readTrace(t, s, tid(2)))
		})
	}
}

func TestInMemoryMaxValue(t *testing.T) {
	assert.Equal(t, 1<<20, InMemoryMaxValue(16))
	assert.Equal(t, 4<<20*15/100, InMemoryMaxValue(4))
}
