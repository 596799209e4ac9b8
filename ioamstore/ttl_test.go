package ioamstore

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Expired spans free disk: compaction drops them from the LSM tree and
// records how much of each value-log file is garbage, and value-log GC then
// rewrites those files. Phase A writes spans with a 2 s TTL into the value log
// (value_threshold_kb: 1); after expiry, phase B writes fresh spans, as a live
// store would, which triggers compaction; then RunGC must reclaim A's file.
func TestTTLFreesDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("writes ~15 MB and waits for expiry")
	}
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Dir = dir
	cfg.SpanTTL = 2 * time.Second
	cfg.MemTableMB = 1
	cfg.ValueThresholdKB = 1
	cfg.BlockCacheMB = 8
	write := func(cfg Config, batches int, seed uint64) {
		s, err := Open(cfg, slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		g := newTracegen(seed)
		for i := range batches {
			_, err := s.WriteSpans(context.Background(), g.batch(745, time.Now().Add(time.Duration(i)*time.Second), time.Millisecond, nil))
			require.NoError(t, err)
		}
		require.NoError(t, s.Close())
	}
	write(cfg, 2, 1)
	written := time.Now()
	vlogA := vlogBytes(t, dir)
	require.Greater(t, vlogA, int64(4<<20))

	time.Sleep(time.Until(written.Add(cfg.SpanTTL + 1100*time.Millisecond)))
	cfgB := cfg
	cfgB.SpanTTL = time.Hour
	cfgB.ValueThresholdKB = 64 // phase B stays in the LSM tree
	write(cfgB, 3, 2)

	s, err := Open(cfgB, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.db.Flatten(1))
	for range 4 {
		s.RunGC()
	}
	st := s.Stats()
	require.NoError(t, s.Close())
	vlogAfter := vlogBytes(t, dir)
	t.Logf("value log: %d B after phase A, %d B after expiry, phase B, compaction and GC (%d GC runs, %d rewrites)",
		vlogA, vlogAfter, st.GCRuns, st.GCRewrites)
	assert.NotZero(t, st.GCRewrites)
	assert.Less(t, vlogAfter, vlogA/4, "expired values must free disk")
}

func vlogBytes(t *testing.T, dir string) int64 {
	es, err := os.ReadDir(dir)
	require.NoError(t, err)
	var n int64
	for _, e := range es {
		if strings.HasSuffix(e.Name(), ".vlog") {
			fi, err := os.Stat(filepath.Join(dir, e.Name()))
			require.NoError(t, err)
			n += fi.Size()
		}
	}
	return n
}
