package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6nl"
)

// netlinkSource reads the kernel's ioam6_events (Linux >= 6.9, CAP_NET_ADMIN).
//
// Why not ioam6nl.Subscriber: its socket lives in Go's netpoller, which
// registers it edge-triggered, so every event datagram wakes a runtime thread
// even while nobody reads. That costs 5-7 µs of CPU per event at 25k/s on
// the reference VM. Here the socket stays out of the netpoller: the reader
// drains it with non-blocking reads, then sleeps source.batch_wait (immune to
// datagram wake-ups) while events queue in the kernel, and only blocks in
// poll(2) when the socket was empty. Close wakes poll through an eventfd.
type netlinkSource struct {
	fd, efd int
	famID   uint16
	wait    time.Duration
	buf     []byte
	iov     []unix.Iovec
	msgs    []unix.Mmsghdr
	lost    prometheus.Counter
	bad     func(string)

	closed    atomic.Bool
	mu        sync.Mutex
	running   bool
	released  bool
	closeOnce sync.Once
}

var _ Source = (*netlinkSource)(nil)

// Netlink framing (include/uapi/linux/netlink.h, genetlink.h).
const (
	nlmsgHdrLen = 16
	genlHdrLen  = 4
	nlaHdrLen   = 4
	nlaTypeMask = 0x3FFF // without NLA_F_NESTED, NLA_F_NET_BYTEORDER
	// nlSlot holds one event datagram: nlmsghdr 16 + genlmsghdr 4 + four
	// attributes (8 + 8 + 8 + 4 + at most 256 bytes of DATA) fits in 512.
	nlSlot       = 1 << 10
	nlSlots      = 256 // datagrams per recvmmsg(2) and per batch
	nlIdlePollMS = 1000
)

// errNoEventGroup and errNoFamily mirror ioam6nl's sentinels so callers can
// branch with errors.Is on either.
var (
	errNoFamily     = ioam6nl.ErrFamilyNotFound
	errNoEventGroup = ioam6nl.ErrNoEventGroup
)

// newNetlinkSource joins ioam6_events in ns (netns.None(): the current one).
func newNetlinkSource(ns netns.NsHandle, sc SourceConfig, m *Metrics, bad func(string)) (_ *netlinkSource, err error) {
	s := &netlinkSource{fd: -1, efd: -1, wait: sc.BatchWait, buf: make([]byte, nlSlots*nlSlot),
		iov: make([]unix.Iovec, nlSlots), msgs: make([]unix.Mmsghdr, nlSlots),
		lost: m.EventsLost.WithLabelValues(SourceNetlink), bad: bad}
	for i := range s.msgs {
		s.iov[i].Base = &s.buf[i*nlSlot]
		s.iov[i].SetLen(nlSlot)
		s.msgs[i].Hdr.Iov = &s.iov[i]
		s.msgs[i].Hdr.SetIovlen(1)
	}
	defer func() {
		if err != nil {
			_ = s.release()
		}
	}()
	var group uint32
	err = ioam6nl.RunInNetNS(ns, func() error {
		fam, err := netlink.GenlFamilyGet(ioam6.GenlFamilyName)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				return errNoFamily
			}
			return fmt.Errorf("resolve %s: %w", ioam6.GenlFamilyName, err)
		}
		for _, g := range fam.Groups {
			if g.Name == ioam6.GenlEventsGroup {
				group = g.ID
			}
		}
		if group == 0 {
			return errNoEventGroup
		}
		s.famID = fam.ID
		s.fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_GENERIC)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netlink source: %w", err)
	}
	if err := unix.Bind(s.fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("netlink source: bind: %w", err)
	}
	if err := unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, sc.ReceiveBuffer); err != nil {
		// Without CAP_NET_ADMIN the join below fails anyway; try within rmem_max.
		_ = unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, sc.ReceiveBuffer)
	}
	if err := unix.SetsockoptInt(s.fd, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, int(group)); err != nil {
		return nil, fmt.Errorf("netlink source: join %s (needs CAP_NET_ADMIN): %w", ioam6.GenlEventsGroup, err)
	}
	if s.efd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return nil, fmt.Errorf("netlink source: eventfd: %w", err)
	}
	return s, nil
}

func (s *netlinkSource) Name() string { return SourceNetlink }

func (s *netlinkSource) Run(ctx context.Context, handle func([]Event)) error {
	s.mu.Lock()
	if s.released {
		s.mu.Unlock()
		return nil
	}
	s.running = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running = false
		s.mu.Unlock()
		_ = s.release()
	}()
	stop := context.AfterFunc(ctx, s.wake)
	defer stop()

	batch := make([]Event, 0, nlSlots)
	pfd := []unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLIN}, {Fd: int32(s.efd), Events: unix.POLLIN}}
	for !s.closed.Load() {
		got, err := s.drain(batch, handle)
		if err != nil {
			return fmt.Errorf("netlink source: %w", err)
		}
		if got > 0 {
			if s.wait > 0 {
				// Events keep coming: let them queue instead of waking per event.
				time.Sleep(s.wait)
			}
			continue
		}
		if _, err := unix.Poll(pfd, nlIdlePollMS); err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("netlink source: poll: %w", err)
		}
	}
	return nil
}

// drain reads every queued datagram with recvmmsg(2), up to nlSlots per
// call, hands each call's events over as one batch, and returns how many
// events it read.
func (s *netlinkSource) drain(batch []Event, handle func([]Event)) (int, error) {
	total := 0
	for !s.closed.Load() {
		n, err := s.recvmmsg()
		switch {
		case err == nil:
		case errors.Is(err, unix.EAGAIN):
			return total, nil
		case errors.Is(err, unix.ENOBUFS):
			s.lost.Inc() // the kernel dropped at least one event
			continue
		case errors.Is(err, unix.EINTR):
			continue
		default:
			return total, err
		}
		now := time.Now().UnixNano()
		batch = batch[:0]
		for i := range n {
			l := int(s.msgs[i].Len)
			if s.msgs[i].Hdr.Flags&unix.MSG_TRUNC != 0 || l > nlSlot {
				s.bad(ReasonTruncated)
				continue
			}
			batch = s.parse(s.buf[i*nlSlot:i*nlSlot+l], batch, now)
		}
		if len(batch) > 0 {
			handle(batch)
			total += len(batch)
		}
		if n < nlSlots {
			return total, nil // drained
		}
	}
	return total, nil
}

func (s *netlinkSource) recvmmsg() (int, error) {
	for i := range s.msgs {
		s.msgs[i].Hdr.Flags = 0
	}
	n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&s.msgs[0])),
		uintptr(len(s.msgs)), unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// parse appends the IOAM6_EVENT_TRACE messages of one datagram to batch.
// Event data references b.
func (s *netlinkSource) parse(b []byte, batch []Event, now int64) []Event {
	ne := binary.NativeEndian // netlink headers and attributes are host order
	for len(b) >= nlmsgHdrLen {
		l := int(ne.Uint32(b))
		if l < nlmsgHdrLen || l > len(b) {
			s.bad(ReasonTruncated)
			return batch
		}
		typ := ne.Uint16(b[4:])
		msg := b[nlmsgHdrLen:l]
		b = b[min((l+3)&^3, len(b)):]
		if typ != s.famID || len(msg) < genlHdrLen || msg[0] != ioam6.EventTrace {
			continue // not a trace event (e.g. a future event type)
		}
		ev, ok := parseEventAttrs(msg[genlHdrLen:])
		if !ok {
			s.bad(ReasonTruncated)
			continue
		}
		ev.SeenUnixNano = now
		batch = append(batch, ev)
	}
	return batch
}

// parseEventAttrs reads the IOAM6_EVENT_ATTR_TRACE_* attributes.
func parseEventAttrs(b []byte) (Event, bool) {
	ne := binary.NativeEndian
	var ev Event
	var seen uint8
	for len(b) >= nlaHdrLen {
		l := int(ne.Uint16(b))
		if l < nlaHdrLen || l > len(b) {
			return ev, false
		}
		v := b[nlaHdrLen:l]
		switch ne.Uint16(b[2:]) & nlaTypeMask {
		case ioam6.EventAttrTraceNamespace:
			if len(v) < 2 {
				return ev, false
			}
			ev.NamespaceID, seen = ne.Uint16(v), seen|1
		case ioam6.EventAttrTraceNodeLen:
			if len(v) < 1 {
				return ev, false
			}
			ev.NodeLen, seen = v[0], seen|2
		case ioam6.EventAttrTraceType:
			if len(v) < 4 {
				return ev, false
			}
			ev.TraceType, seen = ne.Uint32(v)>>8, seen|4
		case ioam6.EventAttrTraceData:
			ev.Data, seen = v, seen|8
		}
		b = b[min((l+3)&^3, len(b)):]
	}
	return ev, seen == 15
}

func (s *netlinkSource) wake() {
	s.closed.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.efd >= 0 {
		var one [8]byte
		one[0] = 1 // eventfd counter += 1 (host order; any non-zero value wakes poll)
		_, _ = unix.Write(s.efd, one[:])
	}
}

func (s *netlinkSource) release() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released {
		return nil
	}
	s.released = true
	var errs []error
	for _, fd := range []*int{&s.fd, &s.efd} {
		if *fd >= 0 {
			errs = append(errs, unix.Close(*fd))
			*fd = -1
		}
	}
	return errors.Join(errs...)
}

// Close stops Run (which then releases the socket) or releases it now when
// Run is not running. Idempotent.
func (s *netlinkSource) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.wake()
		s.mu.Lock()
		running := s.running
		s.mu.Unlock()
		if !running {
			err = s.release()
		}
	})
	return err
}
