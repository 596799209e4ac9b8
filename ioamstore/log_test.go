package ioamstore

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestBadgerLogger(t *testing.T) {
	var buf bytes.Buffer
	l := badgerLogger{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	l.Errorf("e %d\n", 1)
	l.Warningf("w %d", 2)
	l.Infof("i %d", 3)
	l.Debugf("d %d", 4) // below Debug: dropped
	out := buf.String()
	assert.Contains(t, out, `level=ERROR msg="e 1"`)
	assert.Contains(t, out, `level=WARN msg="w 2"`)
	assert.Contains(t, out, `level=DEBUG msg="i 3"`)
	assert.NotContains(t, out, "d 4")
}

func TestConfigYAML(t *testing.T) {
	in := `
dir: /var/lib/clt
in_memory: false
span_ttl: 24h
record_ttl: 12h
sync_writes: true
gc_interval: 1m
gc_discard_ratio: 0.7
compression: snappy
block_cache_mb: 64
memtable_mb: 32
value_threshold_kb: 32
dependency_max_traces: 500
`
	cfg := DefaultConfig()
	dec := yaml.NewDecoder(strings.NewReader(in))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&cfg))
	require.NoError(t, cfg.Validate())
	want := DefaultConfig()
	want.Dir, want.SpanTTL, want.RecordTTL, want.SyncWrites = "/var/lib/clt", 24*time.Hour, 12*time.Hour, true
	want.GCInterval, want.GCDiscardRatio, want.Compression = time.Minute, 0.7, "snappy"
	want.BlockCacheMB, want.MemTableMB, want.ValueThresholdKB, want.DependencyMaxTraces = 64, 32, 32, 500
	assert.Equal(t, want, cfg)

	dec = yaml.NewDecoder(strings.NewReader("spanttl: 1h\n"))
	dec.KnownFields(true)
	require.Error(t, dec.Decode(&cfg), "unknown keys are errors")
}
