package clt_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/cross-layer-telemetry/clt/kernel/clt"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// withSpan stands in for a tracing middleware: it puts span(b) of the
// request's "span" query (none when absent) in the context.
func withSpan(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s := r.URL.Query().Get("span"); s != "" {
			r = r.WithContext(trace.ContextWithSpanContext(r.Context(), span(s[0])))
		}
		next.ServeHTTP(w, r)
	})
}

// The server's connection gets the server span's header before the
// handler writes; a request without a span clears it; without ConnContext
// the skip is counted (and strict mode answers 503).
func TestHandlerTagsResponses(t *testing.T) {
	inj, err := clt.New(clt.DefaultConfig(), clt.Settings{})
	require.NoError(t, err)
	var mu sync.Mutex
	var got [][]byte
	inj.SetHopOptsFunc(func(_ int, hbh []byte) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, append([]byte(nil), hbh...))
		return nil
	})
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	srv := httptest.NewUnstartedServer(withSpan(inj.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		assert.Positive(t, n, "set before the handler writes")
	}))))
	srv.Listener = ln
	srv.Config.ConnContext = clt.ConnContext
	srv.Start()
	defer srv.Close()
	hc := srv.Client()
	for _, q := range []string{"?span=A", "?span=B", ""} {
		resp, err := hc.Get(srv.URL + "/" + q)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, 3, "set, set, clear")
	for i, b := range []byte{'A', 'B'} {
		opt, _, err := ioam6.FindIOAMOption(got[i])
		require.NoError(t, err)
		tr, err := ioam6.DecodeTrace(opt, ioam6.CarrierConfig{})
		require.NoError(t, err)
		assert.Equal(t, clt.SpanIDs(span(b)), tr.IDs, "the server span's IDs")
	}
	assert.Empty(t, got[2], "no span: cleared")

	// Without ConnContext: counted, served; strict: 503.
	cfg := clt.DefaultConfig()
	cfg.Strict = true
	strict, err := clt.New(cfg, clt.Settings{})
	require.NoError(t, err)
	for _, tc := range []struct {
		inj  *clt.Injector
		code int
	}{{inj, http.StatusOK}, {strict, http.StatusServiceUnavailable}} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequestWithContext(trace.ContextWithSpanContext(context.Background(), span('C')), http.MethodGet, "/", nil)
		tc.inj.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(rec, req)
		assert.Equal(t, tc.code, rec.Code)
		assert.EqualValues(t, 1, tc.inj.Stats().Skipped[clt.ReasonUnsupportedConn])
	}
}
