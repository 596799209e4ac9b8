package plugin

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/cross-layer-telemetry/clt/agent"
	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/api/compat/ioamapi"
	"github.com/cross-layer-telemetry/clt/api/compat/ioamtrace"
	"github.com/cross-layer-telemetry/clt/api/storagev1"
	"github.com/cross-layer-telemetry/clt/api/storagev2"
	"github.com/cross-layer-telemetry/clt/internal/tlsconf/tlsconftest"
)

const (
	readerToken = "reader-token-0123456789"
	writerToken = "writer-token-0123456789"
	adminToken  = "admin-token-01234567890"
)

func writeToken(t *testing.T, dir, name, tok string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(tok+"\n"), 0o600))
	return p
}

func withToken(ctx context.Context, tok string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}

func tlsDial(t *testing.T, addr string, tc *tls.Config) *grpc.ClientConn {
	t.Helper()
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// startSecure starts a server whose every port is set by mutate; it returns
// the server (no plaintext clients).
func startSecure(t *testing.T, mutate func(*Config)) *Server {
	t.Helper()
	cfg := testConfig(t)
	mutate(&cfg)
	srv, err := New(cfg, Settings{})
	require.NoError(t, err)
	require.NoError(t, srv.Start(t.Context()))
	t.Cleanup(func() { require.NoError(t, srv.Close()) })
	return srv
}

func testRecord(trace byte) *collectorv1.IOAMRecord {
	r := &collectorv1.IOAMRecord{TraceId: tid(trace), SpanId: sid(1), NamespaceId: 1, TraceType: 0x800000,
		ReporterNodeId: 2, ReporterWrote: true, Packets: 1}
	for i := range 3 {
		r.Hops = append(r.Hops, &collectorv1.Hop{Fields: 0x800000, HopLimit: uint32(64 - i), NodeId: uint32(i + 1)})
	}
	return r
}

// TestStorageTLSAndRoles: the Jaeger port over TLS with bearer tokens:
// writes need writer, reads need reader, health needs nothing, and a
// plaintext client never gets through (issue 12 item 1).
func TestStorageTLSAndRoles(t *testing.T) {
	p := tlsconftest.New(t)
	cert, key := p.Server("storage", "storage.test")
	dir := t.TempDir()
	t.Setenv("CLT_TEST_WRITER_TOKEN", writerToken)
	srv := startSecure(t, func(c *Config) {
		c.Storage.TLS = TLSConfig{CertFile: cert, KeyFile: key}
		c.Storage.Auth.Tokens = []TokenConfig{
			{Name: "ui", File: writeToken(t, dir, "reader", readerToken), Roles: []string{RoleReader}},
			{Name: "jaeger", Env: "CLT_TEST_WRITER_TOKEN", Roles: []string{RoleWriter}},
		}
	})
	conn := tlsDial(t, srv.StorageAddr().String(), &tls.Config{RootCAs: p.Pool, ServerName: "storage.test"})
	otlp, reader := coltracepb.NewTraceServiceClient(conn), storagev2.NewTraceReaderClient(conn)
	req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{
		spanSpec{trace: 1, span: 1, service: "svc", name: "op", start: time.Now(), dur: time.Millisecond}.resourceSpans()}}

	_, err := otlp.Export(t.Context(), req)
	assert.Equal(t, codes.Unauthenticated, status.Code(err), "no token: %v", err)
	_, err = otlp.Export(withToken(t.Context(), "wrong-token-0123456789"), req)
	assert.Equal(t, codes.Unauthenticated, status.Code(err), "unknown token")
	_, err = otlp.Export(withToken(t.Context(), readerToken), req)
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "reader cannot write")
	_, err = otlp.Export(withToken(t.Context(), writerToken), req)
	require.NoError(t, err)

	_, err = reader.GetServices(withToken(t.Context(), writerToken), &storagev2.GetServicesRequest{})
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "writer cannot read")
	svcs, err := reader.GetServices(withToken(t.Context(), readerToken), &storagev2.GetServicesRequest{})
	require.NoError(t, err)
	assert.Equal(t, []string{"svc"}, svcs.Services)
	st, err := reader.GetTraces(t.Context(), &storagev2.GetTracesRequest{Query: []*storagev2.GetTraceParams{{TraceId: tid(1)}}})
	require.NoError(t, err)
	_, err = st.Recv()
	assert.Equal(t, codes.Unauthenticated, status.Code(err), "streams are checked too")

	h, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
	require.NoError(t, err, "health needs no token")
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, h.Status)

	plain, err := grpc.NewClient(srv.StorageAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer plain.Close()
	_, err = healthpb.NewHealthClient(plain).Check(t.Context(), &healthpb.HealthCheckRequest{})
	assert.Equal(t, codes.Unavailable, status.Code(err), "plaintext to a TLS port")
	assert.Equal(t, 3.0, testutil.ToFloat64(srv.metrics.requestsRefused.WithLabelValues("storage", "unauthenticated")))
	assert.Equal(t, 2.0, testutil.ToFloat64(srv.metrics.requestsRefused.WithLabelValues("storage", "forbidden")))
}

// TestAgentMutualTLSToCollector: clt-agent's own exporter with export.tls
// (CA, client certificate, server name) delivers to the collector port
// under mutual TLS, the certificate's common name granting writer; an agent
// without a certificate, or with one not granted a role, delivers nothing.
func TestAgentMutualTLSToCollector(t *testing.T) {
	p := tlsconftest.New(t)
	cert, key := p.Server("collector", "collector.test")
	srv := startSecure(t, func(c *Config) {
		c.Collector.TLS = TLSConfig{CertFile: cert, KeyFile: key, ClientCAFile: p.CAFile}
		c.Collector.Auth.Clients = []ClientCertConfig{{CommonName: "router1", Roles: []string{RoleWriter}}}
	})
	exportCfg := func(certFile, keyFile string) agent.ExportConfig {
		c := agent.DefaultConfig().Export
		c.Collector = srv.CollectorAddr().String()
		c.BatchMaxRecords, c.BatchMaxDelay = 10, 20*time.Millisecond
		c.Timeout, c.BackoffInitial, c.BackoffMax, c.ShutdownTimeout = time.Second, time.Millisecond, 20*time.Millisecond, time.Second
		c.TLS = agent.TLSConfig{Enabled: true, CAFile: p.CAFile, CertFile: certFile, KeyFile: keyFile, ServerName: "collector.test"}
		return c
	}
	run := func(c agent.ExportConfig, wantExported bool, recs ...*collectorv1.IOAMRecord) *agent.Metrics {
		m := agent.NewMetrics()
		e, err := agent.NewGRPCExporter(c, "a", slog.New(slog.DiscardHandler), m)
		require.NoError(t, err)
		require.NoError(t, e.Start(t.Context()))
		e.Export(recs)
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if wantExported && testutil.ToFloat64(m.RecordsExported) == float64(len(recs)) ||
				!wantExported && testutil.ToFloat64(m.BatchesSent.WithLabelValues("error"))+testutil.ToFloat64(m.BatchesSent.WithLabelValues("rejected")) >= 1 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		require.NoError(t, e.Close())
		return m
	}
	c1, k1 := p.Client("router1", "router1")
	m := run(exportCfg(c1, k1), true, testRecord(1), testRecord(2))
	assert.Equal(t, 2.0, testutil.ToFloat64(m.RecordsExported))
	assert.Equal(t, 2.0, testutil.ToFloat64(srv.metrics.recordsAccepted))

	m = run(exportCfg("", ""), false, testRecord(3))
	assert.Zero(t, testutil.ToFloat64(m.RecordsExported), "no client certificate")
	c2, k2 := p.Client("router2", "router2")
	m = run(exportCfg(c2, k2), false, testRecord(4))
	assert.Zero(t, testutil.ToFloat64(m.RecordsExported), "certificate without a role")
	assert.Equal(t, 2.0, testutil.ToFloat64(srv.metrics.recordsAccepted), "nothing else stored")
	assert.GreaterOrEqual(t, testutil.ToFloat64(srv.metrics.requestsRefused.WithLabelValues("collector", "unauthenticated")), 1.0)
}

// TestReloadTLS: a renewed certificate is served without a restart, on
// ReloadTLS (SIGHUP); token files are re-read too.
func TestReloadTLS(t *testing.T) {
	p := tlsconftest.New(t)
	cert, key := p.Server("storage", "one.test")
	dir := t.TempDir()
	tokFile := writeToken(t, dir, "reader", readerToken)
	srv := startSecure(t, func(c *Config) {
		c.Storage.TLS = TLSConfig{CertFile: cert, KeyFile: key}
		c.Storage.Auth.Tokens = []TokenConfig{{File: tokFile, Roles: []string{RoleReader}}}
	})
	check := func(serverName, tok string) error {
		conn := tlsDial(t, srv.StorageAddr().String(), &tls.Config{RootCAs: p.Pool, ServerName: serverName})
		_, err := storagev2.NewTraceReaderClient(conn).GetServices(withToken(t.Context(), tok), &storagev2.GetServicesRequest{})
		return err
	}
	require.NoError(t, check("one.test", readerToken))
	p.Server("storage", "two.test")
	writeToken(t, dir, "reader", "rotated-token-0123456789")
	require.NoError(t, srv.ReloadTLS())
	require.NoError(t, check("two.test", "rotated-token-0123456789"))
	assert.Equal(t, codes.Unavailable, status.Code(check("one.test", "rotated-token-0123456789")), "old name no longer served")
	assert.Equal(t, codes.Unauthenticated, status.Code(check("two.test", readerToken)), "old token revoked")

	// A broken file keeps what works.
	require.NoError(t, os.WriteFile(cert, []byte("x"), 0o600))
	require.Error(t, srv.ReloadTLS())
	require.NoError(t, check("two.test", "rotated-token-0123456789"))
}

// TestAdminAuthAndTLS: with admin.auth, /metrics, pprof and /purge need the
// admin role; /healthz stays open.
func TestAdminAuthAndTLS(t *testing.T) {
	p := tlsconftest.New(t)
	cert, key := p.Server("admin", "admin.test")
	dir := t.TempDir()
	srv := startSecure(t, func(c *Config) {
		c.Admin.Purge, c.Admin.Pprof = true, true
		c.Admin.TLS = TLSConfig{CertFile: cert, KeyFile: key}
		c.Admin.Auth.Tokens = []TokenConfig{
			{File: writeToken(t, dir, "admin", adminToken), Roles: []string{RoleAdmin}},
			{File: writeToken(t, dir, "reader", readerToken), Roles: []string{RoleReader}},
		}
	})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.Pool, ServerName: "admin.test"}}}
	defer client.CloseIdleConnections()
	do := func(method, path, tok string) int {
		req, err := http.NewRequest(method, "https://"+srv.AdminAddr().String()+path, nil)
		require.NoError(t, err)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusOK, do(http.MethodGet, "/healthz", ""))
	for _, path := range []string{"/metrics", "/debug/pprof/cmdline"} {
		assert.Equal(t, http.StatusUnauthorized, do(http.MethodGet, path, ""), path)
		assert.Equal(t, http.StatusForbidden, do(http.MethodGet, path, readerToken), path)
		assert.Equal(t, http.StatusOK, do(http.MethodGet, path, adminToken), path)
	}
	assert.Equal(t, http.StatusUnauthorized, do(http.MethodPost, "/purge", ""))
	assert.Equal(t, http.StatusForbidden, do(http.MethodPost, "/purge", readerToken))
	assert.Equal(t, http.StatusOK, do(http.MethodPost, "/purge", adminToken))
}

// serveGuarded serves on a loopback port the services register adds through
// a port guard named port with limits lim (a 1 MiB budget in these tests),
// stopped at the test's end; it returns the server (for its metrics) and the
// address.
func serveGuarded(t *testing.T, port string, lim PortLimits, register func(grpc.ServiceRegistrar)) (*Server, string) {
	t.Helper()
	s := &Server{logger: slog.New(slog.DiscardHandler), metrics: newMetrics(nil)}
	opts, g, err := s.grpcOptions(port, TLSConfig{}, AuthConfig{}, lim, 16, 0)
	require.NoError(t, err)
	gs := grpc.NewServer(opts...)
	register(g.register(gs))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Go(func() { _ = gs.Serve(ln) })
	t.Cleanup(func() { gs.Stop(); wg.Wait() })
	return s, ln.Addr().String()
}

// TestWriteBudget: writes beyond the in-flight byte budget get
// ResourceExhausted with RetryInfo (clt-agent and Jaeger's exporter retry
// later) instead of growing memory; a write reserves its decoded cost (wire
// size × decodeCostFactor: 40 KiB costs 640 KiB of the 1 MiB budget) before
// it is decoded; the tap refuses new write streams while the budget is spent;
// MaxConcurrentStreams holds a second RPC of one connection while the first
// runs.
func TestWriteBudget(t *testing.T) {
	blk := &blockingCollector{entered: make(chan struct{}, 4), release: make(chan struct{})}
	s, addr := serveGuarded(t, "collector", PortLimits{MaxConcurrentStreams: 1, MaxInFlightMiB: 1}, func(r grpc.ServiceRegistrar) {
		collectorv1.RegisterCollectorServiceServer(r, blk)
	})
	dial := func() collectorv1.CollectorServiceClient {
		c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(16<<20)))
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return collectorv1.NewCollectorServiceClient(c)
	}
	big := func(kib int) *collectorv1.ReportRequest {
		r := testRecord(1)
		r.Carrier = string(bytes.Repeat([]byte("x"), kib<<10))
		return &collectorv1.ReportRequest{Records: []*collectorv1.IOAMRecord{r}}
	}
	first, second, third := dial(), dial(), dial()
	done := make(chan error, 1)
	go func() { _, err := first.Report(t.Context(), big(40)); done <- err }()
	<-blk.entered

	_, err := second.Report(t.Context(), big(40))
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	assertRetryInfo(t, err)

	// The same connection cannot start a second stream while the first runs.
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err = first.Report(ctx, big(1))
	assert.Equal(t, codes.DeadlineExceeded, status.Code(err), "max_concurrent_streams 1: %v", err)

	close(blk.release)
	require.NoError(t, <-done)
	_, err = second.Report(t.Context(), big(40))
	require.NoError(t, err, "budget released")
	<-blk.entered // that call's

	// One request larger than the whole budget runs alone; while it does,
	// the tap refuses new writes before reading them.
	blk2 := make(chan struct{})
	blk.mu.Lock()
	blk.release = blk2
	blk.mu.Unlock()
	go func() { _, err := first.Report(t.Context(), big(70)); done <- err }()
	<-blk.entered
	_, err = third.Report(t.Context(), big(1))
	require.Equal(t, codes.ResourceExhausted, status.Code(err))
	assert.Contains(t, status.Convert(err).Message(), "in-flight write budget")
	assertRetryInfo(t, err)
	close(blk2)
	require.NoError(t, <-done)
	assert.Equal(t, 2.0, testutil.ToFloat64(s.metrics.requestsRefused.WithLabelValues("collector", "budget")))
}

func assertRetryInfo(t *testing.T, err error) {
	t.Helper()
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			assert.Equal(t, time.Second, ri.GetRetryDelay().AsDuration())
			return
		}
	}
	t.Errorf("no RetryInfo in %v", err)
}

type blockingCollector struct {
	collectorv1.UnimplementedCollectorServiceServer
	entered chan struct{}
	mu      sync.Mutex
	release chan struct{}
}

func (b *blockingCollector) Report(ctx context.Context, req *collectorv1.ReportRequest) (*collectorv1.ReportResponse, error) {
	b.mu.Lock()
	rel := b.release
	b.mu.Unlock()
	b.entered <- struct{}{}
	select {
	case <-rel:
	case <-ctx.Done():
	}
	return &collectorv1.ReportResponse{Accepted: uint32(len(req.Records))}, nil
}

// TestWriteBudgetV1: Jaeger v1's span writers (unary, streaming) are held
// in the same in-flight budget as OTLP Export: while one large span is being
// written, another that does not fit is ResourceExhausted, on either method.
func TestWriteBudgetV1(t *testing.T) {
	blk := &blockingV1Writer{entered: make(chan struct{}, 4), release: make(chan struct{})}
	s, addr := serveGuarded(t, "storage", PortLimits{MaxConcurrentStreams: 8, MaxInFlightMiB: 1}, func(r grpc.ServiceRegistrar) {
		storagev1.RegisterSpanWriterPluginServer(r, blk)
		storagev1.RegisterStreamingSpanWriterPluginServer(r, blk)
	})
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer c.Close()
	w, sw := storagev1.NewSpanWriterPluginClient(c), storagev1.NewStreamingSpanWriterPluginClient(c)
	big := func(kib int) *storagev1.WriteSpanRequest {
		return &storagev1.WriteSpanRequest{Span: &storagev1.Span{TraceId: tid(1), SpanId: []byte{0, 0, 0, 0, 0, 0, 0, 1},
			OperationName: string(bytes.Repeat([]byte("x"), kib<<10))}}
	}
	done := make(chan error, 1)
	go func() { _, err := w.WriteSpan(t.Context(), big(40)); done <- err }()
	<-blk.entered

	// Bounded: without the budget the call would wait in the writer.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err = w.WriteSpan(ctx, big(40))
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	assertRetryInfo(t, err)
	st, err := sw.WriteSpanStream(ctx)
	require.NoError(t, err)
	require.NoError(t, st.Send(big(40)))
	_, err = st.CloseAndRecv()
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)

	close(blk.release)
	require.NoError(t, <-done)
	_, err = w.WriteSpan(t.Context(), big(40))
	require.NoError(t, err, "budget released")
	assert.Equal(t, 2.0, testutil.ToFloat64(s.metrics.requestsRefused.WithLabelValues("storage", "budget")))
}

type blockingV1Writer struct {
	storagev1.UnimplementedSpanWriterPluginServer
	storagev1.UnimplementedStreamingSpanWriterPluginServer
	entered chan struct{}
	release chan struct{}
}

func (b *blockingV1Writer) WriteSpan(ctx context.Context, _ *storagev1.WriteSpanRequest) (*storagev1.WriteSpanResponse, error) {
	b.entered <- struct{}{}
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	return &storagev1.WriteSpanResponse{}, nil
}

func (b *blockingV1Writer) WriteSpanStream(st storagev1.StreamingSpanWriterPlugin_WriteSpanStreamServer) error {
	for {
		if _, err := st.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return st.SendAndClose(&storagev1.WriteSpanResponse{})
			}
			return err
		}
	}
}

// TestGetTracesIDLimit: more trace ids than storage.max_trace_ids_per_request
// is InvalidArgument, not seconds of work (issue 12 item 4).
func TestGetTracesIDLimit(t *testing.T) {
	e := startEnv(t, func(c *Config) { c.Storage.MaxTraceIDsPerRequest = 2 })
	q := func(n int) error {
		req := &storagev2.GetTracesRequest{}
		for i := range n {
			req.Query = append(req.Query, &storagev2.GetTraceParams{TraceId: tid(byte(i + 1))})
		}
		st, err := e.reader.GetTraces(t.Context(), req)
		require.NoError(t, err)
		for {
			if _, err := st.Recv(); err != nil {
				if status.Code(err) == codes.OK || err.Error() == "EOF" {
					return nil
				}
				return err
			}
		}
	}
	require.NoError(t, q(2))
	err := q(3)
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	assert.Contains(t, status.Convert(err).Message(), "3 trace ids, at most 2 per request")
}

// TestMemoryLimit: memory_limit_mib sets the runtime's soft limit while
// the server runs and restores it on Close.
func TestMemoryLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	cfg := testConfig(t)
	cfg.MemoryLimitMiB = 777
	srv, err := New(cfg, Settings{})
	require.NoError(t, err)
	require.NoError(t, srv.Start(t.Context()))
	assert.Equal(t, int64(777)<<20, debug.SetMemoryLimit(-1))
	require.NoError(t, srv.Close())
	assert.Equal(t, before, debug.SetMemoryLimit(-1))
}

// TestWarnExposed: a port beyond loopback without TLS or auth is logged at
// WARN, naming what is missing; loopback, or TLS + auth, is quiet.
func TestWarnExposed(t *testing.T) {
	var buf bytes.Buffer
	s := &Server{logger: slog.New(slog.NewTextHandler(&buf, nil))}
	tlsOn := TLSConfig{CertFile: "c", KeyFile: "k"}
	authOn := AuthConfig{Tokens: []TokenConfig{{File: "f", Roles: []string{RoleWriter}}}}
	s.warnExposed("storage", &net.TCPAddr{IP: net.IPv6loopback, Port: 1}, TLSConfig{}, AuthConfig{})
	s.warnExposed("storage", &net.TCPAddr{IP: net.ParseIP("fd00::1"), Port: 1}, tlsOn, authOn)
	assert.Empty(t, buf.String())
	s.warnExposed("collector", &net.TCPAddr{IP: net.IPv6unspecified, Port: 7123}, TLSConfig{}, AuthConfig{})
	assert.Contains(t, buf.String(), "level=WARN")
	assert.Contains(t, buf.String(), "without TLS (traffic is plaintext) and without auth")
	buf.Reset()
	s.warnExposed("admin", &net.TCPAddr{IP: net.ParseIP("fd00::1"), Port: 1}, tlsOn, AuthConfig{})
	assert.Contains(t, buf.String(), "without auth (any client may call it)")
	assert.NotContains(t, buf.String(), "without TLS")
}

func TestDefaultsAreLoopback(t *testing.T) {
	cfg := DefaultConfig()
	for _, addr := range []string{cfg.Storage.Listen, cfg.Collector.Listen, cfg.Admin.Listen} {
		host, _, err := net.SplitHostPort(addr)
		require.NoError(t, err)
		assert.True(t, net.ParseIP(host).IsLoopback(), addr)
	}
}

func TestSecurityValidate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Storage.TLS = TLSConfig{CertFile: "c"}
	cfg.Collector.Auth.Tokens = []TokenConfig{{File: "f", Env: "E", Roles: []string{"root"}}}
	cfg.Collector.Auth.Clients = []ClientCertConfig{{Roles: []string{RoleWriter}}}
	cfg.Admin.Auth.Tokens = []TokenConfig{{Env: "E"}}
	cfg.Storage.MaxInFlightMiB = 0
	cfg.Collector.MaxConcurrentStreams = 0
	cfg.Storage.MaxTraceIDsPerRequest = 0
	cfg.MemoryLimitMiB = -1
	err := cfg.Validate()
	require.Error(t, err)
	for _, want := range []string{
		"storage.tls.cert_file and storage.tls.key_file: set both or neither",
		"collector.auth.tokens[0]: set exactly one of file and env",
		`collector.auth.tokens[0].roles: "root", want writer, reader, admin`,
		"collector.auth.clients[0].common_name: must be set",
		"collector.auth.clients: needs collector.tls.client_ca_file",
		"admin.auth.tokens[0].roles: must name at least one",
		"storage.max_in_flight_mib: must be in [1, 65536], got 0",
		"collector.max_concurrent_streams: must be >= 1, got 0",
		"storage.max_trace_ids_per_request: must be >= 1, got 0",
		"memory_limit_mib: must be >= 0",
	} {
		assert.ErrorContains(t, err, want)
	}
	// A short token is refused at start.
	dir := t.TempDir()
	cfg = testConfig(t)
	cfg.Storage.Auth.Tokens = []TokenConfig{{File: writeToken(t, dir, "short", "abc"), Roles: []string{RoleReader}}}
	srv, err := New(cfg, Settings{})
	require.NoError(t, err)
	require.ErrorContains(t, srv.Start(t.Context()), "storage.auth.tokens[0]: token is empty or shorter than 16 characters")
}

// TestAgentTokenToCollector: clt-agent's export.token_file authorises it to
// a TLS collector with bearer tokens; a wrong token delivers nothing.
func TestAgentTokenToCollector(t *testing.T) {
	p := tlsconftest.New(t)
	cert, key := p.Server("collector", "collector.test")
	dir := t.TempDir()
	srv := startSecure(t, func(c *Config) {
		c.Collector.TLS = TLSConfig{CertFile: cert, KeyFile: key}
		c.Collector.Auth.Tokens = []TokenConfig{{Name: "agents", File: writeToken(t, dir, "agents", writerToken), Roles: []string{RoleWriter}}}
	})
	run := func(tokFile string, n int) *agent.Metrics {
		c := agent.DefaultConfig().Export
		c.Collector = srv.CollectorAddr().String()
		c.BatchMaxRecords, c.BatchMaxDelay = 10, 20*time.Millisecond
		c.Timeout, c.BackoffInitial, c.BackoffMax, c.ShutdownTimeout = time.Second, time.Millisecond, 20*time.Millisecond, time.Second
		c.TLS = agent.TLSConfig{Enabled: true, CAFile: p.CAFile, ServerName: "collector.test"}
		c.TokenFile = tokFile
		full := agent.DefaultConfig()
		full.Export = c
		require.NoError(t, full.Validate())
		m := agent.NewMetrics()
		e, err := agent.NewGRPCExporter(c, "a", slog.New(slog.DiscardHandler), m)
		require.NoError(t, err)
		require.NoError(t, e.Start(t.Context()))
		e.Export([]*collectorv1.IOAMRecord{testRecord(byte(n))})
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) && testutil.ToFloat64(m.RecordsExported) == 0 &&
			testutil.ToFloat64(m.BatchesSent.WithLabelValues("error"))+testutil.ToFloat64(m.BatchesSent.WithLabelValues("rejected")) == 0 {
			time.Sleep(10 * time.Millisecond)
		}
		require.NoError(t, e.Close())
		return m
	}
	assert.Equal(t, 1.0, testutil.ToFloat64(run(writeToken(t, dir, "agent-ok", writerToken), 1).RecordsExported))
	assert.Zero(t, testutil.ToFloat64(run(writeToken(t, dir, "agent-bad", "not-the-token-0123456789"), 2).RecordsExported))
	assert.Equal(t, 1.0, testutil.ToFloat64(srv.metrics.recordsAccepted))

	// The agent refuses to send a token without TLS.
	plain := agent.DefaultConfig()
	plain.Export.TokenFile = writeToken(t, dir, "plain", writerToken)
	assert.ErrorContains(t, plain.Validate(), "export.token_file: needs export.tls.enabled")
}

// Every method served on the Jaeger and collector ports has the role its
// kind of client needs: a service registered without a rule would be
// admin-only once auth is configured (Jaeger v1 readers refused).
func TestGRPCRoleOfEveryServedMethod(t *testing.T) {
	want := map[string]string{
		storagev2.TraceReader_ServiceDesc.ServiceName:               RoleReader,
		storagev2.DependencyReader_ServiceDesc.ServiceName:          RoleReader,
		storagev1.SpanReaderPlugin_ServiceDesc.ServiceName:          RoleReader,
		storagev1.ArchiveSpanReaderPlugin_ServiceDesc.ServiceName:   RoleReader,
		storagev1.DependenciesReaderPlugin_ServiceDesc.ServiceName:  RoleReader,
		storagev1.PluginCapabilities_ServiceDesc.ServiceName:        RoleReader,
		storagev1.SpanWriterPlugin_ServiceDesc.ServiceName:          RoleWriter,
		storagev1.StreamingSpanWriterPlugin_ServiceDesc.ServiceName: RoleWriter,
		storagev1.ArchiveSpanWriterPlugin_ServiceDesc.ServiceName:   RoleWriter,
		collectorv1.CollectorService_ServiceDesc.ServiceName:        RoleWriter,
		ioamtrace.IOAMService_ServiceDesc.ServiceName:               RoleWriter,
		ioamapi.IOAMService_ServiceDesc.ServiceName:                 RoleWriter,
	}
	descs := []grpc.ServiceDesc{storagev2.TraceReader_ServiceDesc, storagev2.DependencyReader_ServiceDesc,
		storagev1.SpanReaderPlugin_ServiceDesc, storagev1.ArchiveSpanReaderPlugin_ServiceDesc,
		storagev1.DependenciesReaderPlugin_ServiceDesc, storagev1.PluginCapabilities_ServiceDesc,
		storagev1.SpanWriterPlugin_ServiceDesc, storagev1.StreamingSpanWriterPlugin_ServiceDesc,
		storagev1.ArchiveSpanWriterPlugin_ServiceDesc, collectorv1.CollectorService_ServiceDesc,
		ioamtrace.IOAMService_ServiceDesc, ioamapi.IOAMService_ServiceDesc}
	for _, d := range descs {
		for _, m := range d.Methods {
			assert.Equal(t, want[d.ServiceName], grpcRole("/"+d.ServiceName+"/"+m.MethodName), d.ServiceName+"/"+m.MethodName)
		}
		for _, m := range d.Streams {
			assert.Equal(t, want[d.ServiceName], grpcRole("/"+d.ServiceName+"/"+m.StreamName), d.ServiceName+"/"+m.StreamName)
		}
	}
	assert.Equal(t, RoleWriter, grpcRole("/opentelemetry.proto.collector.trace.v1.TraceService/Export"))
	assert.Equal(t, RoleAdmin, grpcRole("/some.new.Service/Method"), "unknown services are admin-only")
}
