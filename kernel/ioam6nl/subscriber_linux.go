package ioam6nl

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6"

	"github.com/cross-layer-telemetry/clt/kernel/internal/nlmsg"
)

// Subscriber receives ioam6_events in one network namespace. Read and Close
// may be called from different goroutines; Close unblocks a blocked Read,
// which then returns an error wrapping net.ErrClosed. A Subscriber starts no
// goroutine.
type Subscriber struct {
	s     *sock        // netpoll mode
	b     *batchReader // batch mode
	famID uint16
	buf   []byte

	readMu sync.Mutex // one reader at a time: event data aliases buf
	// State of the current Read, kept here (guarded by readMu) with the
	// callback bound once, so Read allocates nothing.
	rd struct {
		events []ioam6.EventAttrs
		n, off int
		err    error
	}
	readFn func(fd uintptr) bool

	events, overruns, ignored, malformed atomic.Uint64

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// Subscribe joins ioam6_events in cfg.NetNSPath (or the calling thread's
// netns). It fails with ErrFamilyNotFound or ErrNoEventGroup on kernels
// without IOAM or without the event group.
func Subscribe(cfg SubscriberConfig) (*Subscriber, error) {
	if cfg.NetNSPath == "" {
		return SubscribeNetNS(netns.None(), cfg)
	}
	ns, err := netns.GetFromPath(cfg.NetNSPath)
	if err != nil {
		return nil, fmt.Errorf("ioam6nl: open netns %s: %w", cfg.NetNSPath, err)
	}
	defer ns.Close()
	return SubscribeNetNS(ns, cfg)
}

// SubscribeNetNS is Subscribe with a namespace handle (netns.None(): the
// calling thread's); cfg.NetNSPath is ignored.
func SubscribeNetNS(ns netns.NsHandle, cfg SubscriberConfig) (*Subscriber, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ioam6nl: subscriber config: %w", err)
	}
	cfg = cfg.withDefaults()
	setup := func(fd int, fam family) error {
		if fam.eventGroup == 0 {
			return ErrNoEventGroup
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, cfg.ReceiveBuffer); err != nil {
			// Without CAP_NET_ADMIN, ask within net.core.rmem_max.
			if err2 := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, cfg.ReceiveBuffer); err2 != nil {
				return fmt.Errorf("ioam6nl: receive buffer %d: %w", cfg.ReceiveBuffer, errors.Join(err, err2))
			}
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, int(fam.eventGroup)); err != nil {
			return fmt.Errorf("ioam6nl: join %s: %w", eventGroupName, err)
		}
		return nil
	}
	sub := &Subscriber{buf: make([]byte, cfg.ReadBuffer)}
	if cfg.Mode == ReadBatch {
		fd, fam, err := openFD(ns, setup)
		if err != nil {
			return nil, err
		}
		if sub.b, err = newBatchReader(fd, sub.buf, cfg.BatchWait); err != nil {
			unix.Close(fd)
			return nil, err
		}
		sub.famID = fam.id
		return sub, nil
	}
	s, err := openSock(ns, setup)
	if err != nil {
		return nil, err
	}
	sub.s, sub.famID = s, s.fam.id
	sub.readFn = sub.readReady
	return sub, nil
}

// Read blocks until at least one event is queued, then fills events with as
// many queued events as fit (bounded by len(events) and the read buffer) and
// returns how many it stored. In batch mode it may first pause BatchWait
// (see [ReadBatch]). It does not allocate. Event data references the
// Subscriber's buffer and stays valid only until the next Read: copy what
// you keep (ioam6.DecodeEvent results alias it too).
//
// ENOBUFS (events lost in the kernel) is counted in Stats().Overruns and
// Read keeps going. After Close, Read returns an error wrapping
// net.ErrClosed; after a deadline (SetReadDeadline), one wrapping
// os.ErrDeadlineExceeded.
func (sub *Subscriber) Read(events []ioam6.EventAttrs) (int, error) {
	if len(events) == 0 {
		return 0, nil
	}
	sub.readMu.Lock()
	defer sub.readMu.Unlock()
	if sub.b != nil {
		n, err := sub.readBatch(events)
		if n > 0 {
			sub.events.Add(uint64(n))
		}
		return n, err
	}
	rd := &sub.rd
	rd.events, rd.n, rd.off, rd.err = events, 0, 0, nil
	err := sub.s.rc.Read(sub.readFn)
	n, rerr := rd.n, rd.err
	rd.events = nil
	if n > 0 {
		// Report events already read; a pending error recurs next time.
		sub.events.Add(uint64(n))
		return n, nil
	}
	if err == nil {
		err = rerr
	}
	if err != nil {
		if sub.closed.Load() || errors.Is(err, os.ErrClosed) {
			return 0, fmt.Errorf("ioam6nl: read: %w", net.ErrClosed)
		}
		return 0, fmt.Errorf("ioam6nl: read: %w", err)
	}
	return 0, nil
}

// readReady is the RawConn.Read callback: it drains queued datagrams into
// sub.rd and returns false (wait in the netpoller) only when nothing was
// read.
func (sub *Subscriber) readReady(fd uintptr) bool {
	rd := &sub.rd
	for rd.n < len(rd.events) && len(sub.buf)-rd.off >= readHeadroom {
		m, err := unix.Read(int(fd), sub.buf[rd.off:])
		switch {
		case err == unix.EAGAIN:
			return rd.n > 0
		case err == unix.ENOBUFS:
			sub.overruns.Add(1)
			continue
		case err == unix.EINTR:
			continue
		case err != nil:
			rd.err = err
			return true
		}
		rd.n += sub.parse(sub.buf[rd.off:rd.off+m], rd.events[rd.n:])
		rd.off += nlmsg.Align(m)
	}
	return true
}

// parse stores the trace events of one datagram into out and returns how
// many. A datagram holding more events than out has room for is not
// expected (the kernel sends one per message); extras are counted ignored.
func (sub *Subscriber) parse(b []byte, out []ioam6.EventAttrs) int {
	n := 0
	it := nlmsg.Messages(b)
	for it.Next() {
		m := it.Payload
		if it.Header.Type != sub.famID || len(m) < nlmsg.GenlHdrLen || m[0] != ioam6.EventTrace || n == len(out) {
			sub.ignored.Add(1)
			continue
		}
		ev, err := parseEvent(m[nlmsg.GenlHdrLen:])
		if err != nil {
			sub.malformed.Add(1)
			continue
		}
		out[n] = ev
		n++
	}
	if it.Err() != nil {
		sub.malformed.Add(1)
	}
	return n
}

// SetReadDeadline bounds blocked and future Reads (zero: no deadline).
func (sub *Subscriber) SetReadDeadline(t time.Time) error {
	if sub.b != nil {
		return sub.b.setDeadline(t)
	}
	return sub.s.f.SetReadDeadline(t)
}

// Overruns returns the number of ENOBUFS seen (see SubscriberStats).
func (sub *Subscriber) Overruns() uint64 { return sub.overruns.Load() }

// Stats returns the counters.
func (sub *Subscriber) Stats() SubscriberStats {
	return SubscriberStats{
		Events:    sub.events.Load(),
		Overruns:  sub.overruns.Load(),
		Ignored:   sub.ignored.Load(),
		Malformed: sub.malformed.Load(),
	}
}

// Close leaves the group and closes the socket, unblocking Read. It is
// idempotent.
func (sub *Subscriber) Close() error {
	sub.closeOnce.Do(func() {
		sub.closed.Store(true)
		if sub.b != nil {
			// Wake the reader, wait until it has left, then close the fds
			// (closing them under a reader could hand their numbers to
			// another file while it still polls them).
			sub.b.wake(true)
			sub.readMu.Lock()
			sub.closeErr = sub.b.release()
			sub.readMu.Unlock()
			return
		}
		sub.closeErr = sub.s.close()
	})
	return sub.closeErr
}
