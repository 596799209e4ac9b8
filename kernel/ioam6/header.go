package ioam6

import (
	"encoding"
	"encoding/binary"
)

// TraceHeader is the 8-byte IOAM Pre-allocated Trace header (RFC 9197 §4.4.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|        Namespace-ID           |NodeLen  | Flags | RemainingLen|
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|               IOAM-Trace-Type                 |  Reserved     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Flags bit 0 is Overflow; the other three flags and the Reserved octet are
// written as zero and ignored on decode (RFC 9197 §4.4.1). UnmarshalBinary
// checks only the syntax; [DecodeTrace] also checks NodeLen against Type and
// RemainingLen against the data.
type TraceHeader struct {
	NamespaceID  uint16
	NodeLen      uint8     // 5 bits: words of the fixed part of each node entry
	Overflow     bool      // set by the first node that found no room
	RemainingLen uint8     // 7 bits: words still free in the pre-allocated area
	Type         TraceType // 24 bits
}

// TraceHeaderLen is the encoded size of a TraceHeader.
const TraceHeaderLen = 8

// Offsets and masks inside the trace header.
const (
	hdrNamespaceOff = 0
	hdrNodeLenOff   = 2 // NodeLen (5 bits) | Flags (first 3 bits)
	hdrRemLenOff    = 3 // Flags (last bit) | RemainingLen (7 bits)
	hdrTypeOff      = 4 // 24-bit type, then the reserved octet
	hdrReservedOff  = 7

	nodeLenShift = 3
	nodeLenMax   = 0x1F
	overflowMask = 0x04 // Flags bit 0, in byte 2
	remLenMask   = 0x7F
	remLenMax    = 0x7F
)

var (
	_ encoding.BinaryMarshaler   = TraceHeader{}
	_ encoding.BinaryAppender    = TraceHeader{}
	_ encoding.BinaryUnmarshaler = (*TraceHeader)(nil)
)

// AppendBinary appends the 8-byte header to b. It fails with ErrInvalidSpec
// when a field exceeds its width.
func (h TraceHeader) AppendBinary(b []byte) ([]byte, error) {
	if h.NodeLen > nodeLenMax {
		return b, specErr("trace header: node length %d exceeds %d", h.NodeLen, nodeLenMax)
	}
	if h.RemainingLen > remLenMax {
		return b, specErr("trace header: remaining length %d exceeds %d", h.RemainingLen, remLenMax)
	}
	if h.Type > TraceTypeMask {
		return b, specErr("trace header: trace type %#x exceeds 24 bits", uint32(h.Type))
	}
	return h.appendUnchecked(b), nil
}

// appendUnchecked appends a header whose fields are known to fit.
func (h TraceHeader) appendUnchecked(b []byte) []byte {
	flags := h.NodeLen << nodeLenShift
	if h.Overflow {
		flags |= overflowMask
	}
	b = binary.BigEndian.AppendUint16(b, h.NamespaceID)
	b = append(b, flags, h.RemainingLen)
	return binary.BigEndian.AppendUint32(b, uint32(h.Type)<<8)
}

// MarshalBinary returns the 8-byte header.
func (h TraceHeader) MarshalBinary() ([]byte, error) {
	return h.AppendBinary(make([]byte, 0, TraceHeaderLen))
}

// UnmarshalBinary decodes the first 8 bytes of b. Extra bytes are ignored.
// On error h is set to the zero value.
func (h *TraceHeader) UnmarshalBinary(b []byte) error {
	if len(b) < TraceHeaderLen {
		*h = TraceHeader{}
		return decodeErr("trace header", 0, ErrTruncated, "need %d bytes, have %d", TraceHeaderLen, len(b))
	}
	*h = parseHeader(b)
	return nil
}

// parseHeader decodes a header from at least 8 bytes.
func parseHeader(b []byte) TraceHeader {
	_ = b[hdrReservedOff]
	return TraceHeader{
		NamespaceID:  binary.BigEndian.Uint16(b[hdrNamespaceOff:]),
		NodeLen:      b[hdrNodeLenOff] >> nodeLenShift,
		Overflow:     b[hdrNodeLenOff]&overflowMask != 0,
		RemainingLen: b[hdrRemLenOff] & remLenMask,
		Type:         TraceType(binary.BigEndian.Uint32(b[hdrTypeOff:]) >> 8),
	}
}
