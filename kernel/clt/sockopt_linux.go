package clt

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"
	"unsafe"

	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sys/unix"
)

// setHopOpts installs (or, with an empty hbh, removes) the sticky
// IPV6_HOPOPTS option (RFC 3542 §6.1). Needs CAP_NET_RAW.
func setHopOpts(fd int, hbh []byte) error {
	// A zero-length option removes the sticky header. The raw call avoids
	// the two copies SetsockoptString makes (this runs once per request).
	var p unsafe.Pointer
	if len(hbh) > 0 {
		p = unsafe.Pointer(&hbh[0])
	}
	_, _, errno := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.IPPROTO_IPV6, unix.IPV6_HOPOPTS,
		uintptr(p), uintptr(len(hbh)), 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// WriteMsgUDP sends b on conn (to addr, or to the connected peer when addr
// is nil) with the IOAM header for the span in ctx attached as IPV6_HOPOPTS
// ancillary data (RFC 3542 §6.2). Without a tagged span (see SetConn) it
// sends b unchanged. When
// the option cannot be attached (no CAP_NET_RAW, IPv4 peer, kernel refusal)
// it sends b without it and counts the skip; in strict mode it returns a
// *SkipError and does not send.
func (inj *Injector) WriteMsgUDP(ctx context.Context, conn *net.UDPConn, b []byte, addr *net.UDPAddr) (int, error) {
	sc := trace.SpanContextFromContext(ctx)
	if !inj.tagged(sc) {
		inj.untraced.Add(1)
		n, _, err := conn.WriteMsgUDP(b, nil, addr)
		return n, err
	}
	peer := net.Addr(addr)
	if addr == nil {
		peer = conn.RemoteAddr()
	}
	if peer != nil && isIPv4(peer) {
		if err := inj.skip(ReasonIPv4, nil); err != nil {
			return 0, err
		}
		n, _, err := conn.WriteMsgUDP(b, nil, addr)
		return n, err
	}
	bp := inj.bufs.Get().(*[]byte)
	defer inj.bufs.Put(bp)
	now := time.Now()
	oob, err := inj.appendCmsg((*bp)[:0], sc, inj.udpEgress(conn, addrOf(peer), now), now)
	if err != nil {
		if err := inj.skip(ReasonBuild, err); err != nil {
			return 0, err
		}
		n, _, err := conn.WriteMsgUDP(b, nil, addr)
		return n, err
	}
	*bp = oob
	n, _, werr := conn.WriteMsgUDP(b, oob, addr)
	if werr == nil {
		inj.applied.Add(1)
		return n, nil
	}
	r := classify(werr)
	if r == ReasonKernel && !isOptionErr(werr) {
		return n, werr // an ordinary send error, not about the option
	}
	if err := inj.skip(r, fmt.Errorf("sendmsg IPV6_HOPOPTS: %w", werr)); err != nil {
		return 0, err
	}
	n, _, err = conn.WriteMsgUDP(b, nil, addr)
	return n, err
}

// isOptionErr reports errors sendmsg returns for a bad ancillary option.
func isOptionErr(err error) bool {
	var errno unix.Errno
	for e := err; e != nil; {
		if en, ok := e.(unix.Errno); ok {
			errno = en
			break
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	return errno == unix.EINVAL || errno == unix.ENOPROTOOPT
}

// udpEgress returns the egress ids toward peer for conn; only a cache miss
// touches the socket (SyscallConn allocates).
func (inj *Injector) udpEgress(conn *net.UDPConn, peer netip.Addr, now time.Time) egress {
	if !peer.IsValid() {
		return unknownEgress
	}
	if eg, ok := inj.egress.get(peer, now); ok {
		return eg
	}
	eg := unknownEgress
	rc, err := conn.SyscallConn()
	if err != nil {
		inj.egressUnknown.Add(1)
		return eg
	}
	if err := rc.Control(func(fd uintptr) { eg = inj.egressFor(int(fd), peer, now) }); err != nil {
		inj.egressUnknown.Add(1)
	}
	return eg
}

// appendCmsg appends one IPV6_HOPOPTS control message carrying the header
// for sc, with eg as the own entry's egress ids.
func (inj *Injector) appendCmsg(dst []byte, sc trace.SpanContext, eg egress, now time.Time) ([]byte, error) {
	hdr := unix.CmsgLen(0)
	start := len(dst)
	dst = append(dst, make([]byte, hdr)...)
	dst, err := inj.appendHBH(dst, sc, eg, now)
	if err != nil {
		return dst[:start], err
	}
	dataLen := len(dst) - start - hdr
	h := (*unix.Cmsghdr)(unsafe.Pointer(&dst[start]))
	h.Level = unix.IPPROTO_IPV6
	h.Type = unix.IPV6_HOPOPTS
	h.SetLen(unix.CmsgLen(dataLen))
	for len(dst)-start < unix.CmsgSpace(dataLen) {
		dst = append(dst, 0)
	}
	return dst, nil
}

// socketCookie is the socket's SO_COOKIE, the eBPF inserter's map key.
func socketCookie(fd int) (uint64, error) {
	return unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE)
}
