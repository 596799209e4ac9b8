package ioam6

import "encoding/binary"

// HBHSpec describes the IPv6 Hop-by-Hop header an encapsulating host sends:
// one IOAM Pre-allocated Trace option carrying the trace context.
//
// The header AppendHBH writes (oss carrier, NodeLen 4, RFC byte offsets):
//
//	00 LL 01 00   Next Header, Hdr Ext Len | PadN(0) so the option is 4n-aligned
//	31 len 00 00  option 0x31, Opt Data Len, Reserved, IOAM type 0 (pre-allocated)
//	ns ns NL RL   Namespace-ID, NodeLen<<3 | flags, RemainingLen
//	tt tt tt 00   trace type (bit 22 set), reserved
//	00 ... 00     Slots·(NodeLen+1) words for transit nodes (RemainingLen)
//	own entry     Own's NodeLen words, written by the host
//	06 00 0c 17   snapshot Length 6 (4 for a 64-bit trace ID), Schema ID
//	trace ID, span ID
//	[01 02 00 00] PadN(2) when needed for a multiple of 8
type HBHSpec struct {
	// NextHeader is written into byte 0. Sockets ignore it (the kernel sets
	// it); packet builders set the upper-layer protocol.
	NextHeader uint8
	// NamespaceID is the IOAM namespace the nodes must know.
	NamespaceID uint16
	// Type is the trace type wanted from transit nodes, without bit 23. The
	// oss carrier adds bit 22 itself.
	Type TraceType
	// Slots is the number of entries pre-allocated for transit nodes. For oss
	// each takes NodeLen+1 words (a Linux node without a schema adds the empty
	// snapshot 00ffffff); a node with a schema needs more and may overflow.
	Slots int
	// Carrier selects where the IDs go.
	Carrier CarrierConfig
	// Own is the encapsulating host's own entry, written into the last slot
	// by the oss carrier (ignored by the others). Its Fields and Snapshot are
	// set by AppendHBH; fill the data fields Type asks for (hop limit, node id,
	// interface ids, timestamps, ...).
	Own Node
}

// hbhLayout is the computed shape of a header.
type hbhLayout struct {
	typ     TraceType
	nodeLen int // words
	remLen  int // words
	ownLen  int // bytes of the own entry without the IDs (oss)
	idLen   int // bytes of IDs
	optData int // Opt Data Len
	total   int // bytes of the Hop-by-Hop header
}

// hbhPrefixLen: Next Header, Hdr Ext Len, PadN(0), then the option at offset 4.
const hbhPrefixLen = 4

func (s *HBHSpec) layout(short bool) (hbhLayout, error) {
	var l hbhLayout
	if err := s.Carrier.Validate(); err != nil {
		return l, err
	}
	if s.Type > TraceTypeMask || s.Type&BitReserved != 0 {
		return l, specErr("hbh spec: trace type %#x has bits outside 0-22", uint32(s.Type))
	}
	if s.Slots < 0 {
		return l, specErr("hbh spec: slots %d is negative", s.Slots)
	}
	l.typ = s.Type
	if s.Carrier.Carrier == CarrierOSS {
		l.typ |= BitOpaqueStateSnapshot
	}
	l.nodeLen = l.typ.NodeLen()
	slotWords := l.nodeLen
	if l.typ&BitOpaqueStateSnapshot != 0 {
		slotWords++
	}
	if s.Slots > remLenMax { // keeps the product below small and exact
		return l, specErr("hbh spec: %d slots exceed remaining length %d words", s.Slots, remLenMax)
	}
	l.remLen = s.Slots * slotWords
	if l.remLen > remLenMax {
		return l, specErr("hbh spec: %d slots of %d words exceed remaining length %d words", s.Slots, slotWords, remLenMax)
	}
	l.idLen = IDLen
	if s.Carrier.Carrier == CarrierOSS {
		if short {
			l.idLen = ShortIDLen
		}
		l.ownLen = 4*l.nodeLen + snapshotHdrLen
	}
	l.optData = optHdrLen - 2 + TraceHeaderLen + 4*l.remLen + l.ownLen + l.idLen
	if l.optData > maxOptDataLen {
		return l, specErr("hbh spec: option data length %d exceeds %d (%d slots of %d words)", l.optData, maxOptDataLen, s.Slots, slotWords)
	}
	l.total = hbhPrefixLen + 2 + l.optData // a multiple of 4
	if l.total%hbhUnit != 0 {
		l.total += 4 // PadN(2)
	}
	return l, nil
}

// Len returns the length in bytes of the header AppendHBH writes with
// 128-bit trace IDs (for oss with IDs.Short it is 8 bytes shorter; see
// LenFor). It fails with ErrInvalidSpec when the spec cannot be encoded:
// option data over 255 bytes, RemainingLen over 127 words, a trace type with
// bit 23 or more than 24 bits, negative slots, a bad carrier config.
func (s HBHSpec) Len() (int, error) { return s.LenFor(IDs{}) }

// LenFor returns the length of the header AppendHBH writes for ids.
func (s HBHSpec) LenFor(ids IDs) (int, error) {
	l, err := s.layout(ids.Short)
	if err != nil {
		return 0, err
	}
	return l.total, nil
}

// AppendHBH appends a complete IPv6 Hop-by-Hop header carrying ids to dst
// and returns the extended slice; it does not allocate when dst has room
// (LenFor). The IOAM option type sits at offset 4 (4n-aligned), padding runs
// are at most 4 bytes, and the total is a multiple of 8. On error dst is
// returned unchanged with an error wrapping ErrInvalidSpec.
func AppendHBH(dst []byte, s HBHSpec, ids IDs) ([]byte, error) {
	l, err := s.layout(ids.Short)
	if err != nil {
		return dst, err
	}
	if s.Carrier.Carrier == CarrierOSS {
		if s.Own.NodeID > nodeIDMask || s.Own.WideNodeID > wideNodeIDMask {
			return dst, specErr("hbh spec: own node id %#x / wide %#x too wide", s.Own.NodeID, s.Own.WideNodeID)
		}
	}
	b := append(dst,
		s.NextHeader, uint8(l.total/hbhUnit-1), IPv6OptionPadN, 0,
		IPv6OptionIOAM, uint8(l.optData), 0, uint8(OptionPreallocatedTrace))
	b = TraceHeader{
		NamespaceID:  s.NamespaceID,
		NodeLen:      uint8(l.nodeLen),
		RemainingLen: uint8(l.remLen),
		Type:         l.typ,
	}.appendUnchecked(b)
	switch s.Carrier.Carrier {
	case CarrierOSS:
		b = append(b, make([]byte, 4*l.remLen)...)
		own := &s.Own // s is a copy
		own.Fields = l.typ
		own.Snapshot = Snapshot{Len: uint8(l.idLen / 4), SchemaID: s.Carrier.Schema()}
		b = appendNode(b, own) // snapshot header only; the IDs follow
		b = appendIDs(b, ids, CarrierOSS)
	case CarrierTail:
		b = append(b, make([]byte, 4*l.remLen)...)
		b = appendIDs(b, ids, CarrierTail)
	case CarrierCLTv1:
		b = appendIDs(b, ids, CarrierCLTv1)
		b = append(b, make([]byte, 4*l.remLen)...)
	}
	if len(b)-len(dst) < l.total {
		b = append(b, IPv6OptionPadN, 2, 0, 0)
	}
	return b, nil
}

// UpdateIDs rewrites only the IDs in a Hop-by-Hop header built by AppendHBH
// with the same carrier, in place, without allocating (for a new span per
// request on a reused connection). The IDs must have the same wire length
// as those in hbh (IDs.Short unchanged for oss); otherwise rebuild with
// AppendHBH. It fails with a *DecodeError when hbh has no IOAM option or the
// carrier's IDs are not where they should be.
func UpdateIDs(hbh []byte, cc CarrierConfig, ids IDs) error {
	opt, off, err := FindIOAMOption(hbh)
	if err != nil {
		return err
	}
	if len(opt) < optTraceDataOff {
		return decodeErr("trace header", off+optTraceHdrOff, ErrTruncated, "option of %d bytes", len(opt))
	}
	n := ids.wireLen(cc.Carrier)
	var at int
	switch cc.Carrier {
	case CarrierOSS:
		at = len(opt) - n
		sh := at - snapshotHdrLen
		if sh < optTraceDataOff {
			return decodeErr("oss ids", off+optTraceDataOff, ErrTruncated, "option too short for %d bytes of ids", n)
		}
		want := uint32(n/4)<<24 | cc.Schema()
		got := binary.BigEndian.Uint32(opt[sh:])
		if got != want {
			return decodeErr("oss ids", off+sh, ErrMalformed, "snapshot header %#08x, want %#08x", got, want)
		}
	case CarrierTail:
		at = len(opt) - IDLen
		if at < optTraceDataOff {
			return decodeErr("tail ids", off+optTraceDataOff, ErrTruncated, "option too short for %d bytes of ids", IDLen)
		}
	case CarrierCLTv1:
		at = optTraceDataOff
		if len(opt) < at+IDLen {
			return decodeErr("clt-v1 ids", off+at, ErrTruncated, "option too short for %d bytes of ids", IDLen)
		}
	default:
		return specErr("carrier config: unknown carrier %d", uint8(cc.Carrier))
	}
	ids.Short = n == ShortIDLen
	appendIDs(opt[at:at], ids, cc.Carrier)
	return nil
}
