package netnstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"runtime"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6nl"
	"github.com/cross-layer-telemetry/clt/kernel/sysctl"
)

// bindMountDir is where named namespaces live (what `ip netns` uses).
const bindMountDir = "/run/netns"

// Topology is a built set of namespaces. Close removes everything.
type Topology struct {
	// ID is the random hex shared by the namespace names.
	ID    string
	Nodes map[string]*Node // by role

	order     []*Node
	mu        sync.Mutex
	recorders []*Recorder
	ctx       context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once
	closeErr  error
}

// Node is one network namespace of a Topology.
type Node struct {
	Role string
	// Name is the namespace name (clt-<hex>-<role>), usable with `ip -n`.
	Name string
	// Path is the namespace file, /run/netns/<Name>.
	Path string

	ns    netns.NsHandle
	addrs map[string]netip.Addr // by interface name
	topo  *Topology
}

// New builds spec. On error everything created so far is removed.
func New(spec Spec) (*Topology, error) {
	var rb [3]byte
	if _, err := rand.Read(rb[:]); err != nil {
		return nil, fmt.Errorf("netnstest: random: %w", err)
	}
	return newWithID(spec, hex.EncodeToString(rb[:]))
}

func newWithID(spec Spec, id string) (*Topology, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("netnstest: spec: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &Topology{ID: id, Nodes: map[string]*Node{}, ctx: ctx, cancel: cancel}
	if err := t.build(spec); err != nil {
		return nil, errors.Join(err, t.Close())
	}
	return t, nil
}

// Close kills processes started with Node.Command and deletes every
// namespace (which removes the veth pairs). It is idempotent.
func (t *Topology) Close() error {
	t.closeOnce.Do(func() {
		t.cancel()
		var errs []error
		t.mu.Lock()
		recs := t.recorders
		t.mu.Unlock()
		for _, r := range recs {
			errs = append(errs, r.Close())
		}
		for _, n := range t.order {
			if n.ns.IsOpen() {
				errs = append(errs, n.ns.Close())
			}
			if err := netns.DeleteNamed(n.Name); err != nil {
				errs = append(errs, fmt.Errorf("netnstest: delete netns %s: %w", n.Name, err))
			}
		}
		t.closeErr = errors.Join(errs...)
	})
	return t.closeErr
}

// Node returns the node with role, or nil.
func (t *Topology) Node(role string) *Node { return t.Nodes[role] }

func (t *Topology) build(spec Spec) error {
	for _, ns := range spec.Nodes {
		n := &Node{Role: ns.Role, Name: fmt.Sprintf("clt-%s-%s", t.ID, ns.Role), addrs: map[string]netip.Addr{}, topo: t}
		n.Path = bindMountDir + "/" + n.Name
		h, err := newNamed(n.Name)
		if err != nil {
			return fmt.Errorf("netnstest: create netns %s: %w", n.Name, err)
		}
		n.ns = h
		t.Nodes[ns.Role] = n
		t.order = append(t.order, n)
		if err := n.linkUp("lo"); err != nil {
			return err
		}
		if err := n.configureNode(ns); err != nil {
			return err
		}
	}
	for _, l := range spec.Links {
		if err := t.addLink(l); err != nil {
			return err
		}
	}
	for _, r := range spec.Routes {
		if err := t.Nodes[r.Node].addRoute(r); err != nil {
			return err
		}
	}
	for _, l := range spec.Links {
		for _, e := range []Endpoint{l.A, l.B} {
			if err := t.Nodes[e.Node].waitUp(e.Name, 5*time.Second); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitUp polls until ifname is operationally up, so the first packets of a
// test are not lost while the veth carrier settles.
func (n *Node) waitUp(ifname string, timeout time.Duration) error {
	h, err := n.handle()
	if err != nil {
		return err
	}
	defer h.Close()
	deadline := time.Now().Add(timeout)
	for {
		l, err := h.LinkByName(ifname)
		if err != nil {
			return fmt.Errorf("netnstest: %s: link %s: %w", n.Name, ifname, err)
		}
		if l.Attrs().OperState == netlink.OperUp {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("netnstest: %s: link %s not up after %v (state %s)", n.Name, ifname, timeout, l.Attrs().OperState)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// newNamed creates a named namespace without moving the caller's thread.
func newNamed(name string) (netns.NsHandle, error) {
	type result struct {
		h   netns.NsHandle
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{netns.None(), err}
			return
		}
		defer orig.Close()
		h, err := netns.NewNamed(name)
		if rerr := netns.Set(orig); rerr != nil {
			// Thread stays locked and dies with this goroutine.
			ch <- result{h, errors.Join(err, rerr)}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{h, err}
	}()
	r := <-ch
	return r.h, r.err
}

func (n *Node) handle() (*netlink.Handle, error) {
	h, err := netlink.NewHandleAt(n.ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netnstest: %s: netlink handle: %w", n.Name, err)
	}
	return h, nil
}

func (n *Node) linkUp(ifname string) error {
	h, err := n.handle()
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := h.LinkByName(ifname)
	if err == nil {
		err = h.LinkSetUp(l)
	}
	if err != nil {
		return fmt.Errorf("netnstest: %s: link %s up: %w", n.Name, ifname, err)
	}
	return nil
}

func (n *Node) configureNode(ns NodeSpec) error {
	err := n.Do(func() error {
		s := sysctl.Default
		// No DAD on link-local addresses either: until it finishes,
		// neighbour discovery stalls the first packets for about 2 s.
		if err := s.SetAcceptDAD("default", 0); err != nil {
			return err
		}
		if ns.Forwarding {
			if err := s.SetForwarding("all", true); err != nil {
				return err
			}
		}
		if ns.IOAM == nil {
			return nil
		}
		if err := s.SetNodeID(ns.IOAM.NodeID); err != nil {
			return err
		}
		if err := s.SetWideNodeID(ns.IOAM.WideNodeID); err != nil {
			return err
		}
		if ns.IOAM.MaxHBHOpts != 0 {
			return s.SetMaxHBHOptsNumber(ns.IOAM.MaxHBHOpts)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("netnstest: %s: %w", n.Name, err)
	}
	if ns.IOAM == nil || len(ns.IOAM.Namespaces) == 0 {
		return nil
	}
	c, err := ioam6nl.DialNetNS(n.ns)
	if err != nil {
		return fmt.Errorf("netnstest: %s: %w", n.Name, err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(n.topo.ctx, 5*time.Second)
	defer cancel()
	for _, in := range ns.IOAM.Namespaces {
		if err := c.AddNamespace(ctx, ioam6nl.Namespace{ID: in.ID, Data: in.Data, DataWide: in.DataWide}); err != nil {
			return fmt.Errorf("netnstest: %s: %w", n.Name, err)
		}
	}
	return nil
}

func (t *Topology) addLink(l LinkSpec) error {
	a, b := t.Nodes[l.A.Node], t.Nodes[l.B.Node]
	h, err := a.handle()
	if err != nil {
		return err
	}
	defer h.Close()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: l.A.Name},
		PeerName:      l.B.Name,
		PeerNamespace: netlink.NsFd(int(b.ns)),
	}
	if err := h.LinkAdd(veth); err != nil {
		return fmt.Errorf("netnstest: veth %s/%s -- %s/%s: %w", a.Name, l.A.Name, b.Name, l.B.Name, err)
	}
	for _, e := range []Endpoint{l.A, l.B} {
		if err := t.Nodes[e.Node].setupEndpoint(e); err != nil {
			return err
		}
	}
	return nil
}

func (n *Node) setupEndpoint(e Endpoint) error {
	h, err := n.handle()
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := h.LinkByName(e.Name)
	if err != nil {
		return fmt.Errorf("netnstest: %s: link %s: %w", n.Name, e.Name, err)
	}
	if e.Addr.IsValid() {
		addr := &netlink.Addr{
			IPNet: &net.IPNet{IP: e.Addr.Addr().AsSlice(), Mask: net.CIDRMask(e.Addr.Bits(), 128)},
			Flags: unix.IFA_F_NODAD, // no DAD: usable at once, tests start immediately
		}
		if err := h.AddrAdd(l, addr); err != nil {
			return fmt.Errorf("netnstest: %s: addr %s on %s: %w", n.Name, e.Addr, e.Name, err)
		}
		n.addrs[e.Name] = e.Addr.Addr()
	}
	if e.IOAM != nil {
		err := n.Do(func() error {
			return sysctl.Default.SetInterface(e.Name, sysctl.InterfaceConfig{Enabled: true, ID: e.IOAM.ID, WideID: e.IOAM.WideID})
		})
		if err != nil {
			return fmt.Errorf("netnstest: %s: %w", n.Name, err)
		}
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("netnstest: %s: link %s up: %w", n.Name, e.Name, err)
	}
	return nil
}

func (n *Node) addRoute(r RouteSpec) error {
	h, err := n.handle()
	if err != nil {
		return err
	}
	defer h.Close()
	dst := r.Dst
	if !dst.IsValid() {
		dst = netip.MustParsePrefix("::/0")
	}
	route := &netlink.Route{
		Dst: &net.IPNet{IP: dst.Addr().AsSlice(), Mask: net.CIDRMask(dst.Bits(), 128)},
		Gw:  r.Via.AsSlice(),
	}
	if err := h.RouteAdd(route); err != nil {
		return fmt.Errorf("netnstest: %s: route %s via %s: %w", n.Name, dst, r.Via, err)
	}
	return nil
}

// NetNS returns the namespace handle (owned by the topology; do not close).
func (n *Node) NetNS() netns.NsHandle { return n.ns }

// Addr returns the address configured on interface ifname (zero if none).
func (n *Node) Addr(ifname string) netip.Addr { return n.addrs[ifname] }

// Do runs fn on an OS thread inside the node's namespace (see
// ioam6nl.RunInNetNS). Sockets and /proc/sys files opened in fn belong to
// the node.
func (n *Node) Do(fn func() error) error { return ioam6nl.RunInNetNS(n.ns, fn) }

// Listen opens a listener inside the node (e.g. "tcp6", "[fd00:3::2]:0").
func (n *Node) Listen(network, address string) (net.Listener, error) {
	var ln net.Listener
	err := n.Do(func() (err error) {
		ln, err = net.Listen(network, address)
		return err
	})
	return ln, err
}

// ListenPacket opens a packet socket inside the node.
func (n *Node) ListenPacket(network, address string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := n.Do(func() (err error) {
		pc, err = net.ListenPacket(network, address)
		return err
	})
	return pc, err
}

// DialContext dials from inside the node with d (nil: a zero net.Dialer).
// It fits http.Transport.DialContext:
//
//	tr.DialContext = func(ctx context.Context, nw, addr string) (net.Conn, error) {
//		return node.DialContext(ctx, dialer, nw, addr)
//	}
func (n *Node) DialContext(ctx context.Context, d *net.Dialer, network, address string) (net.Conn, error) {
	if d == nil {
		d = &net.Dialer{}
	}
	var c net.Conn
	err := n.Do(func() (err error) {
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// Command returns a command that runs name inside the node through
// `ip netns exec`. The topology kills it on Close if it is still running.
func (n *Node) Command(name string, args ...string) *exec.Cmd {
	return exec.CommandContext(n.topo.ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// IOAM opens an ioam6nl configuration connection inside the node.
func (n *Node) IOAM() (*ioam6nl.Conn, error) { return ioam6nl.DialNetNS(n.ns) }

// Subscribe opens an ioam6_events subscriber inside the node.
func (n *Node) Subscribe(cfg ioam6nl.SubscriberConfig) (*ioam6nl.Subscriber, error) {
	return ioam6nl.SubscribeNetNS(n.ns, cfg)
}
