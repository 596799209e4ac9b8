//go:build linux

package clt_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sys/unix"

	"github.com/cross-layer-telemetry/clt/kernel/clt"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6nl"
	"github.com/cross-layer-telemetry/clt/kernel/netnstest"
)

const testNS = 123

var oss = ioam6.CarrierConfig{Carrier: ioam6.CarrierOSS}

// chain builds client -> r1 -> r2 -> server with IOAM namespace 123 and
// starts recorders on r1, r2 and the server.
func chain(t *testing.T) (*netnstest.Topology, map[string]*netnstest.Recorder) {
	t.Helper()
	topo := netnstest.Build(t, netnstest.Chain(netnstest.ChainOptions{Routers: 2, IOAMNamespace: testNS}))
	recs := map[string]*netnstest.Recorder{}
	for _, role := range []string{"r1", "r2", "server"} {
		r, err := topo.Node(role).Record(oss)
		if errors.Is(err, ioam6nl.ErrNoEventGroup) {
			netnstest.SkipUnavailable(t, "ioam6_events unavailable: %v", err)
		}
		require.NoError(t, err)
		recs[role] = r
	}
	return topo, recs
}

func newInjector(t *testing.T, mutate func(*clt.Config)) *clt.Injector {
	t.Helper()
	cfg := clt.DefaultConfig()
	one := uint32(1)
	cfg.NodeID = &one
	if mutate != nil {
		mutate(&cfg)
	}
	inj, err := clt.New(cfg, clt.Settings{})
	require.NoError(t, err)
	return inj
}

type spanKey struct {
	trace [16]byte
	span  [8]byte
}

func keyOf(sc trace.SpanContext) spanKey   { return spanKey{sc.TraceID(), sc.SpanID()} }
func keyOfEvent(e netnstest.Event) spanKey { return spanKey{e.IDs.TraceID, e.IDs.SpanID} }

// clientEgress is the IOAM id netnstest.Chain gives the client's c0: the
// sender writes it as the egress of its own entry, as a Linux transit node
// writes its outgoing device's id.
const clientEgress = 10

// wantHops is the path each reporter must show (node id, ingress, egress),
// following netnstest.Chain's numbering; the sender's own entry is first
// (no ingress: the packet originates there).
var wantHops = map[string][][3]uint32{
	"r1":     {{1, 0xFFFF, clientEgress}, {2, 21, 22}},
	"r2":     {{1, 0xFFFF, clientEgress}, {2, 21, 22}, {3, 31, 32}},
	"server": {{1, 0xFFFF, clientEgress}, {2, 21, 22}, {3, 31, 32}, {4, 40, 0xFFFF}},
}

func checkPath(t *testing.T, role string, e netnstest.Event) {
	t.Helper()
	require.NoError(t, e.Err, "%s event decode", role)
	require.True(t, e.HasIDs, "%s event has ids", role)
	assert.EqualValues(t, testNS, e.NamespaceID)
	want := wantHops[role]
	require.Len(t, e.Nodes, len(want), "%s path %v", role, e.NodeIDs())
	var prev uint64
	for i, n := range e.Nodes {
		assert.Equal(t, want[i], [3]uint32{n.NodeID, uint32(n.IngressIf), uint32(n.EgressIf)}, "%s hop %d", role, i)
		ts := uint64(n.TimestampSec)*1_000_000 + uint64(n.TimestampFrac)
		assert.GreaterOrEqual(t, ts, prev, "%s hop %d timestamp must not go back", role, i)
		prev = ts
		if i > 0 {
			assert.Less(t, n.TimestampFrac, uint32(1_000_000), "Linux writes microseconds")
			assert.EqualValues(t, 64-i, n.HopLimit, "%s hop %d hop limit", role, i)
		}
	}
}

func TestIntegrationHTTPAndUDPSpans(t *testing.T) {
	topo, recs := chain(t)
	client, server := topo.Node("client"), topo.Node("server")
	inj := newInjector(t, nil)

	// HTTP server in the server namespace.
	ln, err := server.Listen("tcp6", "[fd00:3::2]:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = fmt.Fprintf(w, "ok %s", r.URL.Path)
	}), ReadHeaderTimeout: 5 * time.Second}
	srvDone := make(chan struct{})
	go func() { defer close(srvDone); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); <-srvDone })

	base := &http.Transport{DialContext: func(ctx context.Context, nw, addr string) (net.Conn, error) {
		return client.DialContext(ctx, inj.Dialer(nil), nw, addr)
	}}
	tr := clt.NewTransport(base, inj)
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tracer := tp.Tracer("clt-test")

	var httpSpans []trace.SpanContext
	var reused []bool
	for i := range 3 {
		ctx, span := tracer.Start(t.Context(), fmt.Sprintf("GET /%d", i))
		// An application's own ClientTrace must still fire (composition).
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
			reused = append(reused, info.Reused)
		}})
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/%d", ln.Addr(), i), nil)
		require.NoError(t, err)
		resp, err := hc.Do(req)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		assert.Equal(t, fmt.Sprintf("ok /%d", i), string(body))
		assert.Equal(t, "HTTP/1.1", resp.Proto)
		span.End()
		httpSpans = append(httpSpans, span.SpanContext())
	}
	assert.Equal(t, []bool{false, true, true}, reused, "one keep-alive connection")

	// UDP: one datagram per span, each with its own span via cmsg.
	pc, err := server.ListenPacket("udp6", "[fd00:3::2]:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.Close() })
	var conn *net.UDPConn
	require.NoError(t, client.Do(func() (err error) {
		conn, err = net.ListenUDP("udp6", &net.UDPAddr{IP: net.ParseIP("fd00:1::1")})
		return err
	}))
	t.Cleanup(func() { _ = conn.Close() })
	dst := pc.LocalAddr().(*net.UDPAddr)
	var udpSpans []trace.SpanContext
	for i := range 4 {
		ctx, span := tracer.Start(t.Context(), fmt.Sprintf("udp %d", i))
		_, err := inj.WriteMsgUDP(ctx, conn, []byte(fmt.Sprintf("datagram %d", i)), dst)
		require.NoError(t, err)
		span.End()
		udpSpans = append(udpSpans, span.SpanContext())
	}
	// 64-bit trace id (upper half zero), as Jaeger clients may send.
	short := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{8: 0x01, 9: 0x23, 10: 0x45, 11: 0x67, 12: 0x89, 13: 0xab, 14: 0xcd, 15: 0xef},
		SpanID:     trace.SpanID{0x5a, 0x5a, 1, 2, 3, 4, 5, 6},
		TraceFlags: trace.FlagsSampled,
	})
	_, err = inj.WriteMsgUDP(trace.ContextWithSpanContext(t.Context(), short), conn, []byte("short"), dst)
	require.NoError(t, err)
	udpSpans = append(udpSpans, short)
	got := make([]byte, 64)
	require.NoError(t, pc.SetReadDeadline(time.Now().Add(5*time.Second)))
	for range udpSpans {
		_, _, err := pc.ReadFrom(got)
		require.NoError(t, err)
	}

	known := map[spanKey]string{}
	order := map[spanKey]int{} // the order in which the spans sent
	for i, sc := range httpSpans {
		known[keyOf(sc)] = fmt.Sprintf("http %d", i)
		order[keyOf(sc)] = len(order)
	}
	for i, sc := range udpSpans {
		known[keyOf(sc)] = fmt.Sprintf("udp %d", i)
		order[keyOf(sc)] = len(order)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for role, rec := range recs {
		evs, ok := rec.WaitFor(ctx, func(evs []netnstest.Event) bool {
			seen := map[spanKey]int{}
			for _, e := range evs {
				seen[keyOfEvent(e)]++
			}
			for k := range known {
				if seen[k] == 0 {
					return false
				}
			}
			return true
		})
		require.True(t, ok, "%s: not every span reported (%d events)", role, len(evs))
		perSpan := map[spanKey]int{}
		kinds := map[string]int{} // own entries checked, by transport
		last := 0
		for _, e := range evs {
			// Each packet carries the span of the request that was current
			// when it left: in event order the spans never go back.
			k := order[keyOfEvent(e)]
			assert.GreaterOrEqual(t, k, last, "%s: span order", role)
			last = max(last, k)
			name, isKnown := known[keyOfEvent(e)]
			require.True(t, isKnown, "%s: event with unknown ids %x/%x", role, e.IDs.TraceID, e.IDs.SpanID)
			perSpan[keyOfEvent(e)]++
			// checkPath asserts hop 0's egress id for TCP (the SYN's
			// option from ControlContext, then SetConn) and UDP (cmsg).
			checkPath(t, role, e)
			kinds[name[:strings.IndexByte(name, ' ')]]++
			if name == "udp 4" {
				assert.True(t, e.IDs.Short, "64-bit trace id travels short")
			}
		}
		for i, sc := range udpSpans {
			assert.Equal(t, 1, perSpan[keyOf(sc)], "%s: udp %d reported once", role, i)
		}
		assert.Positive(t, kinds["http"], "%s: tcp own entries checked", role)
		assert.Positive(t, kinds["udp"], "%s: udp own entries checked", role)
		assert.Zero(t, rec.Stats().Overruns, role)
	}
	st := inj.Stats()
	assert.Zero(t, st.SkippedTotal(), "%+v", st)
	assert.Zero(t, st.EgressUnknown, "%+v", st)
	assert.GreaterOrEqual(t, st.Applied, uint64(3+len(udpSpans)))
}

func TestIntegrationOverflowKeepsIDs(t *testing.T) {
	topo, recs := chain(t)
	client, server := topo.Node("client"), topo.Node("server")
	inj := newInjector(t, func(c *clt.Config) { c.HopSlots = 1 }) // r1 fits; r2 and server overflow

	pc, err := server.ListenPacket("udp6", "[fd00:3::2]:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.Close() })
	var conn *net.UDPConn
	require.NoError(t, client.Do(func() (err error) {
		conn, err = net.DialUDP("udp6", nil, pc.LocalAddr().(*net.UDPAddr))
		return err
	}))
	t.Cleanup(func() { _ = conn.Close() })
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("t").Start(t.Context(), "overflow")
	span.End()
	// Connected socket, sticky option this time.
	require.NoError(t, inj.SetConn(conn, span.SpanContext()))
	_, err = conn.Write([]byte("x"))
	require.NoError(t, err)
	_ = ctx

	wctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	want := keyOf(span.SpanContext())
	for role, rec := range recs {
		evs, ok := rec.WaitFor(wctx, func(evs []netnstest.Event) bool { return len(evs) > 0 })
		require.True(t, ok, role)
		require.Len(t, evs, 1, role)
		e := evs[0]
		require.NoError(t, e.Err)
		assert.Equal(t, want, keyOfEvent(e), "%s: ids intact despite overflow", role)
		// Only the sender and r1 wrote; r2 and the server report r1's
		// data, which shows them missing: the newest node is not theirs.
		assert.Equal(t, []uint32{1, 2}, e.NodeIDs(), role)
		missing := map[string]bool{"r1": false, "r2": true, "server": true}[role]
		localID := map[string]uint32{"r1": 2, "r2": 3, "server": 4}[role]
		assert.Equal(t, missing, e.Nodes[len(e.Nodes)-1].NodeID != localID, role)
	}
}

func TestIntegrationIPv4AndPermissionFailOpen(t *testing.T) {
	netnstest.RequirePrivileged(t)
	// IPv4 peer on loopback: skipped and counted, the data still flows.
	inj := newInjector(t, nil)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, _ = io.Copy(io.Discard, c)
			_ = c.Close()
		}
	}()
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled})
	ctx := trace.ContextWithSpanContext(t.Context(), sc)
	c, err := inj.Dialer(nil).DialContext(ctx, "tcp4", ln.Addr().String())
	require.NoError(t, err)
	require.NoError(t, inj.SetConn(c, sc))
	_, err = c.Write([]byte("hello"))
	require.NoError(t, err)
	require.NoError(t, c.Close())
	assert.EqualValues(t, 2, inj.Stats().Skipped[clt.ReasonIPv4])

	strict := newInjector(t, func(c *clt.Config) { c.Strict = true })
	_, err = strict.Dialer(nil).DialContext(ctx, "tcp4", ln.Addr().String())
	require.ErrorIs(t, err, clt.ErrSkipped)
}

// TestIntegrationNoCapNetRaw drops CAP_NET_RAW from one locked OS thread
// (capabilities are per thread in Linux) and checks the real EPERM path:
// counted and skipped, or an error in strict mode.
func TestIntegrationNoCapNetRaw(t *testing.T) {
	netnstest.RequirePrivileged(t)
	conn, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		netnstest.SkipUnavailable(t, "no IPv6 loopback: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	lenient := newInjector(t, nil)
	strict := newInjector(t, func(c *clt.Config) { c.Strict = true })
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled})
	ctx := trace.ContextWithSpanContext(t.Context(), sc)
	dst := conn.LocalAddr().(*net.UDPAddr)

	type result struct{ sticky, cmsg, strictErr, capErr error }
	done := make(chan result, 1)
	go func() {
		// The thread keeps its reduced capabilities and is discarded when
		// this goroutine exits locked.
		runtime.LockOSThread()
		var r result
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if r.capErr = unix.Capget(&hdr, &data[0]); r.capErr == nil {
			data[0].Effective &^= 1 << unix.CAP_NET_RAW
			r.capErr = unix.Capset(&hdr, &data[0])
		}
		if r.capErr == nil {
			r.sticky = lenient.SetConn(conn, sc)
			_, r.cmsg = lenient.WriteMsgUDP(ctx, conn, []byte("x"), dst)
			r.strictErr = strict.SetConn(conn, sc)
		}
		done <- r
	}()
	r := <-done
	require.NoError(t, r.capErr)
	require.NoError(t, r.sticky, "fail-open: no error")
	require.NoError(t, r.cmsg, "fail-open: the datagram is sent without the option")
	require.ErrorIs(t, r.strictErr, clt.ErrSkipped)
	require.ErrorIs(t, r.strictErr, syscall.EPERM)
	st := lenient.Stats()
	assert.EqualValues(t, 2, st.Skipped[clt.ReasonPermission], "%+v", st)
	assert.Zero(t, st.Applied)
	// The datagram arrived (without the option).
	buf := make([]byte, 8)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(2*time.Second)))
	n, _, err := conn.ReadFromUDP(buf)
	require.NoError(t, err)
	assert.Equal(t, "x", string(buf[:n]))
}

// TestIntegrationEgressLookup runs the real lookup on a socket in the
// client namespace from a thread of the test's own namespace (the
// SIOCGSKNS + setns path) and from inside the namespace.
func TestIntegrationEgressLookup(t *testing.T) {
	topo := netnstest.Build(t, netnstest.Chain(netnstest.ChainOptions{Routers: 1, IOAMNamespace: testNS}))
	client := topo.Node("client")
	var conn *net.UDPConn
	require.NoError(t, client.Do(func() (err error) {
		conn, err = net.ListenUDP("udp6", &net.UDPAddr{IP: net.ParseIP("fd00:1::1")})
		return err
	}))
	t.Cleanup(func() { _ = conn.Close() })
	rc, err := conn.SyscallConn()
	require.NoError(t, err)
	lookup := func(dst netip.Addr) (id uint16, wide uint32, err error) {
		cerr := rc.Control(func(fd uintptr) { id, wide, err = clt.LookupEgress(int(fd), dst) })
		require.NoError(t, cerr)
		return id, wide, err
	}
	tests := []struct {
		dst      string
		id       uint16
		wide     uint32
		inClient bool
	}{
		{"fd00:2::2", clientEgress, 0x10000 + clientEgress, false}, // routed via r1, out of c0
		{"fd00:2::2", clientEgress, 0x10000 + clientEgress, true},
		{"fd00:1::2", clientEgress, 0x10000 + clientEgress, false},       // on-link
		{"fe80::1%c0", clientEgress, 0x10000 + clientEgress, false},      // zone names the device
		{"::1", ioam6.IfIDUnavailable, ioam6.WideIfIDUnavailable, false}, // lo has no ids
	}
	for _, tc := range tests {
		var (
			id   uint16
			wide uint32
		)
		if tc.inClient {
			require.NoError(t, client.Do(func() (err error) { id, wide, err = lookup(netip.MustParseAddr(tc.dst)); return err }))
		} else {
			id, wide, err = lookup(netip.MustParseAddr(tc.dst))
			require.NoError(t, err, tc.dst)
		}
		assert.Equal(t, tc.id, id, tc.dst)
		assert.Equal(t, tc.wide, wide, tc.dst)
	}
	_, _, err = lookup(netip.MustParseAddr("fe80::1%nosuch0"))
	require.Error(t, err, "unknown zone device")
}
