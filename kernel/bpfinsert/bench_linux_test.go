package bpfinsert

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// BenchmarkIntegrationHTTP: requests/s of a trivial HTTP/1.1 handler from
// client through r1 to server on keep-alive connections, plain and tagged
// side by side, concurrency 1 and 8; for tagged runs the programs' run time
// per packet from the kernel's BPF statistics (BPF_ENABLE_STATS, only
// while the benchmark runs). Figures: docs/benchmarks.md.
func BenchmarkIntegrationHTTP(b *testing.B) {
	l := newLab(b)
	// No listener on r1: the kernel sends no ioam6_events then, so the
	// comparison is the sender's cost plus r1's IOAM processing.
	if err := l.rec.Close(); err != nil {
		b.Fatal(err)
	}
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		b.Fatalf("enable bpf stats: %v", err)
	}
	defer stats.Close()
	tp, _ := traceparent(11, "01")
	for _, conc := range []int{1, 8} {
		// slots: -1 plain; else tagged with that many transit slots (6, the
		// default, makes a 184-byte header; 2 a 104-byte one, which fits the
		// headroom TCP leaves on a kernel without tunnels, see
		// docs/benchmarks.md).
		for _, slots := range []int{-1, DefaultHopSlots, 2} {
			tagged := slots >= 0
			name := "plain"
			if tagged {
				name = fmt.Sprintf("tagged-slots=%d", slots)
			}
			b.Run(fmt.Sprintf("c=%d/%s", conc, name), func(b *testing.B) {
				var in *Inserter
				if tagged {
					cfg := labConfig()
					cfg.HopSlots = slots
					in = l.attach(b, cfg)
					defer in.Close()
				}
				tr := &http.Transport{MaxIdleConnsPerHost: conc, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
					return l.client.DialContext(ctx, nil, network, addr)
				}}
				defer tr.CloseIdleConnections()
				hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
				get := func() error {
					req, err := http.NewRequest("GET", l.url+"/bench", nil)
					if err != nil {
						return err
					}
					req.Header.Set("traceparent", tp)
					resp, err := hc.Do(req)
					if err != nil {
						return err
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					return resp.Body.Close()
				}
				for range conc { // warm the connections (and the MSS clamp)
					if err := get(); err != nil {
						b.Fatal(err)
					}
				}
				var eg0, ing0 *ebpf.ProgramStats
				if tagged {
					eg0, _ = in.coll.Programs["clt_egress"].Stats()
					ing0, _ = in.coll.Programs["clt_ingress"].Stats()
				}
				b.ResetTimer()
				var wg sync.WaitGroup
				errs := make(chan error, conc)
				for w := range conc {
					n := b.N / conc
					if w < b.N%conc {
						n++
					}
					wg.Go(func() {
						for range n {
							if err := get(); err != nil {
								errs <- err
								return
							}
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				close(errs)
				for err := range errs {
					b.Fatal(err)
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
				if tagged {
					eg, _ := in.coll.Programs["clt_egress"].Stats()
					ing, _ := in.coll.Programs["clt_ingress"].Stats()
					if n := eg.RunCount - eg0.RunCount; n > 0 {
						b.ReportMetric(float64(eg.Runtime-eg0.Runtime)/float64(n), "egress-ns/pkt")
						b.ReportMetric(float64(n)/float64(b.N), "egress-pkts/req")
					}
					if n := ing.RunCount - ing0.RunCount; n > 0 {
						b.ReportMetric(float64(ing.Runtime-ing0.Runtime)/float64(n), "ingress-ns/pkt")
					}
					st, _ := in.Stats()
					if st.RequestsParsed < uint64(b.N) {
						b.Fatalf("parsed %d requests, sent %d", st.RequestsParsed, b.N)
					}
				}
			})
		}
	}
}

// BenchmarkIntegrationProgram: the egress program's time per packet in
// BPF_PROG_TEST_RUN (kernel-measured, excluding the syscall): request
// segments (parsed and tagged), a request without traceparent (parsed, not
// tagged), a request to an unconfigured destination, and an ACK of a socket
// without state, repeated in the kernel and as single runs (what the
// kernel's clock adds to a single run, the tagged rows' only way).
func BenchmarkIntegrationProgram(b *testing.B) {
	in := loadForTest(b, testConfig())
	req := request("traceparent: 00-" + tid + "-" + sid + "-01")
	browser := "GET /index.html HTTP/1.1\r\nHost: server.example\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
		"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n" +
		"Connection: keep-alive\r\nCookie: session=0123456789abcdef0123456789abcdef; theme=dark\r\ntraceparent: 00-" + tid + "-" + sid + "-01\r\n\r\n"
	for _, tc := range []struct {
		name string
		pkt  []byte
	}{
		// A tagged packet carries the header afterwards, so every run after
		// the first would take the "extension header" exit: these run once
		// per test run (the kernel's clock around a single run).
		{"request-tagged-" + fmt.Sprint(len(req)) + "B", packet(testDst, 8080, tcpPSH|tcpACK, req)},
		{"browser-request-tagged-" + fmt.Sprint(len(browser)) + "B", packet(testDst, 8080, tcpPSH|tcpACK, browser)},
		// These leave the packet as it is: repeated in the kernel.
		{"request-no-traceparent", packet(testDst, 8080, tcpPSH|tcpACK, request(""))},
		{"request-unconfigured-destination", packet("fd00:9::1", 8080, tcpPSH|tcpACK, req)},
		{"ack-no-state", packet(testDst, 8080, tcpACK, "")},
		{"ack-no-state-single", packet(testDst, 8080, tcpACK, "")},
	} {
		b.Run(tc.name, func(b *testing.B) {
			prog := in.coll.Programs["clt_egress"]
			var total time.Duration
			if strings.Contains(tc.name, "tagged") || strings.HasSuffix(tc.name, "-single") {
				for range b.N {
					_, d, err := prog.Benchmark(tc.pkt, 1, nil)
					if err != nil {
						b.Fatal(err)
					}
					total += d
				}
			} else {
				_, d, err := prog.Benchmark(tc.pkt, b.N, nil)
				if err != nil {
					b.Fatal(err)
				}
				total = d * time.Duration(b.N)
			}
			b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/pkt")
		})
	}
}

// enableStats turns on BPF run-time statistics for the test's duration.
func enableStats(t testing.TB) {
	t.Helper()
	c, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		t.Logf("bpf stats unavailable: %v", err)
		return
	}
	t.Cleanup(func() { _ = c.Close() })
}

// BenchmarkIntegrationHTTPAlternating is BenchmarkIntegrationHTTP with the
// two modes interleaved in rounds inside one benchmark (the program attached
// for tagged rounds, its links closed for plain ones), so that load from
// other processes on the machine hits both alike. b.N requests per mode.
func BenchmarkIntegrationHTTPAlternating(b *testing.B) {
	l := newLab(b)
	if err := l.rec.Close(); err != nil {
		b.Fatal(err)
	}
	tp, _ := traceparent(12, "01")
	for _, conc := range []int{1, 8} {
		b.Run(fmt.Sprintf("c=%d", conc), func(b *testing.B) {
			in := l.attach(b, labConfig())
			setAttached := func(on bool) {
				in.mu.Lock()
				defer in.mu.Unlock()
				for _, k := range in.links {
					_ = k.Close()
				}
				in.links = nil
				if !on {
					return
				}
				for _, ifc := range in.ifaces {
					for _, p := range []struct {
						name string
						at   ebpf.AttachType
					}{{"clt_egress", ebpf.AttachTCXEgress}, {"clt_ingress", ebpf.AttachTCXIngress}} {
						var k link.Link
						err := l.client.Do(func() (err error) {
							k, err = link.AttachTCX(link.TCXOptions{Interface: ifc.Index, Program: in.coll.Programs[p.name], Attach: p.at})
							return err
						})
						if err != nil {
							b.Fatal(err)
						}
						in.links = append(in.links, k)
					}
				}
			}
			tr := &http.Transport{MaxIdleConnsPerHost: conc, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return l.client.DialContext(ctx, nil, network, addr)
			}}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			get := func() error {
				req, err := http.NewRequest("GET", l.url+"/bench", nil)
				if err != nil {
					return err
				}
				req.Header.Set("traceparent", tp)
				resp, err := hc.Do(req)
				if err != nil {
					return err
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				return resp.Body.Close()
			}
			batch := func(n int) time.Duration {
				start := time.Now()
				var wg sync.WaitGroup
				var failed atomicErr
				for w := range conc {
					k := n / conc
					if w < n%conc {
						k++
					}
					wg.Go(func() {
						for range k {
							if err := get(); err != nil {
								failed.set(err)
								return
							}
						}
					})
				}
				wg.Wait()
				if err := failed.get(); err != nil {
					b.Fatal(err)
				}
				return time.Since(start)
			}
			const rounds = 10
			var plain, tagged time.Duration
			for range conc {
				_ = get()
			}
			b.ResetTimer()
			for r := range rounds {
				n := b.N / rounds
				if r < b.N%rounds {
					n++
				}
				setAttached(false)
				plain += batch(n)
				setAttached(true)
				tagged += batch(n)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/plain.Seconds(), "plain-req/s")
			b.ReportMetric(float64(b.N)/tagged.Seconds(), "tagged-req/s")
			b.ReportMetric(plain.Seconds()/tagged.Seconds(), "tagged/plain")
			st, _ := in.Stats()
			if st.RequestsParsed < uint64(b.N) {
				b.Fatalf("parsed %d requests, sent %d tagged", st.RequestsParsed, b.N)
			}
		})
	}
}

type atomicErr struct {
	mu  sync.Mutex
	err error
}

func (a *atomicErr) set(err error) { a.mu.Lock(); a.err = err; a.mu.Unlock() }
func (a *atomicErr) get() error    { a.mu.Lock(); defer a.mu.Unlock(); return a.err }
