package clt_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"

	"github.com/cross-layer-telemetry/clt/kernel/clt"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func span(b byte) trace.SpanContext {
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0: 0x01, 15: b}, SpanID: trace.SpanID{0: 0x5a, 7: b}, TraceFlags: trace.FlagsSampled,
	})
}

func TestDefaultConfigValid(t *testing.T) {
	c := clt.DefaultConfig()
	require.NoError(t, c.Validate())
	assert.EqualValues(t, 0xF00000, c.TraceType)
	assert.Equal(t, ioam6.CarrierOSS, c.Carrier)
}

func TestConfigYAML(t *testing.T) {
	src := "namespace: 7\nhop_slots: 3\ntrace_type: 0xF00000\ncarrier: tail\nschema_id: 0\nnode_id: 9\nnode_id_wide: 0x1000009\nstrict: true\n"
	c := clt.DefaultConfig()
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&c))
	require.NoError(t, c.Validate())
	assert.EqualValues(t, 7, c.Namespace)
	assert.Equal(t, ioam6.CarrierTail, c.Carrier)
	assert.EqualValues(t, 9, *c.NodeID)
	assert.EqualValues(t, 0x1000009, *c.NodeIDWide)
	assert.True(t, c.Strict)

	dec = yaml.NewDecoder(strings.NewReader("hop_slot: 3\n"))
	dec.KnownFields(true)
	require.Error(t, dec.Decode(&c), "unknown keys are errors")
}

func TestConfigValidateReportsEveryKey(t *testing.T) {
	big := uint32(1 << 24)
	wideBig := uint64(1 << 56)
	c := clt.Config{HopSlots: -1, TraceType: 0x1000000, SchemaID: 1 << 24, NodeID: &big, NodeIDWide: &wideBig}
	err := c.Validate()
	require.Error(t, err)
	for _, key := range []string{"hop_slots", "trace_type", "schema_id", "node_id ", "node_id_wide"} {
		assert.Contains(t, err.Error(), key)
	}
	c = clt.DefaultConfig()
	c.HopSlots = 40 // does not fit 255 bytes of option data
	err = c.Validate()
	require.ErrorIs(t, err, ioam6.ErrInvalidSpec)
	assert.Contains(t, err.Error(), "hop_slots 40")
	c = clt.DefaultConfig()
	c.Carrier = ioam6.CarrierTail
	c.TraceType |= ioam6.BitOpaqueStateSnapshot
	assert.ErrorContains(t, c.Validate(), "bit 22")
	_, err = clt.New(clt.Config{HopSlots: -1}, clt.Settings{})
	require.Error(t, err)
}

func TestAppendHBHDecodes(t *testing.T) {
	inj, err := clt.New(clt.DefaultConfig(), clt.Settings{})
	require.NoError(t, err)
	for _, sc := range []trace.SpanContext{span(1), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{15: 7}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled,
	})} {
		hbh, err := inj.AppendHBH(nil, sc)
		require.NoError(t, err)
		assert.Zero(t, len(hbh)%8)
		opt, _, err := ioam6.FindIOAMOption(hbh)
		require.NoError(t, err)
		tr, err := ioam6.DecodeTrace(opt, ioam6.CarrierConfig{})
		require.NoError(t, err)
		require.True(t, tr.HasIDs)
		assert.Equal(t, [16]byte(sc.TraceID()), tr.IDs.TraceID)
		assert.Equal(t, [8]byte(sc.SpanID()), tr.IDs.SpanID)
		assert.Equal(t, 1, tr.Hops(), "only the sender's own entry")
		assert.EqualValues(t, clt.DefaultHopSlots*5, tr.Header.RemainingLen)
	}
}

// udpConn returns a connected UDP socket on loopback: a real socket for
// SyscallConn, while tests fake the setter.
func udpConn(t *testing.T, network, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP(network, &net.UDPAddr{IP: net.ParseIP(addr)})
	if err != nil {
		t.Skipf("no %s loopback: %v", network, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	peer, err := net.DialUDP(network, nil, c.LocalAddr().(*net.UDPAddr))
	require.NoError(t, err)
	t.Cleanup(func() { _ = peer.Close() })
	return peer
}

func TestFailOpenPolicy(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		reason clt.Reason
	}{
		{"no CAP_NET_RAW", syscall.EPERM, clt.ReasonPermission},
		{"kernel refusal", syscall.EINVAL, clt.ReasonKernel},
		{"ipv4 socket", syscall.ENOPROTOOPT, clt.ReasonIPv4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logBuf bytes.Buffer
			lg := slog.New(slog.NewTextHandler(&logBuf, nil))
			inj, err := clt.New(clt.DefaultConfig(), clt.Settings{Logger: lg})
			require.NoError(t, err)
			var calls int
			inj.SetHopOptsFunc(func(int, []byte) error { calls++; return tc.err })
			conn := udpConn(t, "udp6", "::1")
			for range 3 {
				require.NoError(t, inj.SetConn(conn, span(1)), "fail-open: no error")
			}
			assert.Equal(t, 3, calls)
			st := inj.Stats()
			assert.EqualValues(t, 3, st.Skipped[tc.reason])
			assert.EqualValues(t, 3, st.SkippedTotal())
			assert.Zero(t, st.Applied)
			assert.Equal(t, 1, strings.Count(logBuf.String(), "reason="+tc.reason.String()), "logged once: %s", logBuf.String())

			strictCfg := clt.DefaultConfig()
			strictCfg.Strict = true
			strict, err := clt.New(strictCfg, clt.Settings{})
			require.NoError(t, err)
			strict.SetHopOptsFunc(func(int, []byte) error { return tc.err })
			err = strict.SetConn(conn, span(1))
			require.ErrorIs(t, err, clt.ErrSkipped)
			require.ErrorIs(t, err, tc.err)
			var se *clt.SkipError
			require.True(t, errors.As(err, &se))
			assert.Equal(t, tc.reason, se.Reason)
			// Clearing (no span) never fails, even in strict mode.
			require.NoError(t, strict.SetConn(conn, trace.SpanContext{}))
		})
	}
}

func TestSetConnAppliesAndClears(t *testing.T) {
	inj, err := clt.New(clt.DefaultConfig(), clt.Settings{})
	require.NoError(t, err)
	var got [][]byte
	inj.SetHopOptsFunc(func(_ int, hbh []byte) error { got = append(got, append([]byte(nil), hbh...)); return nil })
	conn := udpConn(t, "udp6", "::1")
	require.NoError(t, inj.SetConn(conn, span(1)))
	require.NoError(t, inj.SetConn(conn, trace.SpanContext{}))
	require.Len(t, got, 2)
	assert.NotEmpty(t, got[0])
	assert.Empty(t, got[1], "no span clears the option")
	st := inj.Stats()
	assert.EqualValues(t, 1, st.Applied)
	assert.EqualValues(t, 1, st.Cleared)

	// IPv4 peer: skipped before any syscall.
	got = nil
	require.NoError(t, inj.SetConn(udpConn(t, "udp4", "127.0.0.1"), span(2)))
	assert.Empty(t, got)
	assert.EqualValues(t, 1, inj.Stats().Skipped[clt.ReasonIPv4])

	// A conn without a socket.
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	require.NoError(t, inj.SetConn(c1, span(3)))
	assert.EqualValues(t, 1, inj.Stats().Skipped[clt.ReasonUnsupportedConn])
}

func TestCollector(t *testing.T) {
	inj, err := clt.New(clt.DefaultConfig(), clt.Settings{})
	require.NoError(t, err)
	inj.SetHopOptsFunc(func(int, []byte) error { return syscall.EPERM })
	conn := udpConn(t, "udp6", "::1")
	require.NoError(t, inj.SetConn(conn, span(1)))
	require.NoError(t, inj.SetConn(conn, span(2)))
	want := `
# HELP clt_ioam_options_skipped_total IOAM options not applied, by reason.
# TYPE clt_ioam_options_skipped_total counter
clt_ioam_options_skipped_total{reason="build"} 0
clt_ioam_options_skipped_total{reason="ipv4"} 0
clt_ioam_options_skipped_total{reason="kernel"} 0
clt_ioam_options_skipped_total{reason="permission"} 2
clt_ioam_options_skipped_total{reason="unsupported_conn"} 0
`
	require.NoError(t, testutil.CollectAndCompare(inj.Collector(), strings.NewReader(want), "clt_ioam_options_skipped_total"))
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(inj.Collector()))
}

func httptraceWith(ctx context.Context, gotConn func()) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { gotConn() }})
}

// TestTransportHTTP1AndComposition runs the transport against a local
// server with the fake setter: one option per request, HTTP/1.1, and the
// application's ClientTrace still fires.
func TestTransportHTTP1AndComposition(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(r.Proto))
	}))
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	srv.Listener = ln
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()

	inj, err := clt.New(clt.DefaultConfig(), clt.Settings{})
	require.NoError(t, err)
	var mu sync.Mutex
	var sets int
	inj.SetHopOptsFunc(func(int, []byte) error { mu.Lock(); sets++; mu.Unlock(); return nil })
	base := srv.Client().Transport.(*http.Transport).Clone()
	base.ForceAttemptHTTP2 = true
	base.DialContext = nil // httptest's dialer; let NewTransport use inj.Dialer
	tr := clt.NewTransport(base, inj)
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	var gotConn int
	for i := range 3 {
		ctx := trace.ContextWithSpanContext(context.Background(), span(byte(i)))
		ctx = httptraceWith(ctx, func() { gotConn++ })
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		require.NoError(t, err)
		resp, err := hc.Do(req)
		require.NoError(t, err)
		body := make([]byte, 16)
		n, _ := resp.Body.Read(body)
		_ = resp.Body.Close()
		assert.Equal(t, "HTTP/1.1", string(body[:n]), "HTTP/2 must be off")
	}
	assert.Equal(t, 3, gotConn)
	// One set at dial (SYN) and one per request (GotConn).
	assert.Equal(t, 4, sets)
	assert.Zero(t, inj.Stats().SkippedTotal())
}

func TestSampledOnlyAndNeedlessClears(t *testing.T) {
	newFake := func(tagUnsampled bool) (*clt.Injector, *[][]byte) {
		cfg := clt.DefaultConfig()
		cfg.TagUnsampled = tagUnsampled
		inj, err := clt.New(cfg, clt.Settings{})
		require.NoError(t, err)
		calls := &[][]byte{}
		inj.SetHopOptsFunc(func(_ int, hbh []byte) error { *calls = append(*calls, hbh); return nil })
		return inj, calls
	}
	unsampled := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}})
	require.False(t, unsampled.IsSampled())

	inj, calls := newFake(false)
	conn := udpConn(t, "udp6", "::1")
	require.NoError(t, inj.SetConn(conn, unsampled))
	require.NoError(t, inj.SetConn(conn, trace.SpanContext{}))
	assert.Empty(t, *calls, "never tagged: no syscall to tag or clear")
	require.NoError(t, inj.SetConn(conn, span(1)))
	require.NoError(t, inj.SetConn(conn, unsampled))
	require.NoError(t, inj.SetConn(conn, unsampled))
	require.Len(t, *calls, 2, "one set, one clear, then nothing")
	assert.NotEmpty(t, (*calls)[0])
	assert.Empty(t, (*calls)[1])
	st := inj.Stats()
	assert.EqualValues(t, 1, st.Applied)
	assert.EqualValues(t, 1, st.Cleared)
	assert.EqualValues(t, 4, st.Untraced)

	inj, calls = newFake(true)
	require.NoError(t, inj.SetConn(conn, unsampled))
	require.Len(t, *calls, 1, "tag_unsampled tags it")
	assert.NotEmpty(t, (*calls)[0])
}
