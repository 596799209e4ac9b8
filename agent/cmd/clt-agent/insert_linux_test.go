package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/cross-layer-telemetry/clt/kernel/bpfinsert"
	"github.com/cross-layer-telemetry/clt/kernel/netnstest"
)

// TestIntegrationInsertStopAndCrash: a clt-agent process with an insert
// block attaches the eBPF programs to its interface and pins the socket
// map; SIGTERM detaches them and removes the pin, SIGKILL leaves nothing
// attached either (the pin stays), and a restart attaches again and
// replaces the pin.
func TestIntegrationInsertStopAndCrash(t *testing.T) {
	topo := netnstest.Build(t, netnstest.Chain(netnstest.ChainOptions{Routers: 1, IOAMNamespace: 123}))
	client := topo.Node("client")
	fs := t.TempDir() // a private bpf filesystem, not the machine's /sys/fs/bpf
	require.NoError(t, unix.Mount("bpf", fs, "bpf", 0, "mode=0700"))
	t.Cleanup(func() { _ = unix.Unmount(fs, unix.MNT_DETACH) })
	pin := filepath.Join(fs, "clt", "sockets")
	cfg := filepath.Join(t.TempDir(), "agent.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
netns_path: %s
source: {kind: netlink}
namespaces: [{id: 123}]
export: {stdout: true, collector: ""}
admin: {listen: ""}
insert:
  interfaces: [c0]
  prefixes: ["fd00:2::/64"]
  ports: [8080]
  socket_map_pin: %s
`, client.Path, pin)), 0o600))
	pinned := func() bool { _, err := os.Stat(pin); return err == nil }

	attached := func() int {
		n := 0
		require.NoError(t, client.Do(func() error {
			ifi, err := net.InterfaceByName("c0")
			if err != nil {
				return err
			}
			for _, at := range []ebpf.AttachType{ebpf.AttachTCXEgress, ebpf.AttachTCXIngress} {
				r, err := link.QueryPrograms(link.QueryOptions{Target: ifi.Index, Attach: at})
				if err != nil {
					return err
				}
				n += len(r.Programs)
			}
			return nil
		}))
		return n
	}
	waitFor := func(want int) bool {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if attached() == want {
				return true
			}
		}
		return false
	}
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "--config", cfg)
		cmd.Env = append(os.Environ(), envRunAsMain+"=1")
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		require.True(t, waitFor(2), "agent attached egress and ingress programs")
		require.True(t, pinned(), "socket map pinned")
		sm, err := bpfinsert.OpenSocketMap(pin)
		require.NoError(t, err)
		require.NoError(t, sm.Close())
		return cmd
	}

	cmd := start()
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), "clean exit on SIGTERM")
	assert.Zero(t, attached(), "nothing attached after a clean stop")
	assert.False(t, pinned(), "pin removed at stop")

	cmd = start()
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	assert.True(t, waitFor(0), "nothing attached after SIGKILL")
	assert.True(t, pinned(), "a killed agent's pin stays")

	cmd = start() // reattach works, the stale pin is replaced
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait())
	assert.Zero(t, attached())
	assert.False(t, pinned())
}
