package agent

import (
	"encoding/binary"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// ringPacket lays out one tpacket3_hdr + sockaddr_ll + packet at a 16-byte
// aligned offset, as the kernel does in a TPACKET_V3 block.
func ringPacket(ifindex int32, pkt []byte) []byte {
	const netOff = 80 // after tpacket3_hdr (48) and sockaddr_ll (20), aligned
	b := make([]byte, netOff+len(pkt))
	ne := binary.NativeEndian
	ne.PutUint32(b[pktSecOff:], 1700000000)
	ne.PutUint32(b[pktNsecOff:], 5)
	ne.PutUint32(b[pktSnaplenOff:], uint32(len(pkt)))
	ne.PutUint16(b[pktNetOff:], netOff)
	ne.PutUint32(b[sllIfindexOff:], uint32(ifindex))
	b[sllPkttypeOff] = 4 // PACKET_OUTGOING
	copy(b[netOff:], pkt)
	for len(b)%16 != 0 {
		b = append(b, 0)
	}
	return b
}

func ringBlock(pkts ...[]byte) []byte {
	const first = 48
	blk := make([]byte, first)
	ne := binary.NativeEndian
	ne.PutUint32(blk[blockNumPktsOff:], uint32(len(pkts)))
	ne.PutUint32(blk[blockFirstPktOff:], first)
	for i, p := range pkts {
		if i < len(pkts)-1 {
			ne.PutUint32(p[pktNextOff:], uint32(len(p)))
		}
		blk = append(blk, p...)
	}
	return blk
}

func ipv6WithHBH(hbh []byte) []byte {
	pkt := make([]byte, ipv6HdrLen, ipv6HdrLen+len(hbh)+8)
	pkt[0] = 0x60
	pkt[ipv6NextHdrOff] = nextHdrHopByHop
	binary.BigEndian.PutUint16(pkt[4:], uint16(len(hbh)+8))
	pkt = append(pkt, hbh...)
	return append(pkt, make([]byte, 8)...) // UDP header
}

func TestCaptureReadBlock(t *testing.T) {
	hbh, err := ioam6.AppendHBH(nil, ioam6.HBHSpec{NextHeader: 17, NamespaceID: 123,
		Type: typeOSS &^ ioam6.BitOpaqueStateSnapshot, Slots: 2,
		Carrier: ioam6.CarrierConfig{Carrier: ioam6.CarrierOSS}, Own: ownNode(t, 1, testIDs, 0)}, testIDs)
	require.NoError(t, err)
	good := ipv6WithHBH(hbh)
	noHBH := append([]byte(nil), good...)
	noHBH[ipv6NextHdrOff] = 17
	badHBH := ipv6WithHBH(hbh)
	badHBH[ipv6HdrLen+1] = 200 // Hdr Ext Len past the packet

	var bad []string
	s := &captureSource{ifindex: map[int32]bool{}, bad: func(r string) { bad = append(bad, r) }}
	blk := ringBlock(ringPacket(7, good), ringPacket(7, noHBH), ringPacket(8, badHBH), ringPacket(9, good))
	evs := s.readBlock(blk, nil)
	require.Len(t, evs, 2)
	assert.Equal(t, int64(1700000000e9+5), evs[0].SeenUnixNano)
	opt, _, err := ioam6.FindIOAMOption(hbh)
	require.NoError(t, err)
	assert.Equal(t, opt, evs[0].Option)
	assert.Equal(t, []string{ReasonPacket, ReasonTruncated}, bad)

	// Restricted to interface 9.
	bad = nil
	s.ifindex[9] = true
	evs = s.readBlock(blk, nil)
	assert.Len(t, evs, 1)
	assert.Empty(t, bad)

	// A snaplen past the block is counted, not read.
	p := ringPacket(7, good)
	binary.NativeEndian.PutUint32(p[pktSnaplenOff:], 1<<20)
	s.ifindex = map[int32]bool{}
	assert.Empty(t, s.readBlock(ringBlock(p), nil))
	assert.Equal(t, []string{ReasonPacket}, bad)
}

func TestCaptureFilterAssembles(t *testing.T) {
	prog, err := captureFilter()
	require.NoError(t, err)
	assert.NotEmpty(t, prog) // what it passes: TestIntegrationCaptureOptionLayouts
}

// composeHBH builds a Hop-by-Hop header (next header UDP) from options the
// caller aligned, padded with PadN to a multiple of 8.
func composeHBH(t testing.TB, opts ...[]byte) []byte {
	t.Helper()
	b := []byte{17, 0}
	for _, o := range opts {
		b = append(b, o...)
	}
	switch r := len(b) % 8; {
	case r == 0:
	case r <= 6:
		b = append(b, 1, byte(8-r-2))
		b = append(b, make([]byte, 8-r-2)...)
	default:
		b = append(b, 0) // Pad1
	}
	require.Zero(t, len(b)%8)
	b[1] = byte(len(b)/8 - 1)
	return b
}

// optionOf returns the IOAM option of a header AppendHBH built.
func optionOf(t testing.TB, hbh []byte) []byte {
	t.Helper()
	opt, _, err := ioam6.FindIOAMOption(hbh)
	require.NoError(t, err)
	return opt
}

var (
	padN0       = []byte{ioam6.IPv6OptionPadN, 0}
	routerAlert = []byte{0x05, 0x02, 0x00, 0x02} // RFC 2711, value 2 (Active Networks)
)

// TestCaptureReadBlockWalksEveryOption: an event per IOAM option, whatever
// comes first: an operator's own IOAM option (namespace 124, not configured)
// or a Router Alert. The CLT option decodes in each case; the other is counted.
func TestCaptureReadBlockWalksEveryOption(t *testing.T) {
	clt := optionOf(t, mustHBH(t, ioam6.HBHSpec{NamespaceID: 123, Type: typeOSS, Slots: 2,
		Carrier: ioam6.CarrierConfig{Carrier: ioam6.CarrierOSS}, Own: ownNode(t, 1, testIDs, 0)}, testIDs))
	operator := optionOf(t, mustHBH(t, ioam6.HBHSpec{NamespaceID: 124, Type: ioam6.BitHopLimitNodeID, Slots: 2,
		Carrier: ioam6.CarrierConfig{Carrier: ioam6.CarrierTail}}, testIDs))
	layouts := []struct {
		name string
		hbh  []byte
		opts int
	}{
		{"operator option first", composeHBH(t, padN0, operator, clt), 2},
		{"clt option first", composeHBH(t, padN0, clt, operator), 2},
		{"router alert first", composeHBH(t, routerAlert, padN0, clt), 1},
	}
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			var bad []string
			s := &captureSource{ifindex: map[int32]bool{}, bad: func(r string) { bad = append(bad, r) }}
			evs := s.readBlock(ringBlock(ringPacket(7, ipv6WithHBH(l.hbh))), nil)
			require.Len(t, evs, l.opts)
			assert.Empty(t, bad)
			p, rs, m := newTestPipeline(t, testConfig(), 2)
			p.Handle(evs)
			p.Flush()
			assert.Equal(t, 1.0, testutil.ToFloat64(m.EventsDecoded), "the CLT option decodes")
			assert.Equal(t, float64(l.opts-1), testutil.ToFloat64(m.EventsMalformed.WithLabelValues(ReasonUnconfiguredNamespace)))
			require.Len(t, rs.get(), 1)
			assert.Equal(t, testIDs.SpanID[:], rs.get()[0].SpanId)
		})
	}

	// A fault after the first IOAM option: its event survives, the fault is counted.
	hbh := composeHBH(t, padN0, clt, []byte{0x1e, 0x40}) // option 0x1E runs past the header
	var bad []string
	s := &captureSource{ifindex: map[int32]bool{}, bad: func(r string) { bad = append(bad, r) }}
	evs := s.readBlock(ringBlock(ringPacket(7, ipv6WithHBH(hbh))), nil)
	assert.Len(t, evs, 1)
	assert.Equal(t, []string{ReasonTruncated}, bad)

	// A Hop-by-Hop header without IOAM (an MLD report's Router Alert) is no IOAM event.
	bad = nil
	assert.Empty(t, s.readBlock(ringBlock(ringPacket(7, ipv6WithHBH(composeHBH(t, routerAlert)))), nil))
	assert.Empty(t, bad)
}

func mustHBH(t testing.TB, spec ioam6.HBHSpec, ids ioam6.IDs) []byte {
	t.Helper()
	b, err := ioam6.AppendHBH(nil, spec, ids)
	require.NoError(t, err)
	return b
}
