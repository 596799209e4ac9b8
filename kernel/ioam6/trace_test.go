package ioam6

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkDecodeError asserts err wraps sentinel in a *DecodeError naming field at offset.
func checkDecodeError(t *testing.T, err, sentinel error, field string, offset int) {
	t.Helper()
	require.ErrorIs(t, err, sentinel)
	var de *DecodeError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, field, de.Field)
	assert.Equal(t, offset, de.Offset)
}

var findOptionErrorTests = []struct {
	name   string
	hbh    []byte
	err    error
	field  string
	offset int
}{
	{"empty", nil, ErrTruncated, "hop-by-hop header", 0},
	{"hdr ext len past data", wire(0x11010100, 0x31020000), ErrTruncated, "hdr ext len", 1},
	{
		name: "8 Pad1",
		hbh: cat(
			[]byte{0x11, 0x01},                   // Next Header | Hdr Ext Len 1 (16 B)
			[]byte{0, 0, 0, 0, 0, 0, 0, 0},       // 8 × Pad1
			[]byte{0x01, 0x04, 0x00, 0x00, 0, 0}, // PadN(4)
		),
		err: ErrMalformed, field: "padding", offset: 9,
	},
	{
		name: "PadN 8 bytes",
		hbh: cat(
			[]byte{0x11, 0x01},                         // Next Header | Hdr Ext Len 1
			[]byte{0x01, 0x06, 0, 0, 0, 0, 0, 0},       // PadN, 6 data bytes: 8 bytes of padding
			[]byte{0x31, 0x02, 0x00, 0x00, 0x01, 0x00}, // bogus rest
		),
		err: ErrMalformed, field: "padding", offset: 2,
	},
	{
		name: "Pad1 then PadN(6 B) is 7+",
		hbh: cat(
			[]byte{0x11, 0x01},              // Next Header | Hdr Ext Len 1
			[]byte{0x00, 0x00},              // 2 × Pad1
			[]byte{0x01, 0x04, 0, 0, 0, 0},  // PadN: 6 bytes, run of 8
			[]byte{0x01, 0x04, 0, 0, 0, 0}), // PadN
		err: ErrMalformed, field: "padding", offset: 4,
	},
	{
		name: "ioam option misaligned",
		hbh: cat(
			[]byte{0x11, 0x02},             // Next Header | Hdr Ext Len 2 (24 B)
			[]byte{0x31, 0x14, 0x00, 0x00}, // IOAM at offset 2: not 4n
			wire(0x007b1000, 0xc0000000),   // trace header
			wire(0, 0), []byte{0x01, 0x00}, // area, PadN(0)
		),
		err: ErrMalformed, field: "ioam option", offset: 2,
	},
	{
		name: "option past the header",
		hbh:  wire(0x11000100, 0x31080000), // IOAM option claims 10 B in an 8 B header
		err:  ErrTruncated, field: "opt data len", offset: 5,
	},
	{
		name: "option type without length",
		hbh:  []byte{0x11, 0x00, 0x01, 0x03, 0, 0, 0, 0x1e}, // PadN(3) then a lone 0x1E
		err:  ErrTruncated, field: "option", offset: 7,
	},
	{
		name: "no ioam option",
		hbh:  wire(0x11001e02, 0xabcd0100), // option 0x1E (2 B), PadN(0)
		err:  ErrNotFound, field: "ioam option", offset: 2,
	},
}

func TestFindIOAMOptionErrors(t *testing.T) {
	tests := findOptionErrorTests
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt, off, err := FindIOAMOption(tt.hbh)
			checkDecodeError(t, err, tt.err, tt.field, tt.offset)
			assert.Nil(t, opt)
			assert.Zero(t, off)
		})
	}
}

func TestFindIOAMOptionAccepts(t *testing.T) {
	// 7 bytes of padding in a row are fine; bytes after the header are ignored.
	hbh := cat(
		[]byte{0x11, 0x02},             // Next Header | Hdr Ext Len 2 (24 B)
		[]byte{0x00},                   // Pad1
		[]byte{0x01, 0x04, 0, 0, 0, 0}, // PadN: 7 bytes of padding in a row
		[]byte{0x1e, 0x01, 0xaa},       // option 0x1E, 1 byte, at 9
		[]byte{0x31, 0x0a, 0x00, 0x00}, // IOAM at offset 12
		wire(0x007b0000, 0x00000000),   // NS 123, empty type
		[]byte{0xde, 0xad},             // after the header: ignored
	)
	opt, off, err := FindIOAMOption(hbh)
	require.NoError(t, err)
	assert.Equal(t, 12, off)
	assert.Len(t, opt, 12)
	assert.Equal(t, 12, cap(opt), "opt cannot grow into the bytes after it")
	tr, err := DecodeTrace(opt, ossCC)
	require.NoError(t, err)
	assert.Equal(t, uint16(123), tr.Header.NamespaceID)
	assert.Zero(t, tr.Hops())
}

// traceOpt is an IOAM option with one r1 entry and tail IDs, for error cases.
func traceOpt(optLen, ioamType, flagsNodeLen, remLen byte, typ uint32, data ...[]byte) []byte {
	return cat(append([][]byte{
		{0x31, optLen, 0x00, ioamType},
		{0x00, 0x7b, flagsNodeLen, remLen},
		wire(typ << 8),
	}, data...)...)
}

var errR1 = wire(0x3f000002, 0x00150016, 0x6b0951e6, 0x00074536)

var decodeTraceErrorTests = []struct {
	name   string
	opt    []byte
	cc     CarrierConfig
	err    error
	field  string
	offset int
}{
	{"empty", nil, tailCC, ErrTruncated, "ioam option", 0},
	{"not ioam", wire(0x1e020000), tailCC, ErrMalformed, "option type", 0},
	{"opt data len past input", traceOpt(60, 0, 0x20, 0, 0xf00000, errR1), tailCC, ErrTruncated, "opt data len", 1},
	{"incremental trace", traceOpt(10, 1, 0x20, 0, 0xf00000), tailCC, ErrUnsupported, "ioam option-type", 3},
	{"pot", traceOpt(10, 2, 0x20, 0, 0xf00000), tailCC, ErrUnsupported, "ioam option-type", 3},
	{"trace header short", []byte{0x31, 0x06, 0, 0, 0, 0x7b, 0x20, 0}, tailCC, ErrTruncated, "trace header", 4},
	{"nodelen smaller than type", traceOpt(50, 0, 0x10, 0, 0xf00000, errR1, docIDWords), tailCC, ErrMalformed, "node length", 6},
	{"nodelen larger than type", traceOpt(50, 0, 0x28, 0, 0xf00000, errR1, docIDWords), tailCC, ErrMalformed, "node length", 6},
	{"remlen past area (tail)", traceOpt(50, 0, 0x20, 5, 0xf00000, errR1, docIDWords), tailCC, ErrMalformed, "remaining length", 7},
	{"remlen past area (oss)", traceOpt(26, 0, 0x20, 5, 0xf00000, errR1), ossCC, ErrMalformed, "remaining length", 7},
	{"tail without ids", traceOpt(26, 0, 0x20, 0, 0xf00000, errR1), tailCC, ErrTruncated, "tail ids", 12},
	{"clt-v1 without ids", traceOpt(26, 0, 0x20, 0, 0xf00000, errR1), cltCC, ErrTruncated, "clt-v1 ids", 12},
	{"partial entry", traceOpt(22, 0, 0x20, 0, 0xf00000, errR1[:12]), ossCC, ErrTruncated, "node", 12},
	{"partial entry after remlen", traceOpt(30, 0, 0x20, 2, 0xf00000, errR1, wire(0)), ossCC, ErrTruncated, "node", 20},
	{
		name: "truncated snapshot",
		opt: traceOpt(22, 0, 0x08, 0, 0x800002,
			wire(0x3f000002, 0x02000c17), // node 2, snapshot of 2 words ...
			wire(0x01020304)),            // ... but only one
		cc: ossCC, err: ErrTruncated, field: "node opaque state snapshot", offset: 16,
	},
	{
		name: "snapshot header missing",
		opt:  traceOpt(14, 0, 0x08, 0, 0x800002, wire(0x3f000002)),
		cc:   ossCC, err: ErrTruncated, field: "node opaque state snapshot", offset: 16,
	},
	{
		name: "oss ids of wrong length",
		opt: traceOpt(30, 0, 0x08, 0, 0x800002,
			wire(0x40000001, 0x03000c17, 1, 2, 3)), // schema 0xc17 but 3 words
		cc: ossCC, err: ErrMalformed, field: "oss ids", offset: 16,
	},
	{"empty entries with data", traceOpt(14, 0, 0x00, 0, 0x000000, wire(0)), ossCC, ErrMalformed, "node", 12},
}

func TestDecodeTraceErrors(t *testing.T) {
	tests := decodeTraceErrorTests
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := DecodeTrace(tt.opt, tt.cc)
			checkDecodeError(t, err, tt.err, tt.field, tt.offset)
			assert.Empty(t, cmp.Diff(Trace{}, tr, cmp.AllowUnexported(Trace{})), "zero on error")
		})
	}
	_, err := DecodeTrace(dumpS4R1Egress[4:], CarrierConfig{Carrier: 9})
	require.ErrorIs(t, err, ErrInvalidSpec)
}

// A schema id that is not the configured one is someone else's snapshot:
// the trace decodes, without IDs.
func TestDecodeTraceOSSOtherSchema(t *testing.T) {
	opt, _, err := FindIOAMOption(dumpS5OSSSlots2)
	require.NoError(t, err)
	tr, err := DecodeTrace(opt, CarrierConfig{SchemaID: 0x777})
	require.NoError(t, err)
	assert.False(t, tr.HasIDs)
	assert.Equal(t, 3, tr.Hops())
	// A 64-bit trace id (Length 4).
	spec := HBHSpec{NamespaceID: 1, Type: typeBasic, Slots: 1}
	short := IDs{TraceID: [16]byte{8: 1, 15: 2}, SpanID: [8]byte{3}, Short: true}
	hbh, err := AppendHBH(nil, spec, short)
	require.NoError(t, err)
	n, err := spec.LenFor(short)
	require.NoError(t, err)
	full, err := spec.Len()
	require.NoError(t, err)
	assert.Equal(t, full-8, n)
	assert.Len(t, hbh, n)
	opt, _, err = FindIOAMOption(hbh)
	require.NoError(t, err)
	assert.Equal(t, wire(0x04000c17), opt[len(opt)-20:len(opt)-16])
	tr, err = DecodeTrace(opt, ossCC)
	require.NoError(t, err)
	assert.True(t, tr.HasIDs)
	assert.Equal(t, short, tr.IDs)
}

var decodeEventErrorTests = []struct {
	name   string
	ev     EventAttrs
	cc     CarrierConfig
	err    error
	field  string
	offset int
}{
	{"nodelen mismatch", EventAttrs{NodeLen: 3, Type: 0xf0000000, Data: eventS6R2.Data}, tailCC, ErrMalformed, "node length", 0},
	{"tail short", EventAttrs{NodeLen: 4, Type: 0xf0000000, Data: docIDWords[:20]}, tailCC, ErrTruncated, "tail ids", 0},
	{"partial entry", EventAttrs{NodeLen: 4, Type: 0xf0000000, Data: eventS6R2.Data[:20]}, ossCC, ErrTruncated, "node", 16},
	{"longer than an option", EventAttrs{NodeLen: 4, Type: 0xf0000000, Data: zeros(MaxEventDataLen + 1)}, ossCC, ErrMalformed, "event data", 0},
	{"oss truncated snapshot", EventAttrs{NodeLen: 4, Type: 0xf0000200, Data: dumpS5OSSSlots2[16:96]}, ossCC, ErrTruncated, "node opaque state snapshot", 56},
}

func TestDecodeEventErrors(t *testing.T) {
	tests := decodeEventErrorTests
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := DecodeEvent(tt.ev, tt.cc)
			checkDecodeError(t, err, tt.err, tt.field, tt.offset)
			assert.Empty(t, cmp.Diff(Trace{}, tr, cmp.AllowUnexported(Trace{})), "zero on error")
		})
	}
	_, err := DecodeEvent(eventS6R2, CarrierConfig{Carrier: 9})
	require.ErrorIs(t, err, ErrInvalidSpec)
}

func TestDecodeEventCarriers(t *testing.T) {
	// clt-v1 events carry no IDs: DATA is only the entries.
	tr, err := DecodeEvent(EventAttrs{NamespaceID: 123, NodeLen: 4, Type: 0xf0000000, Data: eventS6R2.Data[:32]}, cltCC)
	require.NoError(t, err)
	assert.False(t, tr.HasIDs)
	assert.Equal(t, 2, tr.Hops())
	// The low (reserved) byte of the type attribute is ignored.
	tr, err = DecodeEvent(EventAttrs{NodeLen: 4, Type: 0xf00000ff, Data: eventS6R2.Data}, tailCC)
	require.NoError(t, err)
	assert.Equal(t, typeBasic, tr.Header.Type)
	// An empty DATA (nothing written yet) decodes to no hops.
	tr, err = DecodeEvent(EventAttrs{NodeLen: 4, Type: 0xf0000200}, ossCC)
	require.NoError(t, err)
	assert.Zero(t, tr.Hops())
	_, ok := tr.Newest()
	assert.False(t, ok)
}

// Properties of every header AppendHBH builds, for each carrier and size.
func TestAppendHBHLayout(t *testing.T) {
	types := []TraceType{0, BitHopLimitNodeID, typeBasic, typeBasic | BitOpaqueStateSnapshot, 0xFFF000, TypeFull}
	for _, cc := range []CarrierConfig{ossCC, tailCC, cltCC, {SchemaID: 0xABCDEF}} {
		for _, typ := range types {
			for slots := 0; slots <= 64; slots++ {
				for _, ids := range []IDs{docIDs, {TraceID: [16]byte{15: 9}, SpanID: [8]byte{7: 1}, Short: true}} {
					spec := HBHSpec{NextHeader: 6, NamespaceID: 0xfffe, Type: typ, Slots: slots, Carrier: cc, Own: fullNode(0)}
					n, lerr := spec.LenFor(ids)
					hbh, err := AppendHBH(make([]byte, 0, 256), spec, ids)
					if err != nil {
						require.ErrorIs(t, err, ErrInvalidSpec)
						require.Equal(t, lerr, err)
						continue
					}
					require.NoError(t, lerr)
					require.Len(t, hbh, n)
					require.Zero(t, len(hbh)%8, "multiple of 8")
					require.Equal(t, len(hbh)/8-1, int(hbh[1]), "hdr ext len")
					opt, off, err := FindIOAMOption(hbh) // also checks padding runs
					require.NoError(t, err, "%s %s slots %d", cc.Carrier, typ, slots)
					require.Equal(t, 4, off)
					require.LessOrEqual(t, int(opt[1]), 255)
					require.Equal(t, len(hbh), off+len(opt)+map[bool]int{true: 4, false: 0}[off+len(opt) < len(hbh)])
					tr, err := DecodeTrace(opt, cc)
					require.NoError(t, err)
					require.True(t, tr.HasIDs)
					want := ids
					if cc.Carrier != CarrierOSS {
						want.Short = false
					}
					require.Equal(t, want, tr.IDs)
					slotWords := typ.NodeLen()
					if typ&BitOpaqueStateSnapshot != 0 || cc.Carrier == CarrierOSS {
						slotWords++
					}
					require.Equal(t, slots*slotWords, int(tr.Header.RemainingLen))
					if cc.Carrier == CarrierOSS {
						require.Equal(t, 1, tr.Hops(), "the own entry")
						own, ok := tr.Newest()
						require.True(t, ok)
						require.Equal(t, typ|BitOpaqueStateSnapshot, own.Fields)
					} else {
						require.Zero(t, tr.Hops())
					}
				}
			}
		}
	}
}

func TestAppendHBHLimits(t *testing.T) {
	// docs/wire-format.md §2.6: with NodeLen 4, oss fits 10 transit slots, tail 13.
	oss := HBHSpec{NamespaceID: 123, Type: typeBasic, Slots: 10}
	_, err := oss.Len()
	require.NoError(t, err)
	oss.Slots = 11
	_, err = oss.Len()
	require.ErrorIs(t, err, ErrInvalidSpec)
	assert.Contains(t, err.Error(), "option data length 274 exceeds 255")
	tail := HBHSpec{NamespaceID: 123, Type: typeBasic, Slots: 13, Carrier: tailCC}
	_, err = tail.Len()
	require.NoError(t, err)
	tail.Slots = 14
	_, err = tail.Len()
	require.ErrorIs(t, err, ErrInvalidSpec)

	bad := []HBHSpec{
		{Type: BitReserved},
		{Type: 1 << 24},
		{Slots: -1},
		{Slots: 1 << 40},
		{Carrier: CarrierConfig{Carrier: 3}},
		{Carrier: CarrierConfig{SchemaID: 1 << 24}},
		{Type: BitHopLimitNodeID, Own: Node{NodeID: 1 << 24}},
		{Type: BitWideHopLimitNodeID, Own: Node{WideNodeID: 1 << 56}},
	}
	for _, s := range bad {
		dst := []byte{1, 2, 3}
		b, err := AppendHBH(dst, s, docIDs)
		require.ErrorIs(t, err, ErrInvalidSpec, "%+v", s)
		assert.Equal(t, dst, b)
	}
}

func TestAppendHBHZeroAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	spec := HBHSpec{NamespaceID: 123, Type: typeBasic, Slots: 3,
		Own: Node{HopLimit: 64, NodeID: 1, IngressIf: 0xffff, EgressIf: 10}}
	buf := make([]byte, 0, 256)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		if buf, err = AppendHBH(buf[:0], spec, docIDs); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)
	opt, _, err := FindIOAMOption(buf)
	require.NoError(t, err)
	allocs = testing.AllocsPerRun(100, func() {
		tr, err := DecodeTrace(opt, ossCC)
		if err != nil {
			t.Fatal(err)
		}
		for it := tr.Nodes(); it.Next(); {
			_ = it.Node()
		}
	})
	assert.Zero(t, allocs)
}

func TestUpdateIDs(t *testing.T) {
	other := IDs{TraceID: [16]byte{0: 0xaa, 15: 0xbb}, SpanID: [8]byte{0: 0xcc, 7: 0xdd}}
	for _, cc := range []CarrierConfig{ossCC, tailCC, cltCC} {
		t.Run(cc.Carrier.String(), func(t *testing.T) {
			spec := HBHSpec{NextHeader: 17, NamespaceID: 123, Type: typeBasic, Slots: 3, Carrier: cc,
				Own: Node{HopLimit: 64, NodeID: 1}}
			hbh, err := AppendHBH(nil, spec, docIDs)
			require.NoError(t, err)
			want, err := AppendHBH(nil, spec, other)
			require.NoError(t, err)
			allocs := testing.AllocsPerRun(10, func() {
				if err := UpdateIDs(hbh, cc, other); err != nil {
					t.Fatal(err)
				}
			})
			if !raceEnabled {
				assert.Zero(t, allocs)
			}
			assert.Equal(t, want, hbh, "only the IDs change")
		})
	}
	// oss after transit writes: the IDs are still at the end of the option.
	spec := HBHSpec{NamespaceID: 123, Type: typeBasic, Slots: 2}
	hbh, err := AppendHBH(nil, spec, docIDs)
	require.NoError(t, err)
	kernelHop(t, hbh, s4R1)
	require.NoError(t, UpdateIDs(hbh, ossCC, other))
	opt, _, err := FindIOAMOption(hbh)
	require.NoError(t, err)
	tr, err := DecodeTrace(opt, ossCC)
	require.NoError(t, err)
	assert.Equal(t, other, tr.IDs)
	assert.Equal(t, 2, tr.Hops())

	// Errors: a different ID length, a different schema, no IOAM option.
	short := other
	short.Short = true
	checkDecodeError(t, UpdateIDs(hbh, ossCC, short), ErrMalformed, "oss ids", 4+len(opt)-20)
	checkDecodeError(t, UpdateIDs(hbh, CarrierConfig{SchemaID: 5}, other), ErrMalformed, "oss ids", 4+len(opt)-28)
	require.ErrorIs(t, UpdateIDs(wire(0x11000100, 0x01020000), ossCC, other), ErrNotFound)
	require.ErrorIs(t, UpdateIDs(hbh, CarrierConfig{Carrier: 5}, other), ErrInvalidSpec)
	tiny := cat([]byte{0x11, 0x01, 0x01, 0x00}, []byte{0x31, 0x0a, 0, 0}, wire(0x007b0000, 0), zeros(0))
	require.ErrorIs(t, UpdateIDs(tiny, tailCC, other), ErrTruncated)
	require.ErrorIs(t, UpdateIDs(tiny, cltCC, other), ErrTruncated)
	require.ErrorIs(t, UpdateIDs(tiny, ossCC, other), ErrTruncated)
	require.ErrorIs(t, UpdateIDs(tiny[:10], ossCC, other), ErrTruncated)
}

func TestTraceEventRoundTrip(t *testing.T) {
	// An event rebuilt from a decoded packet trace decodes to the same nodes and IDs.
	for _, tc := range []struct {
		hbh []byte
		cc  CarrierConfig
	}{{dumpS4ServerSocket, tailCC}, {dumpS5OSSSlots2, ossCC}, {dumpS5TailSlots1, tailCC}} {
		opt, _, err := FindIOAMOption(tc.hbh)
		require.NoError(t, err)
		tr, err := DecodeTrace(opt, tc.cc)
		require.NoError(t, err)
		ev, err := DecodeEvent(tr.EventAttrs(), tc.cc)
		require.NoError(t, err)
		assert.Equal(t, tr.IDs, ev.IDs)
		assert.Equal(t, tr.Hops(), ev.Hops())
		assert.Empty(t, cmp.Diff(pathNodes(t, &tr), pathNodes(t, &ev), nodeCmp))
	}
}

// Entries of different lengths (bit 22) come out in path order, up to the
// most an option can hold (61 empty snapshots of 4 bytes).
func TestNodeIterVariableEntries(t *testing.T) {
	for _, hops := range []int{1, 3, 20, 61} {
		typ := BitOpaqueStateSnapshot
		var want []Node // path order
		size := 0
		for i := range hops {
			n := Node{Fields: typ, Snapshot: Snapshot{SchemaID: uint32(i), Data: []byte{}}}
			if hops < 61 && i%2 == 1 {
				n.Snapshot.Len, n.Snapshot.Data = 1, []byte{byte(i), 2, 3, 4}
			}
			size += n.Len()
			want = append(want, n)
		}
		require.LessOrEqual(t, size, MaxEventDataLen)
		var data []byte
		for i := hops - 1; i >= 0; i-- { // newest (last hop) first
			var err error
			data, err = AppendNode(data, &want[i])
			require.NoError(t, err)
		}
		tr, err := DecodeEvent(EventAttrs{NodeLen: 0, Type: uint32(typ) << 8, Data: data}, CarrierConfig{SchemaID: 0xABCDEF})
		require.NoError(t, err)
		require.Equal(t, hops, tr.Hops())
		assert.False(t, tr.HasIDs)
		assert.Empty(t, cmp.Diff(want, pathNodes(t, &tr), nodeCmp), "%d hops", hops)
	}
}
