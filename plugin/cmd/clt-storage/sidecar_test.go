package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cross-layer-telemetry/clt/api/storagev1"
	"github.com/cross-layer-telemetry/clt/plugin"
)

// buildBinary builds clt-storage once per test binary run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "clt-storage")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// hostPlugin is what a Jaeger v1 host registers: the client half of
// storage_plugin.
type hostPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
}

func (hostPlugin) GRPCServer(*goplugin.GRPCBroker, *grpc.Server) error { return nil }
func (hostPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return c, nil
}

// startAsJaeger starts bin the way Jaeger v1.57's grpc-plugin storage does:
// handshake STORAGE_PLUGIN=jaeger, plugin set version 1, storage_plugin, gRPC,
// `--config <file>`.
func startAsJaeger(t *testing.T, bin, config string) *grpc.ClientConn {
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  goplugin.HandshakeConfig{MagicCookieKey: "STORAGE_PLUGIN", MagicCookieValue: "jaeger"},
		VersionedPlugins: map[int]goplugin.PluginSet{1: {"storage_plugin": hostPlugin{}}},
		Cmd:              exec.Command(bin, "--config", config),
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		Logger:           hclog.New(&hclog.LoggerOptions{Output: io.Discard}),
		StartTimeout:     30 * time.Second,
	})
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	require.NoError(t, err)
	raw, err := rpc.Dispense("storage_plugin")
	require.NoError(t, err)
	return raw.(*grpc.ClientConn)
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

func sidecarSpan(svc string, id byte) *storagev1.Span {
	return &storagev1.Span{TraceId: []byte{0xfe, 15: id}, SpanId: []byte{0xfe, 7: id}, OperationName: "op",
		StartTime: timestamppb.New(time.Now().Add(-time.Minute)), Duration: durationpb.New(time.Millisecond),
		Process: &storagev1.Process{ServiceName: svc}}
}

func checkSidecar(t *testing.T, conn *grpc.ClientConn, id byte) {
	ctx := t.Context()
	_, err := storagev1.NewSpanWriterPluginClient(conn).WriteSpan(ctx, &storagev1.WriteSpanRequest{Span: sidecarSpan("sidecar-svc", id)})
	require.NoError(t, err)
	st, err := storagev1.NewSpanReaderPluginClient(conn).GetTrace(ctx, &storagev1.GetTraceRequest{TraceId: []byte{0xfe, 15: id}})
	require.NoError(t, err)
	chunk, err := st.Recv()
	require.NoError(t, err)
	require.Len(t, chunk.Spans, 1)
	assert.Equal(t, "sidecar-svc", chunk.Spans[0].Process.ServiceName)
	svcs, err := storagev1.NewSpanReaderPluginClient(conn).GetServices(ctx, &storagev1.GetServicesRequest{})
	require.NoError(t, err)
	assert.Contains(t, svcs.Services, "sidecar-svc")
	_, err = storagev1.NewPluginCapabilitiesClient(conn).Capabilities(ctx, &storagev1.CapabilitiesRequest{})
	require.NoError(t, err)
}

func TestSidecarEmbedded(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	cfg := fmt.Sprintf("storage:\n  listen: %q\ncollector:\n  listen: \"\"\nadmin:\n  listen: \"\"\nstore:\n  dir: %q\nlog:\n  level: warn\n",
		freePort(t), filepath.Join(dir, "data"))
	conn := startAsJaeger(t, bin, writeConfig(t, cfg))
	checkSidecar(t, conn, 1)
}

func TestSidecarForward(t *testing.T) {
	cfg := plugin.DefaultConfig()
	cfg.Storage.Listen, cfg.Collector.Listen, cfg.Admin.Listen = "127.0.0.1:0", "", ""
	cfg.Store.InMemory = true
	srv, err := plugin.New(cfg, plugin.Settings{})
	require.NoError(t, err)
	require.NoError(t, srv.Start(t.Context()))
	t.Cleanup(func() { require.NoError(t, srv.Close()) })

	bin := buildBinary(t)
	conn := startAsJaeger(t, bin, writeConfig(t, fmt.Sprintf("sidecar:\n  forward: %q\nlog:\n  level: warn\n", srv.StorageAddr())))
	checkSidecar(t, conn, 2)
	// The spans went to the shared clt-storage.
	_, err = storagev1.NewSpanReaderPluginClient(conn).GetServices(t.Context(), &storagev1.GetServicesRequest{})
	require.NoError(t, err)
}

// A sidecar whose host dies without stopping it (Jaeger v1.45 did that)
// exits by itself.
func TestSidecarExitsWhenHostGoes(t *testing.T) {
	bin := buildBinary(t)
	cfg := writeConfig(t, fmt.Sprintf("sidecar:\n  forward: %q\nlog:\n  level: warn\n", freePort(t)))
	// The shell is the host: it starts the plugin, prints its pid, lets it
	// start and exits without stopping it.
	sh := exec.Command("sh", "-c", `"$0" --config "$1" </dev/null >/dev/null 2>&1 & echo $!; sleep 2`, bin, cfg)
	sh.Env = append(os.Environ(), "STORAGE_PLUGIN=jaeger", "PLUGIN_PROTOCOL_VERSIONS=1")
	out, err := sh.Output()
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	require.NoError(t, err)
	t.Cleanup(func() {
		if p, err := os.FindProcess(pid); err == nil {
			_ = p.Kill()
		}
	})
	require.Eventually(t, func() bool { return !running(pid) }, 15*time.Second, 100*time.Millisecond, "plugin %d still running", pid)
}

// running reports whether pid is alive (a zombie nobody reaped is not).
func running(pid int) bool {
	f, err := os.Open(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	if i := strings.LastIndexByte(line, ')'); i >= 0 && i+2 < len(line) {
		return line[i+2] != 'Z' && line[i+2] != 'X'
	}
	return true
}
