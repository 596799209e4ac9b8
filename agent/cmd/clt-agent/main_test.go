package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/cross-layer-telemetry/clt/agent"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDefaultsRoundTrip(t *testing.T) {
	var out, errb strings.Builder
	require.NoError(t, run(t.Context(), []string{"defaults"}, &out, &errb))
	path := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte(out.String()), 0o600))
	cfg, err := agent.LoadConfig(path)
	require.NoError(t, err)
	assert.Empty(t, cfg.Namespaces)
	assert.Empty(t, cfg.Source.Interfaces)
	cfg.Namespaces, cfg.Source.Interfaces = nil, nil // printed as [], read back empty
	assert.Equal(t, agent.DefaultConfig(), cfg)
	assert.Contains(t, out.String(), "log:\n  level: info\n  format: text\n")
	assert.NotContains(t, out.String(), "log_level")
}

func TestInvalidConfigNamesKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte("source: {kind: pcap}\nexport: {collector: \"\"}\n"), 0o600))
	var out, errb strings.Builder
	err := run(t.Context(), []string{"--config", path}, &out, &errb)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "source.kind")
	assert.Contains(t, err.Error(), "export")
	err = run(t.Context(), []string{"check", "--config", path}, &out, &errb)
	require.ErrorContains(t, err, "source.kind")
}

func TestUnknownKeyAndArgs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte("bogus: 1\n"), 0o600))
	var out, errb strings.Builder
	require.ErrorContains(t, run(t.Context(), []string{"--config", path}, &out, &errb), "bogus")
	require.ErrorContains(t, run(t.Context(), []string{"extra"}, &out, &errb), "unexpected arguments")
	require.Error(t, run(t.Context(), []string{"--nope"}, &out, &errb))
}

// TestLogBlockAndOverrides: the log block is clt-storage's; --log-level and
// the deprecated log_level key are validated like log.level.
func TestLogBlockAndOverrides(t *testing.T) {
	var out, errb strings.Builder
	path := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte("log:\n  level: loud\n  format: xml\n"), 0o600))
	err := run(t.Context(), []string{"--config", path}, &out, &errb)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "log.level")
	assert.Contains(t, err.Error(), "log.format")

	require.NoError(t, os.WriteFile(path, []byte("log_level: loud\n"), 0o600))
	require.ErrorContains(t, run(t.Context(), []string{"--config", path}, &out, &errb), "log_level")

	require.ErrorContains(t, run(t.Context(), []string{"--log-level", "loud"}, &out, &errb), "log.level")

	t.Setenv("CLT_AGENT_CONFIG", path)
	require.ErrorContains(t, run(t.Context(), nil, &out, &errb), "log_level", "CLT_AGENT_CONFIG names the file")
}

func TestDeprecationWarningLogged(t *testing.T) {
	cfg, err := agent.ParseConfig([]byte("log_level: warn\n"))
	require.NoError(t, err)
	var buf strings.Builder
	log := newLogger(cfg, &buf)
	log.Info("hidden")
	assert.Contains(t, buf.String(), "level=WARN msg=\"deprecated configuration: log_level is deprecated; write log: {level: warn} instead\"")
	assert.NotContains(t, buf.String(), "hidden", "log_level still sets the level")

	buf.Reset()
	newLogger(agent.DefaultConfig(), &buf).Info("x")
	assert.NotContains(t, buf.String(), "deprecated")
}
