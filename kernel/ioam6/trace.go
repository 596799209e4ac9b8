package ioam6

import "encoding/binary"

// Trace is a decoded Pre-allocated Trace: the header, the trace context and
// the node entries that were written, from an IOAM option ([DecodeTrace]) or
// from an ioam6_events message ([DecodeEvent]).
//
// A Trace references the decoder's input; copy the input before reusing it.
// Its methods only read it, so a Trace may be shared by goroutines as long as
// nobody modifies it or the input. The zero Trace has no nodes and no IDs.
type Trace struct {
	// Header is the trace header. For events, RemainingLen is 0 and
	// Overflow false: the kernel does not send them.
	Header TraceHeader
	// IDs is the trace context; valid only when HasIDs.
	IDs    IDs
	HasIDs bool

	cc     CarrierConfig
	nodes  []byte // written entries, newest first
	base   int    // offset of nodes in the decoder's input, for errors
	hops   int
	fixed  int // 4·NodeLen
	unused int // bytes of the area not written yet (RemainingLen·4)
	event  bool
}

// Hops returns the number of node entries written (for the oss carrier this
// includes the encapsulating host's own entry).
func (t *Trace) Hops() int { return t.hops }

// Overflow reports the header's Overflow flag: some node found no room and
// wrote nothing. Events never report it (the kernel does not send the flag).
func (t *Trace) Overflow() bool { return t.Header.Overflow }

// FromEvent reports whether t was decoded from an ioam6_events message.
func (t *Trace) FromEvent() bool { return t.event }

// Carrier returns the carrier configuration t was decoded with.
func (t *Trace) Carrier() CarrierConfig { return t.cc }

// NodeData returns the written entries as on the wire, newest first (the
// first entry is the last node of the path). It references the input.
func (t *Trace) NodeData() []byte { return t.nodes }

// Nodes returns an iterator over the written entries in path order: the
// first node of the path first, the newest entry last. With CarrierOSS and
// HasIDs, index 0 is the encapsulating host's own entry (its snapshot holds
// the IDs). It does not allocate.
func (t *Trace) Nodes() NodeIter {
	return NodeIter{data: t.nodes, typ: t.Header.Type &^ BitReserved, fixed: t.fixed, hops: t.hops, base: t.base}
}

// Newest returns the newest entry (the first in the data, the last node of
// the path so far) and true, or false when no node wrote. In an event it is
// the reporting node's own entry if that node wrote: compare its NodeID
// (bit 0; WideNodeID for bit 8) with the local net.ipv6.ioam6_id
// (ioam6_id_wide) to tell whether this node overflowed.
func (t *Trace) Newest() (Node, bool) {
	if t.hops == 0 {
		return Node{}, false
	}
	var n Node
	if _, err := decodeNode(&n, t.nodes, t.Header.Type&^BitReserved, "node", t.base); err != nil {
		return Node{}, false
	}
	return n, true
}

// NodeIter iterates over a Trace's node entries in path order:
//
//	it := tr.Nodes()
//	for it.Next() {
//		n := it.Node()
//		...
//	}
//	if err := it.Err(); err != nil { ... }
//
// The Node's Snapshot.Data references the decoder's input. The error is
// sticky: once Next returns false, Err says why (nil at the end).
type NodeIter struct {
	data  []byte
	typ   TraceType
	fixed int
	hops  int
	base  int
	i     int // entries returned so far
	node  Node
	err   error
	// offs caches the entry offsets (newest first) when entries have
	// variable length (bit 22) and fit: a path is walked once, not per node.
	offs   [maxCachedOffsets]uint8
	cached bool
}

// maxCachedOffsets bounds NodeIter.offs: an option holds at most 61 entries
// within 244 bytes, so uint8 offsets suffice; longer event data (not seen
// from Linux) falls back to walking from the front for each entry.
const maxCachedOffsets = 64

// Next decodes the next entry in path order and reports whether there was one.
func (it *NodeIter) Next() bool {
	if it.err != nil || it.i >= it.hops {
		return false
	}
	k := it.hops - 1 - it.i // index from the front of the data (newest first)
	off := k * it.fixed
	if it.typ&BitOpaqueStateSnapshot != 0 {
		var err error
		if off, err = it.offset(k); err != nil {
			it.err = err
			return false
		}
	}
	if off > len(it.data) {
		it.err = decodeErr("node", it.base+off, ErrTruncated, "entry past the data")
		return false
	}
	if _, err := decodeNode(&it.node, it.data[off:], it.typ, "node", it.base+off); err != nil {
		it.err = err
		return false
	}
	it.i++
	return true
}

// offset returns the offset of the k-th entry (newest first) of variable
// length, from the cache or by walking from the front.
func (it *NodeIter) offset(k int) (int, error) {
	if it.cached {
		return int(it.offs[k]), nil
	}
	off := 0
	for j := range k + 1 {
		if it.hops <= maxCachedOffsets && off <= 0xFF {
			it.offs[j] = uint8(off)
		}
		if j == k {
			break
		}
		l, err := entryLen(it.data[off:], it.typ, it.fixed, "node", it.base+off)
		if err != nil {
			return 0, err
		}
		off += l
	}
	// The first call asks for the last entry, so every offset is now known.
	it.cached = k == it.hops-1 && it.hops <= maxCachedOffsets && off <= 0xFF
	return off, nil
}

// Node returns the entry decoded by the last successful Next.
func (it *NodeIter) Node() Node { return it.node }

// Index returns the path index of the current entry (0 = first node of the
// path).
func (it *NodeIter) Index() int { return it.i - 1 }

// Err returns the error that stopped the iteration, or nil.
func (it *NodeIter) Err() error { return it.err }

// DecodeTrace decodes an IOAM option TLV as returned by FindIOAMOption (type
// 0x31, length, reserved, IOAM Option-Type, trace header, data) with the
// namespace's carrier. Bytes after the option's length are ignored.
//
// It checks, like Linux: the IOAM Option-Type is the Pre-allocated Trace
// (else ErrUnsupported), NodeLen equals Type.NodeLen(), RemainingLen·4 fits
// the pre-allocated area, and the written entries fill the rest of the area
// exactly. For CarrierOSS the last written entry (the encapsulating host's)
// holds the IDs when its snapshot has the configured schema id; HasIDs is
// false when it does not. Error offsets are relative to opt. The result
// references opt; on error it is the zero Trace.
func DecodeTrace(opt []byte, cc CarrierConfig) (Trace, error) {
	var t Trace
	if err := t.decodeOption(opt, cc); err != nil {
		return Trace{}, err
	}
	return t, nil
}

func (t *Trace) decodeOption(opt []byte, cc CarrierConfig) error {
	if len(opt) < optHdrLen {
		return decodeErr("ioam option", 0, ErrTruncated, "need %d bytes, have %d", optHdrLen, len(opt))
	}
	if opt[optTypeOff] != IPv6OptionIOAM {
		return decodeErr("option type", optTypeOff, ErrMalformed, "%#02x is not ioam (0x31)", opt[optTypeOff])
	}
	end := 2 + int(opt[optLenOff])
	if len(opt) < end {
		return decodeErr("opt data len", optLenOff, ErrTruncated, "option of %d bytes, have %d", end, len(opt))
	}
	if ot := OptionType(opt[optIOAMTypeOff]); ot != OptionPreallocatedTrace {
		return decodeErr("ioam option-type", optIOAMTypeOff, ErrUnsupported, "%s", ot)
	}
	if end < optTraceDataOff {
		return decodeErr("trace header", optTraceHdrOff, ErrTruncated, "opt data len %d shorter than %d", end-2, optTraceDataOff-2)
	}
	t.Header = parseHeader(opt[optTraceHdrOff:])
	if err := checkNodeLen(t.Header, optTraceHdrOff+hdrNodeLenOff); err != nil {
		return err
	}
	data, dataOff := opt[optTraceDataOff:end], optTraceDataOff
	area, areaOff := data, dataOff
	switch cc.Carrier {
	case CarrierOSS:
	case CarrierTail:
		if len(data) < IDLen {
			return decodeErr("tail ids", dataOff, ErrTruncated, "need %d bytes after the trace header, have %d", IDLen, len(data))
		}
		area = data[:len(data)-IDLen]
		readIDs(&t.IDs, data[len(area):], false)
		t.HasIDs = true
	case CarrierCLTv1:
		if len(data) < IDLen {
			return decodeErr("clt-v1 ids", dataOff, ErrTruncated, "need %d bytes after the trace header, have %d", IDLen, len(data))
		}
		area, areaOff = data[IDLen:], dataOff+IDLen
		readIDs(&t.IDs, data[:IDLen], false)
		t.HasIDs = true
	default:
		return specErr("carrier config: unknown carrier %d", uint8(cc.Carrier))
	}
	rem := 4 * int(t.Header.RemainingLen)
	if rem > len(area) {
		return decodeErr("remaining length", optTraceHdrOff+hdrRemLenOff, ErrMalformed,
			"%d words (%d bytes) past the %d-byte area", t.Header.RemainingLen, rem, len(area))
	}
	t.unused = rem
	return t.setNodes(area[rem:], areaOff+rem, cc)
}

// checkNodeLen rejects a NodeLen that Linux would drop.
func checkNodeLen(h TraceHeader, off int) error {
	if want := (h.Type &^ BitReserved).NodeLen(); int(h.NodeLen) != want {
		return decodeErr("node length", off, ErrMalformed, "%d words, trace type %s needs %d", h.NodeLen, h.Type, want)
	}
	return nil
}

// setNodes walks the written entries (newest first), counts them and, for
// the oss carrier, reads the IDs from the last (oldest) entry's snapshot.
func (t *Trace) setNodes(nodes []byte, base int, cc CarrierConfig) error {
	t.cc, t.nodes, t.base = cc, nodes, base
	typ := t.Header.Type &^ BitReserved
	t.fixed = 4 * int(t.Header.NodeLen)
	if len(nodes) == 0 {
		return nil
	}
	last, hops, fixed := 0, 0, t.fixed
	switch {
	case typ&BitOpaqueStateSnapshot != 0:
		for off := 0; off < len(nodes); hops++ {
			// Inline fast path; entryLen builds the error when an entry is cut.
			e := off + fixed + snapshotHdrLen
			if e <= len(nodes) {
				e += 4 * int(nodes[e-snapshotHdrLen])
			}
			if e > len(nodes) {
				_, err := entryLen(nodes[off:], typ, fixed, "node", base+off)
				return err
			}
			last, off = off, e
		}
	case fixed == 0:
		return decodeErr("node", base, ErrMalformed, "trace type %s has empty entries but %d bytes are written", typ, len(nodes))
	default:
		if r := len(nodes) % fixed; r != 0 {
			return decodeErr("node", base+len(nodes)-r, ErrTruncated, "%d bytes left, entry needs %d", r, fixed)
		}
		hops = len(nodes) / fixed
		last = len(nodes) - fixed
	}
	t.hops = hops
	if cc.Carrier != CarrierOSS || typ&BitOpaqueStateSnapshot == 0 {
		return nil
	}
	// The encapsulating host's entry: Length, Schema ID, trace ID, span ID.
	sn := last + t.fixed
	v := binary.BigEndian.Uint32(nodes[sn:])
	if v&schemaIDMask != cc.Schema() {
		return nil
	}
	ids := nodes[sn+snapshotHdrLen:]
	switch words := v >> 24; words {
	case IDLen / 4:
		readIDs(&t.IDs, ids, false)
		t.HasIDs = true
	case ShortIDLen / 4:
		readIDs(&t.IDs, ids, true)
		t.HasIDs = true
	default:
		return decodeErr("oss ids", base+sn, ErrMalformed,
			"snapshot with schema %#06x has %d words, want %d or %d", cc.Schema(), words, IDLen/4, ShortIDLen/4)
	}
	return nil
}

// readIDs reads 24 bytes (trace ID, span ID) into ids, or 16 when short
// (64-bit trace ID into TraceID[8:], TraceID[:8] zeroed).
func readIDs(ids *IDs, b []byte, short bool) {
	if short {
		_ = b[ShortIDLen-1]
		clear(ids.TraceID[:8])
		copy(ids.TraceID[8:], b[:8])
		copy(ids.SpanID[:], b[8:16])
		ids.Short = true
		return
	}
	_ = b[IDLen-1]
	copy(ids.TraceID[:], b[:16])
	copy(ids.SpanID[:], b[16:24])
	ids.Short = false
}

// appendIDs appends the wire form of ids for the carrier.
func appendIDs(b []byte, ids IDs, c Carrier) []byte {
	if ids.wireLen(c) == ShortIDLen {
		b = append(b, ids.TraceID[8:]...)
	} else {
		b = append(b, ids.TraceID[:]...)
	}
	return append(b, ids.SpanID[:]...)
}

// AppendOption appends t as an IOAM option TLV (as DecodeTrace reads it): the
// option header, the trace header, RemainingLen·4 zero bytes for the unused
// area, the written entries, and the carrier's IDs (zero when !HasIDs). For
// an event trace the unused area is empty. DecodeTrace of the result with
// t's carrier yields t again (NodeData then references the new bytes). It
// fails with ErrInvalidSpec when the option would exceed 255 bytes of data.
func (t *Trace) AppendOption(dst []byte) ([]byte, error) {
	n := optTraceDataOff - 2 + t.unused + len(t.nodes)
	if t.cc.Carrier != CarrierOSS {
		n += IDLen
	}
	if n > maxOptDataLen {
		return dst, specErr("trace: option data length %d exceeds %d", n, maxOptDataLen)
	}
	h := t.Header
	h.RemainingLen = uint8(t.unused / 4)
	b, err := h.AppendBinary(append(dst, IPv6OptionIOAM, uint8(n), 0, uint8(OptionPreallocatedTrace)))
	if err != nil {
		return dst, err
	}
	ids := t.IDs
	ids.Short = false
	if t.cc.Carrier == CarrierCLTv1 {
		b = appendIDs(b, ids, CarrierCLTv1)
	}
	b = append(b, make([]byte, t.unused)...)
	b = append(b, t.nodes...)
	if t.cc.Carrier == CarrierTail {
		b = appendIDs(b, ids, CarrierTail)
	}
	return b, nil
}
