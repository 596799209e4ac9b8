package netnstest

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cross-layer-telemetry/clt/kernel/sysctl"
)

// Spec describes a topology.
type Spec struct {
	Nodes  []NodeSpec
	Links  []LinkSpec
	Routes []RouteSpec
}

// NodeSpec is one network namespace.
type NodeSpec struct {
	// Role names the node inside the spec and ends its namespace name
	// (clt-<hex>-<role>); 1..8 characters [a-z0-9].
	Role string
	// Forwarding enables net.ipv6.conf.all.forwarding (routers).
	Forwarding bool
	// IOAM configures the node's IOAM identity and namespaces; nil leaves
	// the kernel defaults.
	IOAM *NodeIOAM
}

// NodeIOAM is a node's IOAM configuration.
type NodeIOAM struct {
	NodeID     uint32 // net.ipv6.ioam6_id (24 bits)
	WideNodeID uint64 // net.ipv6.ioam6_id_wide (56 bits)
	// Namespaces are added with ioam6nl (ip ioam namespace add).
	Namespaces []IOAMNamespace
	// MaxHBHOpts sets net.ipv6.max_hbh_opts_number when non-zero.
	MaxHBHOpts int
}

// IOAMNamespace is one IOAM namespace; nil data fields stay unset.
type IOAMNamespace struct {
	ID       uint16
	Data     *uint32
	DataWide *uint64
}

// LinkSpec is a veth pair between two nodes.
type LinkSpec struct {
	A, B Endpoint
}

// Endpoint is one end of a veth pair.
type Endpoint struct {
	Node string       // Role of the node
	Name string       // interface name (1..15 bytes)
	Addr netip.Prefix // IPv6 address with prefix length, fd00::/8
	// IOAM enables IOAM processing on packets entering this interface and
	// sets its ids; nil leaves it disabled.
	IOAM *InterfaceIOAM
}

// InterfaceIOAM is an interface's IOAM ids.
type InterfaceIOAM struct {
	ID     uint16
	WideID uint32
}

// RouteSpec is a static route in one node; an invalid (zero) Dst is the
// default route.
type RouteSpec struct {
	Node string
	Dst  netip.Prefix
	Via  netip.Addr
}

var ula = netip.MustParsePrefix("fd00::/8")

// Validate checks roles, names, addresses and references.
func (s Spec) Validate() error {
	var errs []error
	roles := map[string]bool{}
	for i, n := range s.Nodes {
		if !validRole(n.Role) {
			errs = append(errs, fmt.Errorf("nodes[%d].role %q must be 1..8 characters [a-z0-9]", i, n.Role))
		}
		if roles[n.Role] {
			errs = append(errs, fmt.Errorf("nodes[%d].role %q is duplicated", i, n.Role))
		}
		roles[n.Role] = true
		if n.IOAM != nil {
			if n.IOAM.NodeID > sysctl.DefaultNodeID {
				errs = append(errs, fmt.Errorf("nodes[%d].ioam.node_id %#x exceeds 24 bits", i, n.IOAM.NodeID))
			}
			if n.IOAM.WideNodeID > sysctl.DefaultWideNodeID {
				errs = append(errs, fmt.Errorf("nodes[%d].ioam.wide_node_id %#x exceeds 56 bits", i, n.IOAM.WideNodeID))
			}
		}
	}
	ifnames := map[string]bool{}
	for i, l := range s.Links {
		for side, e := range map[string]Endpoint{"a": l.A, "b": l.B} {
			if !roles[e.Node] {
				errs = append(errs, fmt.Errorf("links[%d].%s.node %q is not a node", i, side, e.Node))
			}
			if err := sysctl.CheckInterfaceName(e.Name); err != nil {
				errs = append(errs, fmt.Errorf("links[%d].%s.name: %w", i, side, err))
			}
			if ifnames[e.Node+"/"+e.Name] {
				errs = append(errs, fmt.Errorf("links[%d].%s.name %q is duplicated in node %q", i, side, e.Name, e.Node))
			}
			ifnames[e.Node+"/"+e.Name] = true
			if e.Addr.IsValid() && (!e.Addr.Addr().Is6() || !ula.Contains(e.Addr.Addr())) {
				errs = append(errs, fmt.Errorf("links[%d].%s.addr %s must be in fd00::/8", i, side, e.Addr))
			}
		}
	}
	for i, r := range s.Routes {
		if !roles[r.Node] {
			errs = append(errs, fmt.Errorf("routes[%d].node %q is not a node", i, r.Node))
		}
		if !r.Via.Is6() {
			errs = append(errs, fmt.Errorf("routes[%d].via %s must be IPv6", i, r.Via))
		}
	}
	return errors.Join(errs...)
}

func validRole(r string) bool {
	if len(r) == 0 || len(r) > 8 {
		return false
	}
	for _, c := range r {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// ChainOptions parameterise Chain.
type ChainOptions struct {
	// Routers is the number of routers between client and server; 0 is a
	// direct link.
	Routers int
	// IOAMNamespace is configured on every node (0: no IOAM at all).
	IOAMNamespace uint16
	// MaxHBHOpts, when non-zero, is set on every node.
	MaxHBHOpts int
}

// Chain returns the linear topology of docs/wire-format.md §1:
//
//	client(c0 fd00:1::1) -- (r1a fd00:1::2) r1 (r1b fd00:2::1) -- (r2a fd00:2::2) r2 (r2b fd00:3::1) -- (s0 fd00:3::2) server
//
// Node ids are the 1-based position (client 1, r1 2, …); the namespace data
// is 0x12300000+id and the wide data 0x1230000000000000+id; wide node ids are
// 0x1000000+id. Interface ids: client c0 10, router i (node id k) ingress
// toward the client k*10+1 and toward the server k*10+2, server s0 node*10.
// Wide interface ids are id+0x10000. IOAM is enabled on every interface.
func Chain(o ChainOptions) Spec {
	var s Spec
	hops := o.Routers + 2
	role := func(i int) string {
		switch i {
		case 0:
			return "client"
		case hops - 1:
			return "server"
		}
		return fmt.Sprintf("r%d", i)
	}
	for i := range hops {
		n := NodeSpec{Role: role(i), Forwarding: i > 0 && i < hops-1}
		if o.IOAMNamespace != 0 {
			id := uint32(i + 1)
			data := 0x12300000 + id
			wide := 0x1230000000000000 + uint64(id)
			n.IOAM = &NodeIOAM{
				NodeID: id, WideNodeID: 0x1000000 + uint64(id), MaxHBHOpts: o.MaxHBHOpts,
				Namespaces: []IOAMNamespace{{ID: o.IOAMNamespace, Data: &data, DataWide: &wide}},
			}
		}
		s.Nodes = append(s.Nodes, n)
	}
	ioam := func(id uint16) *InterfaceIOAM {
		if o.IOAMNamespace == 0 {
			return nil
		}
		return &InterfaceIOAM{ID: id, WideID: uint32(id) + 0x10000}
	}
	ifName := func(i int, towardServer bool) string {
		switch {
		case i == 0:
			return "c0"
		case i == hops-1:
			return "s0"
		case towardServer:
			return fmt.Sprintf("r%db", i)
		}
		return fmt.Sprintf("r%da", i)
	}
	ifID := func(i int, towardServer bool) uint16 {
		k := uint16(i + 1)
		switch {
		case i == 0 || i == hops-1:
			return k * 10
		case towardServer:
			return k*10 + 2
		}
		return k*10 + 1
	}
	for i := range hops - 1 {
		net := i + 1 // fd00:<net>::/64
		left := netip.MustParsePrefix(fmt.Sprintf("fd00:%x::1/64", net))
		right := netip.MustParsePrefix(fmt.Sprintf("fd00:%x::2/64", net))
		s.Links = append(s.Links, LinkSpec{
			A: Endpoint{Node: role(i), Name: ifName(i, true), Addr: left, IOAM: ioam(ifID(i, true))},
			B: Endpoint{Node: role(i + 1), Name: ifName(i+1, false), Addr: right, IOAM: ioam(ifID(i+1, false))},
		})
	}
	last := hops - 1
	s.Routes = append(s.Routes,
		RouteSpec{Node: "client", Via: netip.MustParseAddr("fd00:1::2")},
		RouteSpec{Node: "server", Via: netip.MustParseAddr(fmt.Sprintf("fd00:%x::1", last))},
	)
	for i := 1; i < hops-1; i++ {
		// Router i sits between fd00:i:: (left) and fd00:i+1:: (right).
		right := netip.MustParseAddr(fmt.Sprintf("fd00:%x::2", i+1))
		left := netip.MustParseAddr(fmt.Sprintf("fd00:%x::1", i))
		for j := i + 2; j <= last; j++ {
			s.Routes = append(s.Routes, RouteSpec{Node: role(i), Dst: netip.MustParsePrefix(fmt.Sprintf("fd00:%x::/64", j)), Via: right})
		}
		for j := 1; j < i; j++ {
			s.Routes = append(s.Routes, RouteSpec{Node: role(i), Dst: netip.MustParsePrefix(fmt.Sprintf("fd00:%x::/64", j)), Via: left})
		}
	}
	return s
}
