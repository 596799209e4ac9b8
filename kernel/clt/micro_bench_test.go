//go:build linux

package clt_test

import (
	"net"
	"testing"

	"github.com/cross-layer-telemetry/clt/kernel/clt"
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
