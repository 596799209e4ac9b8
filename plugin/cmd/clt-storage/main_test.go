package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func writeConfig(t *testing.T, body string) string {
	p := filepath.Join(t.TempDir(), "clt-storage.yaml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	return p
}

func TestRunCheck(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"--check", "--config", "../../clt-storage.example.yaml"}, &out))
	assert.Contains(t, out.String(), "config ok")
}

func TestRunRejectsBadConfig(t *testing.T) {
	var out bytes.Buffer
	p := writeConfig(t, "storage:\n  max_spans_per_chunk: 0\nlog:\n  level: loud\n")
	err := run(t.Context(), []string{"--config", p}, &out)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "storage.max_spans_per_chunk")
	assert.Contains(t, err.Error(), "log.level")

	err = run(t.Context(), []string{"--config", writeConfig(t, "bogus: 1\n")}, &out)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bogus")

	err = run(t.Context(), []string{"--config", writeConfig(t, "store:\n  memory_limit_mib: 64\n  num_compactors: 1\n")}, &out)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "store.memory_limit_mib")
	assert.Contains(t, err.Error(), "store.num_compactors")

	require.Error(t, run(t.Context(), []string{"extra"}, &out))
	require.Error(t, run(t.Context(), []string{"--log-level", "loud", "--check"}, &out), "flag overrides are validated")
}

// TestRunServesUntilCancelled starts the real server on loopback and stops it
// the way SIGTERM does (context cancellation).
func TestRunServesUntilCancelled(t *testing.T) {
	p := writeConfig(t, `storage:
  listen: 127.0.0.1:0
collector:
  listen: 127.0.0.1:0
admin:
  listen: 127.0.0.1:0
store:
  block_cache_mb: 8
  memtable_mb: 8
`)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() { done <- run(ctx, []string{"--config", p, "--data-dir", t.TempDir()}, &out) }()
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("run returned early: %v", err)
	default:
	}
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("run did not stop")
	}
	assert.Contains(t, out.String(), "clt-storage started")
	assert.Contains(t, out.String(), "clt-storage stopped")
}
