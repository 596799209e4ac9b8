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
// over the measurement. Growth is the Theil-Sen slope of the samples (the
// median of the slopes between every pair) times the measurement's length:
// badger's table builders (memtable flushes, compactions) come and go by a
// few MiB on top of a floor that itself moves by about 1 MiB, and a median
// of pairwise slopes ignores both, while a leak tilts every pair the same
// way. (Comparing the floors or the medians of the first and last thirds
// failed at the 10 % bound in passing trees.)
func TestSoakHeapFlat(t *testing.T) {
	const (
		warmup  = 12 * time.Second
		every   = 500 * time.Millisecond
		samples = 96 // 48 s measured
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
	level := median(heap)
	growth := theilSen(heap) * float64(samples-1)
	t.Logf("live heap after GC (MiB): %v; median %.1f, growth over the measurement %+.2f; load: %+v",
		mib(heap), level/(1<<20), growth/(1<<20), counts)
	require.Zero(t, counts.Errors)
	// The load must have been real: at least a quarter of its nominal rate
	// (the race detector on a shared machine slows everything down).
	require.Greater(t, counts.Spans, uint64(2000*(warmup+samples*every).Seconds()/4))
	require.NotZero(t, counts.Records)
	require.NotZero(t, counts.Queries)
	// The slack is 10 %, at least 1 MiB (one memtable here).
	assert.LessOrEqual(t, growth, max(level/10, 1<<20), "the live heap grew by more than 10 %% under a steady load")
}

// theilSen is the median of the slopes between every pair of samples, per
// sample.
func theilSen(v []uint64) float64 {
	var slopes []float64
	for i := range v {
		for j := i + 1; j < len(v); j++ {
			slopes = append(slopes, (float64(v[j])-float64(v[i]))/float64(j-i))
		}
	}
	return medianF(slopes)
}

func median(v []uint64) float64 {
	f := make([]float64, len(v))
	for i, x := range v {
		f[i] = float64(x)
	}
	return medianF(f)
}

func medianF(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func mib(v []uint64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x*10/(1<<20)) / 10
	}
	return out
}

func TestTheilSen(t *testing.T) {
	flat := []uint64{10, 12, 10, 30, 10, 11, 10, 10, 12, 10}
	assert.InDelta(t, 0, theilSen(flat), 0.01, "spikes and a floor that moves do not tilt it")
	leak := make([]uint64, 20)
	for i := range leak {
		leak[i] = uint64(100 + 3*i)
		if i%5 == 0 {
			leak[i] += 40 // table builders in flight
		}
	}
	assert.InDelta(t, 3, theilSen(leak), 0.01)
	assert.InDelta(t, 10.5, median([]uint64{10, 12, 1, 11}), 0.01)
	assert.Zero(t, theilSen(nil))
}
