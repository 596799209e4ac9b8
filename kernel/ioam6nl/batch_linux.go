package ioam6nl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// batchSlot is the part of the read buffer one datagram gets in batch mode:
// an event message is at most 16+4+8+8+8+4+255 bytes.
const batchSlot = readHeadroom

// batchReader is the read path of ReadBatch. The netlink socket is never
// registered with the netpoller (the kernel's wake-ups per datagram then
// cost nothing while the reader pauses); the reader sleeps on a Go timer
// during the batch wait and blocks in ppoll(2) on the socket and an eventfd
// only when the socket is empty. Close and SetReadDeadline wake both.
type batchReader struct {
	fd, efd int
	wait    time.Duration
	msgs    []unix.Mmsghdr // one per slot of the Subscriber's buffer
	iov     []unix.Iovec

	// Guarded by Subscriber.readMu; kept here so that Read allocates nothing.
	pause  bool // the last Read emptied the socket: pause before the next
	pfd    [2]unix.PollFd
	ts     unix.Timespec
	efdBuf [8]byte
	timer  *time.Timer

	deadline atomic.Int64  // Unix ns; 0: none
	done     chan struct{} // closed by Close
	kick     chan struct{} // a deadline changed (buffered, 1)
	doneOnce sync.Once

	mu       sync.Mutex // orders eventfd writes before release
	released bool
}

func newBatchReader(fd int, buf []byte, wait time.Duration) (*batchReader, error) {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("ioam6nl: eventfd: %w", err)
	}
	n := len(buf) / batchSlot
	b := &batchReader{fd: fd, efd: efd, wait: wait,
		msgs: make([]unix.Mmsghdr, n), iov: make([]unix.Iovec, n),
		done: make(chan struct{}), kick: make(chan struct{}, 1)}
	for i := range n {
		b.iov[i].Base = &buf[i*batchSlot]
		b.iov[i].SetLen(batchSlot)
		b.msgs[i].Hdr.Iov = &b.iov[i]
		b.msgs[i].Hdr.SetIovlen(1)
	}
	b.pfd = [2]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(efd), Events: unix.POLLIN}}
	b.timer = time.NewTimer(time.Hour)
	b.timer.Stop()
	return b, nil
}

// readBatch is Read in batch mode; the caller holds readMu.
func (sub *Subscriber) readBatch(events []ioam6.EventAttrs) (int, error) {
	b := sub.b
	for {
		if sub.closed.Load() {
			return 0, fmt.Errorf("ioam6nl: read: %w", net.ErrClosed)
		}
		dl := b.deadline.Load()
		if dl != 0 && time.Now().UnixNano() >= dl {
			return 0, fmt.Errorf("ioam6nl: read: %w", os.ErrDeadlineExceeded)
		}
		if b.pause {
			b.pause = false
			if !b.sleep(dl) {
				continue // woken: closed or new deadline
			}
		}
		want := min(len(events), len(b.msgs))
		m, err := b.recvmmsg(want)
		switch err {
		case nil:
		case unix.EAGAIN:
			m = 0
		case unix.ENOBUFS:
			// The kernel dropped events; the queue is full, read on.
			sub.overruns.Add(1)
			continue
		case unix.EINTR:
			continue
		default:
			return 0, fmt.Errorf("ioam6nl: read: %w", err)
		}
		n := 0
		for i := range m {
			l := int(b.msgs[i].Len)
			if b.msgs[i].Hdr.Flags&unix.MSG_TRUNC != 0 || l > batchSlot {
				sub.malformed.Add(1)
				continue
			}
			n += sub.parse(sub.buf[i*batchSlot:i*batchSlot+l], events[n:])
		}
		if m == want {
			// Maybe more queued: no pause, and read on if nothing was kept.
			if n > 0 {
				return n, nil
			}
			continue
		}
		if n > 0 {
			b.pause = b.wait > 0
			return n, nil
		}
		if err := b.block(dl); err != nil {
			return 0, err
		}
	}
}

func (b *batchReader) recvmmsg(n int) (int, error) {
	for i := range n {
		b.msgs[i].Hdr.Flags = 0
	}
	r, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(b.fd), uintptr(unsafe.Pointer(&b.msgs[0])),
		uintptr(n), unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

// sleep pauses the batch wait (cut at deadline dl); false when Close or
// SetReadDeadline interrupted it.
func (b *batchReader) sleep(dl int64) bool {
	d := b.wait
	if dl != 0 {
		d = min(d, time.Duration(dl-time.Now().UnixNano()))
	}
	if d <= 0 {
		return true
	}
	b.timer.Reset(d)
	select {
	case <-b.timer.C:
		return true
	case <-b.done:
	case <-b.kick:
	}
	b.timer.Stop()
	return false
}

// block waits in ppoll(2) until the socket is readable, the eventfd is
// written or deadline dl passes.
func (b *batchReader) block(dl int64) error {
	var ts *unix.Timespec
	if dl != 0 {
		left := dl - time.Now().UnixNano()
		if left <= 0 {
			return nil // the caller reports the deadline
		}
		b.ts = unix.NsecToTimespec(left)
		ts = &b.ts
	}
	if _, err := unix.Ppoll(b.pfd[:], ts, nil); err != nil && err != unix.EINTR {
		return fmt.Errorf("ioam6nl: poll: %w", err)
	}
	if b.pfd[1].Revents != 0 {
		_, _ = unix.Read(b.efd, b.efdBuf[:])
		select {
		case <-b.kick:
		default:
		}
	}
	return nil
}

// wake interrupts a Read that sleeps or blocks; closing also makes every
// later sleep return at once.
func (b *batchReader) wake(closing bool) {
	if closing {
		b.doneOnce.Do(func() { close(b.done) })
	} else {
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.released {
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1) // eventfd counter += 1
		_, _ = unix.Write(b.efd, one[:])
	}
}

func (b *batchReader) setDeadline(t time.Time) error {
	b.mu.Lock()
	released := b.released
	b.mu.Unlock()
	if released {
		return fmt.Errorf("ioam6nl: set read deadline: %w", net.ErrClosed)
	}
	var v int64
	if !t.IsZero() {
		if v = t.UnixNano(); v == 0 {
			v = -1 // the epoch itself is in the past too
		}
	}
	b.deadline.Store(v)
	b.wake(false)
	return nil
}

// release closes the socket and the eventfd; the caller holds readMu, so
// no Read uses them.
func (b *batchReader) release() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.released {
		return nil
	}
	b.released = true
	b.timer.Stop()
	return errors.Join(unix.Close(b.fd), unix.Close(b.efd))
}
