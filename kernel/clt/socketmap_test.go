package clt_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/cross-layer-telemetry/clt/kernel/clt"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// fakeMap records SocketMap calls.
type fakeMap struct {
	mu      sync.Mutex
	loaded  bool
	fail    error
	entries map[uint64]ioam6.IDs
	sets    int
	clears  int
}

func newFakeMap() *fakeMap { return &fakeMap{loaded: true, entries: map[uint64]ioam6.IDs{}} }

func (m *fakeMap) Loaded() bool { m.mu.Lock(); defer m.mu.Unlock(); return m.loaded }
func (m *fakeMap) SetSocket(c uint64, ids ioam6.IDs) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.sets++
	m.entries[c] = ids
	return nil
}
func (m *fakeMap) ClearSocket(c uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clears++
	delete(m.entries, c)
	return nil
}

// With a loaded SocketMap the socket's cookie gets the span's IDs and no
// socket option is set; without a span the entry is cleared; an unloaded
// map falls back to the option, and a later switch back to the map removes
// that option (it would win on the wire).
func TestSocketMapInsteadOfOption(t *testing.T) {
	m := newFakeMap()
	inj, err := clt.New(clt.DefaultConfig(), clt.Settings{SocketMap: m})
	require.NoError(t, err)
	var opts [][]byte
	inj.SetHopOptsFunc(func(_ int, hbh []byte) error { opts = append(opts, hbh); return nil })
	conn := udpConn(t, "udp6", "::1")

	require.NoError(t, inj.SetConn(conn, span(1)))
	assert.Empty(t, opts, "no setsockopt")
	require.Len(t, m.entries, 1)
	for c, ids := range m.entries {
		assert.NotZero(t, c, "keyed by SO_COOKIE")
		assert.Equal(t, clt.SpanIDs(span(1)), ids)
	}
	require.NoError(t, inj.SetConn(conn, trace.SpanContext{}))
	assert.Empty(t, m.entries, "no span: entry cleared")
	require.NoError(t, inj.SetConn(conn, trace.SpanContext{}))
	assert.Equal(t, 1, m.clears, "nothing to clear twice")

	m.loaded = false
	require.NoError(t, inj.SetConn(conn, span(2)))
	require.Len(t, opts, 1, "map gone: the socket option")
	assert.NotEmpty(t, opts[0])
	m.loaded = true
	require.NoError(t, inj.SetConn(conn, span(3)))
	require.Len(t, opts, 2, "back on the map: the sticky option is removed")
	assert.Empty(t, opts[1])
	assert.Len(t, m.entries, 1)
	st := inj.Stats()
	assert.EqualValues(t, 3, st.Applied)
	assert.EqualValues(t, 2, st.Mapped)

	// A failing map update is a kernel skip (and an error in strict mode).
	m.fail = errors.New("map full")
	require.NoError(t, inj.SetConn(conn, span(4)))
	assert.EqualValues(t, 1, inj.Stats().Skipped[clt.ReasonKernel])
	cfg := clt.DefaultConfig()
	cfg.Strict = true
	strict, err := clt.New(cfg, clt.Settings{SocketMap: m})
	require.NoError(t, err)
	require.ErrorIs(t, strict.SetConn(conn, span(5)), clt.ErrSkipped)
}

// The Transport sets the map entry at dial (so the handshake carries the
// IDs) and per request, never a socket option.
func TestTransportSocketMap(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	m := newFakeMap()
	inj, err := clt.New(clt.DefaultConfig(), clt.Settings{SocketMap: m})
	require.NoError(t, err)
	inj.SetHopOptsFunc(func(int, []byte) error { t.Error("setsockopt called"); return nil })
	tr := clt.NewTransport(&http.Transport{}, inj) // no DialContext: inj.Dialer dials
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	for i := range 3 {
		ctx := trace.ContextWithSpanContext(context.Background(), span(byte(10+i)))
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		require.NoError(t, err)
		resp, err := hc.Do(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
	}
	assert.Equal(t, 4, m.sets, "one at dial, one per request")
	require.Len(t, m.entries, 1, "one keep-alive connection")
	for _, ids := range m.entries {
		assert.Equal(t, clt.SpanIDs(span(12)), ids, "the last request's span")
	}
	assert.EqualValues(t, 4, inj.Stats().Mapped)
}

// A TCP connection's cookie is read once and forgotten with the connection.
func TestSocketMapCookieCached(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer ln.Close()
	m := newFakeMap()
	inj, err := clt.New(clt.DefaultConfig(), clt.Settings{SocketMap: m})
	require.NoError(t, err)
	conn, err := net.Dial("tcp6", ln.Addr().String())
	require.NoError(t, err)
	for i := range 3 {
		require.NoError(t, inj.SetConn(conn, span(byte(i+1))))
	}
	assert.Equal(t, 1, inj.CachedCookies())
	assert.Len(t, m.entries, 1, "one socket, one key")
	require.NoError(t, conn.Close())
	for i := 0; i < 100 && inj.CachedCookies() > 0; i++ {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	assert.Zero(t, inj.CachedCookies(), "dropped once the connection is collected")
}
