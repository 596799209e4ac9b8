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
	cfg, err := agent.LoadConfigFile(path)
	require.NoError(t, err)
	assert.Equal(t, agent.DefaultConfig().Export, cfg.Export)
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
