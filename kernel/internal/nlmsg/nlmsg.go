// Package nlmsg is the netlink framing that kernel/ioam6nl (IOAM6 generic
// netlink) and kernel/clt (rtnetlink egress lookup) share: struct nlmsghdr
// build and parse, struct nlattr encoding and walking, the NLMSG_ERROR ack,
// and the handling of one datagram of replies to a request. It implements
// include/uapi/linux/netlink.h and the genlmsghdr size of
// include/uapi/linux/genetlink.h; it does no I/O (the callers own their
// sockets, which they read differently) and does not allocate while
// walking. Integers are in host byte order, as netlink carries them.
package nlmsg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
)

// Framing sizes (include/uapi/linux/netlink.h, genetlink.h).
const (
	HdrLen       = 16     // struct nlmsghdr: len u32, type u16, flags u16, seq u32, pid u32
	GenlHdrLen   = 4      // struct genlmsghdr: cmd u8, version u8, reserved u16
	AttrHdrLen   = 4      // struct nlattr: len u16, type u16
	AttrTypeMask = 0x3FFF // nla_type without NLA_F_NESTED | NLA_F_NET_BYTEORDER
	alignTo      = 4      // NLMSG_ALIGNTO == NLA_ALIGNTO
)

// Control message types (NLMSG_ERROR, NLMSG_DONE).
const (
	typeError = 0x2
	typeDone  = 0x3
)

// ErrMalformed marks netlink messages whose framing or attributes are bad.
var ErrMalformed = errors.New("malformed netlink message")

// Align rounds n up to the netlink message and attribute alignment.
func Align(n int) int { return (n + alignTo - 1) &^ (alignTo - 1) }

// Header is struct nlmsghdr.
type Header struct {
	Len   uint32
	Type  uint16
	Flags uint16
	Seq   uint32
	PID   uint32
}

// ParseHeader reads a header; the caller checks len(b) >= HdrLen.
func ParseHeader(b []byte) Header {
	return Header{
		Len:   binary.NativeEndian.Uint32(b[0:4]),
		Type:  binary.NativeEndian.Uint16(b[4:6]),
		Flags: binary.NativeEndian.Uint16(b[6:8]),
		Seq:   binary.NativeEndian.Uint32(b[8:12]),
		PID:   binary.NativeEndian.Uint32(b[12:16]),
	}
}

// Request returns one message to the kernel (port id 0): a header of type
// typ with flags and seq, followed by the payload parts in order.
func Request(typ, flags uint16, seq uint32, parts ...[]byte) []byte {
	n := HdrLen
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, HdrLen, n)
	for _, p := range parts {
		b = append(b, p...)
	}
	binary.NativeEndian.PutUint32(b[0:4], uint32(n))
	binary.NativeEndian.PutUint16(b[4:6], typ)
	binary.NativeEndian.PutUint16(b[6:8], flags)
	binary.NativeEndian.PutUint32(b[8:12], seq)
	return b
}

// MsgIter walks the messages of one datagram, checking every length.
type MsgIter struct {
	b []byte
	// Header and Payload are the current message (Payload: after the
	// header, up to its length).
	Header  Header
	Payload []byte
	err     error
}

// Messages returns an iterator over the messages in b.
func Messages(b []byte) MsgIter { return MsgIter{b: b} }

// Next advances to the next message; it returns false at the end or on a
// framing error (then Err is set). Trailing bytes shorter than a header
// end the walk.
func (it *MsgIter) Next() bool {
	if it.err != nil || len(it.b) < HdrLen {
		return false
	}
	h := ParseHeader(it.b)
	if int(h.Len) < HdrLen || int(h.Len) > len(it.b) {
		it.err = fmt.Errorf("%w: message length %d of %d", ErrMalformed, h.Len, len(it.b))
		return false
	}
	it.Header, it.Payload = h, it.b[HdrLen:h.Len]
	it.b = it.b[min(Align(int(h.Len)), len(it.b)):]
	return true
}

// Err is the framing error that ended the walk, if any.
func (it *MsgIter) Err() error { return it.err }

// ParseError decodes the payload of an NLMSG_ERROR message: nil for an
// acknowledgement (error 0), else the errno the kernel returned.
func ParseError(payload []byte) error {
	if len(payload) < 4 {
		return fmt.Errorf("%w: short error message", ErrMalformed)
	}
	if code := int32(binary.NativeEndian.Uint32(payload[:4])); code != 0 {
		return syscall.Errno(-code)
	}
	return nil
}

// Replies handles one datagram of replies to the request with sequence
// number seq. Messages of other sequence numbers are skipped (stale replies
// to an earlier, abandoned request). NLMSG_DONE and an acknowledgement end
// the request (done, nil); an NLMSG_ERROR with an errno ends it with that
// errno. Every other message goes to fn, which ends the request by
// returning done or an error. A framing error ends it too. done false:
// the request expects more datagrams.
func Replies(b []byte, seq uint32, fn func(typ uint16, payload []byte) (done bool, err error)) (done bool, err error) {
	it := Messages(b)
	for it.Next() {
		if it.Header.Seq != seq {
			continue
		}
		switch it.Header.Type {
		case typeDone:
			return true, nil
		case typeError:
			return true, ParseError(it.Payload)
		}
		if done, err := fn(it.Header.Type, it.Payload); done || err != nil {
			return true, err
		}
	}
	if err := it.Err(); err != nil {
		return true, err
	}
	return false, nil
}
