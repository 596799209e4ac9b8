//go:build linux

package clt_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/cross-layer-telemetry/clt/kernel/clt"
	"github.com/cross-layer-telemetry/clt/kernel/netnstest"
)

func BenchmarkAppendHBH(b *testing.B) {
	inj, err := clt.New(clt.DefaultConfig(), clt.Settings{})
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 256)
	sc := span(1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := inj.AppendHBH(buf[:0], sc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSetConnTCP is the per-request cost clt.Transport adds on a
// connection: build the header and setsockopt(IPV6_HOPOPTS) on a connected
// TCP socket (::1). Needs CAP_NET_RAW (root).
func BenchmarkSetConnTCP(b *testing.B) {
	netnstest.RequirePrivileged(b)
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		b.Skip(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			buf := make([]byte, 1)
			_, _ = c.Read(buf)
		}
	}()
	c, err := net.Dial("tcp6", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	inj, err := clt.New(clt.DefaultConfig(), clt.Settings{})
	if err != nil {
		b.Fatal(err)
	}
	a, z := span(1), span(2)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		sc := a
		if i&1 == 1 {
			sc = z
		}
		i++
		if err := inj.SetConn(c, sc); err != nil {
			b.Fatal(err)
		}
	}
	if st := inj.Stats(); st.SkippedTotal() != 0 {
		b.Fatalf("skipped: %+v", st)
	}
}

// BenchmarkPingPongTCP isolates the full cost of changing the option once
// per exchange (setsockopt plus its after-effects on the next transmit) on
// a ::1 TCP echo: "sticky" sets it once, "per-request" before every write.
func BenchmarkPingPongTCP(b *testing.B) {
	for _, perRequest := range []bool{false, true} {
		name := map[bool]string{false: "sticky", true: "per-request"}[perRequest]
		b.Run(name, func(b *testing.B) {
			netnstest.RequirePrivileged(b)
			ln, err := net.Listen("tcp6", "[::1]:0")
			if err != nil {
				b.Skip(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				buf := make([]byte, 64)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
			c, err := net.Dial("tcp6", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			inj, err := clt.New(clt.DefaultConfig(), clt.Settings{})
			if err != nil {
				b.Fatal(err)
			}
			if err := inj.SetConn(c, span(1)); err != nil {
				b.Fatal(err)
			}
			msg := make([]byte, 64)
			i := 0
			for b.Loop() {
				if perRequest {
					i++
					if err := inj.SetConn(c, span(byte(i))); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTransportGoOverhead compares http.Transport with clt.Transport
// on ::1 with the setsockopt faked out: the difference is the wrapper's Go
// cost per request (context, trace hook, header build).
func BenchmarkTransportGoOverhead(b *testing.B) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		b.Skip(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	inj, err := clt.New(clt.DefaultConfig(), clt.Settings{})
	if err != nil {
		b.Fatal(err)
	}
	inj.SetHopOptsFunc(func(int, []byte) error { return nil })
	url := "http://" + ln.Addr().String() + "/"
	plain := &http.Transport{}
	wrapped := clt.NewTransport(&http.Transport{}, inj)
	defer plain.CloseIdleConnections()
	defer wrapped.CloseIdleConnections()
	ctx := trace.ContextWithSpanContext(context.Background(), span(1))
	for _, tc := range []struct {
		name string
		rt   http.RoundTripper
	}{{"http.Transport", plain}, {"clt.Transport", wrapped}} {
		b.Run(tc.name, func(b *testing.B) {
			c := &http.Client{Transport: tc.rt}
			b.ReportAllocs()
			for b.Loop() {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				resp, err := c.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
		})
	}
}

// BenchmarkEgressLookup is the cost of one egress lookup (cache miss):
// route and link requests on a fresh netlink socket, same namespace.
func BenchmarkEgressLookup(b *testing.B) {
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		b.Skip(err)
	}
	defer c.Close()
	rc, err := c.SyscallConn()
	if err != nil {
		b.Fatal(err)
	}
	dst := netip.IPv6Loopback()
	b.ReportAllocs()
	for b.Loop() {
		var lerr error
		if err := rc.Control(func(fd uintptr) { _, _, lerr = clt.LookupEgress(int(fd), dst) }); err != nil {
			b.Fatal(err)
		}
		if lerr != nil {
			b.Fatal(lerr)
		}
	}
}
