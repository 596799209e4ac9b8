package bpfinsert

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sys/unix"

	"github.com/cross-layer-telemetry/clt/kernel/clt"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
	"github.com/cross-layer-telemetry/clt/kernel/netnstest"
)

// bpffs mounts a private bpf filesystem for the test (the machine's
// /sys/fs/bpf is left alone) and returns its directory.
func bpffs(t *testing.T) string {
	t.Helper()
	netnstest.RequirePrivileged(t)
	dir := t.TempDir()
	require.NoError(t, unix.Mount("bpf", dir, "bpf", 0, "mode=0700"), "mount bpffs")
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// The agent's pin: replaces a stale one, is opened by an application,
// which tags a socket before connect (the handshake carries the IDs) and
// owns its tagging (a request without traceparent does not clear it); Close
// removes the pin and the application sees it gone.
func TestIntegrationSocketMapPin(t *testing.T) {
	defer func(d time.Duration) { socketMapRecheck = d }(socketMapRecheck)
	socketMapRecheck = 0
	pin := filepath.Join(bpffs(t), "clt", "sockets")
	// A crashed agent's pin, of another map.
	require.NoError(t, os.MkdirAll(filepath.Dir(pin), 0o755))
	stale, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	require.NoError(t, err)
	require.NoError(t, stale.Pin(pin))
	require.NoError(t, stale.Close())
	_, err = OpenSocketMap(pin)
	require.ErrorContains(t, err, "not an inserter's socket map")

	l := newLab(t)
	cfg := labConfig()
	cfg.SocketMapPin = pin
	in := l.attach(t, cfg)
	sm, err := OpenSocketMap(pin)
	require.NoError(t, err)
	defer sm.Close()
	require.True(t, sm.Loaded())

	_, ids := traceparent(30, "01")
	d := &net.Dialer{Control: func(network, address string, c syscall.RawConn) error {
		cookie, err := SocketCookie(c)
		if err != nil {
			return err
		}
		return sm.SetSocket(cookie, ids)
	}}
	addr := net.JoinHostPort(l.topo.Node("server").Addr("s0").String(), strconv.Itoa(port))
	var conn net.Conn
	require.NoError(t, l.client.Do(func() (err error) { conn, err = d.DialContext(t.Context(), "tcp", addr); return err }))
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	evs, ok := l.rec.WaitFor(ctx, func(evs []netnstest.Event) bool { return len(evs) >= 2 })
	require.True(t, ok, "SYN and handshake ACK tagged before any byte is written; got %d events", len(evs))
	for _, e := range evs {
		assert.Equal(t, ids, e.IDs)
	}
	_, err = conn.Write([]byte("GET /api HTTP/1.1\r\nHost: s\r\n\r\n"))
	require.NoError(t, err)
	evs, ok = l.rec.WaitFor(ctx, func(evs []netnstest.Event) bool { return len(evs) >= 3 })
	require.True(t, ok, "a request without traceparent keeps the application's IDs")
	for _, e := range evs {
		assert.Equal(t, ids, e.IDs)
	}
	st, err := in.Stats()
	require.NoError(t, err)
	assert.Zero(t, st.RequestsParsed, "an API socket's requests are not parsed")

	require.NoError(t, in.Close())
	_, err = os.Stat(pin)
	assert.ErrorIs(t, err, os.ErrNotExist, "pin removed at stop")
	assert.False(t, sm.Loaded())
	require.ErrorIs(t, sm.SetSocket(1, ids), errNotLoaded)
	require.NoError(t, sm.ClearSocket(1), "nothing to clear without a program")

	// A new inserter pins a new map: the application's SocketMap follows.
	in2 := l.attach(t, cfg)
	assert.True(t, sm.Loaded(), "reopened from the new pin")
	require.NoError(t, in2.Close())
}

func TestSocketMapPinConfig(t *testing.T) {
	c := labConfig()
	for _, p := range []string{"relative/pin", "/sys/fs/bpf/../x", "/sys/fs/bpf/clt/"} {
		c.SocketMapPin = p
		assert.ErrorContains(t, c.Validate(), "socket_map_pin", p)
	}
	c.SocketMapPin = DefaultSocketMapPin
	assert.NoError(t, c.Validate())
}

// kernel/clt's Transport with the pinned map: every request's packets, and
// the handshake, carry the request span's IDs without a socket option and
// without a traceparent header; the program parses none of them.
func TestIntegrationTransportSocketMap(t *testing.T) {
	pin := filepath.Join(bpffs(t), "sockets")
	l := newLab(t)
	cfg := labConfig()
	cfg.SocketMapPin = pin
	in := l.attach(t, cfg)
	sm, err := OpenSocketMap(pin)
	require.NoError(t, err)
	defer sm.Close()
	inj, err := clt.New(clt.DefaultConfig(), clt.Settings{SocketMap: sm})
	require.NoError(t, err)
	base := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return l.client.DialContext(ctx, inj.Dialer(nil), network, addr)
	}}
	tr := clt.NewTransport(base, inj)
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	want := map[ioam6.IDs]bool{}
	var order []ioam6.IDs
	for i := range 3 {
		sc := trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{0: 0x0c, 15: byte(i + 1)}, SpanID: trace.SpanID{0: 0x5c, 7: byte(i + 1)}, TraceFlags: trace.FlagsSampled,
		})
		want[clt.SpanIDs(sc)] = true
		order = append(order, clt.SpanIDs(sc))
		req, err := http.NewRequestWithContext(trace.ContextWithSpanContext(t.Context(), sc), http.MethodGet, l.url+"/transport", nil)
		require.NoError(t, err)
		resp, err := hc.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		require.NoError(t, resp.Body.Close())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	evs, ok := l.rec.WaitFor(ctx, func(evs []netnstest.Event) bool {
		return len(evs) > 0 && evs[len(evs)-1].IDs == order[2]
	})
	require.True(t, ok, "the last request's IDs at r1; got %d events", len(evs))
	var seen []ioam6.IDs
	for _, e := range evs {
		require.True(t, want[e.IDs], "only the requests' spans: %x", e.IDs.SpanID)
		if len(seen) == 0 || seen[len(seen)-1] != e.IDs {
			seen = append(seen, e.IDs)
		}
	}
	assert.Equal(t, order, seen, "each request's packets carry its span, in order (the handshake the first one's)")
	st := inj.Stats()
	assert.EqualValues(t, 4, st.Mapped, "dial + 3 requests through the map")
	assert.Equal(t, st.Applied, st.Mapped, "no socket option")
	ps, err := in.Stats()
	require.NoError(t, err)
	assert.Zero(t, ps.RequestsParsed, "the application owns its socket")
	assert.Zero(t, ps.SkipExtHeader, "no sticky option on the wire")
}

// BenchmarkIntegrationSocketMapSet: what tagging a request through the
// pinned map costs the application (SO_COOKIE + one map update, as
// kernel/clt does per request), beside the setsockopt(IPV6_HOPOPTS) it
// replaces, on the same connected socket.
func BenchmarkIntegrationSocketMapSet(b *testing.B) {
	pin := filepath.Join(bpffsB(b), "sockets")
	in := loadForTest(b, testConfig())
	require.NoError(b, in.pin(pin))
	defer func() { _ = in.unpin() }()
	sm, err := OpenSocketMap(pin)
	require.NoError(b, err)
	defer sm.Close()
	ln, err := net.Listen("tcp6", "[::1]:0")
	require.NoError(b, err)
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err == nil {
			_, _ = io.Copy(io.Discard, c)
			_ = c.Close()
		}
	}()
	conn, err := net.Dial("tcp6", ln.Addr().String())
	require.NoError(b, err)
	defer func() { _ = conn.Close(); <-done }()
	rc, err := conn.(*net.TCPConn).SyscallConn()
	require.NoError(b, err)
	_, ids := traceparent(40, "01")
	cookie, err := SocketCookie(rc)
	require.NoError(b, err)
	b.Run("cookie", func(b *testing.B) {
		for b.Loop() {
			if _, err := SocketCookie(rc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("map-update", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			ids.SpanID[7] = byte(i)
			if err := sm.SetSocket(cookie, ids); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("socket-map", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			cookie, err := SocketCookie(rc)
			if err != nil {
				b.Fatal(err)
			}
			ids.SpanID[7] = byte(i)
			if err := sm.SetSocket(cookie, ids); err != nil {
				b.Fatal(err)
			}
		}
	})
	hbh, err := testConfig().spec(ioam6.Node{}).Len()
	require.NoError(b, err)
	opt, err := ioam6.AppendHBH(nil, testConfig().spec(ioam6.Node{}), ids)
	require.NoError(b, err)
	require.Len(b, opt, hbh)
	b.Run("setsockopt", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			opt[len(opt)-1] = byte(i)
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptString(int(fd), unix.IPPROTO_IPV6, unix.IPV6_HOPOPTS, string(opt))
			}); err != nil || serr != nil {
				b.Fatal(err, serr)
			}
		}
	})
}

func bpffsB(b *testing.B) string {
	b.Helper()
	netnstest.RequirePrivileged(b)
	dir := b.TempDir()
	require.NoError(b, unix.Mount("bpf", dir, "bpf", 0, "mode=0700"), "mount bpffs")
	b.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// BenchmarkIntegrationTransportModes: kernel/clt's Transport through r1
// with the span set by the socket option (sticky) or through the pinned
// map (map), beside untagged requests (plain), in interleaved rounds of
// b.N/10 requests per mode, concurrency 1; requests/s and the process's
// CPU per request (client, server and the kernel work charged to them).
func BenchmarkIntegrationTransportModes(b *testing.B) {
	pin := filepath.Join(bpffsB(b), "sockets")
	l := newLab(b)
	if err := l.rec.Close(); err != nil { // no ioam6_events listener: r1 still processes IOAM
		b.Fatal(err)
	}
	cfg := labConfig()
	cfg.SocketMapPin = pin
	l.attach(b, cfg)
	sm, err := OpenSocketMap(pin)
	require.NoError(b, err)
	defer sm.Close()
	client := func(set clt.Settings) (*http.Client, *clt.Injector) {
		inj, err := clt.New(clt.DefaultConfig(), set)
		require.NoError(b, err)
		base := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return l.client.DialContext(ctx, inj.Dialer(nil), network, addr)
		}}
		tr := clt.NewTransport(base, inj)
		b.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 10 * time.Second}, inj
	}
	plain, _ := client(clt.Settings{})
	sticky, stickyInj := client(clt.Settings{})
	mapped, mapInj := client(clt.Settings{SocketMap: sm})
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{0: 0x0d, 15: 1}, SpanID: trace.SpanID{0: 0x5d, 7: 1}, TraceFlags: trace.FlagsSampled})
	get := func(hc *http.Client, tagged bool) {
		ctx := b.Context()
		if tagged {
			ctx = trace.ContextWithSpanContext(ctx, sc)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.url+"/bench", nil)
		if err != nil {
			b.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	modes := []struct {
		name   string
		hc     *http.Client
		tagged bool
	}{{"plain", plain, false}, {"sticky", sticky, true}, {"map", mapped, true}}
	for _, m := range modes {
		get(m.hc, m.tagged) // dial
	}
	var wall, cpu [3]time.Duration
	const rounds = 10
	b.ResetTimer()
	for r := range rounds {
		n := b.N / rounds
		if r < b.N%rounds {
			n++
		}
		for k := range modes {
			i := (k + r) % len(modes)
			t0, c0 := time.Now(), processCPU()
			for range n {
				get(modes[i].hc, modes[i].tagged)
			}
			wall[i] += time.Since(t0)
			cpu[i] += processCPU() - c0
		}
	}
	b.StopTimer()
	for i, m := range modes {
		b.ReportMetric(float64(b.N)/wall[i].Seconds(), m.name+"-req/s")
		b.ReportMetric(float64(cpu[i].Nanoseconds())/1e3/float64(b.N), m.name+"-cpu-µs/req")
	}
	b.ReportMetric(wall[1].Seconds()/wall[2].Seconds(), "map/sticky-req/s")
	if st := mapInj.Stats(); st.Mapped == 0 || st.SkippedTotal() != 0 {
		b.Fatalf("map mode: %+v", st)
	}
	if st := stickyInj.Stats(); st.Mapped != 0 || st.Applied == 0 || st.SkippedTotal() != 0 {
		b.Fatalf("sticky mode: %+v", st)
	}
}

func processCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// The return path: a server behind clt.Handler, with an inserter on its own
// host (the clients' prefix, every port) and the pinned map, answers curl;
// r1 sees the response's packets with the server span's IDs, and nothing
// from the untagged client.
func TestIntegrationReturnPathHandler(t *testing.T) {
	requireTool(t, "curl")
	pin := filepath.Join(bpffs(t), "sockets")
	topo := netnstest.Build(t, netnstest.Chain(netnstest.ChainOptions{Routers: 1, IOAMNamespace: 123}))
	srvNode := topo.Node("server")
	rec, err := topo.Node("r1").Record(ioam6.CarrierConfig{})
	require.NoError(t, err)
	defer rec.Close()
	cfg := DefaultConfig()
	cfg.Interfaces = []string{"s0"}
	cfg.Prefixes = []string{"fd00:1::/64"}
	cfg.ClampMSS = false
	cfg.SocketMapPin = pin
	var in *Inserter
	require.NoError(t, srvNode.Do(func() (err error) { in, err = New(cfg, nil); return err }))
	defer in.Close()
	sm, err := OpenSocketMap(pin)
	require.NoError(t, err)
	defer sm.Close()
	inj, err := clt.New(clt.DefaultConfig(), clt.Settings{SocketMap: sm})
	require.NoError(t, err)
	serverSpan := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{0: 0x0e, 15: 7}, SpanID: trace.SpanID{0: 0x5e, 7: 7}, TraceFlags: trace.FlagsSampled})
	tracing := func(next http.Handler) http.Handler { // stands in for otelhttp
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(trace.ContextWithSpanContext(r.Context(), serverSpan)))
		})
	}
	ln, err := srvNode.Listen("tcp", net.JoinHostPort(srvNode.Addr("s0").String(), strconv.Itoa(port)))
	require.NoError(t, err)
	hs := &http.Server{ReadHeaderTimeout: 10 * time.Second, ConnContext: clt.ConnContext,
		Handler: tracing(inj.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(make([]byte, 4000)) })))}
	done := make(chan struct{})
	go func() { defer close(done); _ = hs.Serve(ln) }()
	defer func() { _ = hs.Close(); <-done }()

	url := "http://" + net.JoinHostPort(srvNode.Addr("s0").String(), strconv.Itoa(port)) + "/"
	out, err := topo.Node("client").Command("curl", "-sS", "-m", "10", "-o", "/dev/null", url).CombinedOutput()
	require.NoError(t, err, "curl: %s", out)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	evs, ok := rec.WaitFor(ctx, func(evs []netnstest.Event) bool { return len(evs) >= 3 })
	require.True(t, ok, "the response's packets at r1; got %d", len(evs))
	for _, e := range evs {
		assert.Equal(t, clt.SpanIDs(serverSpan), e.IDs, "only the server span, on the return path")
		require.NotEmpty(t, e.Nodes)
		assert.EqualValues(t, 30, e.Nodes[0].EgressIf, "own entry: the server's s0")
	}
	assert.EqualValues(t, 1, inj.Stats().Mapped)
}

// UDP: datagrams of a socket whose IDs were set through the map carry them
// (next header UDP, the payload intact); another socket's do not, nor those
// to an unconfigured port.
func TestIntegrationUDPSocketMap(t *testing.T) {
	l := newLab(t)
	in := l.attach(t, labConfig())
	srv := l.topo.Node("server")
	pc, err := srv.ListenPacket("udp", net.JoinHostPort(srv.Addr("s0").String(), strconv.Itoa(port)))
	require.NoError(t, err)
	defer pc.Close()
	sink, err := srv.ListenPacket("udp", net.JoinHostPort(srv.Addr("s0").String(), "9999")) // no ICMP errors
	require.NoError(t, err)
	defer sink.Close()
	dial := func(p int) (net.Conn, uint64) {
		c, err := l.client.DialContext(t.Context(), nil, "udp", net.JoinHostPort(srv.Addr("s0").String(), strconv.Itoa(p)))
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		rc, err := c.(*net.UDPConn).SyscallConn()
		require.NoError(t, err)
		cookie, err := SocketCookie(rc)
		require.NoError(t, err)
		return c, cookie
	}
	tagged, cookie := dial(port)
	_, ids := traceparent(50, "01")
	require.NoError(t, in.SetSocket(cookie, ids))
	plain, _ := dial(port)
	other, otherCookie := dial(9999)
	require.NoError(t, in.SetSocket(otherCookie, ids))

	for i := range 3 {
		_, err = tagged.Write([]byte(fmt.Sprintf("tagged %d", i)))
		require.NoError(t, err)
		_, err = plain.Write([]byte("plain"))
		require.NoError(t, err)
		_, err = other.Write([]byte("other port"))
		require.NoError(t, err)
	}
	require.NoError(t, pc.SetReadDeadline(time.Now().Add(5*time.Second)))
	got := map[string]int{}
	buf := make([]byte, 2048)
	for range 6 {
		n, _, err := pc.ReadFrom(buf)
		require.NoError(t, err)
		got[string(buf[:n])]++
	}
	assert.Equal(t, map[string]int{"tagged 0": 1, "tagged 1": 1, "tagged 2": 1, "plain": 3}, got, "datagrams intact")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	evs, ok := l.rec.WaitFor(ctx, func(evs []netnstest.Event) bool { return len(evs) >= 3 })
	require.True(t, ok, "three tagged datagrams at r1; got %d", len(evs))
	time.Sleep(100 * time.Millisecond)
	evs = l.rec.Events()
	assert.Len(t, evs, 3, "only the tagged socket's datagrams")
	for _, e := range evs {
		assert.Equal(t, ids, e.IDs)
	}
	st, err := in.Stats()
	require.NoError(t, err)
	assert.EqualValues(t, 3, st.PacketsTagged)
	assert.EqualValues(t, 3, st.SkipUnconfigured, "port 9999 is not configured")
}
