package agent

import (
	"encoding/binary"
	"testing"

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
	assert.Len(t, prog, 12)
}
