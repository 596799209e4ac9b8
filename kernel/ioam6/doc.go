// Package ioam6 encodes and decodes the In-situ OAM (IOAM) wire format that
// Cross Layer Telemetry (CLT) carries in IPv6 Hop-by-Hop options.
//
// It is pure: no I/O, no logging, no goroutines, standard library only. Every
// function is safe for concurrent use; values are not synchronised.
//
// # Standards
//
//   - RFC 9197 §4.4: the Pre-allocated Trace Option. §4.4.1 is the 8-byte trace
//     header ([TraceHeader]), §4.4.2 the node data fields ([Node], one field per
//     trace-type bit, §4.4.2.1–§4.4.2.13 including the Opaque State Snapshot).
//   - RFC 9486 §3 (including its 4n alignment rule): IOAM carried in an IPv6
//     Hop-by-Hop option of type 0x31 ([IPv6OptionIOAM]): Option Type, Opt Data
//     Len, Reserved, IOAM Option-Type, then the trace.
//   - RFC 8200 §4.2: Hop-by-Hop options, TLV encoding, Pad1 and PadN.
//   - Linux include/uapi/linux/ioam6.h (struct ioam6_hdr, struct
//     ioam6_trace_hdr) and include/uapi/linux/ioam6_genl.h (the IOAM6 generic
//     netlink family and its ioam6_events multicast group; see [EventAttrs]).
//
// # Carriers
//
// IOAM has no field for a trace context. CLT puts the trace and span IDs in one
// of three places, chosen per IOAM namespace by configuration ([CarrierConfig]),
// never guessed from the bytes:
//
//   - [CarrierOSS] (default): the encapsulating host sets trace-type bit 22 and
//     writes its own node entry into the last pre-allocated slot; that entry's
//     Opaque State Snapshot holds the IDs (schema [DefaultSchemaID]). Stock Linux
//     kernels write only below RemainingLen, so the IDs survive every hop and
//     overflow, appear in ioam6_events, and the option conforms to RFC 9197.
//   - [CarrierTail]: the IDs (24 bytes) follow the pre-allocated area.
//   - [CarrierCLTv1]: the original CLT research layout, IDs right after the
//     trace header. Stock kernels overwrite them; decode it only for
//     CLT-patched kernels.
//
// # Linux behaviour
//
// Linux fills the area from its end backwards: it writes at
// trace data + (RemainingLen − NodeLen)·4 and then lowers RemainingLen, so the
// newest entry comes first in memory. Decoded traces expose nodes in path
// order (first node of the path first) through [Trace.Nodes], and the newest
// entry through [Trace.Newest]. Linux writes microseconds in TimestampFrac,
// 0xFFFFFFFF in unavailable 32-bit fields and in the undefined bits 12–21, and
// an empty snapshot 0x00FFFFFF when the namespace has no schema.
//
// # Aliasing
//
// Decoders do not copy: [Trace] and [Snapshot.Data] reference the input
// slice. Copy the input (or the slice) before the buffer is reused.
//
// # Errors
//
// Decoders return a *[DecodeError] naming the field and byte offset; branch on
// the sentinels [ErrTruncated], [ErrMalformed], [ErrUnsupported] and
// [ErrNotFound] with errors.Is. On error the returned value is the zero value.
package ioam6
