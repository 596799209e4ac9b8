package ioam6nl

import "encoding/binary"

// nlmsghdr is struct nlmsghdr (host order).
type nlmsghdr struct {
	length uint32
	typ    uint16
	flags  uint16
	seq    uint32
	pid    uint32
}

// parseNlmsghdr reads a header; the caller checks len(b) >= nlmsgHdrLen.
func parseNlmsghdr(b []byte) nlmsghdr {
	return nlmsghdr{
		length: binary.NativeEndian.Uint32(b[0:4]),
		typ:    binary.NativeEndian.Uint16(b[4:6]),
		flags:  binary.NativeEndian.Uint16(b[6:8]),
		seq:    binary.NativeEndian.Uint32(b[8:12]),
		pid:    binary.NativeEndian.Uint32(b[12:16]),
	}
}

func putNlmsghdr(b []byte, length uint32, typ, flags uint16, seq uint32) {
	binary.NativeEndian.PutUint32(b[0:4], length)
	binary.NativeEndian.PutUint16(b[4:6], typ)
	binary.NativeEndian.PutUint16(b[6:8], flags)
	binary.NativeEndian.PutUint32(b[8:12], seq)
	binary.NativeEndian.PutUint32(b[12:16], 0)
}

func nativeUint32(b []byte) uint32 { return binary.NativeEndian.Uint32(b) }
