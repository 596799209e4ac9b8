package plugin

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	l := NewLogger(LogConfig{Level: "warn", Format: "json"}, &buf)
	l.Info("hidden")
	l.Warn("shown", "k", 1)
	assert.NotContains(t, buf.String(), "hidden")
	assert.Contains(t, buf.String(), `"msg":"shown"`)
}
