package plugin

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cross-layer-telemetry/clt/internal/admin"
)

func TestDefaultConfigValid(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
}

// The example file documents the defaults; it must parse to exactly them.
func TestExampleConfigIsDefault(t *testing.T) {
	cfg, err := LoadConfig("clt-storage.example.yaml")
	require.NoError(t, err)
	assert.Equal(t, DefaultConfig(), cfg)
}

func TestParseConfigOverridesAndUnknownKeys(t *testing.T) {
	cfg, err := ParseConfig([]byte("storage:\n  listen: 127.0.0.1:1\nstore:\n  span_ttl: 1h\nadmin:\n  purge: true\n"))
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:1", cfg.Storage.Listen)
	assert.Equal(t, time.Hour, cfg.Store.SpanTTL)
	assert.True(t, cfg.Admin.Purge)
	assert.Equal(t, DefaultConfig().Collector, cfg.Collector, "untouched sections keep defaults")

	_, err = ParseConfig([]byte("storage:\n  lisen: x\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "lisen")

	cfg, err = ParseConfig(nil)
	require.NoError(t, err, "empty file = defaults")
	assert.Equal(t, DefaultConfig(), cfg)
}

func TestValidateReportsEveryProblem(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Storage.Listen = "nope"
	cfg.Storage.MaxSpansPerChunk = 0
	cfg.Storage.DefaultSearchDepth = cfg.Storage.MaxSearchDepth + 1
	cfg.Collector.MaxHops = 300
	cfg.Collector.MaxRecordsPerBatch = 0
	cfg.Admin.Listen = ""
	cfg.Admin.Purge = true
	cfg.Log.Level = "loud"
	cfg.Log.Format = "xml"
	cfg.ShutdownTimeout = 0
	cfg.Store.GCDiscardRatio = 2
	err := cfg.Validate()
	require.Error(t, err)
	for _, key := range []string{"storage.listen", "storage.max_spans_per_chunk", "storage.default_search_depth",
		"collector.max_hops", "collector.max_records_per_batch", "admin.listen", "log.level", "log.format",
		"shutdown_timeout", "store.gc_discard_ratio"} {
		assert.Contains(t, err.Error(), key+":")
	}
	assert.Len(t, unjoin(err), 10)
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Storage.Listen = ""
	_, err := New(cfg, Settings{})
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "config: storage.listen"), err.Error())
}

// TestAdminAndLogBlocks: the admin and log blocks are clt-agent's (shared
// package): the same keys, the same checks; purge is clt-storage's own.
func TestAdminAndLogBlocks(t *testing.T) {
	cfg, err := ParseConfig([]byte("admin:\n  listen: 127.0.0.1:9\n  pprof: true\n  purge: true\nlog:\n  level: debug\n  format: json\n"))
	require.NoError(t, err)
	require.NoError(t, cfg.Validate())
	assert.Equal(t, AdminConfig{Config: admin.Config{Listen: "127.0.0.1:9", Pprof: true}, Purge: true}, cfg.Admin)
	assert.Equal(t, LogConfig{Level: "debug", Format: "json"}, cfg.Log)

	_, err = ParseConfig([]byte("admin:\n  config: {}\n"))
	require.ErrorContains(t, err, "config", "the embedded block is inline, not a key")
	_, err = ParseConfig([]byte("log:\n  levle: debug\n"))
	require.ErrorContains(t, err, "levle")

	cfg = DefaultConfig()
	cfg.Admin.Listen = ""
	cfg.Admin.Pprof = true
	require.ErrorContains(t, cfg.Validate(), "admin.listen: must be set when admin.pprof is enabled")
}
