//go:build linux

package ioam6nl_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6nl"
	"github.com/cross-layer-telemetry/clt/kernel/netnstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func single(t *testing.T) *netnstest.Node {
	t.Helper()
	topo := netnstest.Build(t, netnstest.Spec{Nodes: []netnstest.NodeSpec{{Role: "nl"}}})
	return topo.Node("nl")
}

func ipShow(t *testing.T, node *netnstest.Node, what string) string {
	t.Helper()
	out, err := exec.Command("ip", "-n", node.Name, "ioam", what, "show").CombinedOutput()
	require.NoError(t, err, string(out))
	return strings.TrimSpace(string(out))
}

func TestIntegrationConfigRoundTrip(t *testing.T) {
	node := single(t)
	c, err := ioam6nl.DialPath(node.Path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	assert.True(t, c.HasEvents(), "Linux 6.9+ has ioam6_events")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	d, w := uint32(0x12300002), uint64(0x1230000000000002)
	require.NoError(t, c.AddNamespace(ctx, ioam6nl.Namespace{ID: 123, Data: &d, DataWide: &w}))
	require.NoError(t, c.AddNamespace(ctx, ioam6nl.Namespace{ID: 7, Data: &d}))
	require.NoError(t, c.AddNamespace(ctx, ioam6nl.Namespace{ID: 8}))
	err = c.AddNamespace(ctx, ioam6nl.Namespace{ID: 8})
	require.ErrorIs(t, err, os.ErrExist)
	assert.Contains(t, err.Error(), "add namespace 8")

	require.NoError(t, c.AddSchema(ctx, ioam6nl.Schema{ID: 777, Data: []byte("ABCD")}))
	require.NoError(t, c.SetNamespaceSchema(ctx, 123, 777))

	// Our dump and iproute2 agree.
	nss, err := c.Namespaces(ctx)
	require.NoError(t, err)
	ours := map[uint16]ioam6nl.Namespace{}
	for _, ns := range nss {
		ours[ns.ID] = ns
	}
	require.Len(t, ours, 3)
	sc := uint32(777)
	assert.Equal(t, ioam6nl.Namespace{ID: 123, Data: &d, DataWide: &w, SchemaID: &sc}, ours[123])
	assert.Equal(t, ioam6nl.Namespace{ID: 7, Data: &d}, ours[7])
	assert.Equal(t, ioam6nl.Namespace{ID: 8}, ours[8])
	out := ipShow(t, node, "namespace")
	assert.Contains(t, out, "namespace 123 [schema 777], data 0x12300002, wide 0x1230000000000002")
	assert.Contains(t, out, "namespace 7, data 0x12300002")
	assert.Regexp(t, `(?m)^namespace 8$`, out)

	scs, err := c.Schemas(ctx)
	require.NoError(t, err)
	require.Len(t, scs, 1)
	assert.EqualValues(t, 777, scs[0].ID)
	assert.Equal(t, []byte("ABCD"), scs[0].Data)
	require.NotNil(t, scs[0].NamespaceID)
	assert.EqualValues(t, 123, *scs[0].NamespaceID)
	assert.Contains(t, ipShow(t, node, "schema"), "schema 777 [namespace 123], data: 41 42 43 44")

	// Detach, delete, and errors for missing objects.
	require.NoError(t, c.ClearNamespaceSchema(ctx, 123))
	assert.Contains(t, ipShow(t, node, "namespace"), "namespace 123, data 0x12300002")
	require.NoError(t, c.DeleteSchema(ctx, 777))
	require.ErrorIs(t, c.DeleteSchema(ctx, 777), os.ErrNotExist)
	require.NoError(t, c.DeleteNamespace(ctx, 7))
	require.ErrorIs(t, c.DeleteNamespace(ctx, 7), os.ErrNotExist)
	require.Error(t, c.SetNamespaceSchema(ctx, 123, 999), "unknown schema")
	nss, err = c.Namespaces(ctx)
	require.NoError(t, err)
	assert.Len(t, nss, 2)

	// iproute2 changes are visible to us (shared kernel state, per netns).
	out2, err := exec.Command("ip", "-n", node.Name, "ioam", "namespace", "add", "9", "wide", "0x99").CombinedOutput()
	require.NoError(t, err, string(out2))
	nss, err = c.Namespaces(ctx)
	require.NoError(t, err)
	found := false
	for _, ns := range nss {
		if ns.ID == 9 {
			found = true
			require.NotNil(t, ns.DataWide)
			assert.EqualValues(t, 0x99, *ns.DataWide)
			assert.Nil(t, ns.Data)
		}
	}
	assert.True(t, found)

	// The root namespace is untouched.
	root, err := ioam6nl.Dial()
	require.NoError(t, err)
	defer root.Close()
	rootNS, err := root.Namespaces(ctx)
	require.NoError(t, err)
	for _, ns := range rootNS {
		assert.NotEqual(t, uint16(777), ns.ID)
	}

	require.NoError(t, c.Close())
	require.NoError(t, c.Close(), "idempotent")
}

func TestIntegrationCancelledContext(t *testing.T) {
	node := single(t)
	c, err := ioam6nl.DialNetNS(node.NetNS())
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = c.Namespaces(ctx)
	require.ErrorIs(t, err, context.Canceled)
	// The connection still works afterwards.
	_, err = c.Namespaces(t.Context())
	require.NoError(t, err)
}

// modes are the read modes every subscriber test runs in.
var modes = []ioam6nl.ReadMode{ioam6nl.ReadNetpoll, ioam6nl.ReadBatch}

func withMode(cfg ioam6nl.SubscriberConfig, mode ioam6nl.ReadMode) ioam6nl.SubscriberConfig {
	cfg.Mode = mode
	return cfg
}

func TestIntegrationSubscriberCloseUnblocks(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) { testSubscriberCloseUnblocks(t, mode) })
	}
}

func testSubscriberCloseUnblocks(t *testing.T, mode ioam6nl.ReadMode) {
	node := single(t)
	sub, err := node.Subscribe(withMode(ioam6nl.DefaultSubscriberConfig(), mode))
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })

	// Deadline first: a blocked Read returns on time.
	require.NoError(t, sub.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	buf := make([]ioam6.EventAttrs, 8)
	_, err = sub.Read(buf)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.NoError(t, sub.SetReadDeadline(time.Time{}))

	done := make(chan error, 1)
	go func() {
		_, err := sub.Read(buf)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Read returned before Close: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	require.NoError(t, sub.Close())
	select {
	case err := <-done:
		require.ErrorIs(t, err, net.ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Read")
	}
	require.NoError(t, sub.Close(), "idempotent")
	_, err = sub.Read(buf)
	require.ErrorIs(t, err, net.ErrClosed)
}

// flood sends n UDP datagrams with an IOAM header (sticky) from client to
// the server address.
func flood(t testing.TB, client *netnstest.Node, dst string, n int, hbh []byte) {
	t.Helper()
	var fd int
	require.NoError(t, client.Do(func() (err error) {
		fd, err = unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		return err
	}))
	defer unix.Close(fd)
	require.NoError(t, unix.SetsockoptString(fd, unix.IPPROTO_IPV6, unix.IPV6_HOPOPTS, string(hbh)))
	sa := &unix.SockaddrInet6{Port: 9}
	copy(sa.Addr[:], net.ParseIP(dst).To16())
	payload := make([]byte, 64)
	for range n {
		if err := unix.Sendto(fd, payload, 0, sa); err != nil && !errors.Is(err, unix.ENOBUFS) && !errors.Is(err, unix.EAGAIN) {
			require.NoError(t, err)
		}
	}
}

func hbhFor(t testing.TB) []byte {
	t.Helper()
	hbh, err := ioam6.AppendHBH(nil, ioam6.HBHSpec{NamespaceID: 123, Type: 0xF00000, Slots: 2}, ioam6.IDs{TraceID: [16]byte{1}, SpanID: [8]byte{2}})
	require.NoError(t, err)
	return hbh
}

func TestIntegrationOverrunsSurvived(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) { testOverrunsSurvived(t, mode) })
	}
}

func testOverrunsSurvived(t *testing.T, mode ioam6nl.ReadMode) {
	topo := netnstest.Build(t, netnstest.Chain(netnstest.ChainOptions{Routers: 0, IOAMNamespace: 123}))
	client, server := topo.Node("client"), topo.Node("server")
	// The smallest buffer the kernel allows: a few events fill it.
	sub, err := server.Subscribe(ioam6nl.SubscriberConfig{ReceiveBuffer: 4096, Mode: mode, BatchWait: 50 * time.Millisecond})
	if errors.Is(err, ioam6nl.ErrNoEventGroup) {
		netnstest.SkipUnavailable(t, "%v", err)
	}
	require.NoError(t, err)
	defer sub.Close()
	const sent = 2000
	flood(t, client, "fd00:1::2", sent, hbhFor(t))

	buf := make([]ioam6.EventAttrs, 64)
	got := 0
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		require.NoError(t, sub.SetReadDeadline(time.Now().Add(200*time.Millisecond)))
		n, err := sub.Read(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		require.NoError(t, err)
		for _, ev := range buf[:n] {
			tr, err := ioam6.DecodeEvent(ev, ioam6.CarrierConfig{})
			require.NoError(t, err)
			assert.True(t, tr.HasIDs)
		}
		got += n
	}
	st := sub.Stats()
	t.Logf("sent %d, received %d, overruns %d", sent, got, st.Overruns)
	assert.Positive(t, st.Overruns, "a 4 KiB buffer must overflow")
	assert.Positive(t, got)
	assert.Less(t, got, sent)
	assert.EqualValues(t, got, st.Events)

	// Still usable after ENOBUFS: a later packet is received.
	flood(t, client, "fd00:1::2", 1, hbhFor(t))
	require.NoError(t, sub.SetReadDeadline(time.Now().Add(5*time.Second)))
	n, err := sub.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
}

func TestIntegrationReadDoesNotAllocate(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) { testReadDoesNotAllocate(t, mode) })
	}
}

func testReadDoesNotAllocate(t *testing.T, mode ioam6nl.ReadMode) {
	topo := netnstest.Build(t, netnstest.Chain(netnstest.ChainOptions{Routers: 0, IOAMNamespace: 123}))
	sub, err := topo.Node("server").Subscribe(withMode(ioam6nl.DefaultSubscriberConfig(), mode))
	if errors.Is(err, ioam6nl.ErrNoEventGroup) {
		netnstest.SkipUnavailable(t, "%v", err)
	}
	require.NoError(t, err)
	defer sub.Close()
	const sent = 200
	flood(t, topo.Node("client"), "fd00:1::2", sent, hbhFor(t))
	// Let the events queue, then read one per call.
	time.Sleep(200 * time.Millisecond)
	buf := make([]ioam6.EventAttrs, 1)
	var readErr error
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := sub.Read(buf); err != nil {
			readErr = err
		}
	})
	require.NoError(t, readErr)
	assert.Zero(t, allocs, "Read allocates")
	assert.EqualValues(t, 101, sub.Stats().Events)
}

// TestIntegrationBatchReadsBatches: in batch mode, events that arrive
// during the pause are returned together by the next Read, inside the
// chosen netns, and none are lost.
func TestIntegrationBatchReadsBatches(t *testing.T) {
	topo := netnstest.Build(t, netnstest.Chain(netnstest.ChainOptions{Routers: 0, IOAMNamespace: 123}))
	cfg := withMode(ioam6nl.DefaultSubscriberConfig(), ioam6nl.ReadBatch)
	cfg.BatchWait = 200 * time.Millisecond
	sub, err := topo.Node("server").Subscribe(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	buf := make([]ioam6.EventAttrs, 64)

	// The first event (after neighbour discovery) empties the socket.
	flood(t, topo.Node("client"), "fd00:1::2", 1, hbhFor(t))
	require.NoError(t, sub.SetReadDeadline(time.Now().Add(5*time.Second)))
	n, err := sub.Read(buf)
	require.NoError(t, err)
	require.Equal(t, 1, n)

	// Sent while the next Read pauses: one Read returns them all.
	const sent = 40
	flood(t, topo.Node("client"), "fd00:1::2", sent, hbhFor(t))
	n, err = sub.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, sent, n, "one batch")
	for _, ev := range buf[:n] {
		tr, err := ioam6.DecodeEvent(ev, ioam6.CarrierConfig{})
		require.NoError(t, err)
		assert.True(t, tr.HasIDs)
	}
	st := sub.Stats()
	assert.EqualValues(t, sent+1, st.Events)
	assert.Zero(t, st.Overruns)

	// Nothing more: the deadline ends a blocked Read.
	require.NoError(t, sub.SetReadDeadline(time.Now().Add(300*time.Millisecond)))
	_, err = sub.Read(buf)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
}
