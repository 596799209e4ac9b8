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
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
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

// NewMux returns the admin routes: GET /metrics (reg, which also counts its
// own scrape errors), GET /healthz (200 "ok" while healthy returns nil, else
// 503 with the error), and /debug/pprof/ when cfg.Pprof. A nil healthy is
// always healthy.
func NewMux(cfg Config, reg *prometheus.Registry, healthy func() error) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
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
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

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
func Start(ctx context.Context, key, addr string, h http.Handler, onErr func(error)) (*Server, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
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
