//go:build linux

package netnstest_test

import (
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/cross-layer-telemetry/clt/kernel/netnstest"
)

func TestIntegrationReplaceDeleteRoute(t *testing.T) {
	netnstest.RequirePrivileged(t)
	topo, err := netnstest.New(netnstest.Chain(netnstest.ChainOptions{Routers: 2}))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, topo.Close()) })
	r1 := topo.Node("r1")
	dst := netip.MustParsePrefix("fd00:3::2/128")
	gateways := func() []string {
		var out []string
		require.NoError(t, r1.Do(func() error {
			rs, err := netlink.RouteListFiltered(netlink.FAMILY_V6,
				&netlink.Route{Dst: &net.IPNet{IP: dst.Addr().AsSlice(), Mask: net.CIDRMask(128, 128)}}, netlink.RT_FILTER_DST)
			for _, r := range rs {
				out = append(out, r.Gw.String())
			}
			return err
		}))
		return out
	}
	// r1 has no route to fd00:3::2/128 of its own; point it at the client
	// side, then at r2, then remove it.
	require.NoError(t, r1.ReplaceRoute(netnstest.RouteSpec{Dst: dst, Via: netip.MustParseAddr("fd00:1::1")}))
	assert.Equal(t, []string{"fd00:1::1"}, gateways())
	require.NoError(t, r1.ReplaceRoute(netnstest.RouteSpec{Dst: dst, Via: netip.MustParseAddr("fd00:2::2")}))
	assert.Equal(t, []string{"fd00:2::2"}, gateways(), "replaced, not added")
	require.NoError(t, r1.DeleteRoute(netnstest.RouteSpec{Dst: dst, Via: netip.MustParseAddr("fd00:2::2")}))
	assert.Empty(t, gateways())
	require.NoError(t, r1.DeleteRoute(netnstest.RouteSpec{Dst: dst, Via: netip.MustParseAddr("fd00:2::2")}), "absent is not an error")
	err = r1.ReplaceRoute(netnstest.RouteSpec{Dst: dst, Via: netip.MustParseAddr("fd00:9::1")})
	require.Error(t, err, "unreachable gateway")
	assert.Contains(t, err.Error(), "route replace")
}
