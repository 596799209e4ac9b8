package admin

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cross-layer-telemetry/clt/internal/tlsconf"
	"github.com/cross-layer-telemetry/clt/internal/tlsconf/tlsconftest"
)

// TestPprofRefusesCrossSite: a page on another site cannot make a browser
// fetch profiles (issue 12: /debug/pprof/cmdline was open).
func TestPprofRefusesCrossSite(t *testing.T) {
	mux := NewMux(Config{Listen: "x:1", Pprof: true}, prometheus.NewRegistry(), nil)
	for _, tc := range []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"no browser headers", nil, http.StatusOK},
		{"same origin", map[string]string{"Origin": "http://admin.test"}, http.StatusOK},
		{"other origin", map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
		{"null origin", map[string]string{"Origin": "null"}, http.StatusForbidden},
		{"sec-fetch-site cross-site", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"sec-fetch-site same-origin", map[string]string{"Sec-Fetch-Site": "same-origin"}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "http://admin.test/debug/pprof/cmdline", nil)
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, r)
			assert.Equal(t, tc.want, w.Code, w.Body.String())
		})
	}
}

func TestWithGuard(t *testing.T) {
	guard := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer ok" {
				http.Error(w, "no", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	mux := NewMux(Config{Listen: "x:1", Pprof: true}, prometheus.NewRegistry(), nil, WithGuard(guard))
	for path, open := range map[string]bool{"/metrics": false, "/debug/pprof/": false, "/debug/pprof/cmdline": false, "/healthz": true} {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://admin.test"+path, nil))
		if open {
			assert.Equal(t, http.StatusOK, w.Code, path)
		} else {
			assert.Equal(t, http.StatusUnauthorized, w.Code, path)
		}
		r := httptest.NewRequest(http.MethodGet, "http://admin.test"+path, nil)
		r.Header.Set("Authorization", "Bearer ok")
		w = httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		assert.Equal(t, http.StatusOK, w.Code, path)
	}
}

func TestStartWithTLS(t *testing.T) {
	p := tlsconftest.New(t)
	cert, key := p.Server("admin", "admin.test")
	rl, err := tlsconf.New("admin.tls", tlsconf.Config{CertFile: cert, KeyFile: key}, nil, "http/1.1")
	require.NoError(t, err)
	srv, err := Start(t.Context(), "admin.listen", "127.0.0.1:0", NewMux(Config{}, prometheus.NewRegistry(), nil), nil, WithTLS(rl.TLSConfig()))
	require.NoError(t, err)
	defer func() { require.NoError(t, srv.Shutdown(t.Context())) }()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.Pool, ServerName: "admin.test"}}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("https://" + srv.Addr().String() + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	// Plain HTTP to the TLS port fails.
	plain := &http.Client{Transport: &http.Transport{}}
	defer plain.CloseIdleConnections()
	resp, err = plain.Get("http://" + srv.Addr().String() + "/healthz")
	if err == nil {
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	}
}
