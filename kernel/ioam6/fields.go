package ioam6

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Field semantics shared by every component (agent, storage, demo): which
// values are measurements, how the timestamp reads, and the one display format
// of each identifier. RFC 9197 §4.4.2 makes all ones the "not available" value
// of a field a node cannot fill; Linux (net/ipv6/ioam6.c) writes exactly those
// (IOAM6_U32_UNAVAILABLE, IOAM6_U64_UNAVAILABLE, IOAM6_DEFAULT_IF_ID, …).

// transitOverflowBit is the most significant bit of the transit delay: set
// when the delay overflowed its 31 bits (RFC 9197 §4.4.2.5).
const transitOverflowBit = 1 << 31

// microsPerSecond bounds a Linux timestamp fraction (RFC 9197 §5.3 POSIX
// format as Linux writes it: microseconds).
const microsPerSecond = 1_000_000

// NodeIDAvailable reports whether a short node id (bit 0) names a node:
// 0xFFFFFF is the kernel's default for a node without net.ipv6.ioam6_id.
func NodeIDAvailable(id uint32) bool { return id&nodeIDMask != NodeIDUnavailable }

// WideNodeIDAvailable is [NodeIDAvailable] for the 56-bit wide id (bit 8).
func WideNodeIDAvailable(id uint64) bool { return id&wideNodeIDMask != WideNodeIDUnavailable }

// IfIDAvailable reports whether a short interface id (bit 1) is a value:
// 0xFFFF is what Linux writes for the egress of the destination and for
// interfaces without ioam6_id.
func IfIDAvailable(id uint16) bool { return id != IfIDUnavailable }

// WideIfIDAvailable is [IfIDAvailable] for the 32-bit wide ids (bit 9).
func WideIfIDAvailable(id uint32) bool { return id != WideIfIDUnavailable }

// U32Available reports whether a 4-octet data field (queue depth, namespace
// data, checksum complement, buffer occupancy, undefined bits) holds a value.
func U32Available(v uint32) bool { return v != U32Unavailable }

// U64Available is [U32Available] for the 8-octet wide namespace data.
func U64Available(v uint64) bool { return v != U64Unavailable }

// TransitDelayNs returns the transit delay in nanoseconds; ok is false for the
// all-ones "not available" value and for a delay with its overflow bit set
// (RFC 9197 §4.4.2.5): neither is a delay.
func TransitDelayNs(v uint32) (ns uint32, ok bool) {
	if v == U32Unavailable || v&transitOverflowBit != 0 {
		return 0, false
	}
	return v, true
}

// SnapshotAvailable reports whether an Opaque State Snapshot carries data: Linux
// writes Length 0 and Schema ID 0xFFFFFF ([SchemaIDNone]) for a namespace
// without schema, which is "not available", not an empty snapshot.
func SnapshotAvailable(schemaID uint32, words int) bool {
	return schemaID&schemaIDMask != SchemaIDNone || words != 0
}

// TimestampUnixNano returns the node timestamp of an entry with the given
// fields as Unix nanoseconds, with the rule of [Node.Timestamp]: bit 2
// (seconds) is required; the fraction (bit 3) is Linux's microseconds and
// taken as zero when absent; a fraction ≥ 10⁶ is not a microsecond count
// (PTP or NTP format) and gives ok false, as does an all-ones seconds field.
func TimestampUnixNano(fields TraceType, sec, frac uint32) (ns int64, ok bool) {
	if fields&BitTimestampSec == 0 || sec == U32Unavailable {
		return 0, false
	}
	var us uint32
	if fields&BitTimestampFrac != 0 {
		if us = frac; us >= microsPerSecond {
			return 0, false
		}
	}
	return int64(sec)*1e9 + int64(us)*1e3, true
}

// FormatNodeID is the one display format of a short node id: decimal, as in
// net.ipv6.ioam6_id and iproute2.
func FormatNodeID(id uint32) string { return strconv.FormatUint(uint64(id&nodeIDMask), 10) }

// FormatWideID is the one display format of the 56-bit wide node id and of
// the other wide identifiers: "0x" and lowercase hex, as network tools
// (Wireshark, iproute2 ioam6_id_wide) show them.
func FormatWideID(id uint64) string { return "0x" + strconv.FormatUint(id, 16) }

// FormatSchemaID is the one display format of a 24-bit snapshot schema id:
// six hex digits like [TraceType.String], e.g. "0x000c17".
func FormatSchemaID(id uint32) string {
	s := strconv.FormatUint(uint64(id&schemaIDMask), 16)
	return "0x" + strings.Repeat("0", max(0, 6-len(s))) + s
}

// ErrNodeIDSyntax is returned by [ParseNodeID] for text that is not a node id.
var ErrNodeIDSyntax = errors.New("ioam6: not a node id")

// ParseNodeID reads a node id as a user types it: decimal ("3") or hex with a
// 0x prefix ("0x3", the [FormatWideID] form). The value must fit 56 bits
// (the wide id); callers compare it with short ids too.
func ParseNodeID(s string) (uint64, error) {
	digits, base := strings.TrimSpace(s), 10
	if rest, ok := strings.CutPrefix(strings.ToLower(digits), "0x"); ok {
		digits, base = rest, 16
	}
	v, err := strconv.ParseUint(digits, base, 56)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", ErrNodeIDSyntax, s)
	}
	return v, nil
}
