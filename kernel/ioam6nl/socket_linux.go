package ioam6nl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/cross-layer-telemetry/clt/kernel/internal/nlmsg"
)

// ErrFamilyNotFound means the kernel has no IOAM6 generic netlink family
// (Linux < 5.15 or CONFIG_IPV6 without IOAM).
var ErrFamilyNotFound = errors.New("ioam6nl: IOAM6 generic netlink family not found (Linux 5.15+ needed)")

// ErrNoEventGroup means the IOAM6 family has no ioam6_events multicast group
// (Linux < 6.9).
var ErrNoEventGroup = errors.New("ioam6nl: IOAM6 family has no ioam6_events group (Linux 6.9+ needed)")

// resolveFamily asks the generic netlink controller on fd (a fresh, bound,
// non-blocking NETLINK_GENERIC socket with no group joined) for the IOAM6
// family: CTRL_CMD_GETFAMILY by name (include/uapi/linux/genetlink.h). It
// waits at most resolveTimeout for the reply.
func resolveFamily(fd int) (family, error) {
	const seq = 1
	attrs := nlmsg.AppendAttr(nil, unix.CTRL_ATTR_FAMILY_NAME, append([]byte(familyName), 0))
	msg := nlmsg.Request(unix.GENL_ID_CTRL, unix.NLM_F_REQUEST|unix.NLM_F_ACK, seq,
		genlHeader(unix.CTRL_CMD_GETFAMILY, ctrlVersion), attrs)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return family{}, fmt.Errorf("ioam6nl: resolve family %s: send: %w", familyName, err)
	}
	var (
		fam   family
		found bool
		buf   = make([]byte, 16<<10)
		pfd   = []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		end   = time.Now().Add(resolveTimeout)
	)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			left := time.Until(end)
			if left <= 0 {
				return family{}, fmt.Errorf("ioam6nl: resolve family %s: %w", familyName, os.ErrDeadlineExceeded)
			}
			ts := unix.NsecToTimespec(left.Nanoseconds())
			if _, err := unix.Ppoll(pfd, &ts, nil); err != nil && !errors.Is(err, unix.EINTR) {
				return family{}, fmt.Errorf("ioam6nl: resolve family %s: poll: %w", familyName, err)
			}
			continue
		}
		if err != nil {
			return family{}, fmt.Errorf("ioam6nl: resolve family %s: receive: %w", familyName, err)
		}
		done, err := handleReplies(buf[:n], unix.GENL_ID_CTRL, seq, func(b []byte) error {
			var err error
			fam, err = decodeFamily(b)
			found = err == nil
			return err
		})
		switch {
		case errors.Is(err, unix.ENOENT):
			return family{}, ErrFamilyNotFound
		case err != nil:
			return family{}, fmt.Errorf("ioam6nl: resolve family %s: %w", familyName, err)
		case done && !found:
			return family{}, fmt.Errorf("ioam6nl: resolve family %s: %w: no reply", familyName, errMalformed)
		case done:
			return fam, nil
		}
	}
}

// sock is a non-blocking generic netlink socket registered with the Go
// netpoller through os.File, so deadlines and Close unblock readers without
// extra goroutines.
type sock struct {
	f   *os.File
	rc  syscall.RawConn
	fam family
	seq atomic.Uint32
}

// openFD creates a non-blocking generic netlink socket (in ns when it is
// open), binds it, resolves the family there and runs setup. The socket is
// not registered with the netpoller.
func openFD(ns netns.NsHandle, setup func(fd int, fam family) error) (int, family, error) {
	fd := -1
	err := RunInNetNS(ns, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_GENERIC)
		if err != nil {
			return fmt.Errorf("ioam6nl: socket: %w", err)
		}
		return nil
	})
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return -1, family{}, err
	}
	fam, err := initFD(fd, setup)
	if err != nil {
		unix.Close(fd)
		return -1, family{}, err
	}
	return fd, fam, nil
}

func initFD(fd int, setup func(fd int, fam family) error) (family, error) {
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return family{}, fmt.Errorf("ioam6nl: bind: %w", err)
	}
	// Extended acks let the kernel attach its reason to errors (best
	// effort; only the errno is reported).
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1)
	// Family ids are global, but we ask where we work.
	fam, err := resolveFamily(fd)
	if err != nil {
		return family{}, err
	}
	if setup != nil {
		if err := setup(fd, fam); err != nil {
			return family{}, err
		}
	}
	return fam, nil
}

// openSock is openFD with the socket registered with the netpoller.
func openSock(ns netns.NsHandle, setup func(fd int, fam family) error) (*sock, error) {
	fd, fam, err := openFD(ns, setup)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "ioam6-genl")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("ioam6nl: raw conn: %w", err)
	}
	return &sock{f: f, rc: rc, fam: fam}, nil
}

// withDeadline applies ctx's deadline and cancellation to the socket for
// the duration of one operation. The returned stop must be called.
func (s *sock) withDeadline(ctx context.Context) (stop func()) {
	if d, ok := ctx.Deadline(); ok {
		_ = s.f.SetReadDeadline(d)
	}
	cancelStop := context.AfterFunc(ctx, func() { _ = s.f.SetReadDeadline(time.Unix(1, 0)) })
	return func() {
		cancelStop()
		_ = s.f.SetReadDeadline(time.Time{})
	}
}

// request sends one genl command and calls fn with the attributes of every
// reply message until the kernel acknowledges (or ends the dump).
func (s *sock) request(ctx context.Context, cmd uint8, dump bool, attrs []byte, fn func(attrs []byte) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	seq := s.seq.Add(1)
	flags := uint16(unix.NLM_F_REQUEST | unix.NLM_F_ACK)
	if dump {
		flags = unix.NLM_F_REQUEST | unix.NLM_F_DUMP
	}
	msg := nlmsg.Request(s.fam.id, flags, seq, genlHeader(cmd, familyVersion), attrs)

	var serr error
	if err := s.rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return serr != unix.EAGAIN
	}); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("send: %w", serr)
	}

	stop := s.withDeadline(ctx)
	defer stop()
	buf := make([]byte, 64<<10)
	for {
		var n int
		var rerr error
		if err := s.rc.Read(func(fd uintptr) bool {
			n, rerr = unix.Read(int(fd), buf)
			return rerr != unix.EAGAIN
		}); err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
			return fmt.Errorf("receive: %w", err)
		}
		if rerr != nil {
			return fmt.Errorf("receive: %w", rerr)
		}
		done, err := handleReplies(buf[:n], s.fam.id, seq, fn)
		if err != nil || done {
			return err
		}
	}
}

// genlHeader is struct genlmsghdr (reserved 0).
func genlHeader(cmd, version uint8) []byte { return []byte{cmd, version, 0, 0} }

// handleReplies processes one datagram of replies to request seq: the
// messages of family famID carry a genl header, whose attributes go to fn.
func handleReplies(b []byte, famID uint16, seq uint32, fn func(attrs []byte) error) (done bool, err error) {
	return nlmsg.Replies(b, seq, func(typ uint16, m []byte) (bool, error) {
		if typ != famID {
			return false, nil
		}
		if len(m) < nlmsg.GenlHdrLen {
			return true, fmt.Errorf("%w: short genl header", errMalformed)
		}
		if fn != nil {
			if err := fn(m[nlmsg.GenlHdrLen:]); err != nil {
				return true, err
			}
		}
		return false, nil
	})
}

func (s *sock) close() error { return s.f.Close() }
