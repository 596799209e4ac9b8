package plugin

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cross-layer-telemetry/clt/plugin/internal/soakload"
)

// The short version of the soak (`make soak-guard`; `make soak` is the long
// one; not in `make test`, see docs/benchmarks.md "Memory"): a steady
// load of spans, IOAM reports and searches through the real gRPC servers
// over a real badger, with a TTL short enough that data expires during the
// run, so the store reaches its steady state within the warm-up. The heap
// live after a forced GC (HeapAlloc; not RSS, which the page cache and a loaded
// machine make noisy, nor anything timed) must not grow by more than 10 %
// from the first third of the measurement to the last third. Each third is
// represented by the lowest of its 16 samples: badger's table builders
// (memtable flushes, compactions) come and go by a few MiB on top of the
// floor, while a leak lifts the floor itself.
func TestSoakHeapFlat(t *testing.T) {
	const (
		warmup  = 12 * time.Second
		every   = 500 * time.Millisecond
		samples = 48 // 24 s measured
	)
	e := startEnv(t, func(c *Config) {
		c.Store.SpanTTL, c.Store.RecordTTL = 6*time.Second, 6*time.Second
		// Small sizes: the caches fill within the warm-up, and table
		// builders (a memtable flush holds about 2x memtable_mb) are
		// small beside the heap, so their coming and going is not noise.
		c.Store.MemTableMB, c.Store.BaseTableMB, c.Store.BlockCacheMB, c.Store.IndexCacheMB = 1, 1, 2, 1
		c.Store.GCInterval = 5 * time.Second
	})
	load := &soakload.Load{OTLP: e.otlp, Collector: e.collector, Reader: e.reader,
		SpansPerSec: 2000, RecordsPerSec: 200, QueriesPerSec: 2, Seed: 1}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- load.Run(ctx) }()
	stop := sync.OnceValue(func() error { cancel(); return <-done })
	defer func() { _ = stop() }()

	liveHeap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	time.Sleep(warmup)
	var heap []uint64
	for range samples {
		time.Sleep(every)
		heap = append(heap, liveHeap())
	}
	require.NoError(t, stop())
	counts := load.Counts()
	// Compare the floors of the first and last thirds: single samples swing by
	// a memtable or table builder in flight (±2 MiB at these sizes, and the
	// medians moved by 10 % between two passing runs), while a leak lifts the
	// floor. The slack is 10 %, at least 1 MiB (one memtable here).
	first, last := slices.Min(heap[:samples/3]), slices.Min(heap[samples-samples/3:])
	t.Logf("live heap after GC (MiB): %v; floor of the first third %.1f, of the last third %.1f; load: %+v",
		mib(heap), float64(first)/(1<<20), float64(last)/(1<<20), counts)
	require.Zero(t, counts.Errors)
	// The load must have been real: at least a quarter of its nominal rate
	// (the race detector on a shared machine slows everything down).
	require.Greater(t, counts.Spans, uint64(2000*(warmup+samples*every).Seconds()/4))
	require.NotZero(t, counts.Records)
	require.NotZero(t, counts.Queries)
	assert.LessOrEqual(t, last, first+max(first/10, 1<<20), "the live heap's floor grew by more than 10 %% under a steady load")
}

func mib(v []uint64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x*10/(1<<20)) / 10
	}
	return out
}
