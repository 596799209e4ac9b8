package netnstest

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netlink"
)

// Routes that change while a test runs (a re-route between two packets):
// ReplaceRoute installs or moves a route, DeleteRoute removes it.

func (r RouteSpec) netlink() *netlink.Route {
	dst := r.Dst
	if !dst.IsValid() {
		dst = netip.MustParsePrefix("::/0")
	}
	return &netlink.Route{
		Dst: &net.IPNet{IP: dst.Addr().AsSlice(), Mask: net.CIDRMask(dst.Bits(), 128)},
		Gw:  r.Via.AsSlice(),
	}
}

// ReplaceRoute adds r.Dst via r.Via in the node, replacing a route to the
// same destination (ip -6 route replace). r.Node is ignored.
func (n *Node) ReplaceRoute(r RouteSpec) error {
	h, err := n.handle()
	if err != nil {
		return err
	}
	defer h.Close()
	if err := h.RouteReplace(r.netlink()); err != nil {
		return fmt.Errorf("netnstest: %s: route replace %s via %s: %w", n.Name, r.Dst, r.Via, err)
	}
	return nil
}

// DeleteRoute removes the route to r.Dst via r.Via; a route that is not
// there is not an error. r.Node is ignored.
func (n *Node) DeleteRoute(r RouteSpec) error {
	h, err := n.handle()
	if err != nil {
		return err
	}
	defer h.Close()
	if err := h.RouteDel(r.netlink()); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("netnstest: %s: route del %s via %s: %w", n.Name, r.Dst, r.Via, err)
	}
	return nil
}
