//go:build linux

package wire

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/cross-layer-telemetry/clt/kernel/netnstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestIntegrationWire: a ── wire ── b; TCP across it, with and without delay,
// and a bulk transfer (veth checksum offload and GSO frames) arriving intact.
func TestIntegrationWire(t *testing.T) {
	topo := netnstest.Build(t, netnstest.Spec{
		Nodes: []netnstest.NodeSpec{{Role: "a"}, {Role: "wire"}, {Role: "b"}},
		Links: []netnstest.LinkSpec{
			{A: netnstest.Endpoint{Node: "a", Name: "va", Addr: netip.MustParsePrefix("fd00:9::1/64")},
				B: netnstest.Endpoint{Node: "wire", Name: "wa"}},
			{A: netnstest.Endpoint{Node: "wire", Name: "wb"},
				B: netnstest.Endpoint{Node: "b", Name: "vb", Addr: netip.MustParsePrefix("fd00:9::2/64")}},
		},
	})
	var w *Wire
	require.NoError(t, topo.Node("wire").Do(func() (err error) {
		w, err = Open("wa", "wb")
		return err
	}))
	w.Start()
	defer func() { require.NoError(t, w.Close()) }()

	payload := make([]byte, 1<<20)
	_, _ = rand.Read(payload)
	ln, err := topo.Node("b").Listen("tcp6", "[fd00:9::2]:0")
	require.NoError(t, err)
	defer ln.Close()
	served := make(chan error, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				served <- nil
				return
			}
			_, _ = c.Write(payload)
			_ = c.Close()
		}
	}()
	defer func() { _ = ln.Close(); <-served }()

	fetch := func() (time.Duration, []byte) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		start := time.Now()
		c, err := topo.Node("a").DialContext(ctx, nil, "tcp6", ln.Addr().String())
		require.NoError(t, err)
		connect := time.Since(start)
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(c)
		require.NoError(t, err)
		return connect, got
	}

	// Neighbour discovery crosses the wire too: warm it up first.
	_, got := fetch()
	require.True(t, bytes.Equal(payload, got), "payload corrupted across the wire (%d bytes)", len(got))

	base, got := fetch()
	require.True(t, bytes.Equal(payload, got))

	const delay = 80 * time.Millisecond
	w.SetDelay(delay, 0)
	delayed, got := fetch()
	require.True(t, bytes.Equal(payload, got))
	assert.GreaterOrEqual(t, delayed, delay, "the SYN waits on the wire")
	assert.Less(t, base, delay)
	ab, ba := w.Stats()
	assert.Positive(t, ab.Forwarded)
	assert.Positive(t, ba.Forwarded)
	t.Logf("connect %s without delay, %s with %s; a→b %+v, b→a %+v", base, delayed, delay, ab, ba)
}
