package ioamstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

func TestConfigValidate(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	bad := Config{GCInterval: -1, GCDiscardRatio: 1, Compression: "lz4", BlockCacheMB: -1}
	err := bad.Validate()
	require.Error(t, err)
	for _, key := range []string{"dir:", "span_ttl:", "record_ttl:", "gc_interval:", "gc_discard_ratio:",
		"compression:", "block_cache_mb:", "memtable_mb:", "value_threshold_kb:", "dependency_max_traces:"} {
		assert.Contains(t, err.Error(), key)
	}
	mem := DefaultConfig()
	mem.InMemory, mem.Dir = true, ""
	require.NoError(t, mem.Validate())
	blocks := DefaultConfig()
	blocks.ZSTDLevel, blocks.BlockSizeKB = 23, 0
	err = blocks.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "zstd_level:")
	assert.Contains(t, err.Error(), "block_size_kb:")
	blocks.Compression = "snappy" // the level only matters for zstd
	assert.NotContains(t, blocks.Validate().Error(), "zstd_level:")
	noCache := DefaultConfig()
	noCache.BlockCacheMB = 0 // badger would panic at Open: it decompresses into the cache
	require.ErrorContains(t, noCache.Validate(), "block_cache_mb: must be > 0")
	noCache.Compression = "none"
	require.NoError(t, noCache.Validate())
	_, err = Open(bad, nil)
	require.Error(t, err)
}

func TestLifecycle(t *testing.T) {
	s := openTest(t, false)
	require.NoError(t, s.Start(context.Background()))
	require.NoError(t, s.Start(context.Background())) // second Start is harmless
	require.NoError(t, s.Close())
	require.NoError(t, s.Close()) // idempotent
	_, err := s.WriteSpans(context.Background(), nil)
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, s.GetTrace(context.Background(), tid(1), nil), ErrClosed)

	s2 := openTest(t, true) // Close without Start
	require.NoError(t, s2.Close())
}

// Lossless: what went in comes out proto.Equal, unknown fields included.
func TestRoundTripLossless(t *testing.T) {
	for _, mem := range []bool{true, false} {
		s := openTest(t, mem)
		now := time.Now()
		root := newSpan(tid(1), 1, "root", now, time.Millisecond,
			withAttrs(strKV("s", "x"), intKV("i", 5), boolKV("b", true), dblKV("d", 72.5)),
			withEvent("ev", strKV("k", "v")), withStatus(tracepb.Status_STATUS_CODE_ERROR))
		root.TraceState = "a=b"
		root.Flags = 0x301
		root.DroppedAttributesCount = 3
		root.Links = []*tracepb.Span_Link{{TraceId: tidSlice(9), SpanId: sidSlice(9), TraceState: "x"}}
		// an unknown field must survive too
		root.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 999, protowire.VarintType), 42))
		child := newSpan(tid(1), 2, "child", now.Add(time.Microsecond), time.Microsecond, withParent(1), withKind(tracepb.Span_SPAN_KIND_CLIENT))
		in := []*tracepb.ResourceSpans{
			resSpans("svc-a", []*commonpb.KeyValue{strKV("host.name", "h")}, nil, root),
			resSpans("svc-b", nil, []*commonpb.KeyValue{intKV("scope.attr", 1)}, child),
		}
		want := cloneRS(in)
		write(t, s, in...)
		got := readTrace(t, s, tid(1))
		require.Len(t, got, 2)
		for i := range want {
			assert.True(t, proto.Equal(want[i], got[i]), "resource spans %d differ:\nwant %v\ngot  %v", i, want[i], got[i])
		}
		assert.Empty(t, readTrace(t, s, tid(2)), "unknown trace calls fn zero times")
	}
}

// A batch mixing traces is split by trace; each trace comes back alone.
func TestWriteSplitsByTrace(t *testing.T) {
	s := openTest(t, true)
	now := time.Now()
	rs := resSpans("svc", nil, nil,
		newSpan(tid(1), 1, "a", now, time.Millisecond),
		newSpan(tid(2), 2, "b", now, time.Millisecond),
		newSpan(tid(1), 3, "c", now, time.Millisecond),
		&tracepb.Span{TraceId: []byte{1, 2, 3}, SpanId: []byte{1}}, // malformed trace id: skipped
	)
	n, err := s.WriteSpans(context.Background(), []*tracepb.ResourceSpans{rs})
	require.NoError(t, err)
	require.Equal(t, 3, n)
	got := readTrace(t, s, tid(1))
	require.Len(t, got, 1)
	require.Len(t, got[0].ScopeSpans, 1)
	names := []string{}
	for _, sp := range got[0].ScopeSpans[0].Spans {
		names = append(names, sp.Name)
	}
	assert.Equal(t, []string{"a", "c"}, names)
	assert.Equal(t, 1, countSpans(readTrace(t, s, tid(2))))
	assert.EqualValues(t, 3, s.Stats().SpansWritten)
	assert.EqualValues(t, 1, s.Stats().SpansSkipped)
}

// Duplicate span IDs with different start times are both kept, whether in
// one batch or two.
func TestDuplicateSpanIDsKept(t *testing.T) {
	s := openTest(t, false)
	now := time.Now()
	a := newSpan(tid(1), 7, "op", now, time.Millisecond)
	b := newSpan(tid(1), 7, "op", now.Add(time.Second), time.Millisecond)
	write(t, s, resSpans("svc", nil, nil, a, b))
	write(t, s, resSpans("svc", nil, nil, proto.Clone(a).(*tracepb.Span)))
	assert.Equal(t, 3, countSpans(readTrace(t, s, tid(1))), "same span in another batch shape is kept")
}

// A retried Export (same content) does not duplicate spans.
func TestRetriedBatchIdempotent(t *testing.T) {
	s := openTest(t, false)
	now := time.Now()
	batch := []*tracepb.ResourceSpans{resSpans("svc", nil, nil,
		newSpan(tid(1), 1, "a", now, time.Millisecond), newSpan(tid(2), 1, "b", now, time.Millisecond))}
	write(t, s, batch...)
	write(t, s, cloneRS(batch)...)
	assert.Equal(t, 1, countSpans(readTrace(t, s, tid(1))))
	assert.Equal(t, 1, countSpans(readTrace(t, s, tid(2))))
	assert.Len(t, find(t, s, Query{Service: "svc"}), 2)
}

// Huge traces are split into chunks of at most maxSpansPerChunk spans.
func TestLargeTraceChunked(t *testing.T) {
	s := openTest(t, true)
	now := time.Now()
	var spans []*tracepb.Span
	for i := range 2*maxSpansPerChunk + 10 {
		spans = append(spans, newSpan(tid(1), uint64(i+1), "op", now.Add(time.Duration(i)), time.Microsecond))
	}
	write(t, s, resSpans("svc", nil, nil, spans...))
	calls := 0
	total := 0
	require.NoError(t, s.GetTrace(context.Background(), tid(1), func(r *tracepb.ResourceSpans) error {
		calls++
		n := countSpans([]*tracepb.ResourceSpans{r})
		assert.LessOrEqual(t, n, maxSpansPerChunk)
		total += n
		return nil
	}))
	assert.Equal(t, 3, calls)
	assert.Equal(t, len(spans), total)
	// fn's error stops the stream
	stop := errors.New("stop")
	calls = 0
	err := s.GetTrace(context.Background(), tid(1), func(*tracepb.ResourceSpans) error { calls++; return stop })
	require.ErrorIs(t, err, stop)
	assert.Equal(t, 1, calls)
}

func TestServicesAndOperations(t *testing.T) {
	s := openTest(t, true)
	now := time.Now()
	write(t, s,
		resSpans("svc-b", nil, nil,
			newSpan(tid(1), 1, "GET /", now, time.Millisecond, withKind(tracepb.Span_SPAN_KIND_SERVER)),
			newSpan(tid(1), 2, "query", now, time.Millisecond, withKind(tracepb.Span_SPAN_KIND_CLIENT)),
			newSpan(tid(1), 3, "query", now, time.Millisecond, withKind(tracepb.Span_SPAN_KIND_UNSPECIFIED)),
			newSpan(tid(1), 4, "work", now, time.Millisecond, withKind(tracepb.Span_SPAN_KIND_INTERNAL))),
		resSpans("svc-a", nil, nil,
			newSpan(tid(2), 1, "send", now, time.Millisecond, withKind(tracepb.Span_SPAN_KIND_PRODUCER)),
			newSpan(tid(2), 2, "recv", now, time.Millisecond, withKind(tracepb.Span_SPAN_KIND_CONSUMER))),
		// "svc" is a prefix of the others: length prefixes keep them apart
		resSpans("svc", nil, nil, newSpan(tid(3), 1, "x", now, time.Millisecond)),
	)
	// written twice: the name cache must not duplicate anything
	write(t, s, resSpans("svc", nil, nil, newSpan(tid(3), 2, "x", now, time.Millisecond)))
	ctx := context.Background()
	svcs, err := s.GetServices(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"svc", "svc-a", "svc-b"}, svcs)

	ops, err := s.GetOperations(ctx, "svc-b", "")
	require.NoError(t, err)
	assert.Equal(t, []Operation{{"GET /", "server"}, {"query", ""}, {"query", "client"}, {"work", "internal"}}, ops)
	ops, err = s.GetOperations(ctx, "svc-b", "client")
	require.NoError(t, err)
	assert.Equal(t, []Operation{{"query", "client"}}, ops)
	ops, err = s.GetOperations(ctx, "svc-a", "")
	require.NoError(t, err)
	assert.Equal(t, []Operation{{"recv", "consumer"}, {"send", "producer"}}, ops)
	ops, err = s.GetOperations(ctx, "svc", "")
	require.NoError(t, err)
	assert.Equal(t, []Operation{{"x", "server"}}, ops)
	ops, err = s.GetOperations(ctx, "nope", "")
	require.NoError(t, err)
	assert.Empty(t, ops)
	ops, err = s.GetOperations(ctx, "svc-b", "bogus")
	require.NoError(t, err)
	assert.Empty(t, ops)
}

func TestPurge(t *testing.T) {
	s := openTest(t, false)
	now := time.Now()
	write(t, s, resSpans("svc", nil, nil, newSpan(tid(1), 1, "op", now, time.Millisecond)))
	_, _, err := s.WriteRecords(context.Background(), []Record{{TraceID: tid(1), SpanID: sid(1), NodeIDs: []uint64{1}, Data: []byte("r")}})
	require.NoError(t, err)
	require.NoError(t, s.Purge(context.Background()))
	svcs, err := s.GetServices(context.Background())
	require.NoError(t, err)
	assert.Empty(t, svcs)
	assert.Empty(t, readTrace(t, s, tid(1)))
	recs, err := s.GetRecords(context.Background(), tid(1))
	require.NoError(t, err)
	assert.Empty(t, recs)
	assert.Empty(t, find(t, s, Query{Service: "svc"}))
	// names are registered again after a purge (the name cache was reset)
	write(t, s, resSpans("svc", nil, nil, newSpan(tid(1), 1, "op", now, time.Millisecond)))
	svcs, err = s.GetServices(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{"svc"}, svcs)
}

// Entries expire after their TTL (badger TTL has 1 s resolution).
func TestTTLExpiry(t *testing.T) {
	s := openTest(t, false, func(c *Config) { c.SpanTTL = time.Second; c.RecordTTL = time.Second })
	now := time.Now()
	write(t, s, resSpans("svc", nil, nil, newSpan(tid(1), 1, "op", now, time.Millisecond)))
	_, _, err := s.WriteRecords(context.Background(), []Record{{TraceID: tid(1), SpanID: sid(1), NodeIDs: []uint64{1}, Data: []byte("r")}})
	require.NoError(t, err)
	require.Len(t, find(t, s, Query{Service: "svc"}), 1)
	deadline := time.Now().Add(5 * time.Second)
	gone := func() bool {
		svcs, err := s.GetServices(context.Background())
		require.NoError(t, err)
		return countSpans(readTrace(t, s, tid(1))) == 0 && len(svcs) == 0
	}
	// names live up to SpanTTL/4 longer than spans; TTLs have 1 s resolution
	for time.Now().Before(deadline) && !gone() {
		time.Sleep(100 * time.Millisecond)
	}
	assert.Empty(t, readTrace(t, s, tid(1)))
	assert.Empty(t, find(t, s, Query{Service: "svc"}))
	assert.Empty(t, find(t, s, Query{Attributes: map[string]string{"ioam.node_id": "1"}}))
	svcs, err := s.GetServices(context.Background())
	require.NoError(t, err)
	assert.Empty(t, svcs)
	recs, err := s.GetRecords(context.Background(), tid(1))
	require.NoError(t, err)
	assert.Empty(t, recs)
	s.RunGC() // must not fail on an (almost) empty store
	assert.EqualValues(t, 1, s.Stats().GCRuns)
	assert.Zero(t, s.Stats().GCErrors)
}

func TestPersistsAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Dir = dir
	s, err := Open(cfg, nil)
	require.NoError(t, err)
	now := time.Now()
	write(t, s, resSpans("svc", nil, nil, newSpan(tid(1), 1, "op", now, time.Millisecond)))
	require.NoError(t, s.Close())
	s, err = Open(cfg, nil)
	require.NoError(t, err)
	defer s.Close()
	write(t, s, resSpans("svc", nil, nil, newSpan(tid(1), 2, "op", now, time.Millisecond)))
	assert.Equal(t, 2, countSpans(readTrace(t, s, tid(1))), "batch sequence must not collide after reopen")
	// Close flushed the first write into a table; the value log holds the
	// second (the metric read 0 while badger's own expvar metrics were off).
	lsm, vlog := s.DiskUsage()
	assert.Positive(t, lsm, "the .sst written by Close")
	assert.Positive(t, vlog, "the value log in use")
	mem := openTest(t, true)
	lsm, vlog = mem.DiskUsage()
	assert.Zero(t, lsm+vlog, "in-memory store")
}

// TestBlockSizeChangeKeepsData: block_size_kb and zstd_level only shape
// the tables badger writes next (each table records its own blocks), so a
// store written with the earlier 16 KiB blocks reads back, searches and
// compacts together with tables of the new default after the change.
func TestBlockSizeChangeKeepsData(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Dir, cfg.BlockSizeKB = dir, 16
	s, err := Open(cfg, nil)
	require.NoError(t, err)
	now := time.Now()
	for i := range 200 {
		write(t, s, resSpans("svc", nil, nil, newSpan(tid(uint64(i)), 1, "old", now, time.Millisecond,
			withAttrs(strKV("k", fmt.Sprint("v", i))))))
	}
	require.NoError(t, s.Close())
	cfg.BlockSizeKB, cfg.ZSTDLevel = DefaultConfig().BlockSizeKB, 3
	require.NotEqual(t, 16, cfg.BlockSizeKB)
	s, err = Open(cfg, nil)
	require.NoError(t, err)
	defer s.Close()
	for i := range 200 {
		write(t, s, resSpans("svc", nil, nil, newSpan(tid(uint64(i)), 2, "new", now, time.Millisecond)))
	}
	require.NoError(t, s.db.Flatten(1)) // old and new tables compacted together
	for _, i := range []int{0, 99, 199} {
		rs := readTrace(t, s, tid(uint64(i)))
		require.Equal(t, 2, countSpans(rs), "trace %d", i)
	}
	assert.Equal(t, [][16]byte{tid(42)}, find(t, s, Query{Service: "svc", Attributes: map[string]string{"k": "v42"}}))
}

// TestGCLoopOwnedByStore: the GC loop outlives Start's context (it is the
// store's, like every component's goroutines) and ends with Close.
func TestGCLoopOwnedByStore(t *testing.T) {
	s := openTest(t, false, func(c *Config) { c.GCInterval = 10 * time.Millisecond })
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, s.Start(ctx))
	cancel() // must not stop the maintenance
	waitGC := func(after uint64) {
		deadline := time.Now().Add(5 * time.Second)
		for s.Stats().GCRuns <= after && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitGC(0)
	first := s.Stats().GCRuns
	require.NotZero(t, first)
	waitGC(first)
	assert.Greater(t, s.Stats().GCRuns, first, "GC stopped with Start's context")
	assert.False(t, s.Stats().LastGC.IsZero())
	require.NoError(t, s.Close()) // goleak in TestMain checks the loop ended

	s2 := openTest(t, false)
	done, stop := context.WithCancel(context.Background())
	stop()
	assert.ErrorIs(t, s2.Start(done), context.Canceled, "Start honours an already-ended ctx")
}

// Writers and readers racing with Close get nil or ErrClosed, never a panic.
func TestConcurrentUseAndClose(t *testing.T) {
	s := openTest(t, true)
	ctx := context.Background()
	now := time.Now()
	errs := make(chan error, 64)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				id := tid(uint64(w*1000 + i))
				var err error
				switch i % 4 {
				case 0:
					_, err = s.WriteSpans(ctx, []*tracepb.ResourceSpans{resSpans("svc", nil, nil, newSpan(id, 1, "op", now, time.Millisecond))})
				case 1:
					_, err = s.FindTraceIDs(ctx, Query{Service: "svc", SearchDepth: 5})
				case 2:
					err = s.GetTrace(ctx, id, func(*tracepb.ResourceSpans) error { return nil })
				case 3:
					_, _, err = s.WriteRecords(ctx, []Record{{TraceID: id, NodeIDs: []uint64{1}}})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	time.Sleep(5 * time.Millisecond)
	require.NoError(t, s.Close())
	wg.Wait()
	close(errs)
	for err := range errs {
		require.ErrorIs(t, err, ErrClosed)
	}
}

func TestConfigValidateMemory(t *testing.T) {
	c := DefaultConfig()
	c.MemoryLimitMiB, c.IndexCacheMB, c.NumMemtables, c.BaseTableMB = 100, -1, 0, 0
	c.NumCompactors, c.NumLevelZeroTables, c.NumLevelZeroTablesStall = 1, 4, 4
	c.MaxConcurrentSearches, c.ReclaimInterval = 0, -time.Second
	c.MemTableMB, c.ValueThresholdKB = 1, 512 // above 15 % of the memtable
	err := c.Validate()
	require.Error(t, err)
	for _, key := range []string{"memory_limit_mib:", "index_cache_mb:", "num_memtables:", "base_table_mb:",
		"num_compactors:", "num_level_zero_tables_stall:", "value_threshold_kb:", "max_concurrent_searches:", "reclaim_interval:"} {
		assert.Contains(t, err.Error(), key)
	}
	// Explicit sizes that the budget cannot hold beside its fixed costs.
	c = DefaultConfig()
	c.MemoryLimitMiB, c.BaseTableMB, c.NumCompactors = 128, 64, 16
	c.NumCompactors = 2
	e := c.Effective()
	assert.Equal(t, 1, e.BaseTableMB, "the budget caps base_table_mb")
	require.NoError(t, c.Validate())
}

// memory_limit_mib caps every size at its share and keeps smaller explicit
// values; the estimate stays within half of the limit.
func TestConfigEffective(t *testing.T) {
	assert.Equal(t, DefaultConfig(), DefaultConfig().Effective(), "the default sizes are within the default budget")
	unlimited := DefaultConfig()
	unlimited.MemoryLimitMiB, unlimited.BlockCacheMB = 0, 4096
	assert.Equal(t, unlimited, unlimited.Effective(), "no limit: sizes as given")
	for _, m := range []int{128, 256, 512, 1024, 4096} {
		c := DefaultConfig()
		c.MemoryLimitMiB = m
		require.NoError(t, c.Validate(), "memory_limit_mib %d", m)
		e := c.Effective()
		require.NoError(t, e.Validate())
		assert.LessOrEqual(t, e.EstimatedMemoryMiB(), m*2/3, "memory_limit_mib %d: %+v", m, e)
		assert.LessOrEqual(t, e.BlockCacheMB, c.BlockCacheMB)
		assert.LessOrEqual(t, e.MemTableMB, c.MemTableMB)
		assert.LessOrEqual(t, e.NumCompactors, 2)
	}
	c := DefaultConfig()
	c.MemoryLimitMiB, c.BlockCacheMB, c.IndexCacheMB = 256, 8, 0
	e := c.Effective()
	assert.Equal(t, 8, e.BlockCacheMB, "a smaller explicit size is kept")
	assert.Equal(t, 25, e.IndexCacheMB, "index_cache_mb 0 (unbounded) becomes the share")
	assert.Equal(t, 8, e.MemTableMB)
	c.MemTableMB = 4
	assert.Equal(t, 4, c.Effective().MemTableMB, "a smaller explicit size is kept")
}

// max_concurrent_searches: a search beyond the slots waits, and gives up
// with its context.
func TestSearchSlots(t *testing.T) {
	s := openTest(t, true, func(c *Config) { c.MaxConcurrentSearches = 1 })
	require.NoError(t, s.acquireSearch(context.Background()))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := s.FindTraceIDs(ctx, Query{Service: "x", SearchDepth: 10})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.EqualValues(t, 1, s.Stats().SearchWaits)
	s.releaseSearch()
	_, err = s.FindTraceIDs(context.Background(), Query{Service: "x", SearchDepth: 10})
	require.NoError(t, err)
}

// Chunk bytes, and so the content hash that makes a retried write land on
// the same keys, are marshalOpts.Marshal's whichever encoder made them.
func TestChunkEncodingDeterministic(t *testing.T) {
	now := time.Now()
	root := newSpan(tid(1), 1, "root", now, time.Millisecond,
		withAttrs(strKV("s", "x"), intKV("i", 5), boolKV("b", true), dblKV("d", 72.5)),
		withEvent("ev", strKV("k", "v")), withStatus(tracepb.Status_STATUS_CODE_ERROR))
	root.Links = []*tracepb.Span_Link{{TraceId: tidSlice(9), SpanId: sidSlice(9), TraceState: "x"}}
	child := newSpan(tid(1), 2, "child", now, time.Microsecond, withParent(1))
	unknown := newSpan(tid(1), 3, "unknown", now, time.Microsecond)
	unknown.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 999, protowire.VarintType), 42))
	var enc []byte
	for name, rss := range map[string][]*tracepb.ResourceSpans{
		"encoded":   {resSpans("svc-a", []*commonpb.KeyValue{strKV("host.name", "h")}, nil, root, child), resSpans("svc-b", nil, nil, child)},
		"fallback":  {resSpans("svc-a", nil, nil, unknown)},
		"no groups": nil,
	} {
		want, err := marshalOpts.Marshal(&tracepb.TracesData{ResourceSpans: rss})
		require.NoError(t, err)
		got, err := marshalChunk(rss, &enc)
		require.NoError(t, err, name)
		assert.Equal(t, string(want), string(got), name)
	}
}
