package clt_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/cross-layer-telemetry/clt/kernel/clt"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
	"github.com/cross-layer-telemetry/clt/kernel/sysctl"
)

// ownEntry decodes the sender's own entry (path index 0) from a header.
func ownEntry(t *testing.T, hbh []byte) ioam6.Node {
	t.Helper()
	opt, _, err := ioam6.FindIOAMOption(hbh)
	require.NoError(t, err)
	tr, err := ioam6.DecodeTrace(opt, ioam6.CarrierConfig{})
	require.NoError(t, err)
	require.Equal(t, 1, tr.Hops())
	n, ok := tr.Newest()
	require.True(t, ok)
	return n
}

// fakeEgress answers lookups from a table and counts them.
type fakeEgress struct {
	mu    sync.Mutex
	ids   map[netip.Addr][2]uint32
	calls map[netip.Addr]int
}

func (f *fakeEgress) lookup(fd int, dst netip.Addr) (uint16, uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fd < 0 {
		return 0, 0, errors.New("no socket")
	}
	f.calls[dst]++
	v, ok := f.ids[dst]
	if !ok {
		return 0, 0, errors.New("no route")
	}
	return uint16(v[0]), v[1], nil
}

func (f *fakeEgress) count(dst netip.Addr) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[dst]
}

func TestOwnEntryEgressLookupCached(t *testing.T) {
	cfg := clt.DefaultConfig()
	cfg.TraceType |= ioam6.BitWideIfIDs // the wide id travels too
	inj, err := clt.New(cfg, clt.Settings{})
	require.NoError(t, err)
	var got [][]byte
	inj.SetHopOptsFunc(func(_ int, hbh []byte) error { got = append(got, append([]byte(nil), hbh...)); return nil })
	conn := udpConn(t, "udp6", "::1")
	peer := conn.RemoteAddr().(*net.UDPAddr).AddrPort().Addr()
	fake := &fakeEgress{ids: map[netip.Addr][2]uint32{peer: {7, 0x70007}}, calls: map[netip.Addr]int{}}
	inj.SetEgressLookupFunc(fake.lookup)

	for i := range 5 {
		require.NoError(t, inj.SetConn(conn, span(byte(i))))
		// Untraced requests in between neither look up nor disturb the cache.
		require.NoError(t, inj.SetConn(conn, trace.SpanContext{}))
	}
	assert.Equal(t, 1, fake.count(peer), "one lookup per destination, not per request")
	var tagged int
	for _, hbh := range got {
		if len(hbh) == 0 {
			continue // a clear
		}
		tagged++
		n := ownEntry(t, hbh)
		assert.EqualValues(t, 7, n.EgressIf)
		assert.EqualValues(t, 0x70007, n.WideEgressIf)
		assert.EqualValues(t, ioam6.IfIDUnavailable, n.IngressIf, "the packet originates here")
		assert.EqualValues(t, ioam6.WideIfIDUnavailable, n.WideIngressIf)
	}
	assert.Equal(t, 5, tagged)
	assert.Zero(t, inj.Stats().EgressUnknown)

	// UDP per datagram: the same destination hits the cache; a new one
	// without a route is looked up once, counted once, and sent with 0xFFFF.
	rx, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rx.Close() })
	tx, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Close() })
	ctx := trace.ContextWithSpanContext(context.Background(), span(9))
	for range 3 {
		_, err := inj.WriteMsgUDP(ctx, tx, []byte("x"), rx.LocalAddr().(*net.UDPAddr))
		require.NoError(t, err)
	}
	assert.Equal(t, 1, fake.count(peer), "::1 is still cached")

	unrouted := netip.MustParseAddr("fd00:dead::1")
	for range 3 {
		require.NoError(t, inj.SetConn(fakeConn{conn, &net.UDPAddr{IP: unrouted.AsSlice(), Port: 9}}, span(1)))
	}
	assert.Equal(t, 1, fake.count(unrouted), "failures are cached too")
	assert.EqualValues(t, 1, inj.Stats().EgressUnknown)
	n := ownEntry(t, got[len(got)-1])
	assert.EqualValues(t, ioam6.IfIDUnavailable, n.EgressIf, "a failed lookup keeps 0xFFFF")
	assert.EqualValues(t, ioam6.WideIfIDUnavailable, n.WideEgressIf)

	// AppendHBH has no socket: no egress.
	hbh, err := inj.AppendHBH(nil, span(1))
	require.NoError(t, err)
	assert.EqualValues(t, ioam6.IfIDUnavailable, ownEntry(t, hbh).EgressIf)
}

// fakeConn reports another peer for a real socket.
type fakeConn struct {
	*net.UDPConn
	peer net.Addr
}

func (c fakeConn) RemoteAddr() net.Addr { return c.peer }

func TestOwnEntryEgressConcurrent(t *testing.T) {
	inj, err := clt.New(clt.DefaultConfig(), clt.Settings{})
	require.NoError(t, err)
	inj.SetHopOptsFunc(func(int, []byte) error { return nil })
	conn := udpConn(t, "udp6", "::1")
	peer := conn.RemoteAddr().(*net.UDPAddr).AddrPort().Addr()
	fake := &fakeEgress{ids: map[netip.Addr][2]uint32{peer: {3, 3}}, calls: map[netip.Addr]int{}}
	inj.SetEgressLookupFunc(fake.lookup)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				assert.NoError(t, inj.SetConn(conn, span(byte(g*50+i))))
			}
		})
	}
	wg.Wait()
	// Concurrent first misses may each look up; later requests never do.
	assert.LessOrEqual(t, fake.count(peer), 4)
	assert.GreaterOrEqual(t, fake.count(peer), 1)
}

// sysctlTree is a /proc/sys stand-in holding the two node id sysctls.
func sysctlTree(t *testing.T, id uint32, wide uint64) *sysctl.Sysctl {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "net", "ipv6")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ioam6_id"), []byte(strconv.FormatUint(uint64(id), 10)+"\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ioam6_id_wide"), []byte(strconv.FormatUint(wide, 10)+"\n"), 0o644))
	return &sysctl.Sysctl{Root: root}
}

// TestOwnEntryNodeIDs: hop 0's short and wide ids come from Config, else
// from net.ipv6.ioam6_id and ioam6_id_wide (through kernel/sysctl), else are
// "not available". The wide id used to be all ones whatever the node said.
func TestOwnEntryNodeIDs(t *testing.T) {
	cfg := clt.DefaultConfig()
	cfg.TraceType = ioam6.BitHopLimitNodeID | ioam6.BitWideHopLimitNodeID
	own := func(cfg clt.Config, sc *sysctl.Sysctl) ioam6.Node {
		t.Helper()
		inj, err := clt.New(cfg, clt.Settings{Sysctl: sc})
		require.NoError(t, err)
		hbh, err := inj.AppendHBH(nil, span(1))
		require.NoError(t, err)
		return ownEntry(t, hbh)
	}
	n := own(cfg, sysctlTree(t, 5, 0x1000005))
	assert.EqualValues(t, 5, n.NodeID, "net.ipv6.ioam6_id")
	assert.EqualValues(t, 0x1000005, n.WideNodeID, "net.ipv6.ioam6_id_wide")
	assert.EqualValues(t, 64, n.WideHopLimit)

	id, wide := uint32(7), uint64(0xABCDEF01234567)
	cfg.NodeID, cfg.NodeIDWide = &id, &wide
	n = own(cfg, sysctlTree(t, 5, 0x1000005))
	assert.EqualValues(t, 7, n.NodeID, "config wins")
	assert.EqualValues(t, wide, n.WideNodeID, "config wins")

	cfg.NodeID, cfg.NodeIDWide = nil, nil
	n = own(cfg, &sysctl.Sysctl{Root: t.TempDir()})
	assert.EqualValues(t, ioam6.NodeIDUnavailable, n.NodeID, "unreadable sysctl")
	assert.EqualValues(t, ioam6.WideNodeIDUnavailable, n.WideNodeID, "unreadable sysctl")
}
