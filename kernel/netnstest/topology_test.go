//go:build linux

package netnstest_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/cross-layer-telemetry/clt/kernel/netnstest"
	"github.com/cross-layer-telemetry/clt/kernel/sysctl"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestChainSpecValid(t *testing.T) {
	for routers := range 4 {
		s := netnstest.Chain(netnstest.ChainOptions{Routers: routers, IOAMNamespace: 123})
		require.NoError(t, s.Validate(), "routers=%d", routers)
		assert.Len(t, s.Nodes, routers+2)
		assert.Len(t, s.Links, routers+1)
	}
	s := netnstest.Chain(netnstest.ChainOptions{Routers: 2, IOAMNamespace: 123})
	assert.Equal(t, "client", s.Nodes[0].Role)
	assert.Equal(t, "r1", s.Nodes[1].Role)
	assert.Equal(t, "server", s.Nodes[3].Role)
	assert.EqualValues(t, 3, s.Nodes[2].IOAM.NodeID)
	assert.Equal(t, "r1a", s.Links[0].B.Name)
	assert.EqualValues(t, 21, s.Links[0].B.IOAM.ID)
	assert.EqualValues(t, 22, s.Links[1].A.IOAM.ID)
	assert.EqualValues(t, 40, s.Links[2].B.IOAM.ID)
}

func TestSpecValidateReportsAll(t *testing.T) {
	s := netnstest.Spec{
		Nodes: []netnstest.NodeSpec{{Role: "Bad-Role"}, {Role: "a"}, {Role: "a"}},
		Links: []netnstest.LinkSpec{{
			A: netnstest.Endpoint{Node: "a", Name: "x0"},
			B: netnstest.Endpoint{Node: "zz", Name: "this-name-is-too-long"},
		}},
		Routes: []netnstest.RouteSpec{{Node: "nope"}},
	}
	err := s.Validate()
	require.Error(t, err)
	for _, want := range []string{"nodes[0].role", "nodes[2].role \"a\" is duplicated", "links[0].b.node", "links[0].b.name", "routes[0].node", "routes[0].via"} {
		assert.Contains(t, err.Error(), want)
	}
}

func TestIntegrationChain(t *testing.T) {
	topo := netnstest.Build(t, netnstest.Chain(netnstest.ChainOptions{Routers: 2, IOAMNamespace: 123}))
	client, r1, server := topo.Node("client"), topo.Node("r1"), topo.Node("server")
	require.NotNil(t, client)
	assert.True(t, strings.HasPrefix(server.Name, "clt-"+topo.ID+"-"))
	assert.Len(t, topo.ID, 6)

	// TCP across both routers.
	ln, err := server.Listen("tcp6", "[fd00:3::2]:0")
	require.NoError(t, err)
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(c, c)
		done <- err
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, nil, "tcp6", ln.Addr().String())
	require.NoError(t, err)
	_, err = c.Write([]byte("ping"))
	require.NoError(t, err)
	buf := make([]byte, 4)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	assert.Equal(t, "ping", string(buf))
	require.NoError(t, c.Close())
	require.NoError(t, <-done)

	// IOAM configuration, read back with iproute2 and through our code.
	out, err := exec.Command("ip", "-n", r1.Name, "ioam", "namespace", "show").CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "namespace 123, data 0x12300002, wide 0x1230000000000002")
	var id uint32
	var ifc sysctl.InterfaceConfig
	require.NoError(t, r1.Do(func() (err error) {
		if id, err = sysctl.Default.NodeID(); err != nil {
			return err
		}
		ifc, err = sysctl.Default.Interface("r1a")
		return err
	}))
	assert.EqualValues(t, 2, id)
	assert.Equal(t, sysctl.InterfaceConfig{Enabled: true, ID: 21, WideID: 21 + 0x10000}, ifc)
	out, err = r1.Command("sysctl", "-n", "net.ipv6.conf.all.forwarding", "net.ipv6.ioam6_id_wide").CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Equal(t, "1\n16777218\n", string(out))

	// A command still running at Close is killed.
	cmd := server.Command("sleep", "30")
	require.NoError(t, cmd.Start())
	names := []string{client.Name, r1.Name, server.Name}
	require.NoError(t, topo.Close())
	require.NoError(t, topo.Close(), "Close is idempotent")
	werr := cmd.Wait()
	require.Error(t, werr, "sleep must have been killed")
	for _, n := range names {
		_, err := os.Stat("/run/netns/" + n)
		assert.ErrorIs(t, err, os.ErrNotExist, n)
	}
}

func TestIntegrationBuildFailureCleansUp(t *testing.T) {
	netnstest.RequirePrivileged(t)
	spec := netnstest.Chain(netnstest.ChainOptions{Routers: 1})
	// A route whose gateway is unreachable fails after the namespaces exist.
	spec.Routes = append(spec.Routes, netnstest.RouteSpec{Node: "r1", Via: netip.MustParseAddr("fd00:99::1")})
	id := randomID(t)
	_, err := netnstest.NewWithID(spec, id)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "route")
	ents, err := os.ReadDir("/run/netns")
	require.NoError(t, err)
	for _, e := range ents {
		assert.NotContains(t, e.Name(), id, "namespace left behind")
	}
}

func randomID(t *testing.T) string {
	var b [3]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	return hex.EncodeToString(b[:])
}
