package bpfinsert

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
	"github.com/cross-layer-telemetry/clt/kernel/sysctl"
)

//go:embed bpf/insert_bpfel.o
var object []byte

// loadSpec parses the committed object.
func loadSpec() (*ebpf.CollectionSpec, error) {
	spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(object))
	if err != nil {
		return nil, fmt.Errorf("bpfinsert: parse object: %w", err)
	}
	return spec, nil
}

// Inserter owns the loaded programs, their maps and their tcx links.
type Inserter struct {
	cfg    Config
	logger *slog.Logger
	coll   *ebpf.Collection
	ifaces []Interface

	mu     sync.Mutex
	links  []link.Link
	pinned string // socket map pin path, "" when not pinned
	closed bool
}

// Interface is one attached interface.
type Interface struct {
	Name      string
	Index     int
	MTU       int
	HeaderLen int // bytes added to each tagged packet (128-bit trace IDs)
	MSSMax    int // clamp applied to SYN-ACKs, 0 when off
}

// New validates cfg, loads the programs, fills their maps and attaches
// them to cfg.Interfaces of the calling thread's network namespace (egress
// tagging; ingress MSS clamping when ClampMSS). On error nothing stays
// attached. The node and interface ids of the sender's own entry are read
// from the sysctls of that namespace.
func New(cfg Config, logger *slog.Logger) (*Inserter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bpfinsert: config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	in := &Inserter{cfg: cfg, logger: logger}
	if err := in.load(); err != nil {
		in.Close()
		return nil, err
	}
	// Pinned before attaching: once a program runs, its map is reachable.
	if cfg.SocketMapPin != "" {
		if err := in.pin(cfg.SocketMapPin); err != nil {
			in.Close()
			return nil, err
		}
	}
	for _, name := range cfg.Interfaces {
		if err := in.attach(name); err != nil {
			in.Close()
			return nil, err
		}
	}
	logger.Info("bpf inserter attached", "interfaces", cfg.Interfaces, "prefixes", cfg.Prefixes,
		"ports", cfg.Ports, "namespace", cfg.Namespace, "header_bytes", in.ifaces[0].HeaderLen, "socket_map_pin", cfg.SocketMapPin)
	return in, nil
}

func (in *Inserter) load() error {
	spec, err := loadSpec()
	if err != nil {
		return err
	}
	spec.Maps["clt_socks"].MaxEntries = uint32(in.cfg.MaxSockets)
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return fmt.Errorf("bpfinsert: load: %w (verifier: %v)", err, ve)
		}
		return fmt.Errorf("bpfinsert: load: %w", err)
	}
	in.coll = coll
	for _, s := range in.cfg.Prefixes {
		p, _ := parsePrefix(s) // validated
		k := bpfLPMKey{PrefixLen: uint32(p.Bits()), Addr: p.Addr().As16()}
		if err := coll.Maps["clt_prefixes"].Put(&k, uint8(1)); err != nil {
			return fmt.Errorf("bpfinsert: prefix %s: %w", s, err)
		}
	}
	ports := in.cfg.Ports
	if len(ports) == 0 {
		ports = []uint16{0} // any
	}
	for _, p := range ports {
		if err := coll.Maps["clt_ports"].Put(p, uint8(1)); err != nil {
			return fmt.Errorf("bpfinsert: port %d: %w", p, err)
		}
	}
	return nil
}

// ifcfg builds the per-interface configuration the program reads.
func (in *Inserter) ifcfg(name string, mtu int) (bpfIfcfg, error) {
	var c bpfIfcfg
	sc := sysctl.Default
	id := uint32(ioam6.NodeIDUnavailable)
	if in.cfg.NodeID != nil {
		id = *in.cfg.NodeID
	} else if v, err := sc.NodeID(); err == nil {
		id = v
	}
	wide := uint64(ioam6.WideNodeIDUnavailable)
	if in.cfg.NodeIDWide != nil {
		wide = *in.cfg.NodeIDWide
	} else if v, err := sc.WideNodeID(); err == nil {
		wide = v
	}
	eg, egWide := uint16(ioam6.IfIDUnavailable), uint32(ioam6.WideIfIDUnavailable)
	if ic, err := sc.Interface(name); err == nil {
		eg, egWide = ic.ID, ic.WideID
	}
	spec := in.cfg.spec(ownEntry(id, wide, eg, egWide))
	for i, short := range []bool{false, true} {
		t, err := buildTemplate(spec, short)
		if err != nil {
			return c, err
		}
		c.Tmpl[i] = t
	}
	off, err := clockOffset()
	if err != nil {
		return c, err
	}
	c.ClockOffNs = off
	c.MTU = uint32(mtu)
	c.RateMax = uint32(in.cfg.MaxRequestsPerSecond)
	if in.cfg.TagUnsampled {
		c.Flags |= cfgTagUnsampl
	}
	if in.cfg.ClampMSS {
		// IPv6 40 + TCP 20 + the header: a peer's full segment then fits
		// our MTU once we add the header to our own.
		m := mtu - 60 - int(c.Tmpl[0].Len)
		if m < 536 {
			return c, fmt.Errorf("bpfinsert: %s: mtu %d leaves an MSS of %d with a %d-byte header", name, mtu, m, c.Tmpl[0].Len)
		}
		c.MSSMax = uint16(m)
	}
	return c, nil
}

// clockOffset is CLOCK_REALTIME − CLOCK_TAI: the program reads TAI
// (bpf_ktime_get_tai_ns) and writes real time, as Linux nodes do.
func clockOffset() (int64, error) {
	var rt, tai unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_REALTIME, &rt); err != nil {
		return 0, fmt.Errorf("bpfinsert: clock: %w", err)
	}
	if err := unix.ClockGettime(unix.CLOCK_TAI, &tai); err != nil {
		return 0, fmt.Errorf("bpfinsert: clock: %w", err)
	}
	d := rt.Nano() - tai.Nano()
	// Rounded to the second: the offset is a whole number of leap seconds.
	return (d + sign(d)*500_000_000) / 1_000_000_000 * 1_000_000_000, nil
}

func sign(v int64) int64 {
	if v < 0 {
		return -1
	}
	return 1
}

// configure writes the interface's entry of the config map.
func (in *Inserter) configure(name string) (*net.Interface, bpfIfcfg, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, bpfIfcfg{}, fmt.Errorf("bpfinsert: interface %s: %w", name, err)
	}
	c, err := in.ifcfg(name, ifi.MTU)
	if err != nil {
		return nil, c, err
	}
	if err := in.coll.Maps["clt_ifcfg"].Put(uint32(ifi.Index), &c); err != nil {
		return nil, c, fmt.Errorf("bpfinsert: %s: config map: %w", name, err)
	}
	return ifi, c, nil
}

func (in *Inserter) attach(name string) error {
	ifi, c, err := in.configure(name)
	if err != nil {
		return err
	}
	eg, err := link.AttachTCX(link.TCXOptions{Interface: ifi.Index, Program: in.coll.Programs["clt_egress"], Attach: ebpf.AttachTCXEgress})
	if err != nil {
		return fmt.Errorf("bpfinsert: %s: attach tcx egress: %w", name, err)
	}
	in.mu.Lock()
	in.links = append(in.links, eg)
	in.mu.Unlock()
	if in.cfg.ClampMSS {
		ing, err := link.AttachTCX(link.TCXOptions{Interface: ifi.Index, Program: in.coll.Programs["clt_ingress"], Attach: ebpf.AttachTCXIngress})
		if err != nil {
			return fmt.Errorf("bpfinsert: %s: attach tcx ingress: %w", name, err)
		}
		in.mu.Lock()
		in.links = append(in.links, ing)
		in.mu.Unlock()
	}
	in.ifaces = append(in.ifaces, Interface{Name: name, Index: ifi.Index, MTU: ifi.MTU, HeaderLen: int(c.Tmpl[0].Len), MSSMax: int(c.MSSMax)})
	return nil
}

// Interfaces returns the attached interfaces.
func (in *Inserter) Interfaces() []Interface { return append([]Interface(nil), in.ifaces...) }

// SetSocket sets the IDs of a socket (its SO_COOKIE): the explicit API for
// TLS and non-HTTP protocols. They hold until the next SetSocket or
// ClearSocket; meanwhile the program parses none of the socket's requests.
func (in *Inserter) SetSocket(cookie uint64, ids ioam6.IDs) error {
	s := sockValue(ids)
	if err := in.coll.Maps["clt_socks"].Put(cookie, &s); err != nil {
		return fmt.Errorf("bpfinsert: set socket: %w", err)
	}
	return nil
}

// ClearSocket removes a socket's IDs; a socket without state is fine.
func (in *Inserter) ClearSocket(cookie uint64) error {
	if err := in.coll.Maps["clt_socks"].Delete(cookie); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("bpfinsert: clear socket: %w", err)
	}
	return nil
}

// Stats sums the per-CPU counters.
func (in *Inserter) Stats() (Stats, error) {
	var v [numCounters]uint64
	m := in.coll.Maps["clt_stats"]
	for i := range v {
		var per []uint64
		if err := m.Lookup(uint32(i), &per); err != nil {
			return Stats{}, fmt.Errorf("bpfinsert: stats: %w", err)
		}
		for _, x := range per {
			v[i] += x
		}
	}
	return statsFrom(v), nil
}

// Close detaches every program and frees the maps. It is idempotent.
func (in *Inserter) Close() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return nil
	}
	in.closed = true
	var errs []error
	if err := in.unpin(); err != nil {
		errs = append(errs, err)
	}
	for _, l := range in.links {
		if err := l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("bpfinsert: detach: %w", err))
		}
	}
	in.links = nil
	if in.coll != nil {
		in.coll.Close()
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	in.logger.Info("bpf inserter detached", "interfaces", in.cfg.Interfaces)
	return nil
}

// Check reports whether this kernel and process can run the inserter: the
// object loads (BPF, the verifier, the helpers it needs), and tcx links
// exist (probed by attaching the program to the loopback device of the
// calling thread's namespace for the duration of the probe; with no
// configuration for it the program lets every packet pass).
func Check() error {
	spec, err := loadSpec()
	if err != nil {
		return err
	}
	spec.Maps["clt_socks"].MaxEntries = 16
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return fmt.Errorf("bpfinsert: load (needs CAP_BPF and CAP_NET_ADMIN, Linux 6.6+): %w", err)
	}
	defer coll.Close()
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		return fmt.Errorf("bpfinsert: probe: %w", err)
	}
	l, err := link.AttachTCX(link.TCXOptions{Interface: lo.Index, Program: coll.Programs["clt_egress"], Attach: ebpf.AttachTCXEgress})
	if err != nil {
		return fmt.Errorf("bpfinsert: tcx attach (Linux 6.6+ with CONFIG_NET_XGRESS): %w", err)
	}
	return l.Close()
}
