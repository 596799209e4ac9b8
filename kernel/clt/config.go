package clt

import (
	"errors"
	"fmt"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// Config configures the IOAM header put on application packets.
type Config struct {
	// Namespace is the IOAM namespace id; routers must know it
	// (ip ioam namespace add).
	Namespace uint16 `yaml:"namespace"`
	// HopSlots is the number of node entries pre-allocated for transit
	// nodes. Hops beyond it are lost (overflow) but the IDs survive.
	HopSlots int `yaml:"hop_slots"`
	// TraceType is the 24-bit IOAM trace type asked from transit nodes
	// (0xF00000: hop limit + node id, interface ids, timestamp seconds and
	// fraction). The oss carrier adds bit 22 (0x000002) itself.
	TraceType ioam6.TraceType `yaml:"trace_type"`
	// Carrier is where the IDs travel: "oss" (default, RFC 9197 Opaque State
	// Snapshot of the sender's own entry), "tail" or "clt-v1".
	Carrier ioam6.Carrier `yaml:"carrier"`
	// SchemaID marks the IDs in the oss snapshot (24 bits, 0: 0x000C17).
	SchemaID uint32 `yaml:"schema_id"`
	// NodeID is the sender's node id in its own entry (oss carrier, 24
	// bits). Nil: read net.ipv6.ioam6_id at New (0xFFFFFF if unreadable).
	NodeID *uint32 `yaml:"node_id"`
	// NodeIDWide is the sender's wide node id in its own entry (oss carrier,
	// trace types with bit 8; 56 bits). Nil: read net.ipv6.ioam6_id_wide at
	// New (0xFFFFFFFFFFFFFF if unreadable).
	NodeIDWide *uint64 `yaml:"node_id_wide"`
	// TagUnsampled also tags spans that are not sampled. By default only
	// sampled spans are tagged: IOAM records of unsampled spans have no span
	// to join, and each tagged request costs a setsockopt.
	TagUnsampled bool `yaml:"tag_unsampled"`
	// Strict turns skipped options (no CAP_NET_RAW, IPv4 peer, kernel
	// refusal) into errors instead of sending without the option.
	Strict bool `yaml:"strict"`
}

// Defaults.
const (
	DefaultNamespace = 123
	DefaultHopSlots  = 6
	DefaultTraceType = ioam6.BitHopLimitNodeID | ioam6.BitIfIDs | ioam6.BitTimestampSec | ioam6.BitTimestampFrac // 0xF00000
)

// DefaultConfig returns namespace 123, 6 slots, trace type 0xF00000 and the
// oss carrier with the default schema.
func DefaultConfig() Config {
	return Config{
		Namespace: DefaultNamespace,
		HopSlots:  DefaultHopSlots,
		TraceType: DefaultTraceType,
		Carrier:   ioam6.CarrierOSS,
	}
}

// Validate reports every invalid field, naming its YAML key.
func (c Config) Validate() error {
	var errs []error
	if c.HopSlots < 0 {
		errs = append(errs, fmt.Errorf("hop_slots must be >= 0, got %d", c.HopSlots))
	}
	if c.TraceType > ioam6.TraceTypeMask || c.TraceType&ioam6.BitReserved != 0 {
		errs = append(errs, fmt.Errorf("trace_type %#06x must use only bits 0-22 (mask 0xfffffe)", uint32(c.TraceType)))
	}
	if c.TraceType&ioam6.BitOpaqueStateSnapshot != 0 && c.Carrier != ioam6.CarrierOSS {
		errs = append(errs, fmt.Errorf("trace_type %#06x sets bit 22, which only carrier \"oss\" uses", uint32(c.TraceType)))
	}
	cc := ioam6.CarrierConfig{Carrier: c.Carrier, SchemaID: c.SchemaID}
	if err := cc.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("carrier/schema_id: %w", err))
	}
	if c.NodeID != nil && *c.NodeID > ioam6.NodeIDUnavailable {
		errs = append(errs, fmt.Errorf("node_id %#x exceeds 24 bits", *c.NodeID))
	}
	if c.NodeIDWide != nil && *c.NodeIDWide > ioam6.WideNodeIDUnavailable {
		errs = append(errs, fmt.Errorf("node_id_wide %#x exceeds 56 bits", *c.NodeIDWide))
	}
	if len(errs) == 0 {
		// The header must fit 255 bytes of option data.
		if _, err := c.spec().Len(); err != nil {
			errs = append(errs, fmt.Errorf("hop_slots %d with trace_type %#06x and carrier %s: %w",
				c.HopSlots, uint32(c.TraceType), c.Carrier, err))
		}
	}
	return errors.Join(errs...)
}

func (c Config) spec() ioam6.HBHSpec {
	return ioam6.HBHSpec{
		NamespaceID: c.Namespace,
		Type:        c.TraceType,
		Slots:       c.HopSlots,
		Carrier:     ioam6.CarrierConfig{Carrier: c.Carrier, SchemaID: c.SchemaID},
	}
}
