//go:build linux

package clt_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sys/unix"

	"github.com/cross-layer-telemetry/clt/kernel/clt"
	"github.com/cross-layer-telemetry/clt/kernel/netnstest"
)

// httpBench is a client and an HTTP server across one IOAM-enabled veth
// link, with a plain and a CLT client sharing the same dialer.
type httpBench struct {
	url         string
	plain, cltc *http.Client
	// sticky sets the header once, at dial (the first request's span), and
	// never changes it: the kernel and wire cost of the header without the
	// per-request work of clt.Transport.
	sticky *http.Client
	tracer trace.Tracer
	inj    *clt.Injector
}

func newHTTPBench(tb testing.TB) *httpBench {
	tb.Helper()
	topo := netnstest.Build(tb, netnstest.Chain(netnstest.ChainOptions{Routers: 0, IOAMNamespace: testNS}))
	client, server := topo.Node("client"), topo.Node("server")
	ln, err := server.Listen("tcp6", "[fd00:1::2]:0")
	require.NoError(tb, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	tb.Cleanup(func() { _ = srv.Close(); <-done })

	one := uint32(1)
	cfg := clt.DefaultConfig()
	cfg.NodeID = &one
	inj, err := clt.New(cfg, clt.Settings{})
	require.NoError(tb, err)
	mk := func(d *net.Dialer) *http.Transport {
		return &http.Transport{MaxIdleConnsPerHost: 16, DialContext: func(ctx context.Context, nw, addr string) (net.Conn, error) {
			return client.DialContext(ctx, d, nw, addr)
		}}
	}
	plainTr := mk(&net.Dialer{})
	stickyTr := mk(inj.Dialer(nil))
	cltTr := clt.NewTransport(mk(inj.Dialer(nil)), inj)
	tb.Cleanup(plainTr.CloseIdleConnections)
	tb.Cleanup(stickyTr.CloseIdleConnections)
	tb.Cleanup(cltTr.CloseIdleConnections)
	tp := sdktrace.NewTracerProvider()
	tb.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return &httpBench{
		url: "http://" + ln.Addr().String() + "/", inj: inj, tracer: tp.Tracer("bench"),
		plain: &http.Client{Transport: plainTr}, cltc: &http.Client{Transport: cltTr},
		sticky: &http.Client{Transport: stickyTr},
	}
}

// get performs one request in its own span (both clients create spans, so
// the difference is the transport alone).
func (hb *httpBench) get(ctx context.Context, c *http.Client) error {
	ctx, span := hb.tracer.Start(ctx, "GET")
	defer span.End()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, hb.url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// run issues requests from conc goroutines for d and returns how many.
func (hb *httpBench) run(ctx context.Context, c *http.Client, conc int, d time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	counts := make(chan int, conc)
	errs := make(chan error, conc)
	for range conc {
		go func() {
			n := 0
			for ctx.Err() == nil {
				if err := hb.get(context.WithoutCancel(ctx), c); err != nil {
					errs <- err
					break
				}
				n++
			}
			counts <- n
		}()
	}
	total := 0
	for range conc {
		total += <-counts
	}
	select {
	case err := <-errs:
		return total, err
	default:
		return total, nil
	}
}

func BenchmarkIntegrationHTTP(b *testing.B) {
	hb := newHTTPBench(b)
	for _, tc := range []struct {
		name string
		c    *http.Client
	}{{"plain", hb.plain}, {"sticky", hb.sticky}, {"clt", hb.cltc}} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if err := hb.get(b.Context(), tc.c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestIntegrationTransportOverhead measures requests per second with and
// without clt.Transport in one run, rotating rounds so all clients see the
// same machine load. Set CLT_BENCH=1 to run it (CLT_BENCH_ROUNDS, default
// 10; CLT_BENCH_SLICE_MS per client per round, default 500; CLT_BENCH_CONC,
// default 1 and 8).
func TestIntegrationTransportOverhead(t *testing.T) {
	if os.Getenv("CLT_BENCH") != "1" {
		t.Skip("set CLT_BENCH=1 to measure")
	}
	hb := newHTTPBench(t)
	rounds := envInt("CLT_BENCH_ROUNDS", 10)
	concs := []int{1, 8}
	if c := envInt("CLT_BENCH_CONC", 0); c > 0 {
		concs = []int{c}
	}
	slice := time.Duration(envInt("CLT_BENCH_SLICE_MS", 500)) * time.Millisecond
	clients := []struct {
		name string
		c    *http.Client
	}{{"plain", hb.plain}, {"sticky", hb.sticky}, {"clt", hb.cltc}}
	for _, conc := range concs {
		for _, c := range clients { // warm up every pool
			_, err := hb.run(t.Context(), c.c, conc, 200*time.Millisecond)
			require.NoError(t, err)
		}
		counts := make([]int, len(clients))
		cpu := make([]time.Duration, len(clients))
		for r := range rounds {
			// Rotate the order each round to cancel drift.
			for k := range clients {
				i := (k + r) % len(clients)
				c0 := cpuTime()
				n, err := hb.run(t.Context(), clients[i].c, conc, slice)
				require.NoError(t, err)
				cpu[i] += cpuTime() - c0
				counts[i] += n
			}
		}
		secs := float64(rounds) * slice.Seconds()
		rps := func(i int) float64 { return float64(counts[i]) / secs }
		// CPU per request (client + server + kernel work charged to this
		// process) is steadier than throughput on a shared machine.
		us := func(i int) float64 { return float64(cpu[i].Microseconds()) / float64(counts[i]) }
		t.Logf("concurrency %d: req/s plain %.0f, sticky %.0f, clt %.0f; clt/plain %.3f, clt/sticky %.3f, sticky/plain %.3f",
			conc, rps(0), rps(1), rps(2), rps(2)/rps(0), rps(2)/rps(1), rps(1)/rps(0))
		t.Logf("concurrency %d: CPU µs/req plain %.1f, sticky %.1f, clt %.1f; clt vs plain %+.1f %%, clt vs sticky %+.1f %%",
			conc, us(0), us(1), us(2), (us(2)/us(0)-1)*100, (us(2)/us(1)-1)*100)
	}
	st := hb.inj.Stats()
	t.Logf("injector: applied %d, skipped %d", st.Applied, st.SkippedTotal())
	require.Zero(t, st.SkippedTotal())
}

func cpuTime() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return v
	}
	return def
}
