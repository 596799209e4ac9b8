//go:build linux

package ioam6nl_test

import (
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6nl"
	"github.com/cross-layer-telemetry/clt/kernel/netnstest"
)

// pacedSender sends UDP datagrams with a sticky IOAM header from a node.
type pacedSender struct {
	fd int
	sa *unix.SockaddrInet6
}

func newPacedSender(t testing.TB, node *netnstest.Node, dst string) *pacedSender {
	t.Helper()
	var fd int
	require.NoError(t, node.Do(func() (err error) {
		fd, err = unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		return err
	}))
	t.Cleanup(func() { unix.Close(fd) })
	require.NoError(t, unix.SetsockoptString(fd, unix.IPPROTO_IPV6, unix.IPV6_HOPOPTS, string(hbhFor(t))))
	sa := &unix.SockaddrInet6{Port: 9}
	copy(sa.Addr[:], net.ParseIP(dst).To16())
	return &pacedSender{fd: fd, sa: sa}
}

// send offers rate datagrams per second for d and returns how many left.
func (p *pacedSender) send(rate int, d time.Duration) int {
	payload := make([]byte, 64)
	start := time.Now()
	sent := 0
	for {
		el := time.Since(start)
		if el >= d {
			return sent
		}
		target := int(float64(rate) * el.Seconds())
		if sent >= target {
			time.Sleep(100 * time.Microsecond)
			continue
		}
		for sent < target {
			if err := unix.Sendto(p.fd, payload, 0, p.sa); err == nil {
				sent++
			} else if !errors.Is(err, unix.ENOBUFS) && !errors.Is(err, unix.EAGAIN) {
				return sent
			}
		}
	}
}

// TestIntegrationEventRate measures how many ioam6_events one subscriber
// receives without loss: a client floods the server (one IOAM hop) at
// stepped rates and the server's subscriber counts events and ENOBUFS.
// Set CLT_BENCH=1 to run it; CLT_BENCH_RATES overrides the steps
// (comma-separated events/s), CLT_BENCH_STEP_MS the step length,
// CLT_BENCH_MODE the read mode (netpoll, batch).
func TestIntegrationEventRate(t *testing.T) {
	if os.Getenv("CLT_BENCH") != "1" {
		t.Skip("set CLT_BENCH=1 to measure")
	}
	rates := []int{25_000, 50_000, 100_000, 150_000, 200_000, 300_000}
	if v := os.Getenv("CLT_BENCH_RATES"); v != "" {
		rates = nil
		for _, f := range strings.Split(v, ",") {
			r, err := strconv.Atoi(strings.TrimSpace(f))
			require.NoError(t, err)
			rates = append(rates, r)
		}
	}
	step := time.Second
	if ms, err := strconv.Atoi(os.Getenv("CLT_BENCH_STEP_MS")); err == nil {
		step = time.Duration(ms) * time.Millisecond
	}
	topo := netnstest.Build(t, netnstest.Chain(netnstest.ChainOptions{Routers: 0, IOAMNamespace: 123}))
	cfg := ioam6nl.DefaultSubscriberConfig()
	if v, err := strconv.Atoi(os.Getenv("CLT_BENCH_RCVBUF")); err == nil && v > 0 {
		cfg.ReceiveBuffer = v
	}
	if v := os.Getenv("CLT_BENCH_MODE"); v != "" {
		cfg.Mode = ioam6nl.ReadMode(v) // batch: CPU per event falls (see ReadBatch)
	}
	sub, err := topo.Node("server").Subscribe(cfg)
	require.NoError(t, err)
	var (
		mu       sync.Mutex
		received int
		decodeOK = true
		wg       sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]ioam6.EventAttrs, 128)
		for {
			n, err := sub.Read(buf)
			if err != nil {
				return // closed
			}
			ok := true
			for _, ev := range buf[:n] {
				// Decode like the agent would; the cost is part of the loop.
				if tr, err := ioam6.DecodeEvent(ev, ioam6.CarrierConfig{}); err != nil || !tr.HasIDs {
					ok = false
				}
			}
			mu.Lock()
			received += n
			decodeOK = decodeOK && ok
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { _ = sub.Close(); wg.Wait() })

	senders := 2
	if v, err := strconv.Atoi(os.Getenv("CLT_BENCH_SENDERS")); err == nil && v > 0 {
		senders = v
	}
	snds := make([]*pacedSender, senders)
	for i := range snds {
		snds[i] = newPacedSender(t, topo.Node("client"), "fd00:1::2")
	}
	// Warm up: neighbour discovery and the first event, outside the steps.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		snds[0].send(1000, 10*time.Millisecond)
		mu.Lock()
		r := received
		mu.Unlock()
		if r > 0 {
			break
		}
	}
	time.Sleep(100 * time.Millisecond)
	t.Logf("mode %s, read buffer %d KiB, receive buffer %d KiB, %d sender sockets", cfg.Mode, cfg.ReadBuffer>>10, cfg.ReceiveBuffer>>10, senders)
	t.Logf("%-10s %-10s %-10s %-8s %-9s", "offered/s", "sent/s", "events/s", "lost", "ENOBUFS")
	for _, rate := range rates {
		mu.Lock()
		r0 := received
		mu.Unlock()
		o0 := sub.Overruns()
		var sent int
		var swg sync.WaitGroup
		var smu sync.Mutex
		for _, snd := range snds {
			swg.Add(1)
			go func() {
				defer swg.Done()
				n := snd.send(rate/len(snds), step)
				smu.Lock()
				sent += n
				smu.Unlock()
			}()
		}
		swg.Wait()
		time.Sleep(300 * time.Millisecond) // drain
		mu.Lock()
		got := received - r0
		mu.Unlock()
		secs := step.Seconds()
		t.Logf("%-10d %-10.0f %-10.0f %-8d %-9d", rate, float64(sent)/secs, float64(got)/secs, sent-got, sub.Overruns()-o0)
	}
	mu.Lock()
	defer mu.Unlock()
	assert.True(t, decodeOK, "every event decodes with ids")
}
