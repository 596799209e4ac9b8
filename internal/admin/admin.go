// Package admin is the admin HTTP listener that clt-agent and clt-storage
// share: Prometheus /metrics from the component's private registry,
// /healthz, and net/http/pprof under /debug/pprof/ when enabled. Its YAML
// block is the same in both binaries (admin: {listen, pprof}); a component
// may add its own routes to the mux (clt-storage's POST /purge).
//
// It imports no component package: agent, plugin and ioamstore import it.
package admin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Config is the admin block of both binaries' configuration (admin).
type Config struct {
	// Listen is the admin address host:port (admin.listen). Empty disables
	// the listener. Each binary has its own default port.
	Listen string `yaml:"listen"`
	// Pprof serves net/http/pprof under /debug/pprof/ (admin.pprof).
	// Default false: profiles expose internals and cost CPU.
	Pprof bool `yaml:"pprof"`
}

// Validate reports every problem, each naming its YAML key under key
// (normally "admin").
func (c Config) Validate(key string) []error {
	var errs []error
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			errs = append(errs, fmt.Errorf("%s.listen: %q is not host:port: %w", key, c.Listen, err))
		}
	} else if c.Pprof {
		errs = append(errs, fmt.Errorf("%s.listen: must be set when %s.pprof is enabled", key, key))
	}
	return errs
}

// MuxOption adjusts [NewMux].
type MuxOption func(*muxOptions)

type muxOptions struct {
	guard func(http.Handler) http.Handler
}

// WithGuard wraps /metrics and every /debug/pprof/ route in guard (e.g. an
// admin-token check); /healthz stays open for liveness probes. Without it
// those routes are still refused to cross-site browser requests
// ([SameOrigin]).
func WithGuard(guard func(http.Handler) http.Handler) MuxOption {
	return func(o *muxOptions) { o.guard = guard }
}

// NewMux returns the admin routes: GET /metrics (reg, which also counts its
// own scrape errors), GET /healthz (200 "ok" while healthy returns nil, else
// 503 with the error), and /debug/pprof/ when cfg.Pprof. A nil healthy is
// always healthy. /metrics and pprof refuse cross-site browser requests and
// pass through the [WithGuard] guard.
func NewMux(cfg Config, reg *prometheus.Registry, healthy func() error, opts ...MuxOption) *http.ServeMux {
	var o muxOptions
	for _, opt := range opts {
		opt(&o)
	}
	protect := func(h http.Handler) http.Handler {
		if o.guard != nil {
			h = o.guard(h)
		}
		return SameOrigin(h)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", protect(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if healthy != nil {
			if err := healthy(); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	if cfg.Pprof {
		mux.Handle("/debug/pprof/", protect(http.HandlerFunc(pprof.Index)))
		mux.Handle("/debug/pprof/cmdline", protect(http.HandlerFunc(pprof.Cmdline)))
		mux.Handle("/debug/pprof/profile", protect(http.HandlerFunc(pprof.Profile)))
		mux.Handle("/debug/pprof/symbol", protect(http.HandlerFunc(pprof.Symbol)))
		mux.Handle("/debug/pprof/trace", protect(http.HandlerFunc(pprof.Trace)))
	}
	return mux
}

// SameOrigin refuses (403) a request a browser sent on behalf of another
// site: an Origin header whose host is not the request's Host, or
// Sec-Fetch-Site cross-site / same-site. Browsers send Origin with every
// cross-origin POST, so a request without it comes from a non-browser
// client (curl, Prometheus, a test harness).
func SameOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := checkSameOrigin(r); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func checkSameOrigin(r *http.Request) error {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return errors.New("cross-site request refused")
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || o == "null" || !strings.EqualFold(u.Host, r.Host) {
			return fmt.Errorf("cross-origin request refused (Origin %q)", o)
		}
	}
	return nil
}

// StartOption adjusts [Start].
type StartOption func(*startOptions)

type startOptions struct{ tls *tls.Config }

// WithTLS serves HTTPS with cfg (which may reload its certificate through
// GetConfigForClient).
func WithTLS(cfg *tls.Config) StartOption { return func(o *startOptions) { o.tls = cfg } }

// Server is a started admin listener. Its serving goroutine is owned by the
// Server and ends in Shutdown.
type Server struct {
	ln   net.Listener
	srv  *http.Server
	wg   sync.WaitGroup
	once sync.Once
	err  error
}

// Start binds addr (the error names key, e.g. "admin.listen") and serves h
// in the background. onErr, if not nil, gets a serving failure after Start
// (never http.ErrServerClosed).
func Start(ctx context.Context, key, addr string, h http.Handler, onErr func(error), opts ...StartOption) (*Server, error) {
	var o startOptions
	for _, opt := range opts {
		opt(&o)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if o.tls != nil {
		ln = tls.NewListener(ln, o.tls)
	}
	s := &Server{ln: ln, srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	s.wg.Go(func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && onErr != nil {
			onErr(fmt.Errorf("admin server: %w", err))
		}
	})
	return s, nil
}

// Addr is the bound address (tests listen on port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Shutdown stops accepting, lets requests in progress finish until ctx
// ends, then closes the remaining connections and waits for the serving
// goroutine. Idempotent.
func (s *Server) Shutdown(ctx context.Context) error {
	s.once.Do(func() {
		if err := s.srv.Shutdown(ctx); err != nil {
			s.err = fmt.Errorf("admin shutdown: %w", errors.Join(err, s.srv.Close()))
		}
		_ = s.ln.Close() // harmless when Serve closed it
		s.wg.Wait()
	})
	return s.err
}
