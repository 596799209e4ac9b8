package stack

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSupervisorStopsInReverseAndReportsCrashes(t *testing.T) {
	s, err := NewSupervisor(t.TempDir(), nil)
	require.NoError(t, err)
	defer s.Close()

	long, err := s.Start(ProcSpec{Name: "sleeper", Path: "/bin/sh", Args: []string{"-c", "echo up; exec sleep 30"}})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return long.Tail(1) == "up" }, 10*time.Second, 20*time.Millisecond)
	crash, err := s.Start(ProcSpec{Name: "crasher", Path: "/bin/sh", Args: []string{"-c", "echo boom >&2; exit 3"}})
	require.NoError(t, err)

	select {
	case p := <-s.Exited():
		assert.Same(t, crash, p)
		require.Error(t, p.Err())
		assert.Equal(t, "boom", p.Tail(5))
	case <-time.After(10 * time.Second):
		t.Fatal("crash not reported")
	}

	start := time.Now()
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close is idempotent")
	assert.Less(t, time.Since(start), 4*time.Second, "SIGTERM is enough for sleep")
	<-long.Done()
	select {
	case p := <-s.Exited():
		t.Fatalf("stopped process %s reported as crashed", p.Name)
	default:
	}
}

func TestSupervisorKillsAfterGrace(t *testing.T) {
	s, err := NewSupervisor(t.TempDir(), nil)
	require.NoError(t, err)
	s.grace = 200 * time.Millisecond
	p, err := s.Start(ProcSpec{Name: "stubborn", Path: "/bin/sh", Args: []string{"-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"}})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return p.Tail(1) == "ready" }, 5*time.Second, 20*time.Millisecond)
	require.NoError(t, s.Close())
	require.Error(t, p.Err(), "killed by SIGKILL")
}

func TestRunReturnsLogTail(t *testing.T) {
	s, err := NewSupervisor(t.TempDir(), nil)
	require.NoError(t, err)
	defer s.Close()
	var out bytes.Buffer
	require.NoError(t, s.Run(t.Context(), ProcSpec{Name: "ok", Path: "/bin/sh", Args: []string{"-c", "echo result"}, Stdout: &out}))
	assert.Equal(t, "result\n", out.String())
	err = s.Run(t.Context(), ProcSpec{Name: "bad", Path: "/bin/sh", Args: []string{"-c", "echo why >&2; exit 1"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "why")
}

func TestJaegerYAML(t *testing.T) {
	cfg := JaegerConfig{QueryHTTP: "127.0.0.1:16686", QueryGRPC: "127.0.0.1:16685", OTLPGRPC: "[fd00:c17::1]:4317",
		Health: "127.0.0.1:13133", Storage: "127.0.0.1:17271", Timeout: 5 * time.Second}
	b, err := cfg.YAML()
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, yaml.Unmarshal(b, &doc))
	ext := doc["extensions"].(map[string]any)
	grpc := ext["jaeger_storage"].(map[string]any)["backends"].(map[string]any)["clt"].(map[string]any)["grpc"].(map[string]any)
	assert.Equal(t, "127.0.0.1:17271", grpc["endpoint"])
	assert.Equal(t, "[fd00:c17::1]:4317", doc["receivers"].(map[string]any)["otlp"].(map[string]any)["protocols"].(map[string]any)["grpc"].(map[string]any)["endpoint"])

	bad := cfg
	bad.Storage, bad.Timeout = "nohostport", 0
	_, err = bad.YAML()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "jaeger.storage")
	assert.Contains(t, err.Error(), "jaeger.timeout")

	// The real binary must accept the rendered file.
	bin := jaegerBin(t)
	path := filepath.Join(t.TempDir(), "jaeger.yaml")
	require.NoError(t, os.WriteFile(path, b, 0o644))
	out, err := exec.Command(bin, "validate", "--config", path).CombinedOutput()
	require.NoError(t, err, string(out))
}

func jaegerBin(t *testing.T) string {
	if b := os.Getenv("JAEGER_BIN"); b != "" {
		return b
	}
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Dir(file)
	for !strings.HasSuffix(dir, string(filepath.Separator)) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			b := filepath.Join(dir, ".cache", "bin", "jaeger")
			if _, err := os.Stat(b); err != nil {
				t.Skip("no Jaeger binary (make jaeger)")
			}
			return b
		}
		dir = filepath.Dir(dir)
	}
	t.Skip("repository root not found")
	return ""
}
