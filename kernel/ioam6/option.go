package ioam6

import "fmt"

// IPv6 Hop-by-Hop option types (RFC 8200 §4.2, RFC 9486 §3 / IANA).
const (
	// IPv6OptionIOAM is the IPv6 option type of IOAM (RFC 9486 §3): act 00
	// (skip if unknown), chg 1 (data may change en route).
	IPv6OptionIOAM = 0x31
	// IPv6OptionPad1 is a single padding byte with no length (RFC 8200 §4.2).
	IPv6OptionPad1 = 0x00
	// IPv6OptionPadN is N padding bytes: type, length N−2, zeros.
	IPv6OptionPadN = 0x01
)

// OptionType is the IOAM Option-Type octet (RFC 9197 §4.1, RFC 9486 §3). Only
// OptionPreallocatedTrace is decoded.
type OptionType uint8

// IOAM Option-Types.
const (
	OptionPreallocatedTrace OptionType = 0 // RFC 9197 §4.4
	OptionIncrementalTrace  OptionType = 1 // RFC 9197 §4.4
	OptionPOT               OptionType = 2 // RFC 9197 §4.5
	OptionE2E               OptionType = 3 // RFC 9197 §4.6
	OptionDEX               OptionType = 4 // RFC 9326
)

// String returns a short name, e.g. "preallocated-trace".
func (o OptionType) String() string {
	switch o {
	case OptionPreallocatedTrace:
		return "preallocated-trace"
	case OptionIncrementalTrace:
		return "incremental-trace"
	case OptionPOT:
		return "pot"
	case OptionE2E:
		return "e2e"
	case OptionDEX:
		return "dex"
	}
	return fmt.Sprintf("option-type(%d)", uint8(o))
}

// Layout of the Hop-by-Hop header and the IOAM option.
//
//	Hop-by-Hop header (RFC 8200 §4.3):
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Next Header  |  Hdr Ext Len  |         Options ...           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	IOAM option (RFC 9486 §3), at a 4n offset:
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Option Type  |  Opt Data Len |   Reserved    |   IOAM Type   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|              Pre-allocated Trace (RFC 9197 §4.4) ...          |
const (
	hbhNextHdrOff   = 0
	hbhExtLenOff    = 1
	hbhOptionsOff   = 2
	hbhUnit         = 8 // Hdr Ext Len unit, and the total length's multiple
	optTypeOff      = 0
	optLenOff       = 1
	optReservedOff  = 2
	optIOAMTypeOff  = 3
	optHdrLen       = 4 // type, length, reserved, IOAM type
	optTraceHdrOff  = optHdrLen
	optTraceDataOff = optHdrLen + TraceHeaderLen
	optAlign        = 4 // RFC 9486 §3: 4n alignment of the option type
	maxOptDataLen   = 255
	maxPadRun       = 7 // Linux drops more than 7 consecutive padding bytes
	// MaxTraceDataLen is the longest node data area an option can carry
	// (255 − 2 − 8, rounded down to whole words; IOAM6_TRACE_DATA_SIZE_MAX).
	MaxTraceDataLen = 244
)

// errNoIOAM is returned, unallocated, for every header without IOAM.
var errNoIOAM = &DecodeError{Field: "ioam option", Offset: hbhOptionsOff, Err: ErrNotFound}

// FindIOAMOption walks the options of the IPv6 Hop-by-Hop header at the start
// of hbh (Next Header, Hdr Ext Len, options; bytes after the header are
// ignored) and returns the first IOAM option (type 0x31): opt is the whole
// option TLV, from its type byte to the end of its data, and references hbh;
// offset is the offset of its type byte in hbh.
//
// It checks what Linux checks: every option lies inside the header, no run of
// Pad1/PadN is longer than 7 bytes, and the IOAM option starts at a 4n offset
// (RFC 9486 §3). Options after the IOAM option are not examined; a header may
// hold several IOAM options (other namespaces, after a Router Alert, ...):
// [NextIOAMOption] continues the walk. Without an IOAM option it returns an
// error wrapping ErrNotFound.
func FindIOAMOption(hbh []byte) (opt []byte, offset int, err error) {
	return NextIOAMOption(hbh, 0)
}

// NextIOAMOption is [FindIOAMOption] starting at offset from: it returns the
// first IOAM option at or after from. Walk every IOAM option of a header with
//
//	for opt, off, err := ioam6.FindIOAMOption(hbh); err == nil; opt, off, err = ioam6.NextIOAMOption(hbh, off+len(opt)) {
//		...
//	}
//
// and tell the end (an error wrapping ErrNotFound) from a malformed header
// (any other error). from must be an option boundary: 0, or the end of an
// option FindIOAMOption or NextIOAMOption returned.
func NextIOAMOption(hbh []byte, from int) (opt []byte, offset int, err error) {
	if len(hbh) < hbhOptionsOff {
		return nil, 0, decodeErr("hop-by-hop header", 0, ErrTruncated, "need %d bytes, have %d", hbhOptionsOff, len(hbh))
	}
	end := (int(hbh[hbhExtLenOff]) + 1) * hbhUnit
	if len(hbh) < end {
		return nil, 0, decodeErr("hdr ext len", hbhExtLenOff, ErrTruncated, "header of %d bytes, have %d", end, len(hbh))
	}
	// Resuming after an option: it was not padding, so no padding run is
	// open at from.
	from = max(from, hbhOptionsOff)
	pad := 0
	for off := from; off < end; {
		typ := hbh[off]
		if typ == IPv6OptionPad1 {
			if pad++; pad > maxPadRun {
				return nil, 0, decodeErr("padding", off, ErrMalformed, "more than %d consecutive padding bytes", maxPadRun)
			}
			off++
			continue
		}
		if off+2 > end {
			return nil, 0, decodeErr("option", off, ErrTruncated, "option type %#02x without length", typ)
		}
		l := 2 + int(hbh[off+optLenOff])
		if off+l > end {
			return nil, 0, decodeErr("opt data len", off+optLenOff, ErrTruncated,
				"option %#02x of %d bytes runs past the header end at %d", typ, l, end)
		}
		if typ == IPv6OptionPadN {
			if pad += l; pad > maxPadRun {
				return nil, 0, decodeErr("padding", off, ErrMalformed, "more than %d consecutive padding bytes", maxPadRun)
			}
			off += l
			continue
		}
		pad = 0
		if typ == IPv6OptionIOAM {
			if off%optAlign != 0 {
				return nil, 0, decodeErr("ioam option", off, ErrMalformed, "option type not 4n-aligned")
			}
			return hbh[off : off+l : off+l], off, nil
		}
		off += l
	}
	return nil, 0, errNoIOAM
}
