package plugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/api/compat/ioamapi"
	"github.com/cross-layer-telemetry/clt/api/compat/ioamtrace"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cross-layer-telemetry/clt/api/storagev2"
	"github.com/cross-layer-telemetry/clt/internal/admin"
	"github.com/cross-layer-telemetry/clt/internal/tlsconf"
	"github.com/cross-layer-telemetry/clt/ioamstore"
)

// Settings are the non-YAML dependencies of a Server.
type Settings struct {
	// Logger receives start/stop and error messages, never per span or
	// record. Nil discards.
	Logger *slog.Logger
}

// Server is clt-storage: the Jaeger storage gRPC server, the IOAM collector
// gRPC server and the admin HTTP server over one store. Start it once; Close
// is idempotent and safe without Start.
type Server struct {
	cfg    Config
	logger *slog.Logger

	// store is set by Start (or injected by tests); ownStore says Close must
	// close it.
	store    Store
	ownStore *ioamstore.Store
	archive  *ioamstore.Store // Jaeger v1 archive, when archive.enabled (v1archive.go)
	// upstream is the store of upstream mode (owned, closed by Close).
	upstream *upstreamStore
	// upstreamDown is set while the upstream's health check fails.
	upstreamDown atomic.Bool
	stopHealth   chan struct{}
	metrics      *metrics
	names        *NodeNames
	// rd and wr serve the Jaeger port; the go-plugin sidecar serves them too.
	rd *reader
	wr *writer

	storageSrv   *grpc.Server
	collectorSrv *grpc.Server
	adminSrv     *admin.Server
	health       *health.Server
	storageLn    net.Listener
	collectorLn  net.Listener
	archiveSrv   *grpc.Server // archive.listen (v1archive.go)
	archiveLn    net.Listener

	// reloaders and auths are every port's TLS material and authorizer,
	// re-read by ReloadTLS; adminAuth guards the admin routes.
	reloaders   []*tlsconf.Reloader
	auths       []*authorizer
	adminAuth   *authorizer
	prevMemLim  int64
	memLimitSet bool

	serving   atomic.Bool
	started   atomic.Bool
	errc      chan error
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
	now       func() time.Time
}

// New validates cfg and returns an unstarted Server.
func New(cfg Config, set Settings) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	logger := set.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, logger: logger, errc: make(chan error, 3), now: time.Now}, nil
}

// NodeNames labels IOAM nodes (configured and learned names) after Start;
// enrichment takes it as its node labeler.
func (s *Server) NodeNames() *NodeNames { return s.names }

// Err delivers the first fatal error of a serving loop (a listener that
// failed after Start). main selects on it beside the signal context.
func (s *Server) Err() <-chan error { return s.errc }

// StorageAddr returns the bound address of the Jaeger storage gRPC server
// after Start (nil when disabled); tests listen on port 0.
func (s *Server) StorageAddr() net.Addr { return addrOf(s.storageLn) }

// CollectorAddr returns the bound address of the IOAM collector gRPC server
// after Start (nil when disabled).
func (s *Server) CollectorAddr() net.Addr { return addrOf(s.collectorLn) }

// AdminAddr returns the bound address of the admin HTTP server after Start
// (nil when disabled).
func (s *Server) AdminAddr() net.Addr {
	if s.adminSrv == nil {
		return nil
	}
	return s.adminSrv.Addr()
}

func addrOf(l net.Listener) net.Addr {
	if l == nil {
		return nil
	}
	return l.Addr()
}

// Start opens the store and starts serving. It returns once every listener is
// bound; a failure rolls back what was started.
func (s *Server) Start(ctx context.Context) (err error) {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("plugin: server already started")
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Close())
		}
	}()
	if s.store == nil && s.cfg.Upstream.Enabled() {
		up, err := newUpstreamStore(s.cfg.Upstream, s.logger.With("component", "upstream"))
		if err != nil {
			return err
		}
		up.maxRecords = s.cfg.Storage.MaxRecordsPerSpan
		s.store, s.upstream = up, up
	}
	s.cfg.Store.MaxRecordsPerSpan = s.cfg.Storage.MaxRecordsPerSpan // enforced by the store (also the archive's)
	if s.store == nil {
		st, err := ioamstore.Open(s.cfg.Store, s.logger.With("component", "ioamstore"))
		if err != nil {
			return err
		}
		s.store, s.ownStore = st, st
		if err := st.Start(ctx); err != nil {
			return fmt.Errorf("start store: %w", err)
		}
	}
	if err := s.openArchive(ctx); err != nil {
		return err
	}
	s.metrics = newMetrics(s.store)
	if s.upstream != nil {
		s.metrics.reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Namespace: metricsNamespace, Name: "upstream_up",
				Help: "1 while the upstream's health check passes (upstream mode), else 0.",
			}, func() float64 {
				if s.upstreamDown.Load() {
					return 0
				}
				return 1
			}),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: metricsNamespace, Name: "upstream_record_spans_corrupt_total",
				Help: "Spans of the internal service read from the upstream that are not IOAM records (skipped).",
			}, func() float64 { return float64(s.upstream.recordsCorrupt.Load()) }),
		)
	}
	s.health = health.NewServer()
	ns, _ := s.store.(nodeStore)
	s.names = newNodeNames(s.cfg.Nodes, ns, min(s.cfg.Store.RecordTTL/4, time.Hour))
	s.names.onDrop = s.metrics.nodesDropped.Inc
	s.names.onError = func(err error) {
		s.metrics.nodesErrors.Inc()
		s.logger.Warn("node names: write failed", "err", err)
	}
	if err := s.names.Load(ctx); err != nil {
		return fmt.Errorf("load node names: %w", err)
	}
	if s.cfg.MemoryLimitMiB > 0 {
		s.prevMemLim = debug.SetMemoryLimit(s.cfg.MemoryLimitMiB << 20)
		s.memLimitSet = true
	}
	storageOpts, storageGuard, err := s.grpcOptions("storage", s.cfg.Storage.TLS, s.cfg.Storage.Auth, s.cfg.Storage.PortLimits,
		s.cfg.Storage.MaxRecvMsgSizeMiB, s.cfg.Storage.MaxTraceIDsPerRequest)
	if err != nil {
		return err
	}
	collectorOpts, collectorGuard, err := s.grpcOptions("collector", s.cfg.Collector.TLS, s.cfg.Collector.Auth, s.cfg.Collector.PortLimits,
		s.cfg.Collector.MaxRecvMsgSizeMiB, 0)
	if err != nil {
		return err
	}

	var lc net.ListenConfig
	if s.storageLn, err = lc.Listen(ctx, "tcp", s.cfg.Storage.Listen); err != nil {
		return fmt.Errorf("storage.listen: %w", err)
	}
	if s.cfg.Collector.Listen != "" {
		if s.collectorLn, err = lc.Listen(ctx, "tcp", s.cfg.Collector.Listen); err != nil {
			return fmt.Errorf("collector.listen: %w", err)
		}
	}

	rd := &reader{store: s.store, cfg: s.cfg.Storage, metrics: s.metrics, logger: s.logger, names: s.names, enrich: s.cfg.Enrich, labels: s.names}
	s.storageSrv = grpc.NewServer(storageOpts...)
	sreg := storageGuard.register(s.storageSrv)
	storagev2.RegisterTraceReaderServer(sreg, rd)
	storagev2.RegisterDependencyReaderServer(sreg, rd)
	wr := &writer{store: s.store, metrics: s.metrics}
	if s.upstream != nil {
		registerRawExport(sreg, wr, s.upstream) // requests passed through undecoded (upstream_raw.go)
	} else {
		coltracepb.RegisterTraceServiceServer(sreg, wr)
	}
	healthpb.RegisterHealthServer(sreg, s.health)
	services := []string{"", storagev2.TraceReader_ServiceDesc.ServiceName, storagev2.DependencyReader_ServiceDesc.ServiceName,
		coltracepb.TraceService_ServiceDesc.ServiceName}
	s.rd, s.wr = rd, wr
	services = append(services, registerStorageV1(sreg, rd, wr, s.archive)...) // Jaeger v1 (v1.go)
	s.serveGRPC("storage", s.storageSrv, s.storageLn)
	if err := s.serveArchivePort(ctx, rd, wr); err != nil {
		return err
	}

	if s.collectorLn != nil {
		col := &collector{store: s.store, cfg: s.cfg.Collector, metrics: s.metrics, logger: s.logger, now: s.now, names: s.names}
		s.collectorSrv = grpc.NewServer(collectorOpts...)
		creg := collectorGuard.register(s.collectorSrv)
		collectorv1.RegisterCollectorServiceServer(creg, col)
		services = append(services, collectorv1.CollectorService_ServiceDesc.ServiceName)
		if s.cfg.Collector.Compat {
			ioamtrace.RegisterIOAMServiceServer(creg, ioamTraceService{c: col})
			ioamapi.RegisterIOAMServiceServer(creg, ioamAPIService{c: col})
			services = append(services, ioamtrace.IOAMService_ServiceDesc.ServiceName, ioamapi.IOAMService_ServiceDesc.ServiceName)
		}
		healthpb.RegisterHealthServer(creg, s.health)
		s.serveGRPC("collector", s.collectorSrv, s.collectorLn)
	}
	if s.cfg.Admin.Listen != "" {
		if s.adminAuth, err = newAuthorizer("admin", s.cfg.Admin.Auth, s.refused); err != nil {
			return err
		}
		s.auths = append(s.auths, s.adminAuth)
		var opts []admin.StartOption
		if s.cfg.Admin.TLS.Enabled() {
			rl, err := tlsconf.New("admin.tls", s.cfg.Admin.TLS, s.logger, "http/1.1")
			if err != nil {
				return err
			}
			s.reloaders = append(s.reloaders, rl)
			opts = append(opts, admin.WithTLS(rl.TLSConfig()))
		}
		if s.adminSrv, err = admin.Start(ctx, "admin.listen", s.cfg.Admin.Listen, s.adminHandler(), s.fail, opts...); err != nil {
			return err
		}
	}
	s.warnExposed("storage", s.StorageAddr(), s.cfg.Storage.TLS, s.cfg.Storage.Auth)
	s.warnExposed("collector", s.CollectorAddr(), s.cfg.Collector.TLS, s.cfg.Collector.Auth)
	s.warnExposed("admin", s.AdminAddr(), s.cfg.Admin.TLS, s.cfg.Admin.Auth)
	for _, svc := range services {
		s.health.SetServingStatus(svc, healthpb.HealthCheckResponse_SERVING)
	}
	if hc, ok := s.store.(healthChecker); ok {
		s.watchHealth(ctx, hc, services)
	}
	if s.upstream != nil && s.cfg.Upstream.NodeRefresh > 0 {
		s.learnNodes(ctx)
	}
	s.serving.Store(true)
	s.logger.Info("clt-storage started", "storage", s.StorageAddr(), "collector", s.CollectorAddr(),
		"admin", s.AdminAddr(), "store_dir", s.cfg.Store.Dir, "in_memory", s.cfg.Store.InMemory,
		"purge", s.cfg.Admin.Purge, "pprof", s.cfg.Admin.Pprof,
		"tls", []bool{s.cfg.Storage.TLS.Enabled(), s.cfg.Collector.TLS.Enabled(), s.cfg.Admin.TLS.Enabled()},
		"auth", []bool{s.cfg.Storage.Auth.Enabled(), s.cfg.Collector.Auth.Enabled(), s.cfg.Admin.Auth.Enabled()},
		"memory_limit_mib", s.cfg.MemoryLimitMiB, "upstream", s.cfg.Upstream.Endpoint)
	return nil
}

// grpcOptions are one gRPC port's server options: TLS, the stream and
// byte limits, authorisation and (storage) the GetTraces id limit.
// Services must register through the guard's register, which decodes
// their requests (undecodable requests, the write budget: requestCodec).
func (s *Server) grpcOptions(name string, t TLSConfig, a AuthConfig, lim PortLimits, maxRecvMiB, maxIDs int) ([]grpc.ServerOption, *portGuard, error) {
	opts := []grpc.ServerOption{grpc.MaxRecvMsgSize(maxRecvMiB << 20), grpc.MaxConcurrentStreams(lim.MaxConcurrentStreams)}
	if t.Enabled() {
		rl, err := tlsconf.New(name+".tls", t, s.logger, "h2")
		if err != nil {
			return nil, nil, err
		}
		s.reloaders = append(s.reloaders, rl)
		opts = append(opts, grpc.Creds(credentials.NewTLS(rl.TLSConfig())))
	}
	auth, err := newAuthorizer(name, a, s.refused)
	if err != nil {
		return nil, nil, err
	}
	s.auths = append(s.auths, auth)
	b := &budget{port: name, limit: int64(lim.MaxInFlightMiB) << 20, shed: func(port string) { s.refused(port, "budget") }}
	g := &portGuard{auth: auth, budget: b, maxTraceIDs: maxIDs, tooMany: func() { s.refused(name, "too_many_ids") },
		codec: newRequestCodec(func() { s.refused(name, "undecodable") })}
	return append(opts, grpc.ForceServerCodecV2(g.codec), grpc.InTapHandle(b.tap),
		grpc.ChainUnaryInterceptor(g.unary), grpc.ChainStreamInterceptor(g.stream)), g, nil
}

func (s *Server) refused(port, reason string) {
	s.metrics.requestsRefused.WithLabelValues(port, reason).Inc()
}

// warnExposed logs, loudly, a port reachable beyond loopback without TLS
// or without authorisation.
func (s *Server) warnExposed(name string, addr net.Addr, t TLSConfig, a AuthConfig) {
	if addr == nil || isLoopback(addr) || (t.Enabled() && a.Enabled()) {
		return
	}
	var missing []string
	if !t.Enabled() {
		missing = append(missing, "TLS (traffic is plaintext)")
	}
	if !a.Enabled() {
		missing = append(missing, "auth (any client may call it)")
	}
	s.logger.Warn("INSECURE: port listens beyond loopback without "+joinAnd(missing), "port", name, "addr", addr.String(),
		"fix", name+".tls and "+name+".auth, or a loopback "+name+".listen")
}

func joinAnd(p []string) string {
	if len(p) == 2 {
		return p[0] + " and without " + p[1]
	}
	return p[0]
}

// ReloadTLS re-reads every port's certificate files and token files now
// (clt-storage calls it on SIGHUP); certificates also reload by themselves
// when their files change. What fails to load keeps its previous value.
func (s *Server) ReloadTLS() error {
	var errs []error
	for _, r := range s.reloaders {
		errs = append(errs, r.Reload())
	}
	for _, a := range s.auths {
		errs = append(errs, a.loadTokens())
	}
	if s.upstream != nil {
		errs = append(errs, s.upstream.reloadAuth())
	}
	return errors.Join(errs...)
}

func (s *Server) serveGRPC(name string, srv *grpc.Server, ln net.Listener) {
	s.wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.fail(fmt.Errorf("%s server: %w", name, err))
		}
	})
}

func (s *Server) fail(err error) {
	select {
	case s.errc <- err:
	default:
	}
}

// Close stops accepting, drains in-flight RPCs for up to ShutdownTimeout,
// then flushes and closes the store. Idempotent; safe without Start.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.serving.Store(false)
		if s.stopHealth != nil {
			close(s.stopHealth)
		}
		if s.health != nil {
			s.health.Shutdown() // every service NOT_SERVING
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		defer cancel()
		var errs []error
		var stopWG sync.WaitGroup
		for _, srv := range []*grpc.Server{s.storageSrv, s.collectorSrv, s.archiveSrv} {
			if srv == nil {
				continue
			}
			stopWG.Go(func() {
				done := make(chan struct{})
				go func() { srv.GracefulStop(); close(done) }()
				select {
				case <-done:
				case <-ctx.Done():
					srv.Stop() // cancels the remaining RPCs; GracefulStop then returns
					<-done
				}
			})
		}
		if s.adminSrv != nil {
			stopWG.Go(func() {
				if err := s.adminSrv.Shutdown(ctx); err != nil {
					errs = append(errs, err)
				}
			})
		}
		stopWG.Wait()
		// Listeners not handed to a server yet (failed Start) are closed here;
		// closing one a server already closed is harmless.
		for _, ln := range []net.Listener{s.storageLn, s.collectorLn, s.archiveLn} {
			if ln != nil {
				_ = ln.Close()
			}
		}
		s.wg.Wait()
		if s.archive != nil {
			if err := s.archive.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close archive: %w", err))
			}
		}
		if s.ownStore != nil {
			if err := s.ownStore.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close store: %w", err))
			}
		}
		if s.upstream != nil {
			if err := s.upstream.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close upstream: %w", err))
			}
		}
		if s.memLimitSet {
			debug.SetMemoryLimit(s.prevMemLim)
		}
		s.closeErr = errors.Join(errs...)
		if s.started.Load() {
			s.logger.Info("clt-storage stopped", "err", s.closeErr)
		}
	})
	return s.closeErr
}

func (s *Server) adminHandler() http.Handler {
	guard := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if s.adminAuth.httpCheck(w, r, RoleAdmin) {
				next.ServeHTTP(w, r)
			}
		})
	}
	mux := admin.NewMux(s.cfg.Admin.Config, s.metrics.reg, func() error {
		if !s.serving.Load() {
			return errors.New("shutting down")
		}
		if s.upstreamDown.Load() {
			return errors.New("upstream unavailable")
		}
		return nil
	}, admin.WithGuard(guard))
	if s.cfg.Admin.Purge {
		mux.Handle("POST /purge", admin.SameOrigin(guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := purgeContentType(r); err != nil {
				http.Error(w, err.Error(), http.StatusUnsupportedMediaType)
				return
			}
			// Jaeger's conformance harness runs goleak; a kept-alive
			// connection to us would count as a leaked goroutine there.
			w.Header().Set("Connection", "close")
			if err := s.store.Purge(r.Context()); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			s.names.Reset()
			s.logger.Info("store purged", "remote", r.RemoteAddr)
			_, _ = w.Write([]byte("purged\n"))
		}))))
	}
	return mux
}

// purgeContentType accepts application/json, or no Content-Type with an
// empty body (curl -X POST, Jaeger's conformance harness), and refuses the
// types an HTML form or a no-CORS fetch can send cross-site
// (application/x-www-form-urlencoded, multipart/form-data, text/plain).
func purgeContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		if r.ContentLength != 0 {
			return errors.New("purge: a body needs Content-Type: application/json")
		}
		return nil
	}
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		return fmt.Errorf("purge: Content-Type %q refused, want application/json or none", ct)
	}
	return nil
}

// healthChecker is a store whose health is someone else's (upstream mode).
type healthChecker interface {
	Check(ctx context.Context) error
}

// watchHealth checks the store's health once now and then every
// upstream.health_interval, and serves it as clt-storage's gRPC health
// (every service NOT_SERVING while the upstream fails) and /healthz. Close
// stops it.
func (s *Server) watchHealth(ctx context.Context, hc healthChecker, services []string) {
	s.stopHealth = make(chan struct{})
	stop := s.stopHealth
	check := func() {
		err := hc.Check(context.WithoutCancel(ctx))
		st := healthpb.HealthCheckResponse_SERVING
		if err != nil {
			st = healthpb.HealthCheckResponse_NOT_SERVING
		}
		if was := s.upstreamDown.Swap(err != nil); was != (err != nil) {
			if err != nil {
				s.logger.Warn("upstream unavailable", "err", err)
			} else {
				s.logger.Info("upstream available")
			}
		}
		for _, svc := range services {
			s.health.SetServingStatus(svc, st)
		}
	}
	check()
	s.wg.Go(func() {
		t := time.NewTicker(s.cfg.Upstream.HealthInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				check()
			}
		}
	})
}

// learnNodes (upstream mode) teaches NodeNames the routers and names of the
// newest records in the upstream, now and every upstream.node_refresh, so
// that a replica lists routers whose records other replicas received.
// Failures are logged and retried at the next tick. Close stops it.
func (s *Server) learnNodes(ctx context.Context) {
	stop := s.stopHealth
	if stop == nil {
		s.stopHealth = make(chan struct{})
		stop = s.stopHealth
	}
	learn := func() {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Upstream.Timeout)
		defer cancel()
		recs, err := s.upstream.RecentRecords(lctx)
		if err != nil {
			s.logger.Warn("node names: reading recent records from the upstream failed", "err", err)
			return
		}
		s.names.Observe(lctx, recs)
	}
	if !s.upstreamDown.Load() {
		learn()
	}
	s.wg.Go(func() {
		t := time.NewTicker(s.cfg.Upstream.NodeRefresh)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				learn()
			}
		}
	})
}
