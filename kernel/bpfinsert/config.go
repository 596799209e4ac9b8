package bpfinsert

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
	"github.com/cross-layer-telemetry/clt/kernel/sysctl"
)

// Config configures an Inserter. YAML keys are those of clt-agent's
// `insert:` block; the IOAM keys are named as in kernel/clt.Config.
type Config struct {
	// Interfaces are the egress interfaces the program is attached to
	// (Ethernet-framed devices), at most 64.
	Interfaces []string `yaml:"interfaces"`
	// Prefixes are the IPv6 destination prefixes whose traffic is tagged,
	// at most 64 (e.g. "fd00:3::/64", "::/0" for every destination).
	Prefixes []string `yaml:"prefixes"`
	// Ports are the destination TCP ports tagged, at most 64; empty means
	// every port.
	Ports []uint16 `yaml:"ports"`
	// Namespace is the IOAM namespace id; routers must know it.
	Namespace uint16 `yaml:"namespace"`
	// HopSlots is the number of node entries pre-allocated for transit nodes.
	HopSlots int `yaml:"hop_slots"`
	// TraceType is the trace type asked from transit nodes (bits 0-21).
	TraceType ioam6.TraceType `yaml:"trace_type"`
	// Carrier is where the IDs travel: oss (default) or tail.
	Carrier ioam6.Carrier `yaml:"carrier"`
	// SchemaID marks the IDs in the oss snapshot; 0 means 0x000C17.
	SchemaID uint32 `yaml:"schema_id"`
	// NodeID and NodeIDWide override net.ipv6.ioam6_id / ioam6_id_wide in
	// the sender's own entry (oss).
	NodeID     *uint32 `yaml:"node_id"`
	NodeIDWide *uint64 `yaml:"node_id_wide"`
	// TagUnsampled also tags requests whose traceparent has the sampled flag
	// clear (default: only sampled requests are tagged).
	TagUnsampled bool `yaml:"tag_unsampled"`
	// ClampMSS lowers the MSS of the configured servers' SYN-ACKs by the
	// header length so full-size segments still fit the MTU (default true).
	ClampMSS bool `yaml:"clamp_mss"`
	// MaxRequestsPerSecond caps the requests tagged per second on this host
	// (all interfaces and CPUs, fixed one-second windows, approximate at
	// their edges); further requests are sent untagged and counted. 0 (the
	// default) means no cap.
	MaxRequestsPerSecond int `yaml:"max_requests_per_second"`
	// SocketMapPin, when set, pins the per-socket map there (on a bpf
	// filesystem; DefaultSocketMapPin is the documented place) so that
	// applications set their sockets' IDs through it (OpenSocketMap,
	// kernel/clt Settings.SocketMap). A stale pin is replaced at start; the
	// pin is removed at stop.
	SocketMapPin string `yaml:"socket_map_pin"`
	// MaxSockets bounds the per-socket state (LRU; the least recently used
	// socket's state is evicted first).
	MaxSockets int `yaml:"max_sockets"`
}

// Defaults.
const (
	DefaultNamespace  = 123
	DefaultHopSlots   = 6
	DefaultTraceType  = ioam6.BitHopLimitNodeID | ioam6.BitIfIDs | ioam6.BitTimestampSec | ioam6.BitTimestampFrac // 0xF00000
	DefaultMaxSockets = 65536
	maxMaxSockets     = 1 << 22
)

// DefaultConfig returns the defaults of kernel/clt (namespace 123, 6 slots,
// trace type 0xF00000, oss), MSS clamping on, 65536 sockets. Interfaces and
// prefixes have no default.
func DefaultConfig() Config {
	return Config{
		Namespace: DefaultNamespace, HopSlots: DefaultHopSlots, TraceType: DefaultTraceType,
		Carrier: ioam6.CarrierOSS, ClampMSS: true, MaxSockets: DefaultMaxSockets,
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if len(c.Interfaces) == 0 {
		errs = append(errs, errors.New("interfaces: at least one is required"))
	}
	if len(c.Interfaces) > maxIfaces {
		errs = append(errs, fmt.Errorf("interfaces: %d exceed %d", len(c.Interfaces), maxIfaces))
	}
	seen := map[string]bool{}
	for i, n := range c.Interfaces {
		if err := sysctl.CheckInterfaceName(n); err != nil {
			errs = append(errs, fmt.Errorf("interfaces[%d]: %w", i, err))
		}
		if seen[n] {
			errs = append(errs, fmt.Errorf("interfaces[%d]: %q is duplicated", i, n))
		}
		seen[n] = true
	}
	if len(c.Prefixes) == 0 {
		errs = append(errs, errors.New("prefixes: at least one is required (\"::/0\" for every destination)"))
	}
	if len(c.Prefixes) > maxPrefixes {
		errs = append(errs, fmt.Errorf("prefixes: %d exceed %d", len(c.Prefixes), maxPrefixes))
	}
	for i, p := range c.Prefixes {
		if _, err := parsePrefix(p); err != nil {
			errs = append(errs, fmt.Errorf("prefixes[%d]: %w", i, err))
		}
	}
	if len(c.Ports) > maxPorts {
		errs = append(errs, fmt.Errorf("ports: %d exceed %d", len(c.Ports), maxPorts))
	}
	for i, p := range c.Ports {
		if p == 0 {
			errs = append(errs, fmt.Errorf("ports[%d]: 0 is not a port (leave ports empty for every port)", i))
		}
	}
	if c.Carrier != ioam6.CarrierOSS && c.Carrier != ioam6.CarrierTail {
		errs = append(errs, fmt.Errorf("carrier %q: only oss and tail can be inserted", c.Carrier))
	}
	if c.TraceType&ioam6.BitOpaqueStateSnapshot != 0 {
		errs = append(errs, fmt.Errorf("trace_type %#06x sets bit 22, which the oss carrier adds itself", uint32(c.TraceType)))
	}
	if _, err := c.spec(ioam6.Node{}).Len(); err != nil {
		errs = append(errs, fmt.Errorf("namespace/hop_slots/trace_type/carrier: %w", err))
	}
	if c.NodeID != nil && *c.NodeID > sysctl.DefaultNodeID {
		errs = append(errs, fmt.Errorf("node_id %#x exceeds 24 bits", *c.NodeID))
	}
	if c.NodeIDWide != nil && *c.NodeIDWide > sysctl.DefaultWideNodeID {
		errs = append(errs, fmt.Errorf("node_id_wide %#x exceeds 56 bits", *c.NodeIDWide))
	}
	if c.MaxRequestsPerSecond < 0 || c.MaxRequestsPerSecond > 1<<30 {
		errs = append(errs, fmt.Errorf("max_requests_per_second %d must be in 0..%d", c.MaxRequestsPerSecond, 1<<30))
	}
	if c.SocketMapPin != "" && (!filepath.IsAbs(c.SocketMapPin) || filepath.Clean(c.SocketMapPin) != c.SocketMapPin) {
		errs = append(errs, fmt.Errorf("socket_map_pin %q must be a clean absolute path (e.g. %s)", c.SocketMapPin, "/sys/fs/bpf/clt/sockets"))
	}
	if c.MaxSockets < 1 || c.MaxSockets > maxMaxSockets {
		errs = append(errs, fmt.Errorf("max_sockets %d must be in 1..%d", c.MaxSockets, maxMaxSockets))
	}
	return errors.Join(errs...)
}

func parsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, fmt.Errorf("bad prefix: %w", err)
	}
	if !p.Addr().Is6() || p.Addr().Is4In6() {
		return p, fmt.Errorf("%s is not an IPv6 prefix", s)
	}
	return p.Masked(), nil
}

// spec is the header the program inserts, with own as the sender's entry.
func (c Config) spec(own ioam6.Node) ioam6.HBHSpec {
	return ioam6.HBHSpec{
		NextHeader:  ipprotoTCP,
		NamespaceID: c.Namespace,
		Type:        c.TraceType,
		Slots:       c.HopSlots,
		Carrier:     ioam6.CarrierConfig{Carrier: c.Carrier, SchemaID: c.SchemaID},
		Own:         own,
	}
}

const ipprotoTCP = 6
