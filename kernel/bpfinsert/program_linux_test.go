package bpfinsert

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
	"github.com/cross-layer-telemetry/clt/kernel/netnstest"
	"github.com/cross-layer-telemetry/clt/kernel/sysctl"
)

const (
	ethLen  = 14
	ip6Len  = 40
	tcpLen  = 20
	l4Off   = ethLen + ip6Len
	tcpPSH  = 0x08
	tcpACK  = 0x10
	tcpFIN  = 0x01
	testDst = "fd00:3::2"
)

// packet builds Ethernet + IPv6 + TCP (+ payload), as a socket sends it.
func packet(dst string, dport uint16, flags byte, payload string) []byte {
	b := make([]byte, l4Off+tcpLen, l4Off+tcpLen+len(payload))
	b[12], b[13] = 0x86, 0xdd
	ip := b[ethLen:]
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], uint16(tcpLen+len(payload)))
	ip[6], ip[7] = ipprotoTCP, 64
	src := netip.MustParseAddr("fd00:1::1").As16()
	d := netip.MustParseAddr(dst).As16()
	copy(ip[8:], src[:])
	copy(ip[24:], d[:])
	tcp := b[l4Off:]
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], dport)
	binary.BigEndian.PutUint32(tcp[4:], 1)
	tcp[12] = 5 << 4
	tcp[13] = flags
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	return append(b, payload...)
}

func request(tp string) string {
	h := "GET /x HTTP/1.1\r\nHost: server\r\nUser-Agent: test\r\n"
	if tp != "" {
		h += tp + "\r\n"
	}
	return h + "Accept: */*\r\n\r\n"
}

const (
	tid = "0af7651916cd43dd8448eb211c80319c"
	sid = "b7ad6b7169203331"
)

// loadForTest loads the collection and configures loopback (the device a
// BPF_PROG_TEST_RUN packet appears on), without attaching anything.
func loadForTest(t testing.TB, cfg Config) *Inserter {
	t.Helper()
	netnstest.RequirePrivileged(t)
	cfg.Interfaces = []string{"lo"}
	require.NoError(t, cfg.Validate())
	in := &Inserter{cfg: cfg, logger: slog.New(slog.DiscardHandler)}
	t.Cleanup(func() { _ = in.Close() })
	require.NoError(t, in.load())
	_, _, err := in.configure("lo")
	require.NoError(t, err)
	return in
}

func run(t *testing.T, in *Inserter, pkt []byte) []byte {
	t.Helper()
	opts := &ebpf.RunOptions{Data: pkt, DataOut: make([]byte, len(pkt)+maxHdr+64)}
	ret, err := in.coll.Programs["clt_egress"].Run(opts)
	require.NoError(t, err)
	require.EqualValues(t, 0, ret, "TC_ACT_OK")
	return opts.DataOut // trimmed by cilium/ebpf to what the kernel wrote
}

func testConfig() Config {
	c := DefaultConfig()
	c.Prefixes = []string{"fd00:3::/64"}
	c.Ports = []uint16{8080}
	return c
}

// The program's header is, byte for byte, what kernel/ioam6.AppendHBH
// builds for the traceparent's IDs with the sender's own entry as
// kernel/clt fills it; the rest of the packet is unchanged.
func TestIntegrationProgramGolden(t *testing.T) {
	in := loadForTest(t, testConfig())
	for _, tc := range []struct {
		name, trace string
		short       bool
	}{
		{"128-bit", tid, false},
		{"64-bit", "00000000000000008448eb211c80319c", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkt := packet(testDst, 8080, tcpPSH|tcpACK, request("traceparent: 00-"+tc.trace+"-"+sid+"-01"))
			before := time.Now()
			out := run(t, in, pkt)
			require.Greater(t, len(out), len(pkt))
			hlen := len(out) - len(pkt)
			ip := out[ethLen:]
			assert.EqualValues(t, 0, ip[6], "next header: hop-by-hop")
			assert.EqualValues(t, binary.BigEndian.Uint16(pkt[ethLen+4:])+uint16(hlen), binary.BigEndian.Uint16(ip[4:]), "payload length")
			assert.Equal(t, pkt[:ethLen+4], out[:ethLen+4], "ethernet and first IPv6 word")
			assert.Equal(t, pkt[ethLen+7:l4Off], out[ethLen+7:l4Off], "hop limit and addresses")
			assert.Equal(t, pkt[l4Off:], out[l4Off+hlen:], "TCP segment unchanged")
			hbh := out[l4Off : l4Off+hlen]

			var ids ioam6.IDs
			tr, _ := hex.DecodeString(tc.trace)
			sp, _ := hex.DecodeString(sid)
			copy(ids.TraceID[:], tr)
			copy(ids.SpanID[:], sp)
			ids.Short = tc.short
			c := in.cfg
			spec := c.spec(ownFor(t, "lo"))
			// The timestamp is the program's clock: take it from the packet and
			// check it is now.
			tm, err := buildTemplate(spec, tc.short)
			require.NoError(t, err)
			sec := binary.BigEndian.Uint32(hbh[tm.TSSecOff:])
			frac := binary.BigEndian.Uint32(hbh[tm.TSFracOff:])
			ts := time.Unix(int64(sec), int64(frac)*1000)
			assert.WithinDuration(t, before, ts, 2*time.Second, "own entry timestamp is real time")
			assert.Less(t, frac, uint32(1_000_000), "fraction in microseconds")
			spec.Own.TimestampSec, spec.Own.TimestampFrac = sec, frac
			want, err := ioam6.AppendHBH(nil, spec, ids)
			require.NoError(t, err)
			assert.Equal(t, hex.Dump(want), hex.Dump(hbh))

			// and kernel/ioam6's decoder reads the IDs back
			opt, _, err := ioam6.FindIOAMOption(hbh)
			require.NoError(t, err)
			trace, err := ioam6.DecodeTrace(opt, ioam6.CarrierConfig{})
			require.NoError(t, err)
			require.True(t, trace.HasIDs)
			assert.Equal(t, ids, trace.IDs)
		})
	}
	st, err := in.Stats()
	require.NoError(t, err)
	assert.EqualValues(t, 2, st.PacketsTagged)
	assert.EqualValues(t, 2, st.RequestsParsed)
	assert.Positive(t, st.BytesAdded)
}

// Packets the program must leave alone, and why they are counted.
func TestIntegrationProgramUntouched(t *testing.T) {
	in := loadForTest(t, testConfig())
	ipv4 := packet(testDst, 8080, tcpPSH|tcpACK, request("traceparent: 00-"+tid+"-"+sid+"-01"))
	ipv4[12], ipv4[13] = 0x08, 0x00
	ipv4[ethLen] = 0x45
	for _, tc := range []struct {
		name string
		pkt  []byte
		stat func(Stats) uint64
	}{
		{"unsampled", packet(testDst, 8080, tcpPSH|tcpACK, request("traceparent: 00-"+tid+"-"+sid+"-00")), func(s Stats) uint64 { return s.TraceparentUnsampled }},
		{"missing", packet(testDst, 8080, tcpPSH|tcpACK, request("")), func(s Stats) uint64 { return s.TraceparentMissing }},
		{"version-01", packet(testDst, 8080, tcpPSH|tcpACK, request("traceparent: 01-"+tid+"-"+sid+"-01")), func(s Stats) uint64 { return s.TraceparentInvalid }},
		{"uppercase-hex", packet(testDst, 8080, tcpPSH|tcpACK, request("traceparent: 00-0AF7651916CD43DD8448EB211C80319C-"+sid+"-01")), func(s Stats) uint64 { return s.TraceparentInvalid }},
		{"zero-trace-id", packet(testDst, 8080, tcpPSH|tcpACK, request("traceparent: 00-00000000000000000000000000000000-"+sid+"-01")), func(s Stats) uint64 { return s.TraceparentInvalid }},
		{"truncated", packet(testDst, 8080, tcpPSH|tcpACK, "GET / HTTP/1.1\r\ntraceparent: 00-"+tid), func(s Stats) uint64 { return s.TraceparentInvalid }},
		{"in-body-only", packet(testDst, 8080, tcpPSH|tcpACK, "GET / HTTP/1.1\r\nHost: a\r\n\r\ntraceparent: 00-"+tid+"-"+sid+"-01\r\n"), func(s Stats) uint64 { return s.TraceparentMissing }},
		{"other-prefix", packet("fd00:9::2", 8080, tcpPSH|tcpACK, request("traceparent: 00-"+tid+"-"+sid+"-01")), func(s Stats) uint64 { return s.SkipUnconfigured }},
		{"other-port", packet(testDst, 9090, tcpPSH|tcpACK, request("traceparent: 00-"+tid+"-"+sid+"-01")), func(s Stats) uint64 { return s.SkipUnconfigured }},
		{"ipv4", ipv4, func(s Stats) uint64 { return s.SkipNotIPv6 }},
		{"not-http", packet(testDst, 8080, tcpPSH|tcpACK, "\x16\x03\x01 traceparent: 00-"+tid+"-"+sid+"-01\r\n"), func(s Stats) uint64 { return s.SkipNoState }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, err := in.Stats()
			require.NoError(t, err)
			out := run(t, in, tc.pkt)
			assert.Equal(t, tc.pkt, out, "packet unchanged")
			after, err := in.Stats()
			require.NoError(t, err)
			assert.Equal(t, tc.stat(before)+1, tc.stat(after), "counted")
			assert.Equal(t, before.PacketsTagged, after.PacketsTagged)
		})
	}
}

// Whitespace and header-name case are HTTP's; the flags byte's other bits
// do not matter; tag_unsampled tags unsampled requests.
func TestIntegrationProgramVariants(t *testing.T) {
	in := loadForTest(t, testConfig())
	for i, tp := range []string{
		"TraceParent:00-" + tid + "-" + sid + "-01",
		"traceparent: \t00-" + tid + "-" + sid + "-03",
		"traceparent: 00-" + tid + "-" + sid + "-09 ",
	} {
		out := run(t, in, packet(testDst, 8080, tcpPSH|tcpACK, request(tp)))
		assert.Greater(t, len(out), l4Off+tcpLen+len(request(tp)), "case %d tagged", i)
	}
	c := testConfig()
	c.TagUnsampled = true
	in2 := loadForTest(t, c)
	out := run(t, in2, packet(testDst, 8080, tcpPSH|tcpACK, request("traceparent: 00-"+tid+"-"+sid+"-00")))
	assert.Greater(t, len(out), l4Off+tcpLen+len(request("")), "tag_unsampled")
}

// The Go mirrors of bpf/insert.h have the object's sizes.
func TestObjectLayout(t *testing.T) {
	spec, err := loadSpec()
	require.NoError(t, err)
	for name, size := range map[string]int{
		"clt_ifcfg": binary.Size(bpfIfcfg{}), "clt_socks": binary.Size(bpfSock{}),
		"clt_prefixes": binary.Size(bpfLPMKey{}), "clt_rate": binary.Size(bpfRate{}),
	} {
		m := spec.Maps[name]
		require.NotNil(t, m, name)
		if name == "clt_prefixes" {
			assert.EqualValues(t, size, m.KeySize, name)
			continue
		}
		assert.EqualValues(t, size, m.ValueSize, fmt.Sprintf("%s value size vs Go mirror", name))
	}
	assert.EqualValues(t, numCounters, spec.Maps["clt_stats"].MaxEntries)
	assert.EqualValues(t, maxIfaces, spec.Maps["clt_ifcfg"].MaxEntries)
	assert.EqualValues(t, maxPrefixes, spec.Maps["clt_prefixes"].MaxEntries)
	assert.EqualValues(t, maxPorts, spec.Maps["clt_ports"].MaxEntries)
}

// ownFor reads the own entry's ids as New does.
func ownFor(t *testing.T, ifname string) ioam6.Node {
	t.Helper()
	id, err := sysctl.Default.NodeID()
	require.NoError(t, err)
	wide, err := sysctl.Default.WideNodeID()
	require.NoError(t, err)
	ic, err := sysctl.Default.Interface(ifname)
	require.NoError(t, err)
	return ownEntry(id, wide, ic.ID, ic.WideID)
}

// A non-GSO packet that would exceed the MTU with the header goes out
// untagged (counted), never dropped; one that fits is tagged.
func TestIntegrationProgramTooBig(t *testing.T) {
	in := loadForTest(t, testConfig())
	lo, err := net.InterfaceByName("lo")
	require.NoError(t, err)
	var c bpfIfcfg
	require.NoError(t, in.coll.Maps["clt_ifcfg"].Lookup(uint32(lo.Index), &c))
	c.MTU = 1500
	require.NoError(t, in.coll.Maps["clt_ifcfg"].Put(uint32(lo.Index), &c))
	hlen := int(c.Tmpl[0].Len)
	req := request("traceparent: 00-" + tid + "-" + sid + "-01")
	fill := func(l3 int) []byte {
		body := strings.Repeat("x", l3-ip6Len-tcpLen-len(req))
		return packet(testDst, 8080, tcpPSH|tcpACK, req+body)
	}
	full := fill(1500)
	out := run(t, in, full)
	assert.Equal(t, full, out, "full-size segment untouched")
	st, err := in.Stats()
	require.NoError(t, err)
	assert.EqualValues(t, 1, st.SkipTooBig)
	fits := fill(1500 - hlen)
	out = run(t, in, fits)
	assert.Len(t, out, len(fits)+hlen, "a segment of MTU - header is tagged")
	assert.Len(t, out, ethLen+1500)
}

// max_requests_per_second: requests over the cap in one second go out
// untagged and are counted.
func TestIntegrationProgramRateCap(t *testing.T) {
	c := testConfig()
	c.MaxRequestsPerSecond = 2
	in := loadForTest(t, c)
	pkt := packet(testDst, 8080, tcpPSH|tcpACK, request("traceparent: 00-"+tid+"-"+sid+"-01"))
	mono := func() int64 { // the program's window clock (bpf_ktime_get_ns)
		var ts unix.Timespec
		require.NoError(t, unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts))
		return ts.Sec
	}
	tagged := 0
	w0 := mono()
	for range 5 {
		if len(run(t, in, pkt)) > len(pkt) {
			tagged++
		}
	}
	windows := int(mono()-w0) + 1
	st, err := in.Stats()
	require.NoError(t, err)
	assert.GreaterOrEqual(t, tagged, 2)
	assert.LessOrEqual(t, tagged, min(5, 2*windows), "at most 2 per one-second window")
	assert.EqualValues(t, 5-tagged, st.RateLimited)
	assert.EqualValues(t, tagged, st.PacketsTagged)
}

// Mutated and random requests: the program never fails or drops; a packet
// leaves either unchanged or with exactly one header inserted after the
// IPv6 header and everything else intact, and a tagged packet's IDs are
// those of a well-formed sampled traceparent found in the payload.
func TestIntegrationProgramMutatedPayloads(t *testing.T) {
	in := loadForTest(t, testConfig())
	rng := rand.New(rand.NewPCG(1, 2))
	base := request("traceparent: 00-" + tid + "-" + sid + "-01")
	alphabet := []byte("\r\n :-0123456789abcdefABCDEFtraceparentGET /HTTP1.x\t")
	for i := range 3000 {
		p := []byte(base)
		switch i % 3 {
		case 0: // a few byte mutations
			for range 1 + rng.IntN(4) {
				p[rng.IntN(len(p))] = alphabet[rng.IntN(len(alphabet))]
			}
		case 1: // truncation
			p = p[:rng.IntN(len(p)+1)]
		default: // random bytes after a method
			p = append([]byte("GET "), make([]byte, rng.IntN(2200))...)
			for k := 4; k < len(p); k++ {
				p[k] = alphabet[rng.IntN(len(alphabet))]
			}
		}
		pkt := packet(testDst, 8080, tcpPSH|tcpACK, string(p))
		out := run(t, in, pkt)
		if len(out) == len(pkt) {
			require.Equal(t, pkt, out, "case %d: untagged packet unchanged", i)
			continue
		}
		hlen := len(out) - len(pkt)
		require.Equal(t, pkt[l4Off:], out[l4Off+hlen:], "case %d: segment intact", i)
		opt, _, err := ioam6.FindIOAMOption(out[l4Off : l4Off+hlen])
		require.NoError(t, err, "case %d", i)
		trace, err := ioam6.DecodeTrace(opt, ioam6.CarrierConfig{})
		require.NoError(t, err, "case %d", i)
		require.True(t, trace.HasIDs, "case %d", i)
		tp := "traceparent: 00-" + hex.EncodeToString(trace.IDs.TraceID[:]) + "-" + hex.EncodeToString(trace.IDs.SpanID[:]) + "-"
		if trace.IDs.Short {
			tp = "traceparent: 00-" + strings.Repeat("0", 16) + hex.EncodeToString(trace.IDs.TraceID[8:]) + "-" + hex.EncodeToString(trace.IDs.SpanID[:]) + "-"
		}
		assert.Contains(t, strings.ToLower(string(p)), strings.ToLower(tp), "case %d: tagged IDs come from the payload", i)
	}
	st, err := in.Stats()
	require.NoError(t, err)
	assert.Zero(t, st.ErrAdjust+st.ErrConfig)
	t.Logf("%+v", st)
}

// bpfRate mirrors struct clt_rate; only the size check uses it (Go never
// reads the rate map).
type bpfRate struct {
	Window uint64
	Count  uint64
}
