package ioam6

import (
	"encoding"
	"fmt"
)

// Carrier says where the trace context (trace and span IDs) travels in the
// IOAM option. It is configured per IOAM namespace and never guessed from the
// bytes. The zero value is CarrierOSS.
type Carrier uint8

// Carriers.
const (
	// CarrierOSS: the IDs are the Opaque State Snapshot (trace-type bit 22) of
	// the encapsulating host's own node entry in the last pre-allocated slot:
	// Length 6 (128-bit trace ID) or 4 (64-bit), Schema ID, trace ID, span ID.
	CarrierOSS Carrier = iota
	// CarrierTail: 24 bytes of IDs (128-bit trace ID, span ID) follow the
	// pre-allocated area. Works on Linux, outside RFC 9197.
	CarrierTail
	// CarrierCLTv1: the original CLT layout, 24 bytes of IDs right after the
	// trace header and the area after them. Stock kernels overwrite the IDs;
	// only CLT-patched kernels keep them.
	CarrierCLTv1
)

// DefaultSchemaID is the Opaque State Snapshot schema id that marks CLT's IDs
// in the oss carrier.
const DefaultSchemaID = 0x000C17

// IDLen is the size of the IDs on the wire with a 128-bit trace ID (trace ID
// then span ID); ShortIDLen with a 64-bit trace ID (oss carrier only).
const (
	IDLen      = 24
	ShortIDLen = 16
)

var carrierNames = [...]string{CarrierOSS: "oss", CarrierTail: "tail", CarrierCLTv1: "clt-v1"}

var (
	_ encoding.TextMarshaler   = Carrier(0)
	_ encoding.TextUnmarshaler = (*Carrier)(nil)
)

// String returns "oss", "tail" or "clt-v1" (the configuration names).
func (c Carrier) String() string {
	if int(c) < len(carrierNames) {
		return carrierNames[c]
	}
	return fmt.Sprintf("carrier(%d)", uint8(c))
}

// ParseCarrier parses a configuration name: "oss", "tail" or "clt-v1".
func ParseCarrier(s string) (Carrier, error) {
	for i, n := range carrierNames {
		if s == n {
			return Carrier(i), nil
		}
	}
	return 0, fmt.Errorf("ioam6: unknown carrier %q (want oss, tail or clt-v1)", s)
}

// MarshalText implements encoding.TextMarshaler (YAML/JSON configuration).
func (c Carrier) MarshalText() ([]byte, error) {
	if int(c) >= len(carrierNames) {
		return nil, fmt.Errorf("ioam6: unknown carrier %d", uint8(c))
	}
	return []byte(carrierNames[c]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler using ParseCarrier.
func (c *Carrier) UnmarshalText(b []byte) error {
	v, err := ParseCarrier(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// IDs is the trace context carried in the option, big endian on the wire.
type IDs struct {
	TraceID [16]byte
	SpanID  [8]byte
	// Short marks a 64-bit trace ID: TraceID[:8] is zero and the oss carrier
	// sends only TraceID[8:] (snapshot Length 4 instead of 6). The tail and
	// clt-v1 carriers always send 16 bytes and decode with Short false.
	Short bool
}

// IsZero reports whether both IDs are all zero (no trace context).
func (ids IDs) IsZero() bool { return ids.TraceID == [16]byte{} && ids.SpanID == [8]byte{} }

// wireLen returns the number of ID bytes the carrier puts on the wire.
func (ids IDs) wireLen(c Carrier) int {
	if ids.Short && c == CarrierOSS {
		return ShortIDLen
	}
	return IDLen
}

// CarrierConfig is the per-namespace choice of carrier.
type CarrierConfig struct {
	Carrier Carrier
	// SchemaID marks the IDs in the oss carrier's snapshot (24 bits).
	// Zero means DefaultSchemaID.
	SchemaID uint32
}

// Schema returns the effective schema id: SchemaID, or DefaultSchemaID when
// it is zero.
func (c CarrierConfig) Schema() uint32 {
	if c.SchemaID == 0 {
		return DefaultSchemaID
	}
	return c.SchemaID
}

// Validate reports an unknown carrier or a schema id over 24 bits.
func (c CarrierConfig) Validate() error {
	if int(c.Carrier) >= len(carrierNames) {
		return specErr("carrier config: unknown carrier %d", uint8(c.Carrier))
	}
	if c.SchemaID > schemaIDMask {
		return specErr("carrier config: schema id %#x exceeds 24 bits", c.SchemaID)
	}
	return nil
}
