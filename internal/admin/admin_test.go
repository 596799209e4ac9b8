package admin

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestValidate(t *testing.T) {
	assert.Empty(t, Config{Listen: ":17270"}.Validate("admin"))
	assert.Empty(t, Config{}.Validate("admin"), "empty disables")
	errs := Config{Listen: "nope"}.Validate("admin")
	require.Len(t, errs, 1)
	assert.ErrorContains(t, errs[0], `admin.listen: "nope" is not host:port`)
	errs = Config{Pprof: true}.Validate("admin")
	require.Len(t, errs, 1)
	assert.ErrorContains(t, errs[0], "admin.listen: must be set when admin.pprof is enabled")
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestServe(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "admin_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)
	var healthErr error
	for _, pprofOn := range []bool{false, true} {
		cfg := Config{Listen: "127.0.0.1:0", Pprof: pprofOn}
		mux := NewMux(cfg, reg, func() error { return healthErr })
		mux.HandleFunc("POST /extra", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "extra\n") })
		srv, err := Start(t.Context(), "admin.listen", cfg.Listen, mux, func(err error) { t.Errorf("serve: %v", err) })
		require.NoError(t, err)
		base := "http://" + srv.Addr().String()

		code, body := get(t, base+"/metrics")
		assert.Equal(t, http.StatusOK, code)
		assert.Contains(t, body, "admin_test_total 3")

		healthErr = nil
		code, body = get(t, base+"/healthz")
		assert.Equal(t, http.StatusOK, code)
		assert.Equal(t, "ok\n", body)
		healthErr = errors.New("source stopped")
		code, body = get(t, base+"/healthz")
		assert.Equal(t, http.StatusServiceUnavailable, code)
		assert.Contains(t, body, "source stopped")

		code, _ = get(t, base+"/debug/pprof/")
		if pprofOn {
			assert.Equal(t, http.StatusOK, code)
		} else {
			assert.Equal(t, http.StatusNotFound, code)
		}
		resp, err := http.Post(base+"/extra", "text/plain", nil)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, "components add their own routes")

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		require.NoError(t, srv.Shutdown(ctx))
		require.NoError(t, srv.Shutdown(ctx), "idempotent")
		cancel()
		_, err = http.Get(base + "/healthz")
		assert.Error(t, err, "closed after Shutdown")
	}
}

func TestStartBindError(t *testing.T) {
	_, err := Start(t.Context(), "admin.listen", "256.0.0.1:0", http.NewServeMux(), nil)
	assert.ErrorContains(t, err, "admin.listen:")
}
