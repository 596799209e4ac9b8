package ioamstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
)

// checkFindTraces asserts that FindTraces hands over exactly what
// FindTraceIDs followed by GetTrace and GetRecords of each ID returns, in the
// same order, and returns the number of traces and spans compared.
func checkFindTraces(t *testing.T, s *Store, q Query) (traces, spans int) {
	t.Helper()
	ctx := context.Background()
	ids, err := s.FindTraceIDs(ctx, q)
	require.NoError(t, err)
	var got []TraceMatch
	require.NoError(t, s.FindTraces(ctx, q, func(m TraceMatch) error {
		got = append(got, m)
		return nil
	}))
	require.Len(t, got, len(ids), "query %+v", q)
	for i, id := range ids {
		m := got[i]
		require.Equal(t, id, m.FoundTrace, "query %+v: result %d", q, i)
		want := readTrace(t, s, id.TraceID)
		require.NotEmpty(t, want)
		if !rsEqual(want, m.Spans) {
			d := cmp.Diff(want, m.Spans, protocmp.Transform())
			t.Fatalf("query %+v: trace %x spans differ from GetTrace (-want +got):\n%s", q, id.TraceID, d)
		}
		recs, err := s.GetRecords(ctx, id.TraceID)
		require.NoError(t, err)
		require.Equal(t, recs, m.Records, "query %+v: trace %x records", q, id.TraceID)
		spans += countSpans(m.Spans)
	}
	return len(ids), spans
}

func rsEqual(a, b []*tracepb.ResourceSpans) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// TestFindTracesRandomized writes random traces (split across batches, some
// larger than one chunk) and random IOAM records (some for spans never
// written), then checks FindTraces against FindTraceIDs + GetTrace +
// GetRecords for random service, tag, time and ioam.* queries at random
// depths.
func TestFindTracesRandomized(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	s := openTest(t, true)
	ctx := context.Background()
	base := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	services := []string{"a", "b", "c"}
	ops := []string{"get", "put", "scan"}
	const nTraces = 80
	var pending []*tracepb.ResourceSpans
	flush := func() {
		if len(pending) > 0 {
			write(t, s, pending...)
		}
		pending = pending[:0]
	}
	var recs []Record
	for tr := range nTraces {
		nSpans := 1 + rng.IntN(4)
		if tr%20 == 0 {
			nSpans = maxSpansPerChunk + 1 + rng.IntN(50) // several chunks
		}
		tStart := base.Add(time.Duration(rng.IntN(90)) * time.Minute)
		var batch []*tracepb.Span
		for sp := range nSpans {
			start := tStart.Add(time.Duration(rng.IntN(180)) * time.Second)
			var opts []spanOpt
			if rng.IntN(2) == 0 {
				opts = append(opts, withAttrs(strKV("k", fmt.Sprintf("v%d", rng.IntN(3)))))
			}
			if rng.IntN(5) == 0 {
				opts = append(opts, withStatus(tracepb.Status_STATUS_CODE_ERROR))
			}
			batch = append(batch, newSpan(tid(uint64(tr)), uint64(sp+1), ops[rng.IntN(len(ops))], start,
				time.Duration(1+rng.IntN(100))*time.Millisecond, opts...))
			if rng.IntN(6) == 0 || sp == nSpans-1 {
				pending = append(pending, resSpans(services[rng.IntN(len(services))], nil, nil, batch...))
				batch = nil
			}
			if rng.IntN(4) == 0 {
				flush()
			}
			if rng.IntN(3) == 0 {
				spanID := uint64(sp + 1)
				if rng.IntN(5) == 0 {
					spanID = 1 << 40 // a span that is never written
				}
				recs = append(recs, Record{TraceID: tid(uint64(tr)), SpanID: sid(spanID),
					NodeIDs: []uint64{uint64(1 + rng.IntN(5)), uint64(1 + rng.IntN(5))}, NamespaceID: uint16(rng.IntN(3)),
					Received: base.Add(time.Duration(rng.IntN(1000)) * time.Second), Data: fmt.Appendf(nil, "r%d", len(recs))})
			}
		}
	}
	flush()
	_, _, err := s.WriteRecords(ctx, recs)
	require.NoError(t, err)

	totalTraces, totalSpans, multiChunk := 0, 0, false
	for range 200 {
		q := Query{Service: services[rng.IntN(len(services))], SearchDepth: 1 + rng.IntN(nTraces+5)}
		switch rng.IntN(4) {
		case 0:
			q.Attributes = map[string]string{"ioam.node_id": fmt.Sprint(1 + rng.IntN(6))}
			if rng.IntN(2) == 0 {
				q.Service = ""
			}
		case 1:
			q.Attributes = map[string]string{"k": fmt.Sprintf("v%d", rng.IntN(3))}
		case 2:
			q.Attributes = map[string]string{"error": "true", "ioam.namespace_id": fmt.Sprint(rng.IntN(3))}
		}
		if rng.IntN(3) == 0 {
			q.Operation = ops[rng.IntN(len(ops))]
		}
		if rng.IntN(2) == 0 {
			q.StartMin = base.Add(time.Duration(rng.IntN(90)) * time.Minute)
		}
		if rng.IntN(3) == 0 {
			q.DurationMax = time.Duration(1+rng.IntN(100)) * time.Millisecond
		}
		n, spans := checkFindTraces(t, s, q)
		if spans > maxSpansPerChunk {
			multiChunk = true
		}
		totalTraces += n
		totalSpans += spans
	}
	require.Greater(t, totalTraces, 500, "queries should often match")
	require.True(t, multiChunk, "some matches should span several chunks")
}

func TestFindTracesErrors(t *testing.T) {
	s := openTest(t, true)
	ctx := context.Background()
	now := time.Now()
	for i := range uint64(3) {
		write(t, s, resSpans("svc", nil, nil, newSpan(tid(i), 1, "op", now.Add(time.Duration(i)*time.Second), time.Millisecond)))
	}

	// fn's error stops the search and comes back unwrapped.
	stop := errors.New("stop")
	calls := 0
	err := s.FindTraces(ctx, Query{Service: "svc", SearchDepth: 10}, func(TraceMatch) error { calls++; return stop })
	require.Equal(t, stop, err)
	assert.Equal(t, 1, calls)

	// Handed-over spans are fresh: modifying them changes nothing stored.
	require.NoError(t, s.FindTraces(ctx, Query{Service: "svc", SearchDepth: 10}, func(m TraceMatch) error {
		m.Spans[0].ScopeSpans[0].Spans[0].Name = "changed"
		return nil
	}))
	assert.Equal(t, "op", readTrace(t, s, tid(0))[0].ScopeSpans[0].Spans[0].Name)

	err = s.FindTraces(ctx, Query{Service: "svc"}, func(TraceMatch) error { return nil })
	require.ErrorIs(t, err, ErrInvalidQuery)

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	err = s.FindTraces(cctx, Query{Service: "svc", SearchDepth: 10}, func(TraceMatch) error { return nil })
	require.ErrorIs(t, err, context.Canceled)

	require.NoError(t, s.Close())
	err = s.FindTraces(ctx, Query{Service: "svc", SearchDepth: 10}, func(TraceMatch) error { return nil })
	require.ErrorIs(t, err, ErrClosed)
}

// GetTraceChunks and FindTraceChunks hand over the stored chunks undecoded,
// one at a time, as the same spans GetTrace decodes; FindTraceChunks hands
// no decoded spans.
func TestTraceChunksAreTheStoredSpans(t *testing.T) {
	s := openTest(t, false)
	ctx := context.Background()
	now := time.Now()
	var spans []*tracepb.Span
	for i := range maxSpansPerChunk + 10 {
		spans = append(spans, newSpan(tid(1), uint64(i+1), "op", now, time.Millisecond))
	}
	write(t, s, resSpans("svc", nil, nil, spans...))
	want := readTrace(t, s, tid(1))

	decode := func(chunks [][]byte) []*tracepb.ResourceSpans {
		var out []*tracepb.ResourceSpans
		for _, c := range chunks {
			var td tracepb.TracesData
			require.NoError(t, proto.Unmarshal(c, &td))
			out = append(out, td.ResourceSpans...)
		}
		return out
	}
	var got [][]byte
	require.NoError(t, s.GetTraceChunks(ctx, tid(1), nil, func(b []byte) error { got = append(got, b); return nil }))
	require.Len(t, got, 2, "one call per stored chunk")
	assertSameSpans(t, want, decode(got))

	// With buf, each copy is made in the slice buf returned.
	var bufs [][]byte
	buf := func(n int) []byte { b := make([]byte, 0, n); bufs = append(bufs, b); return b }
	var gotBuf [][]byte
	require.NoError(t, s.GetTraceChunks(ctx, tid(1), buf, func(b []byte) error { gotBuf = append(gotBuf, b); return nil }))
	require.Len(t, bufs, 2)
	for i, b := range gotBuf {
		assert.Equal(t, got[i], b)
		full, in := bufs[i][:cap(bufs[i])], false
		for off := range len(full) - len(b) + 1 {
			in = in || &full[off] == &b[0]
		}
		assert.True(t, in, "chunk %d copied into the buffer from buf", i)
	}

	got = nil
	calls := 0
	require.NoError(t, s.FindTraceChunks(ctx, Query{Service: "svc", SearchDepth: 10}, func(m TraceMatch) error {
		calls++
		assert.Nil(t, m.Spans)
		return m.Chunks(nil, func(b []byte) error { got = append(got, b); return nil })
	}))
	assert.Equal(t, 1, calls)
	assertSameSpans(t, want, decode(got))

	stop := errors.New("stop")
	n := 0
	require.ErrorIs(t, s.GetTraceChunks(ctx, tid(1), nil, func([]byte) error { n++; return stop }), stop)
	assert.Equal(t, 1, n, "an error from fn stops the stream")
	n = 0
	require.NoError(t, s.GetTraceChunks(ctx, tid(9), nil, func([]byte) error { n++; return nil }))
	assert.Zero(t, n, "unknown trace")
}

func assertSameSpans(t *testing.T, want, got []*tracepb.ResourceSpans) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		assert.True(t, proto.Equal(want[i], got[i]), "group %d", i)
	}
}
