package plugin

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cross-layer-telemetry/clt/api/storagev1"
)

// TestV1GroupBatchesWhileWriting: a lone call is written at once; calls
// arriving during a write go into one batch, written after it, and every
// caller gets its batch's outcome.
func TestV1GroupBatchesWhileWriting(t *testing.T) {
	writes := make(chan int)
	release := make(chan error)
	g := &v1Group{write: func(_ context.Context, rs []*tracepb.ResourceSpans) (int64, string, error) {
		writes <- len(rs)
		return 0, "", <-release
	}}
	type result struct {
		n   int
		err error
	}
	results := make(chan result, 8)
	add := func() {
		n, _, _, err := g.add(t.Context(), &tracepb.ResourceSpans{})
		results <- result{n, err}
	}
	go add()
	require.Equal(t, 1, <-writes, "a lone call is written alone, at once")
	for range 5 {
		go add()
	}
	require.Eventually(t, func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.pending != nil && len(g.pending.rs) == 5
	}, 5*time.Second, time.Millisecond, "the five calls wait in one batch")
	release <- nil
	assert.Equal(t, result{1, nil}, <-results)
	require.Equal(t, 5, <-writes, "written together after the first write")
	boom := errors.New("store down")
	release <- boom
	for range 5 {
		r := <-results
		assert.Equal(t, 5, r.n)
		assert.ErrorIs(t, r.err, boom, "every caller of the batch gets its error")
	}
}

// TestV1GroupBound: a batch stops at maxV1GroupSpans; later calls start the next.
func TestV1GroupBound(t *testing.T) {
	g := &v1Group{}
	g.pending = &v1GroupBatch{rs: make([]*tracepb.ResourceSpans, maxV1GroupSpans), done: make(chan struct{})}
	full := g.pending
	g.write = func(_ context.Context, rs []*tracepb.ResourceSpans) (int64, string, error) {
		assert.Len(t, rs, 1)
		return 0, "", nil
	}
	n, _, _, err := g.add(t.Context(), &tracepb.ResourceSpans{})
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Len(t, full.rs, maxV1GroupSpans, "the full batch got nothing more")
}

// TestV1ConcurrentWriteSpan: many concurrent unary writes through the gRPC
// server, each acknowledged, are all stored.
func TestV1ConcurrentWriteSpan(t *testing.T) {
	e := startV1Env(t)
	const callers, each = 16, 25
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for i := range each {
				s := v1Span(nil)
				s.SpanId = binary.BigEndian.AppendUint64(nil, uint64(c*each+i+1))
				s.StartTime = timestamppb.Now()
				_, err := e.writer.WriteSpan(t.Context(), &storagev1.WriteSpanRequest{Span: s})
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()
	spans, err := e.getTrace(t, tid(1))
	require.NoError(t, err)
	assert.Len(t, spans, callers*each)
	assert.Contains(t, e.scrape(t), "clt_storage_spans_written_total 400")
}
