//go:build linux

package ioamstore

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// tableRSS sums the resident bytes of this process's mappings of .sst files
// under dir (/proc/self/smaps).
func tableRSS(t *testing.T, dir string) int64 {
	t.Helper()
	root, err := filepath.EvalSymlinks(dir)
	require.NoError(t, err)
	f, err := os.Open("/proc/self/smaps")
	require.NoError(t, err)
	defer f.Close()
	var total int64
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			in = len(fields) >= 6 && strings.HasPrefix(fields[5], root+"/") && strings.HasSuffix(fields[5], ".sst")
			continue
		}
		if v, ok := strings.CutPrefix(line, "Rss:"); in && ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			require.NoError(t, err)
			total += kb << 10
		}
	}
	require.NoError(t, sc.Err())
	return total
}

// TestPageOutTables: the tables badger keeps mapped are resident after
// reads; PageOutTables has the kernel reclaim them from the process, and
// every trace still reads back whole afterwards (faulted in again).
func TestPageOutTables(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Dir = dir
	cfg.BlockCacheMB, cfg.Compression = 0, "none" // every read goes to the mapped table
	s, err := Open(cfg, nil)
	require.NoError(t, err)
	now := time.Now()
	const traces = 3000
	for b := range traces / 100 {
		var spans []*tracepb.Span
		for i := range 100 {
			n := uint64(b*100 + i)
			spans = append(spans, newSpan(tid(n), 1, "op", now, time.Millisecond,
				withAttrs(strKV("k", strings.Repeat("v", 200)), intKV("n", int64(n)))))
		}
		write(t, s, resSpans("svc", nil, nil, spans...))
	}
	require.NoError(t, s.Close()) // the memtable becomes a table
	s, err = Open(cfg, nil)
	require.NoError(t, err)
	defer s.Close()
	readAll := func() {
		for n := range uint64(traces) {
			require.Equal(t, 1, countSpans(readTrace(t, s, tid(n))), "trace %d", n)
		}
	}
	readAll()
	before := tableRSS(t, dir)
	require.Positive(t, before, "reads make the mapped table resident")
	s.PageOutTables()
	after := tableRSS(t, dir)
	t.Logf("resident table pages: %d -> %d bytes", before, after)
	assert.Less(t, after, before/2)
	assert.Equal(t, uint64(1), s.Stats().PageOuts)
	assert.Zero(t, s.Stats().PageOutErrors)
	readAll()
	assert.Len(t, find(t, s, Query{Service: "svc", Attributes: map[string]string{"n": "1234"}}), 1)
}
