package ioamstore

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// Expired data leaves the disk while the store is idle: spans with a 2 s TTL
// (6 s TTL) fill a few LSM tables, then nothing is written; the idle reclaim loop
// (reclaim_interval 500 ms) must shrink the LSM tree to a fraction of its
// size on its own, without any write or explicit call.
func TestIdleReclaimFreesExpiredDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a few MB and waits for expiry")
	}
	cfg := DefaultConfig()
	cfg.Dir = t.TempDir()
	cfg.SpanTTL, cfg.RecordTTL = 6*time.Second, 6*time.Second
	cfg.MemTableMB, cfg.BlockCacheMB, cfg.IndexCacheMB = 1, 4, 4
	cfg.GCInterval = 0
	cfg.ReclaimInterval = 500 * time.Millisecond
	g := newTracegen(7)
	var batches [][]*tracepb.ResourceSpans // built first: slow under -race
	for i := range 3 {
		batches = append(batches, g.batch(250, time.Now().Add(time.Duration(i)*time.Second), time.Millisecond, nil))
	}
	s, err := Open(cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Start(context.Background()))

	first := time.Now()
	for _, b := range batches {
		_, err := s.WriteSpans(context.Background(), b)
		require.NoError(t, err)
	}
	written := time.Now()
	before, _ := s.DiskUsage()
	require.Greater(t, before, int64(256<<10), "spans must reach the LSM tree (1 MiB memtables)")

	var after int64
	require.Eventually(t, func() bool {
		after, _ = s.DiskUsage()
		return after < before/10
	}, 20*time.Second, 100*time.Millisecond, "expired spans must leave the disk while idle")
	st := s.Stats()
	t.Logf("LSM %d B when written, %d B %s after the last write (%d reclaim runs)",
		before, after, time.Since(written).Round(100*time.Millisecond), st.ReclaimRuns)
	// Badger's expiry has a granularity of a second.
	assert.GreaterOrEqual(t, time.Since(first), cfg.SpanTTL-time.Second, "nothing may be dropped before it expires")
	assert.Zero(t, st.ReclaimErrors)

	// Once everything written has expired and been reclaimed, an idle store
	// stops rewriting.
	time.Sleep(time.Until(written.Add(cfg.SpanTTL + 3*cfg.ReclaimInterval)))
	runs := s.Stats().ReclaimRuns
	time.Sleep(4 * cfg.ReclaimInterval)
	assert.Equal(t, runs, s.Stats().ReclaimRuns, "no reclaim loop on a fully reclaimed idle store")
}

// Reclaim keeps live data: what has not expired reads back after it.
func TestReclaimKeepsLiveData(t *testing.T) {
	s := openTest(t, false, func(c *Config) { c.MemTableMB = 1 })
	g := newTracegen(9)
	var ids [][16]byte
	for i := range 3 {
		_, err := s.WriteSpans(context.Background(), g.batch(250, time.Now().Add(time.Duration(i)*time.Second), time.Millisecond, &ids))
		require.NoError(t, err)
	}
	require.NoError(t, s.Reclaim())
	require.NoError(t, s.Reclaim(), "a second pass on a flattened tree")
	for _, id := range ids[:50] {
		n := 0
		require.NoError(t, s.GetTrace(context.Background(), id, func(rs *tracepb.ResourceSpans) error { n++; return nil }))
		assert.NotZero(t, n, "trace %x lost by Reclaim", id)
	}
	assert.EqualValues(t, 2, s.Stats().ReclaimRuns)
}

// An in-memory store has nothing to reclaim.
func TestReclaimInMemory(t *testing.T) {
	s := openTest(t, true)
	require.NoError(t, s.Reclaim())
	assert.Zero(t, s.Stats().ReclaimRuns)
}
