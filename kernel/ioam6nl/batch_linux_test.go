package ioam6nl

import (
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// batchSub is a batch-mode Subscriber reading a datagram socketpair that
// stands in for the netlink socket (no privileges needed); it returns the
// sending end.
func batchSub(t *testing.T, wait time.Duration, readBuf int) (*Subscriber, int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fds[1]) })
	sub := &Subscriber{famID: 30, buf: make([]byte, readBuf)}
	sub.b, err = newBatchReader(fds[0], sub.buf, wait)
	if err != nil {
		unix.Close(fds[0])
		require.NoError(t, err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub, fds[1]
}

func traceMsg(ns uint16) []byte {
	attrs := eventAttrs()
	copy(attrs[4:6], ne16(ns))
	return testMsg(30, 0, cat([]byte{ioam6.EventTrace, 1, 0, 0}, attrs))
}

func send(t *testing.T, fd int, dgrams ...[]byte) {
	t.Helper()
	for _, d := range dgrams {
		_, err := unix.Write(fd, d)
		require.NoError(t, err)
	}
}

func TestBatchReadAndPause(t *testing.T) {
	const wait = 150 * time.Millisecond
	sub, peer := batchSub(t, wait, 8*batchSlot)
	for i := range 3 {
		send(t, peer, traceMsg(uint16(100+i)))
	}
	send(t, peer, testMsg(31, 0, []byte{ioam6.EventTrace, 1, 0, 0})) // another family
	send(t, peer, make([]byte, batchSlot+1))                         // truncated
	buf := make([]ioam6.EventAttrs, 16)
	n, err := sub.Read(buf)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	for i := range n {
		assert.EqualValues(t, 100+i, buf[i].NamespaceID)
		assert.Equal(t, eventData, buf[i].Data)
	}
	st := sub.Stats()
	assert.Equal(t, SubscriberStats{Events: 3, Ignored: 1, Malformed: 1}, st)

	// The socket was emptied: the next Read pauses even though an event is
	// already queued.
	send(t, peer, traceMsg(7))
	start := time.Now()
	n, err = sub.Read(buf)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	assert.GreaterOrEqual(t, time.Since(start), wait-10*time.Millisecond, "batch wait")

	// A caller buffer smaller than the queue: no pause between full reads.
	for i := range 4 {
		send(t, peer, traceMsg(uint16(i)))
	}
	start = time.Now()
	n1, err := sub.Read(buf[:2]) // pauses (the previous Read emptied the socket)
	require.NoError(t, err)
	mid := time.Now()
	n2, err := sub.Read(buf[:2])
	require.NoError(t, err)
	assert.Equal(t, []int{2, 2}, []int{n1, n2})
	assert.GreaterOrEqual(t, mid.Sub(start), wait-10*time.Millisecond)
	assert.Less(t, time.Since(mid), wait/2, "no pause after a full read")
	assert.EqualValues(t, 8, sub.Stats().Events)
}

func TestBatchCloseUnblocks(t *testing.T) {
	for _, name := range []string{"blocked", "pausing"} {
		t.Run(name, func(t *testing.T) {
			sub, peer := batchSub(t, time.Second, 4*batchSlot)
			buf := make([]ioam6.EventAttrs, 4)
			if name == "pausing" {
				send(t, peer, traceMsg(1))
				_, err := sub.Read(buf)
				require.NoError(t, err)
				send(t, peer, traceMsg(2)) // queued; the next Read pauses 1s first
			}
			done := make(chan error, 1)
			go func() {
				_, err := sub.Read(buf)
				done <- err
			}()
			select {
			case err := <-done:
				t.Fatalf("Read returned before Close: %v", err)
			case <-time.After(50 * time.Millisecond):
			}
			start := time.Now()
			require.NoError(t, sub.Close())
			select {
			case err := <-done:
				require.ErrorIs(t, err, net.ErrClosed)
				assert.Less(t, time.Since(start), 500*time.Millisecond)
			case <-time.After(5 * time.Second):
				t.Fatal("Close did not unblock Read")
			}
			require.NoError(t, sub.Close(), "idempotent")
			_, err := sub.Read(buf)
			require.ErrorIs(t, err, net.ErrClosed)
			require.ErrorIs(t, sub.SetReadDeadline(time.Now()), net.ErrClosed)
		})
	}
}

func TestBatchDeadline(t *testing.T) {
	sub, peer := batchSub(t, 0, 4*batchSlot)
	buf := make([]ioam6.EventAttrs, 4)
	require.NoError(t, sub.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	start := time.Now()
	_, err := sub.Read(buf)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	assert.Less(t, time.Since(start), time.Second)

	// A new deadline reaches a blocked Read.
	require.NoError(t, sub.SetReadDeadline(time.Time{}))
	done := make(chan error, 1)
	go func() {
		_, err := sub.Read(buf)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, sub.SetReadDeadline(time.Unix(1, 0)))
	select {
	case err := <-done:
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	case <-time.After(5 * time.Second):
		t.Fatal("SetReadDeadline did not unblock Read")
	}

	// Cleared: events flow again, and a blocked Read wakes on data.
	require.NoError(t, sub.SetReadDeadline(time.Time{}))
	go func() {
		n, err := sub.Read(buf)
		if n != 1 && err == nil {
			err = os.ErrInvalid
		}
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	send(t, peer, traceMsg(3))
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Read did not wake on data")
	}
}

func TestBatchReadDoesNotAllocate(t *testing.T) {
	sub, peer := batchSub(t, time.Millisecond, 4*batchSlot)
	buf := make([]ioam6.EventAttrs, 1)
	msg := traceMsg(5)
	var readErr error
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := unix.Write(peer, msg); err != nil {
			readErr = err
		}
		if n, err := sub.Read(buf); err != nil || n != 1 {
			readErr = err
		}
	})
	require.NoError(t, readErr)
	assert.Zero(t, allocs, "Read allocates")
	assert.EqualValues(t, 101, sub.Stats().Events)
}
