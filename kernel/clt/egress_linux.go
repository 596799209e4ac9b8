package clt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"strconv"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/cross-layer-telemetry/clt/kernel/internal/netnsutil"
	"github.com/cross-layer-telemetry/clt/kernel/internal/nlmsg"
)

// DEVCONF_* indices into IFLA_INET6_CONF (include/uapi/linux/ipv6.h; the
// enum is append-only ABI). x/sys does not define them.
const (
	devconfIOAM6ID     = 54 // DEVCONF_IOAM6_ID
	devconfIOAM6IDWide = 55 // DEVCONF_IOAM6_ID_WIDE
)

// Netlink framing (headers, attributes, acks) is kernel/internal/nlmsg and
// the namespace switch kernel/internal/netnsutil, both shared with
// kernel/ioam6nl.

var errEgress = errors.New("clt: egress lookup")

// lookupEgressNetlink is the default egressLookup: it opens a NETLINK_ROUTE
// socket in the socket's network namespace, asks the kernel which device a
// packet to dst leaves by (RTM_GETROUTE, as "ip -6 route get"; a zoned
// link-local dst leaves by its zone) and reads that device's ioam6_id and
// ioam6_id_wide from its IPv6 devconf (RTM_GETLINK, IFLA_AF_SPEC →
// AF_INET6 → IFLA_INET6_CONF), the values net.ipv6.conf.<dev>.* show.
func lookupEgressNetlink(fd int, dst netip.Addr) (egress, error) {
	nl, err := routeSocketFor(fd)
	if err != nil {
		return unknownEgress, err
	}
	defer unix.Close(nl)
	// One receive buffer for both answers; a link answer is a few KiB.
	buf := make([]byte, 16<<10)
	var (
		ifindex int
		ifname  string
	)
	switch z := dst.Zone(); {
	case z == "":
		if ifindex, err = routeGet(nl, buf, dst); err != nil {
			return unknownEgress, err
		}
	default:
		if n, perr := strconv.Atoi(z); perr == nil {
			ifindex = n
		} else {
			ifname = z
		}
	}
	return linkEgress(nl, buf, ifindex, ifname)
}

// routeSocketFor returns a NETLINK_ROUTE socket in the network namespace
// of the socket fd. A netlink socket belongs to the namespace of the
// thread that creates it. The socket's namespace comes from SIOCGSKNS
// (Linux 4.9, needs CAP_NET_ADMIN); without it the calling thread's
// namespace is used, which is the socket's for a process that does not
// switch namespaces. Entering another namespace needs CAP_SYS_ADMIN.
func routeSocketFor(fd int) (int, error) {
	ns, err := unix.IoctlRetInt(fd, unix.SIOCGSKNS)
	if err != nil {
		return openRoute()
	}
	defer unix.Close(ns)
	var nsStat unix.Stat_t
	if err := unix.Fstat(ns, &nsStat); err != nil {
		return openRoute()
	}
	// Locked so that the namespace compared is the one the socket is
	// created in.
	runtime.LockOSThread()
	var self unix.Stat_t
	serr := unix.Stat("/proc/thread-self/ns/net", &self)
	if serr == nil && self.Dev == nsStat.Dev && self.Ino == nsStat.Ino {
		s, err := openRoute()
		runtime.UnlockOSThread()
		return s, err
	}
	runtime.UnlockOSThread()
	return openRouteIn(ns)
}

// openRouteIn creates the netlink socket in ns (netnsutil.Do: a fresh
// locked thread that enters ns and returns; if it cannot return, the
// runtime discards the thread).
func openRouteIn(ns int) (int, error) {
	s := -1
	err := netnsutil.Do(ns, func() error {
		var err error
		s, err = openRoute()
		return err
	})
	if se := (*netnsutil.Error)(nil); errors.As(err, &se) {
		if s >= 0 { // opened, but the thread could not return
			unix.Close(s)
		}
		return -1, fmt.Errorf("%w: %w", errEgress, err)
	}
	if err != nil {
		return -1, err
	}
	return s, nil
}

func openRoute() (int, error) {
	s, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return -1, fmt.Errorf("%w: netlink socket: %w", errEgress, err)
	}
	// Bounded wait: the kernel answers at once, but never hang a request.
	tv := unix.Timeval{Sec: 1}
	if err := unix.SetsockoptTimeval(s, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(s)
		return -1, fmt.Errorf("%w: netlink timeout: %w", errEgress, err)
	}
	return s, nil
}

var nlSeq atomic.Uint32

// request sends one netlink request (header + body) and returns the
// payload of the reply of type want (in buf), or the kernel's error.
func request(s int, buf []byte, typ uint16, body []byte, want uint16) ([]byte, error) {
	seq := nlSeq.Add(1)
	msg := nlmsg.Request(typ, unix.NLM_F_REQUEST, seq, body)
	if err := unix.Sendto(s, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("%w: netlink send: %w", errEgress, err)
	}
	for range 8 { // skip stale replies; bounded
		n, _, err := unix.Recvfrom(s, buf, unix.MSG_TRUNC)
		if err != nil {
			return nil, fmt.Errorf("%w: netlink receive: %w", errEgress, err)
		}
		if n > len(buf) {
			return nil, fmt.Errorf("%w: netlink answer of %d bytes truncated to %d", errEgress, n, len(buf))
		}
		var data []byte
		done, err := nlmsg.Replies(buf[:n], seq, func(typ uint16, payload []byte) (bool, error) {
			if typ != want {
				return false, nil
			}
			data = payload
			return true, nil
		})
		switch {
		case err != nil:
			return nil, fmt.Errorf("%w: netlink: %w", errEgress, err)
		case data != nil:
			return data, nil
		case done: // an ack (or end of dump) without the answer
			return nil, fmt.Errorf("%w: netlink: empty answer", errEgress)
		}
	}
	return nil, fmt.Errorf("%w: no netlink answer", errEgress)
}

// attrs splits a block of netlink attributes, checking every length.
func attrs(b []byte, fn func(typ uint16, v []byte)) error {
	it := nlmsg.Attrs(b)
	for it.Next() {
		fn(it.Type, it.Val)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("%w: %w", errEgress, err)
	}
	return nil
}

// routeGet returns the output interface of the route to dst
// (RTM_GETROUTE, include/uapi/linux/rtnetlink.h).
func routeGet(s int, buf []byte, dst netip.Addr) (int, error) {
	rtm := make([]byte, unix.SizeofRtMsg)
	rtm[0] = unix.AF_INET6 // rtm_family
	rtm[1] = 128           // rtm_dst_len
	a16 := dst.As16()
	body := nlmsg.AppendAttr(rtm, unix.RTA_DST, a16[:])
	data, err := request(s, buf, unix.RTM_GETROUTE, body, unix.RTM_NEWROUTE)
	if err != nil {
		return 0, err
	}
	if len(data) < unix.SizeofRtMsg {
		return 0, fmt.Errorf("%w: short route answer", errEgress)
	}
	oif := 0
	if err := attrs(data[unix.SizeofRtMsg:], func(typ uint16, v []byte) {
		if typ == unix.RTA_OIF && len(v) >= 4 {
			oif = int(binary.NativeEndian.Uint32(v))
		}
	}); err != nil {
		return 0, err
	}
	if oif == 0 {
		return 0, fmt.Errorf("%w: route to %s has no output interface", errEgress, dst)
	}
	return oif, nil
}

// linkEgress reads the IOAM ids of the device with ifindex (or, when 0,
// named ifname) from its IPv6 devconf.
func linkEgress(s int, buf []byte, ifindex int, ifname string) (egress, error) {
	ifi := make([]byte, unix.SizeofIfInfomsg)
	ifi[0] = unix.AF_UNSPEC
	binary.NativeEndian.PutUint32(ifi[4:8], uint32(int32(ifindex))) // ifi_index
	body := ifi
	if ifindex == 0 {
		body = nlmsg.AppendAttr(body, unix.IFLA_IFNAME, append([]byte(ifname), 0))
	}
	data, err := request(s, buf, unix.RTM_GETLINK, body, unix.RTM_NEWLINK)
	if err != nil {
		return unknownEgress, err
	}
	if len(data) < unix.SizeofIfInfomsg {
		return unknownEgress, fmt.Errorf("%w: short link answer", errEgress)
	}
	var conf []byte
	err = attrs(data[unix.SizeofIfInfomsg:], func(typ uint16, v []byte) {
		if typ != unix.IFLA_AF_SPEC {
			return
		}
		_ = attrs(v, func(fam uint16, v []byte) {
			if fam != unix.AF_INET6 {
				return
			}
			_ = attrs(v, func(typ uint16, v []byte) {
				if typ == unix.IFLA_INET6_CONF {
					conf = v
				}
			})
		})
	})
	if err != nil {
		return unknownEgress, err
	}
	if len(conf) < (devconfIOAM6IDWide+1)*4 {
		return unknownEgress, fmt.Errorf("%w: device %d has no IOAM devconf (%d bytes; Linux 5.15+)", errEgress, ifindex, len(conf))
	}
	id := binary.NativeEndian.Uint32(conf[devconfIOAM6ID*4:])
	wide := binary.NativeEndian.Uint32(conf[devconfIOAM6IDWide*4:])
	// The kernel bounds ioam6_id to 16 bits (proc_douintvec_minmax).
	return egress{id: uint16(id), wide: wide}, nil
}
