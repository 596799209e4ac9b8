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
)

// DEVCONF_* indices into IFLA_INET6_CONF (include/uapi/linux/ipv6.h; the
// enum is append-only ABI). x/sys does not define them.
const (
	devconfIOAM6ID     = 54 // DEVCONF_IOAM6_ID
	devconfIOAM6IDWide = 55 // DEVCONF_IOAM6_ID_WIDE
)

// Netlink attribute layout (include/uapi/linux/netlink.h).
const (
	nlaHdrLen   = 4      // struct nlattr: u16 nla_len, u16 nla_type
	nlaTypeMask = 0x3fff // without NLA_F_NESTED | NLA_F_NET_BYTEORDER
)

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

// openRouteIn creates the netlink socket on a fresh locked thread that
// enters ns and returns; if it cannot return, the goroutine exits locked
// and the runtime discards the thread.
func openRouteIn(ns int) (int, error) {
	type result struct {
		s   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{-1, fmt.Errorf("%w: current netns: %w", errEgress, err)}
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(ns, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- result{-1, fmt.Errorf("%w: setns: %w", errEgress, err)}
			return
		}
		s, oerr := openRoute()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			if oerr == nil {
				unix.Close(s)
			}
			done <- result{-1, fmt.Errorf("%w: restore netns: %w", errEgress, err)}
			return
		}
		runtime.UnlockOSThread()
		done <- result{s, oerr}
	}()
	r := <-done
	return r.s, r.err
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
	msg := make([]byte, unix.SizeofNlMsghdr, unix.SizeofNlMsghdr+len(body))
	msg = append(msg, body...)
	// struct nlmsghdr: len, type, flags, seq, pid (0: the kernel).
	binary.NativeEndian.PutUint32(msg[0:4], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:6], typ)
	binary.NativeEndian.PutUint16(msg[6:8], unix.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(msg[8:12], seq)
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
		for b := buf[:n]; len(b) >= unix.SizeofNlMsghdr; {
			l := int(binary.NativeEndian.Uint32(b[0:4]))
			if l < unix.SizeofNlMsghdr || l > len(b) {
				return nil, fmt.Errorf("%w: netlink message length %d of %d", errEgress, l, len(b))
			}
			typ, mseq, data := binary.NativeEndian.Uint16(b[4:6]), binary.NativeEndian.Uint32(b[8:12]), b[unix.SizeofNlMsghdr:l]
			if mseq == seq {
				switch typ {
				case unix.NLMSG_ERROR:
					if len(data) < 4 {
						return nil, fmt.Errorf("%w: short netlink error", errEgress)
					}
					if errno := int32(binary.NativeEndian.Uint32(data[:4])); errno != 0 {
						return nil, fmt.Errorf("%w: netlink: %w", errEgress, unix.Errno(-errno))
					}
					return nil, fmt.Errorf("%w: netlink: empty answer", errEgress)
				case want:
					return data, nil
				}
			}
			al := (l + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
			if al >= len(b) {
				break
			}
			b = b[al:]
		}
	}
	return nil, fmt.Errorf("%w: no netlink answer", errEgress)
}

// appendAttr appends one netlink attribute (4-byte aligned).
func appendAttr(b []byte, typ uint16, v []byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(nlaHdrLen+len(v)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, v...)
	for len(b)%unix.NLMSG_ALIGNTO != 0 {
		b = append(b, 0)
	}
	return b
}

// attrs splits a block of netlink attributes, checking every length.
func attrs(b []byte, fn func(typ uint16, v []byte)) error {
	for len(b) > 0 {
		if len(b) < nlaHdrLen {
			return fmt.Errorf("%w: truncated attribute", errEgress)
		}
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		if l < nlaHdrLen || l > len(b) {
			return fmt.Errorf("%w: attribute length %d of %d", errEgress, l, len(b))
		}
		fn(binary.NativeEndian.Uint16(b[2:4])&nlaTypeMask, b[nlaHdrLen:l])
		al := (l + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
		if al >= len(b) {
			return nil
		}
		b = b[al:]
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
	body := appendAttr(rtm, unix.RTA_DST, a16[:])
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
		body = appendAttr(body, unix.IFLA_IFNAME, append([]byte(ifname), 0))
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
