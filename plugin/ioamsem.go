package plugin

import (
	"fmt"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// Field semantics come from kernel/ioam6 (the one home of IOAM wire
// semantics); these adapt them to the record's plain integers.

func u32Available(v uint32) bool  { return v != ioam6.U32Unavailable }
func ifIDAvailable(v uint32) bool { return v != ioam6.IfIDUnavailable }

func transitAvailable(v uint32) bool { _, ok := transitDelayNs(v); return ok }

// transitDelayNs is a transit delay in ns; ok false when the overflow bit
// (RFC 9197 §4.4.2.5) or "not available" is set.
func transitDelayNs(v uint32) (uint32, bool) { return v, v&(1<<31) == 0 }

// timestampUnixNano reads a hop timestamp as Linux writes it.
func timestampUnixNano(f ioam6.TraceType, sec, frac uint32) (uint64, bool) {
	n := ioam6.Node{Fields: f, TimestampSec: sec, TimestampFrac: frac}
	t, ok := n.Timestamp()
	if !ok || sec == ioam6.U32Unavailable {
		return 0, false
	}
	return uint64(t.UnixNano()), true
}

func snapshotAvailable(schema uint32, dataLen int) bool {
	return !(schema == ioam6.SchemaIDNone && dataLen == 0)
}

func formatWideID(id uint64) string   { return fmt.Sprintf("0x%x", id) }
func formatWideIfID(id uint64) string { return fmt.Sprintf("0x%x", id) }
func formatSchemaID(id uint32) string { return fmt.Sprintf("0x%06x", id) }
func formatData32(v uint32) string    { return fmt.Sprintf("0x%08x", v) }
func formatData64(v uint64) string    { return fmt.Sprintf("0x%016x", v) }
