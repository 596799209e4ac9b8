//go:build linux

package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/cross-layer-telemetry/clt/kernel/netnstest"
)

func p64(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, 64) }

// demoSpec is the netnstest topology. IOAM on porthos and aramis is left to
// their clt-agent's setup block; athos (which only encapsulates) gets its node
// id here so the CLT transport can write athos's own entry.
func demoSpec() netnstest.Spec {
	return netnstest.Spec{
		Nodes: []netnstest.NodeSpec{
			{Role: roleClient},
			{Role: roleAthos, IOAM: &netnstest.NodeIOAM{
				NodeID: nodeAthos, WideNodeID: 0x1000000 + nodeAthos,
				Namespaces: []netnstest.IOAMNamespace{{ID: ioamNamespace}},
			}},
			{Role: rolePorthos, Forwarding: true},
			{Role: roleAramis},
			{Role: roleWire},
			{Role: rolePlanchet, Forwarding: true},
		},
		Links: []netnstest.LinkSpec{
			{A: netnstest.Endpoint{Node: roleClient, Name: "athos0", Addr: p64(addrClient)},
				B: netnstest.Endpoint{Node: roleAthos, Name: "client0", Addr: p64(addrAthosCli)}},
			{A: netnstest.Endpoint{Node: roleAthos, Name: "porthos0", Addr: p64(addrAthos),
				IOAM: &netnstest.InterfaceIOAM{ID: ifAthosToPorthos, WideID: 0x10000 + ifAthosToPorthos}},
				B: netnstest.Endpoint{Node: rolePorthos, Name: "athos0", Addr: p64(addrPorthosA)}},
			{A: netnstest.Endpoint{Node: rolePorthos, Name: "aramis0", Addr: p64(addrPorthosR)},
				B: netnstest.Endpoint{Node: roleWire, Name: wirePorthos}},
			{A: netnstest.Endpoint{Node: roleWire, Name: wireAramis},
				B: netnstest.Endpoint{Node: roleAramis, Name: "porthos0", Addr: p64(addrAramis)}},
			{A: netnstest.Endpoint{Node: rolePorthos, Name: "planchet0", Addr: p64(addrPorthosP)},
				B: netnstest.Endpoint{Node: rolePlanchet, Name: "porthos0", Addr: p64(addrPlanchetP)}},
			{A: netnstest.Endpoint{Node: rolePlanchet, Name: "aramis0", Addr: p64(addrPlanchetR)},
				B: netnstest.Endpoint{Node: roleAramis, Name: "planchet0", Addr: p64(addrAramisP)}},
		},
		Routes: []netnstest.RouteSpec{
			{Node: roleAthos, Dst: netip.MustParsePrefix("fd00:3::/64"), Via: addrPorthosA},
			{Node: roleAramis, Dst: netip.MustParsePrefix("fd00:2::/64"), Via: addrPorthosR},
			// The detour: planchet delivers aramis's fd00:3::2 over its own
			// link (aramis accepts it on planchet0, Linux's weak host model);
			// aramis always answers through porthos.
			{Node: rolePlanchet, Dst: netip.MustParsePrefix("fd00:3::/64"), Via: addrAramisP},
			{Node: rolePlanchet, Dst: netip.MustParsePrefix("fd00:2::/64"), Via: addrPorthosP},
		},
	}
}

// mgmtNet is the management network: a bridge in the root namespace and one
// veth into every node.
type mgmtNet struct {
	Bridge string
	Prefix netip.Prefix
	Host   netip.Addr
	nodes  map[string]netip.Addr
	links  []string // root-side names, for cleanup
}

// Addr returns the management address of a role.
func (m *mgmtNet) Addr(role string) netip.Addr { return m.nodes[role] }

// newMgmtPrefix returns fd00:c17:<16 random bits>::/64.
func newMgmtPrefix() (netip.Prefix, error) {
	var b [2]byte
	if _, err := rand.Read(b[:]); err != nil {
		return netip.Prefix{}, err
	}
	a := [16]byte{0xfd, 0x00, 0x0c, 0x17, b[0], b[1]}
	return netip.PrefixFrom(netip.AddrFrom16(a), 64), nil
}

func hostN(p netip.Prefix, n int) netip.Addr {
	a := p.Addr().As16()
	a[15] = byte(n)
	return netip.AddrFrom16(a)
}

func ipnet(a netip.Addr, bits int) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, 128)}
}

// setupMgmt builds the management network for topo. On error, what was built
// is removed.
func setupMgmt(topo *netnstest.Topology) (m *mgmtNet, err error) {
	prefix, err := newMgmtPrefix()
	if err != nil {
		return nil, fmt.Errorf("mgmt prefix: %w", err)
	}
	m = &mgmtNet{Bridge: fmt.Sprintf("clt-%s-mgmt", topo.ID), Prefix: prefix, Host: hostN(prefix, 1), nodes: map[string]netip.Addr{}}
	defer func() {
		if err != nil {
			err = errors.Join(err, m.Close())
		}
	}()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: m.Bridge}}
	if err := netlink.LinkAdd(br); err != nil {
		return m, fmt.Errorf("mgmt bridge %s: %w", m.Bridge, err)
	}
	m.links = append(m.links, m.Bridge)
	brl, err := netlink.LinkByName(m.Bridge)
	if err != nil {
		return m, fmt.Errorf("mgmt bridge %s: %w", m.Bridge, err)
	}
	if err := netlink.LinkSetUp(brl); err != nil {
		return m, fmt.Errorf("mgmt bridge up: %w", err)
	}
	if err := netlink.AddrAdd(brl, &netlink.Addr{IPNet: ipnet(m.Host, 64), Flags: unix.IFA_F_NODAD}); err != nil {
		return m, fmt.Errorf("mgmt bridge address %s: %w", m.Host, err)
	}
	for _, role := range mgmtRoles {
		node := topo.Node(role)
		idx := mgmtRoleIndex[role]
		rootName := fmt.Sprintf("clt-%s-m%d", topo.ID, idx)
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: rootName, MasterIndex: brl.Attrs().Index},
			PeerName:      ifMgmt,
			PeerNamespace: netlink.NsFd(int(node.NetNS())),
		}
		if err := netlink.LinkAdd(veth); err != nil {
			return m, fmt.Errorf("mgmt veth %s: %w", rootName, err)
		}
		m.links = append(m.links, rootName)
		rl, err := netlink.LinkByName(rootName)
		if err == nil {
			err = netlink.LinkSetMaster(rl, brl)
		}
		if err == nil {
			err = netlink.LinkSetUp(rl)
		}
		if err != nil {
			return m, fmt.Errorf("mgmt veth %s: %w", rootName, err)
		}
		addr := hostN(prefix, idx)
		h, err := netlink.NewHandleAt(node.NetNS(), unix.NETLINK_ROUTE)
		if err != nil {
			return m, fmt.Errorf("%s: netlink: %w", node.Name, err)
		}
		nl, err := h.LinkByName(ifMgmt)
		if err == nil {
			err = h.AddrAdd(nl, &netlink.Addr{IPNet: ipnet(addr, 64), Flags: unix.IFA_F_NODAD})
		}
		if err == nil {
			err = h.LinkSetUp(nl)
		}
		h.Close()
		if err != nil {
			return m, fmt.Errorf("%s: %s: %w", node.Name, ifMgmt, err)
		}
		m.nodes[role] = addr
	}
	return m, nil
}

// Close deletes the root-side links (the namespace ends go with their
// namespaces). Missing links are not an error.
func (m *mgmtNet) Close() error {
	var errs []error
	for i := len(m.links) - 1; i >= 0; i-- {
		if err := deleteLink(m.links[i]); err != nil {
			errs = append(errs, err)
		}
	}
	m.links = nil
	return errors.Join(errs...)
}

func deleteLink(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("link %s: %w", name, err)
	}
	if err := netlink.LinkDel(l); err != nil {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}
